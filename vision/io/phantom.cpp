// make_phantom: draws the patient, the anatomy, the acquisition and the
// nodules from the seed, renders the slices in parallel and assembles the
// Phantom. See docs/phantom.md.
#include "vision/io/phantom.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "vision/io/phantom_anatomy.h"
#include "vision/io/phantom_clinical.h"
#include "vision/io/phantom_parallel.h"
#include "vision/io/sizing.h"

namespace hilum {
namespace phantom {
namespace {

// Bumped whenever the generator's output changes, so that UIDs of a changed
// generator never collide with those of an older one.
constexpr uint64_t kGeneratorVersion = 1;

constexpr double kPi = 3.14159265358979323846;

V3 add(const V3& a, const V3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
V3 sub(const V3& a, const V3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
V3 mul(const V3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
double dot(const V3& a, const V3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const V3& a) { return std::sqrt(dot(a, a)); }
V3 normalize(const V3& a) { return mul(a, 1.0 / norm(a)); }
V3 cross(const V3& a, const V3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
V3 random_unit(Rng& rng) {
  while (true) {
    const V3 v{rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)};
    const double n2 = dot(v, v);
    if (n2 > 1e-4 && n2 <= 1) return mul(v, 1.0 / std::sqrt(n2));
  }
}
double tube_distance(const Tube& t, const V3& p, double* radius) {
  const V3 ab = sub(t.b, t.a);
  const double len2 = dot(ab, ab);
  double u = len2 > 0 ? dot(sub(p, t.a), ab) / len2 : 0;
  u = std::clamp(u, 0.0, 1.0);
  if (radius) *radius = t.ra + u * (t.rb - t.ra);
  return norm(sub(p, add(t.a, mul(ab, u))));
}

// Acquisition geometry drawn from the seed (or fixed by the options).
phantom::Scan draw_acquisition(const Anatomy& a, const PhantomOptions& options) {
  Rng rng(options.seed, "acquisition");
  phantom::Scan q;
  q.seed = options.seed;
  constexpr double kCoverage = 300;
  if (options.slices > 0) {
    q.nz = options.slices;
    q.thickness = std::clamp(std::round(kCoverage / q.nz * 1000) / 1000, 0.625, 2.5);
  } else {
    static const double kThickness[] = {0.625, 1.0, 1.25, 1.5, 2.0, 2.5};
    q.thickness = kThickness[rng.weighted({0.08, 0.22, 0.25, 0.15, 0.15, 0.15})];
    q.nz = static_cast<int>(std::lround(kCoverage / q.thickness));
  }
  // Field of view: the smallest listed one that holds the body and the table,
  // or a larger one (pixel spacing fov/512 stays within 0.6-0.9 mm).
  const double body_a = a.cav_a + a.wall + a.muscle + a.fat;
  const double body_ant = a.cav_b + a.wall + a.muscle + a.fat;
  const double body_post = a.cav_b + a.wall + a.back_muscle + 0.6 * a.fat;
  const double need = std::max(2 * body_a + 30, body_ant + body_post + 12 + 30);
  static const double kFov[] = {320, 330, 340, 350, 360, 370, 380, 390, 400, 420, 440, 460};
  std::vector<double> fits;
  for (double f : kFov) {
    if (f >= need) fits.push_back(f);
  }
  if (fits.empty()) fits.push_back(460);
  const size_t pick = std::min(fits.size() - 1, static_cast<size_t>(rng.weighted({0.5, 0.3, 0.2})));
  q.fov = fits[pick];
  q.ps = q.fov / 512;
  // Reconstruction centre: the middle of body and table, on a whole millimetre.
  const double cy = std::round(a.yc + 0.5 * (body_post + 10.5 - body_ant));
  q.origin[0] = -(256 - 0.5) * q.ps;
  q.origin[1] = cy - (256 - 0.5) * q.ps;
  // Slices: centred on the lungs (or on the whole chest when it fits).
  const double span = (q.nz - 1) * q.thickness;
  double z_mid = a.z_apex - 0.5 * a.lung_height + rng.uniform(-10, 10);
  if (span >= a.z_top() - a.z_bottom()) z_mid = 0.5 * (a.z_top() + a.z_bottom());
  q.origin[2] = std::round((z_mid - 0.5 * span) * 2) / 2;  // half-millimetre table positions
  q.noise_sd = rng.uniform(10, 20);
  q.psf_sigma_mm = rng.uniform(0.38, 0.55);
  q.kvp = rng.chance(0.6) ? 120 : 100;
  return q;
}

// Nodule placement ----------------------------------------------------------

enum class Site { kIsolated, kJuxtapleural, kJuxtavascular };

struct Placed {
  V3 c{};
  double reach = 0;
};

class NodulePlacer {
 public:
  NodulePlacer(const Anatomy& a, double z_lo, double z_hi) : a_(a), z_lo_(z_lo), z_hi_(z_hi) {
    for (size_t i = a.n_mediastinal; i < a.tubes.size(); ++i) {
      const Tube& t = a.tubes[i];
      if (t.kind == TubeKind::kVessel && std::min(t.ra, t.rb) >= 1.0 && std::max(t.ra, t.rb) <= 3.5) {
        const double zm = 0.5 * (t.a[2] + t.b[2]);
        if (zm > z_lo && zm < z_hi) mid_vessels_.push_back(static_cast<int>(i));
      }
    }
  }

  // Tries to place a nodule of radius r (reach = r plus spicules) at `site`.
  // `crowded`: closer to other nodules, touching vessels allowed (when the
  // scanned slab is too thin for the asked-for number of nodules).
  bool place(Rng& rng, Site site, double r, double reach, const std::vector<Placed>& others, V3* out,
             bool crowded = false) {
    const double separation = crowded ? 2 : 8;
    for (int attempt = 0; attempt < 400; ++attempt) {
      V3 c{};
      if (!candidate(rng, site, r, &c)) continue;
      if (c[2] - reach < z_lo_ + 1 || c[2] + reach > z_hi_ - 1) continue;
      if (!a_.in_lung(c)) continue;
      bool clear = true;
      for (const Placed& o : others) clear &= norm(sub(o.c, c)) > reach + o.reach + separation;
      if (!clear) continue;
      // Clear of the airways and of the core of large vessels; only
      // juxtavascular ones touch a vessel of 2 mm or more.
      if (airway_gap(c, r) < 1) continue;
      const double touch = vessel_gap(c, r);
      if (touch < -0.5 * r) continue;
      if (site != Site::kJuxtavascular && touch < 1.5 && !crowded) continue;
      bool wall = false;
      const double edge = a_.distance_to_lung_edge(c, r + 4, &wall);
      if (site == Site::kIsolated && edge < (crowded ? r + 1 : r + 3)) continue;
      if (site == Site::kJuxtavascular && edge < r + 2) continue;
      if (site == Site::kJuxtapleural && !(wall && edge <= r + 0.5 && edge >= 0.3 * r)) continue;
      *out = c;
      return true;
    }
    return false;
  }

  // Smallest surface-to-surface gap between a sphere (c, r) and the pulmonary
  // vessels of 2 mm or more (airways: their outer wall); negative when they overlap.
  double vessel_gap(const V3& c, double r) const { return gap(c, r, false); }
  double airway_gap(const V3& c, double r) const { return gap(c, r, true); }

 private:
  bool candidate(Rng& rng, Site site, double r, V3* c) {
    const double z0 = z_lo_ + r + 1, z1 = z_hi_ - r - 1;
    if (z1 <= z0) return false;
    const V3 p{rng.uniform(a_.xc - a_.cav_a, a_.xc + a_.cav_a), rng.uniform(a_.yc - a_.cav_b, a_.yc + a_.cav_b),
               rng.uniform(z0, z1)};
    if (site == Site::kIsolated) {
      *c = p;
      return true;
    }
    if (site == Site::kJuxtapleural) {
      if (!a_.in_lung(p)) return false;
      // Walk outwards in the axial plane to the chest wall, then back by 0.9 r.
      const double angle = rng.uniform(0, 2 * kPi);
      const V3 d{std::cos(angle), std::sin(angle), 0};
      double s = 0;
      while (s < 300 && a_.in_lung(add(p, mul(d, s + 0.5)))) s += 0.5;
      const V3 exit = add(p, mul(d, s + 0.25));
      if (a_.classify(exit[0] + 2 * d[0], exit[1] + 2 * d[1], exit[2]) != phantom::CavityPart::kOutside) return false;
      // Deep enough that even the shortest axis of the nodule reaches the
      // wall (which then flattens it).
      *c = sub(exit, mul(d, 0.65 * r));
      return true;
    }
    if (mid_vessels_.empty()) return false;
    const Tube& t = a_.tubes[mid_vessels_[rng.bits() % mid_vessels_.size()]];
    const double u = rng.uniform(0.2, 0.8);
    const V3 on = add(t.a, mul(sub(t.b, t.a), u));
    const double rv = t.ra + u * (t.rb - t.ra);
    const V3 axis = normalize(sub(t.b, t.a));
    V3 e = cross(axis, random_unit(rng));
    if (norm(e) < 0.1) return false;
    e = normalize(e);
    *c = add(on, mul(e, r + 0.5 * rv));
    return true;
  }

  double gap(const V3& c, double r, bool airways) const {
    double best = 1e9;
    for (size_t i = a_.n_mediastinal; i < a_.tubes.size(); ++i) {
      const Tube& t = a_.tubes[i];
      if ((t.kind == phantom::TubeKind::kAirway) != airways) continue;
      const double rmax = std::max(t.ra, t.rb);
      if (!airways && rmax < 1.0) continue;
      const double margin = r + rmax + 2;
      if (c[2] + margin < std::min(t.a[2], t.b[2]) || c[2] - margin > std::max(t.a[2], t.b[2])) continue;
      double rt = 0;
      const double d = tube_distance(t, c, &rt);
      best = std::min(best, d - rt - r - (airways ? 1.0 : 0.0));
    }
    return best;
  }

  const Anatomy& a_;
  double z_lo_, z_hi_;
  std::vector<int> mid_vessels_;
};

NoduleShape shape_nodule(Rng& rng, const phantom::NoduleFeatures& f, const V3& c) {
  NoduleShape s;
  s.c = c;
  s.type = f.type;
  const double r = 0.5 * f.diameter_mm;
  s.hu_solid = rng.uniform(15, 45);
  s.hu_ggo = f.type == NoduleType::kPartSolid ? rng.uniform(-600, -400) : rng.uniform(-700, -500);
  // A random orthonormal frame for ellipsoids.
  const V3 e0 = random_unit(rng);
  V3 e1 = cross(e0, random_unit(rng));
  while (norm(e1) < 0.1) e1 = cross(e0, random_unit(rng));
  e1 = normalize(e1);
  const V3 e2 = cross(e0, e1);
  s.reach = r;
  switch (f.margin) {
    case NoduleMargin::kSmooth:
    case NoduleMargin::kSpiculated: {
      NoduleShape::Ellipsoid e;
      e.c = c;
      e.axis = {e0, e1, e2};
      const double body = f.margin == NoduleMargin::kSpiculated ? 0.92 : 1.0;
      e.semi = {r * body, r * body * rng.uniform(0.8, 1.0), r * body * rng.uniform(0.75, 1.0)};
      for (int k = 0; k < 3; ++k) {
        e.relief_dir[k] = random_unit(rng);
        e.relief_amp[k] = rng.uniform(-0.08, 0.08);
      }
      s.outer.push_back(e);
      break;
    }
    case NoduleMargin::kLobulated: {
      NoduleShape::Ellipsoid e;
      e.c = c;
      e.axis = {e0, e1, e2};
      e.semi = {0.78 * r, 0.74 * r, 0.72 * r};
      s.outer.push_back(e);
      const int lobes = rng.integer(3, 5);
      for (int i = 0; i < lobes; ++i) {
        const double rl = r * rng.uniform(0.4, 0.55);
        NoduleShape::Ellipsoid l;
        l.c = add(c, mul(random_unit(rng), r - rl));
        l.axis = {V3{1, 0, 0}, V3{0, 1, 0}, V3{0, 0, 1}};
        l.semi = {rl, rl, rl};
        s.outer.push_back(l);
      }
      break;
    }
  }
  if (f.margin == NoduleMargin::kSpiculated) {
    const int n = rng.integer(8, 16);
    for (int i = 0; i < n; ++i) {
      const V3 d = random_unit(rng);
      const double len = r * rng.uniform(0.5, 1.1) + 2;
      Tube t;
      t.a = add(c, mul(d, 0.6 * r));
      t.b = add(c, mul(d, r + len));
      t.ra = rng.uniform(0.5, 0.9);
      t.rb = 0.15;
      s.spicules.push_back(t);
      s.reach = std::max(s.reach, r + len + 0.5);
    }
  }
  if (f.type != NoduleType::kSolid) s.edge_mm = rng.uniform(1.2, 2.0);
  if (f.type == NoduleType::kPartSolid) {
    s.core_r = 0.5 * f.solid_diameter_mm;
    s.core_c = add(c, mul(random_unit(rng), 0.15 * (r - s.core_r)));
  }
  return s;
}

std::string uid_for(uint64_t base, std::string_view what, uint64_t index = 0) {
  const uint64_t hi = phantom::hash_mix(phantom::hash_mix(base, phantom::stream_id(what)), index);
  const uint64_t lo = phantom::hash_mix(hi, 0x5eed);
  return phantom::uuid_uid(hi, lo);
}

}  // namespace
}  // namespace phantom

std::string_view nodule_margin_name(NoduleMargin m) {
  switch (m) {
    case NoduleMargin::kSmooth: return "smooth";
    case NoduleMargin::kLobulated: return "lobulated";
    case NoduleMargin::kSpiculated: return "spiculated";
  }
  return "smooth";
}

Status validate_phantom_options(const PhantomOptions& o) {
  if (o.nodules < -1 || o.nodules > PhantomOptions::kMaxNodules) {
    return bad_input("--nodules must be between 0 and " + std::to_string(PhantomOptions::kMaxNodules) + " (got " +
                     std::to_string(o.nodules) + ")");
  }
  if (o.slices != -1 && (o.slices < PhantomOptions::kMinSlices || o.slices > PhantomOptions::kMaxSlices)) {
    return bad_input("--slices must be between " + std::to_string(PhantomOptions::kMinSlices) + " and " +
                     std::to_string(PhantomOptions::kMaxSlices) + " (got " + std::to_string(o.slices) + ")");
  }
  double total = 0;
  for (double w : o.site_weights) {
    if (!std::isfinite(w) || w < 0) return bad_input("--nodule-sites: weights must be finite and >= 0");
    total += w;
  }
  if (!(total > 0)) return bad_input("--nodule-sites: at least one site needs a weight above 0");
  return Status::Ok();
}

const std::array<std::string_view, 3>& nodule_site_names() {
  static constexpr std::array<std::string_view, 3> names{"isolated", "juxtapleural", "juxtavascular"};
  return names;
}

std::string nodule_sites_text(const std::array<double, 3>& weights) {
  std::string out;
  const auto& names = nodule_site_names();
  for (size_t k = 0; k < names.size(); ++k) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s=%g", k ? "," : "", std::string(names[k]).c_str(), weights[k]);
    out += buf;
  }
  return out;
}

PhantomNote make_phantom_note(uint64_t seed) {
  PhantomNote note;
  phantom::Rng rng(seed, "clinical");
  note.profile = phantom::draw_clinical_profile(rng);
  phantom::Rng note_rng(seed, "note");
  note.text = phantom::write_referral_note(note.profile, note_rng);
  return note;
}

namespace phantom {

Result<PhantomPlan> plan_phantom(const PhantomOptions& options) {
  HILUM_RETURN_IF_ERROR(validate_phantom_options(options));
  const uint64_t seed = options.seed;
  PhantomPlan plan;
  Phantom& ph = plan.phantom;
  {
    PhantomNote note = make_phantom_note(seed);
    ph.clinical = std::move(note.profile);
    ph.clinical_text = std::move(note.text);
  }

  plan.anatomy = draw_anatomy(seed);
  Anatomy& anatomy = plan.anatomy;
  grow_trees(anatomy, seed);
  plan.scan = draw_acquisition(anatomy, options);
  const Scan& scan = plan.scan;
  const double z_lo = scan.origin[2], z_hi = scan.origin[2] + (scan.nz - 1) * scan.thickness;

  // Nodules: appearance, site, shape, label.
  Rng count_rng(seed, "nodule-count");
  const int count = options.nodules >= 0 ? options.nodules : draw_nodule_count(count_rng);
  NodulePlacer placer(anatomy, z_lo, z_hi);
  std::vector<Placed> placed;
  for (int i = 0; i < count; ++i) {
    Rng rng(seed, "nodule", static_cast<uint64_t>(i));
    NoduleFeatures f = draw_nodule_appearance(rng);
    const auto& sw = options.site_weights;
    const size_t site_pick = rng.weighted({sw[0], sw[1], sw[2]});
    Site site = site_pick == 0 ? Site::kIsolated : site_pick == 1 ? Site::kJuxtapleural : Site::kJuxtavascular;
    const double spicule_reach = f.margin == NoduleMargin::kSpiculated ? 1.1 * 0.5 * f.diameter_mm + 2.5 : 0;
    V3 c{};
    bool ok = false;
    // The asked-for site, else an isolated one, else a smaller nodule, else
    // one closer to its neighbours.
    for (int shrink = 0; shrink < 8 && !ok; ++shrink) {
      const double r = 0.5 * f.diameter_mm;
      const bool crowded = shrink >= 4;
      ok = placer.place(rng, site, r, r + spicule_reach, placed, &c, crowded);
      if (!ok && site != Site::kIsolated) {
        site = Site::kIsolated;
        ok = placer.place(rng, site, r, r + spicule_reach, placed, &c, crowded);
      }
      if (!ok) {
        f.diameter_mm = std::max(3.0, std::round(f.diameter_mm * 0.8 * 10) / 10);
        f.solid_diameter_mm = f.type == NoduleType::kSolid ? f.diameter_mm
                              : f.type == NoduleType::kPartSolid
                                  ? std::min(f.solid_diameter_mm, std::round(f.diameter_mm * 0.6 * 10) / 10)
                                  : 0;
      }
    }
    if (!ok) {
      return internal_error("phantom: no room for nodule " + std::to_string(i + 1) + " of " + std::to_string(count) +
                            " in the scanned lung volume");
    }
    NoduleShape shape = shape_nodule(rng, f, c);
    bool wall = false;
    const double r = 0.5 * f.diameter_mm;
    const double edge = anatomy.distance_to_lung_edge(c, r + 2, &wall);
    f.upper_zone = c[2] > anatomy.z_hilum;
    f.juxtapleural = wall && edge <= r + 0.5;

    PhantomNodule n;
    n.center_mm = c;
    n.diameter_mm = f.diameter_mm;
    n.type = f.type;
    n.solid_diameter_mm = f.solid_diameter_mm;
    n.margin = f.margin;
    n.upper_zone = f.upper_zone;
    n.juxtapleural = f.juxtapleural;
    n.juxtavascular = placer.vessel_gap(c, r) < 1.5;
    n.image_logit = image_logit(f);
    n.malignancy_probability = malignancy_probability(n.image_logit, ph.clinical.note_logit);
    Rng label_rng(seed, "label", static_cast<uint64_t>(i));
    n.malignant = label_rng.uniform() < n.malignancy_probability;
    ph.nodules.push_back(n);
    placed.push_back({c, shape.reach});
    plan.shapes.push_back(std::move(shape));
  }

  // Emphysema: low-attenuation foci in the upper two thirds, away from nodules.
  if (ph.clinical.emphysema) {
    Rng rng(seed, "emphysema");
    const int n = rng.integer(40, 120);
    for (int tries = 0; tries < 20 * n && static_cast<int>(plan.lucencies.size()) < n; ++tries) {
      Lucency e;
      e.r = rng.uniform(1.5, 5);
      e.c = {rng.uniform(anatomy.xc - anatomy.cav_a, anatomy.xc + anatomy.cav_a),
             rng.uniform(anatomy.yc - anatomy.cav_b, anatomy.yc + anatomy.cav_b),
             rng.uniform(anatomy.z_apex - 0.65 * anatomy.lung_height, anatomy.z_apex)};
      if (!anatomy.in_lung(e.c)) continue;
      bool clear = true;
      for (const Placed& p : placed) clear &= norm(sub(p.c, e.c)) > p.reach + e.r + 10;
      if (clear) plan.lucencies.push_back(e);
    }
  }
  ph.noise_sd_hu = scan.noise_sd;

  // Study facts (synthetic; the patient block says so).
  uint64_t base = hash_mix(
      hash_mix(hash_mix(seed, kGeneratorVersion), static_cast<uint64_t>(options.nodules + 2)),
      static_cast<uint64_t>(options.slices + 2));
  if (options.site_weights != PhantomOptions{}.site_weights) {  // other sites, other UIDs (the default's stay)
    for (double w : options.site_weights) base = hash_mix(base, std::bit_cast<uint64_t>(w));
  }
  StudyInfo& info = ph.info;
  info.patient.name = "PHANTOM^SEED" + std::to_string(seed);
  info.patient.id = "PHANTOM-" + std::to_string(seed);
  info.study_instance_uid = uid_for(base, "study");
  info.series_instance_uid = uid_for(base, "series");
  info.frame_of_reference_uid = uid_for(base, "frame-of-reference");
  info.study_date = "20000101";
  info.study_time = "090000";
  char accession[17];
  std::snprintf(accession, sizeof accession, "PH%08llX", static_cast<unsigned long long>(base >> 32));
  info.accession_number = accession;
  info.study_description = "Synthetic chest CT phantom (not a patient)";
  info.series_description = "Hilum phantom, low-dose chest";
  info.modality = "CT";
  info.manufacturer = "Hilum";
  info.institution_name = "Synthetic data";
  info.body_part = "CHEST";
  info.convolution_kernel = scan.psf_sigma_mm < 0.45 ? "SHARP" : "STANDARD";
  info.slice_thickness_mm = scan.thickness;
  info.kvp = scan.kvp;
  for (int k = 0; k < scan.nz; ++k) {
    info.sop_class_uids.push_back("1.2.840.10008.5.1.4.1.1.2");
    info.sop_instance_uids.push_back(uid_for(base, "sop-instance", static_cast<uint64_t>(k)));
  }
  return plan;
}

// The drawn measurements of PhantomNodule from the label volume.
static void measure_drawn(const Volume& v, const uint8_t* lab, PhantomNodule& t) {
  const double reach = 0.75 * t.diameter_mm + 3;
  const Vec3 c = v.voxel_from_world(t.center_mm);
  const int64_t rx = static_cast<int64_t>(reach / v.spacing[0]) + 1,
                rz = static_cast<int64_t>(reach / v.spacing[2]) + 1;
  std::map<int64_t, std::vector<std::array<int, 2>>> slices;
  int64_t count = 0;
  for (int64_t z = std::max<int64_t>(0, std::lround(c[2]) - rz);
       z <= std::min(v.nz() - 1, std::lround(c[2]) + rz); ++z)
    for (int64_t y = std::max<int64_t>(0, std::lround(c[1]) - rx);
         y <= std::min(v.ny() - 1, std::lround(c[1]) + rx); ++y)
      for (int64_t x = std::max<int64_t>(0, std::lround(c[0]) - rx);
           x <= std::min(v.nx() - 1, std::lround(c[0]) + rx); ++x) {
        if ((lab[(z * v.ny() + y) * v.nx() + x] & 0x7f) != kTissueNodule) continue;
        const Vec3 w = v.world_from_voxel({double(x), double(y), double(z)});
        if (std::hypot(w[0] - t.center_mm[0], w[1] - t.center_mm[1], w[2] - t.center_mm[2]) > reach) continue;
        slices[z].push_back({static_cast<int>(x), static_cast<int>(y)});
        ++count;
      }
  const std::vector<std::array<int, 2>>* best = nullptr;
  for (const auto& [z, px] : slices)
    if (!best || px.size() > best->size()) best = &px;
  if (!best) return;
  const auto axes = long_and_short_axis(*best, v.spacing[0]);
  t.drawn_long_mm = axes[0];
  t.drawn_short_mm = axes[1];
  t.drawn_mean_mm = (axes[0] + axes[1]) / 2;
  t.drawn_volume_mm3 = static_cast<double>(count) * v.spacing[0] * v.spacing[1] * v.spacing[2];
}

}  // namespace phantom

Result<Phantom> make_phantom(const PhantomOptions& options, Progress& progress) {
  progress.report(0, "anatomy");
  HILUM_ASSIGN_OR_RETURN(phantom::PhantomPlan plan, phantom::plan_phantom(options));
  if (progress.cancelled()) return cancelled_error();
  progress.report(0.1, "rendering");
  Phantom ph = std::move(plan.phantom);
  const phantom::Scan& scan = plan.scan;
  phantom::Renderer renderer(plan.anatomy, scan, plan.shapes, plan.lucencies, options.seed);
  // Every voxel is rendered, so the memory need not be zeroed first.
  ph.volume.hu = Tensor::empty({scan.nz, scan.ny, scan.nx}, DType::kF32);
  ph.volume.spacing = {scan.ps, scan.ps, scan.thickness};
  ph.volume.origin = scan.origin;
  ph.labels = Tensor::empty({scan.nz, scan.ny, scan.nx}, DType::kU8);
  float* hu = ph.volume.data();
  uint8_t* labels = ph.labels.data<uint8_t>();
  const size_t slice = static_cast<size_t>(scan.nx) * scan.ny;
  {
    ProgressRange sub(progress, 0.1, 0.9);
    HILUM_RETURN_IF_ERROR(phantom::parallel_for(scan.nz, sub, "rendering slices", [&](int k) {
      renderer.render_slice(k, hu + k * slice, labels + k * slice);
    }));
  }
  {
    ProgressRange sub(progress, 0.9, 1.0);
    constexpr int kRows = 16;
    HILUM_RETURN_IF_ERROR(phantom::parallel_for((scan.ny + kRows - 1) / kRows, sub, "slice profile", [&](int b) {
      renderer.finish_rows(hu, b * kRows, std::min(scan.ny, (b + 1) * kRows));
    }));
  }
  for (PhantomNodule& n : ph.nodules) phantom::measure_drawn(ph.volume, labels, n);
  progress.report(1, "done");
  return ph;
}

std::string phantom_truth_csv(const Phantom& ph) {
  std::string out =
      "seriesuid,coordX,coordY,coordZ,diameter_mm,type,solid_diameter_mm,malignant,juxtapleural,"
      "juxtavascular,"
      "margin,malignancy_probability,axial_long_mm,axial_short_mm,axial_mean_mm,volume_mm3\n";
  char line[512];
  for (const PhantomNodule& n : ph.nodules) {
    std::snprintf(line, sizeof line, "%s,%.3f,%.3f,%.3f,%.1f,%s,%.1f,%d,%d,%d,%s,%.4f,%.1f,%.1f,%.1f,%.1f\n",
                  ph.info.series_instance_uid.c_str(), n.center_mm[0], n.center_mm[1], n.center_mm[2],
                  n.diameter_mm, std::string(nodule_type_name(n.type)).c_str(), n.solid_diameter_mm,
                  n.malignant ? 1 : 0, n.juxtapleural ? 1 : 0, n.juxtavascular ? 1 : 0,
                  std::string(nodule_margin_name(n.margin)).c_str(), n.malignancy_probability,
                  n.drawn_long_mm, n.drawn_short_mm, n.drawn_mean_mm, n.drawn_volume_mm3);
    out += line;
  }
  return out;
}

}  // namespace hilum
