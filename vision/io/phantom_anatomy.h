// The phantom's analytic chest (docs/phantom.md, "Anatomy"): torso layers,
// ribs, spine, mediastinum, heart, diaphragm, lungs, and the branching trees
// of airways, arteries and veins as tapered capsules; and the slice renderer
// that turns them into HU with partial volume, noise and blur. Internal to
// hilum_vision_io.
//
// World coordinates are LPS millimetres: +x patient left, +y posterior,
// +z superior.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "vision/io/phantom.h"
#include "vision/io/phantom_random.h"

namespace hilum::phantom {

using V3 = std::array<double, 3>;

enum class TubeKind : uint8_t {
  kVessel,         // pulmonary artery/vein inside the lungs: blood, painted on lung only
  kAirway,         // intrapulmonary bronchus: wall + air lumen, painted on lung only
  kCentralAirway,  // trachea, main bronchi: wall + air lumen, painted on soft tissue and fat
  kGreatVessel,    // aorta, pulmonary trunk and arteries, SVC, central veins: blood
  kEsophagus,      // soft tissue
  kBone,           // clavicles
};

// A capsule whose radius goes linearly from ra at a to rb at b.
struct Tube {
  V3 a{}, b{};
  double ra = 1, rb = 1;
  TubeKind kind = TubeKind::kVessel;
};

struct Rib {
  double z_posterior = 0;  // height of the rib's centreline where it leaves the spine
  double drop = 80;        // how far it descends by the anterior midline
  double bone_end = 0.8;   // fraction of pi (from the posterior midline) where bone ends
  double cartilage_end = 0.95;
};

// Lung classification of a point (what is inside the thoracic cavity there).
enum class CavityPart : uint8_t { kOutside, kRightLung, kLeftLung, kMediastinum, kAbdomen, kAboveLungs };

struct Anatomy;

// The z-dependent part of the cavity geometry, computed once per slice.
struct CavitySlice {
  const Anatomy* anatomy = nullptr;
  double z = 0;
  double t = 0;           // (z_apex - z) / lung_height: 0 at the apex
  double ca = 0, cb = 0;  // cavity semi-axes at this height
  double taper = 0;       // apical narrowing of the lungs (0 at the apex, 1 below)
  double med_w = 0;       // half width of the central mediastinum
  bool heart = false;     // the heart (with its fat) crosses this slice
  double heart_a = 0, heart_b = 0;
  double heart_cos = 1, heart_sin = 0;
  struct Sleeve {  // a mediastinal tube crossing this slice, with its xy box
    int tube = 0;
    double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  };
  std::vector<Sleeve> sleeves;

  CavityPart classify(double x, double y) const;
  bool in_mediastinum(double x, double y) const;
};

struct Anatomy {
  // Torso, centred at (xc, yc).
  double xc = 0, yc = 0;
  double cav_a = 125, cav_b = 90;  // thoracic cavity semi-axes (below the apex region)
  double wall = 11;                // rib layer
  double muscle = 10, back_muscle = 22, fat = 15;
  // Heights.
  double z_apex = -40, lung_height = 250;
  double z_base_right = 0, z_base_left = 0, dome_height = 65;
  double z_carina = 0, z_hilum = 0, z_arch = 0;
  // Mediastinum.
  double xm = 0;
  // Heart: ellipsoid rotated about z by heart_angle (long axis anterior-left).
  V3 heart_c{};
  double heart_ax = 60, heart_ay = 50, heart_az = 55, heart_angle = 0.5;
  // Spine.
  double y_vb = 0, vb_r = 17, z_t1 = 0, vert_pitch = 25;
  // Lungs' hila (where the pulmonary arteries and main bronchi enter).
  V3 hilum_right{}, hilum_left{};
  V3 bronchus_right{}, bronchus_left{};  // ends of the main bronchi
  V3 vein_root_right{}, vein_root_left{};
  std::array<Rib, 12> ribs{};
  double z_sternum_top = 0, z_sternum_bottom = 0;
  // Texture and density.
  double lung_hu = -855;    // parenchyma at mid depth
  double lung_gradient = 30;  // HU from anterior to posterior half-depth (gravity)

  std::vector<Tube> tubes;  // great vessels etc. first, then airways, then pulmonary vessels
  size_t n_mediastinal = 0;  // tubes[0, n_mediastinal) bound the lungs

  CavitySlice cavity_slice(double z) const;
  CavityPart classify(double x, double y, double z) const { return cavity_slice(z).classify(x, y); }
  bool in_lung(const V3& p) const {
    const CavityPart c = classify(p[0], p[1], p[2]);
    return c == CavityPart::kRightLung || c == CavityPart::kLeftLung;
  }
  double cavity_scale(double z) const;
  double dome_z(bool right, double x, double y) const;
  // Distance (mm, up to `limit`) from p to the nearest point outside the lungs,
  // by marching rays in 26 directions; and whether that nearest boundary is
  // the chest wall (outside the cavity ellipse).
  double distance_to_lung_edge(const V3& p, double limit, bool* chest_wall = nullptr) const;
  // Top and bottom of the region worth scanning.
  double z_top() const { return z_apex + 30; }
  double z_bottom() const { return std::min(z_base_left, z_base_right) - 20; }
};

// Geometry, great vessels and central airways (no trees yet).
Anatomy draw_anatomy(uint64_t seed);
// Adds the bronchial, arterial and venous trees of both lungs to anatomy.tubes.
void grow_trees(Anatomy& anatomy, uint64_t seed);

// A nodule as the renderer draws it.
struct NoduleShape {
  V3 c{};
  double reach = 5;  // radius of a sphere that contains every part
  NoduleType type = NoduleType::kSolid;
  double hu_solid = 30, hu_ggo = -600;
  struct Ellipsoid {
    V3 c{};
    std::array<V3, 3> axis{};  // unit axes
    std::array<double, 3> semi{};
    // Gentle surface relief: the radius along unit direction u is scaled by
    // 1 + sum_k relief_amp[k] * ((u . relief_dir[k])^2 - 1/3).
    std::array<V3, 3> relief_dir{};
    std::array<double, 3> relief_amp{};
  };
  std::vector<Ellipsoid> outer;  // union: the whole nodule (GGO part for part-solid)
  double edge_mm = 0;  // width of the outer edge blur (ground glass is hazy); 0: one pixel
  V3 core_c{};
  double core_r = 0;  // part-solid: solid component
  std::vector<Tube> spicules;
};

// A rounded low-attenuation focus (emphysema).
struct Lucency {
  V3 c{};
  double r = 3;
  double hu = -975;
};

// Everything the renderer needs besides the anatomy.
struct Scan {
  int nx = 512, ny = 512, nz = 0;
  double ps = 0.7, thickness = 1.25;  // pixel spacing, slice spacing = thickness
  V3 origin{};                        // centre of voxel (0, 0, 0); slice k at origin z + k * thickness
  double noise_sd = 15;               // HU after blur
  double psf_sigma_mm = 0.45;         // in-plane Gaussian
  double fov = 360;                   // reconstruction diameter, mm (= nx * ps)
  int kvp = 120;
  uint64_t seed = 1;
};

// Everything drawn from the seed before rendering: `phantom` holds the
// nodules, the profile, the note and the study facts but no volume yet.
struct PhantomPlan {
  Anatomy anatomy;
  Scan scan;
  std::vector<NoduleShape> shapes;  // parallel to phantom.nodules
  std::vector<Lucency> lucencies;
  Phantom phantom;
};
Result<PhantomPlan> plan_phantom(const PhantomOptions& options);

class Renderer {
 public:
  Renderer(const Anatomy& anatomy, const Scan& scan, const std::vector<NoduleShape>& nodules,
           const std::vector<Lucency>& lucencies, uint64_t texture_seed);
  // Renders slice k (HU after noise and in-plane blur, not yet rounded) and
  // its labels. Thread-safe: call concurrently for different k with
  // different buffers.
  void render_slice(int k, float* hu, uint8_t* labels) const;
  // The z partial-volume and rounding pass over the whole volume [nz, ny, nx],
  // rows [y0, y1).
  void finish_rows(float* volume, int y0, int y1) const;

 private:
  struct Grid3 {
    int nx = 0, ny = 0, nz = 0;
    double x0 = 0, y0 = 0, z0 = 0, step = 1;
    std::vector<float> v;
  };
  void fill_texture_plane(const Grid3& g, double z, std::vector<float>& plane) const;

  const Anatomy& a_;
  Scan s_;
  const std::vector<NoduleShape>& nodules_;
  const std::vector<Lucency>& lucencies_;
  std::vector<std::vector<int>> tubes_by_slice_, nodules_by_slice_, lucencies_by_slice_;
  Grid3 coarse_, fine_;
  std::vector<float> kernel_;  // in-plane Gaussian, odd length
  double z_weight_ = 0.12;     // neighbour weight of the z pass
  double noise_pre_sd_ = 0;    // white noise sd before the blurs
};

}  // namespace hilum::phantom
