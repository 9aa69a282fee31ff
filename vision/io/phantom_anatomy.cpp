#include "vision/io/phantom_anatomy.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace hilum::phantom {

namespace {

constexpr double kPi = 3.14159265358979323846;

V3 add(const V3& a, const V3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
V3 sub(const V3& a, const V3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
V3 mul(const V3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
double dot(const V3& a, const V3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const V3& a) { return std::sqrt(dot(a, a)); }
V3 normalize(const V3& a) {
  const double n = norm(a);
  return n > 1e-12 ? mul(a, 1.0 / n) : V3{0, 0, 1};
}
double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}
// Distance from p to the axis of t, and the tube's radius at the closest point.
double tube_distance(const Tube& t, const V3& p, double* radius) {
  const V3 ab = sub(t.b, t.a);
  const double len2 = dot(ab, ab);
  double u = len2 > 0 ? dot(sub(p, t.a), ab) / len2 : 0;
  u = std::clamp(u, 0.0, 1.0);
  if (radius) *radius = t.ra + u * (t.rb - t.ra);
  return norm(sub(p, add(t.a, mul(ab, u))));
}

}  // namespace

// ---------------------------------------------------------------------------
// Cavity geometry

double Anatomy::cavity_scale(double z) const {
  const double t = (z_apex - z) / lung_height;
  return 0.80 + 0.20 * smoothstep(-0.1, 0.35, t);
}

double Anatomy::dome_z(bool right, double x, double y) const {
  const double sgn = right ? -1 : 1;
  const double zb = right ? z_base_right : z_base_left;
  const double ex = (x - (xc + sgn * 0.42 * cav_a)) / (0.78 * cav_a);
  const double ey = (y - (yc - 0.15 * cav_b)) / (1.1 * cav_b);
  const double q = 1 - ex * ex - ey * ey;
  return zb + dome_height * std::max(q, 0.0);
}

CavitySlice Anatomy::cavity_slice(double z) const {
  CavitySlice s;
  s.anatomy = this;
  s.z = z;
  s.t = (z_apex - z) / lung_height;
  const double cs = cavity_scale(z);
  s.ca = cav_a * cs;
  s.cb = cav_b * cs;
  s.taper = s.t <= 0 ? 0 : std::sqrt(std::min(1.0, s.t / 0.28));
  s.med_w = 17 + 10 * smoothstep(0.05, 0.35, s.t) + 9 * std::exp(-std::pow((z - z_hilum) / 25, 2));
  const double hz = (z - heart_c[2]) / (heart_az + 5);
  if (hz * hz < 1) {
    s.heart = true;
    const double f = std::sqrt(1 - hz * hz);
    s.heart_a = (heart_ax + 5) * f;
    s.heart_b = (heart_ay + 5) * f;
  }
  s.heart_cos = std::cos(heart_angle);
  s.heart_sin = std::sin(heart_angle);
  for (size_t i = 0; i < n_mediastinal; ++i) {
    const Tube& t = tubes[i];
    const double r = std::max(t.ra, t.rb) + 3;
    if (z < std::min(t.a[2], t.b[2]) - r || z > std::max(t.a[2], t.b[2]) + r) continue;
    CavitySlice::Sleeve sl;
    sl.tube = static_cast<int>(i);
    sl.x0 = std::min(t.a[0], t.b[0]) - r;
    sl.x1 = std::max(t.a[0], t.b[0]) + r;
    sl.y0 = std::min(t.a[1], t.b[1]) - r;
    sl.y1 = std::max(t.a[1], t.b[1]) + r;
    s.sleeves.push_back(sl);
  }
  return s;
}

bool CavitySlice::in_mediastinum(double x, double y) const {
  const Anatomy& a = *anatomy;
  const double ex = (x - a.xm) / med_w, ey = (y - (a.yc + 0.08 * a.cav_b)) / (0.72 * a.cav_b);
  if (ex * ex + ey * ey <= 1) return true;
  const double dx = x - a.xc, dy = y - a.y_vb;
  if (dx * dx + dy * dy < (a.vb_r + 5) * (a.vb_r + 5)) return true;
  if (dy > 0 && std::abs(dx) < a.vb_r + 3) return true;
  if (heart) {
    const double hx = x - a.heart_c[0], hy = y - a.heart_c[1];
    const double u = (hx * heart_cos - hy * heart_sin) / heart_a, v = (hx * heart_sin + hy * heart_cos) / heart_b;
    if (u * u + v * v <= 1) return true;
  }
  for (const Sleeve& sl : sleeves) {
    if (x < sl.x0 || x > sl.x1 || y < sl.y0 || y > sl.y1) continue;
    double r = 0;
    const double d = tube_distance(a.tubes[sl.tube], {x, y, z}, &r);
    if (d < r + 3) return true;
  }
  return false;
}

CavityPart CavitySlice::classify(double x, double y) const {
  const Anatomy& a = *anatomy;
  const double dx = x - a.xc, dy = y - a.yc;
  if (dx * dx / (ca * ca) + dy * dy / (cb * cb) > 1) return CavityPart::kOutside;
  if (t <= 0) return CavityPart::kAboveLungs;
  const bool right = x < a.xm;
  const double lx = a.xc + (right ? -0.5 : 0.5) * ca, ly = a.yc + 0.05 * cb;
  const double ax = 0.62 * ca * taper, ay = 1.05 * cb * taper;
  const double ux = (x - lx) / ax, uy = (y - ly) / ay;
  if (ux * ux + uy * uy > 1) return t < 0.3 ? CavityPart::kAboveLungs : CavityPart::kMediastinum;
  if (z < a.dome_z(right, x, y)) return CavityPart::kAbdomen;
  if (in_mediastinum(x, y)) return CavityPart::kMediastinum;
  return right ? CavityPart::kRightLung : CavityPart::kLeftLung;
}

double Anatomy::distance_to_lung_edge(const V3& p, double limit, bool* chest_wall) const {
  double best = limit;
  V3 best_dir{0, 0, 1};
  for (int dz = -1; dz <= 1; ++dz) {
    for (int dy = -1; dy <= 1; ++dy) {
      for (int dx = -1; dx <= 1; ++dx) {
        if (!dx && !dy && !dz) continue;
        const V3 d = normalize({double(dx), double(dy), double(dz)});
        // March in 1 mm steps, then bisect the last step.
        double lo = 0;
        for (double r = 1; r <= best + 1e-9; r += 1) {
          if (!in_lung(add(p, mul(d, r)))) {
            double hi = r;
            for (int i = 0; i < 4; ++i) {
              const double mid = 0.5 * (lo + hi);
              (in_lung(add(p, mul(d, mid))) ? lo : hi) = mid;
            }
            if (hi < best) {
              best = hi;
              best_dir = d;
            }
            break;
          }
          lo = r;
        }
      }
    }
  }
  if (chest_wall) {
    const V3 q = add(p, mul(best_dir, best + 1.5));
    *chest_wall = best < limit && classify(q[0], q[1], q[2]) == CavityPart::kOutside;
  }
  return best;
}

// ---------------------------------------------------------------------------
// The fixed anatomy

Anatomy draw_anatomy(uint64_t seed) {
  Rng rng(seed, "anatomy");
  Anatomy a;
  a.cav_a = rng.uniform(112, 138);
  a.cav_b = rng.uniform(82, 98);
  a.wall = 11;
  a.muscle = rng.uniform(7, 13);
  a.back_muscle = rng.uniform(18, 28);
  a.fat = rng.uniform(5, 26);
  a.xc = rng.uniform(-6, 6);
  a.yc = rng.uniform(-8, 8);
  a.lung_height = rng.uniform(230, 270);
  a.z_apex = -rng.uniform(20, 60);
  a.z_base_left = a.z_apex - a.lung_height;
  a.z_base_right = a.z_base_left + rng.uniform(8, 20);
  a.dome_height = rng.uniform(55, 75);
  a.z_carina = a.z_apex - 0.30 * a.lung_height;
  a.z_hilum = a.z_apex - 0.40 * a.lung_height;
  a.z_arch = a.z_carina + rng.uniform(18, 28);
  a.xm = a.xc + rng.uniform(2, 8);
  a.lung_hu = rng.uniform(-865, -845);
  a.lung_gradient = rng.uniform(20, 40);

  a.vb_r = rng.uniform(15, 19);
  a.y_vb = a.yc + a.cav_b - a.vb_r - 4;
  a.z_t1 = a.z_apex + rng.uniform(5, 15);
  a.vert_pitch = rng.uniform(23, 27);

  a.heart_ax = rng.uniform(55, 68);
  a.heart_ay = rng.uniform(45, 55);
  a.heart_az = rng.uniform(50, 60);
  a.heart_angle = rng.uniform(25, 40) * kPi / 180;
  a.heart_c = {a.xm + rng.uniform(18, 28), a.yc - 0.22 * a.cav_b,
               a.z_base_left + a.dome_height + rng.uniform(25, 40)};

  // Ribs: rib k leaves vertebra T(k) and descends towards the sternum.
  for (int k = 0; k < 12; ++k) {
    Rib& r = a.ribs[k];
    r.z_posterior = a.z_t1 - (k + 0.5) * a.vert_pitch;
    static const double kDrop[12] = {35, 60, 90, 105, 115, 120, 124, 126, 126, 120, 80, 60};
    r.drop = kDrop[k] * rng.uniform(0.9, 1.1);
    r.bone_end = k < 7 ? 0.80 : k < 10 ? 0.72 : 0.50;
    r.cartilage_end = k < 7 ? 0.96 : k < 10 ? 0.88 : 0.50;
  }
  a.z_sternum_top = a.z_apex - 0.02 * a.lung_height;
  a.z_sternum_bottom = a.z_apex - 0.62 * a.lung_height;

  // Great vessels and central airways (these bound the lungs: tubes[0, n_mediastinal)).
  auto med_w = [&](double z) { return a.cavity_slice(z).med_w; };
  auto tube = [&](V3 p, V3 q, double ra, double rb, TubeKind kind) {
    Tube t;
    t.a = p;
    t.b = q;
    t.ra = ra;
    t.rb = rb;
    t.kind = kind;
    a.tubes.push_back(t);
  };
  const double cb = a.cav_b, yc = a.yc, xm = a.xm;
  const double ar = rng.uniform(11, 14);
  const double x_da = a.xc + a.vb_r + 9, y_da = a.y_vb - 0.5 * a.vb_r;
  const double zh = a.heart_c[2];
  // Aorta: ascending, arch, descending.
  std::vector<V3> aorta = {{xm - 8, yc - 0.20 * cb, zh + 15},
                           {xm - 10, yc - 0.22 * cb, a.z_arch - 12},
                           {xm - 5, yc - 0.12 * cb, a.z_arch},
                           {xm + 8, yc + 0.12 * cb, a.z_arch + 4},
                           {x_da - 2, y_da - 6, a.z_arch - 2},
                           {x_da, y_da, a.z_arch - 20},
                           {x_da, y_da, a.z_base_left - 40}};
  for (size_t i = 0; i + 1 < aorta.size(); ++i) {
    tube(aorta[i], aorta[i + 1], i < 2 ? ar * 1.1 : ar, i < 1 ? ar * 1.1 : ar, TubeKind::kGreatVessel);
  }
  // Pulmonary trunk and arteries to the hila.
  const double zhil = a.z_hilum;
  a.hilum_right = {xm - med_w(zhil) - 2, yc + 0.05 * cb, zhil};
  a.hilum_left = {xm + med_w(zhil + 10) + 2, yc + 0.10 * cb, zhil + 10};
  const V3 pa_split = {xm + 8, yc - 0.08 * cb, zhil + 14};
  tube({xm + 14, yc - 0.45 * cb, zh + 20}, pa_split, 13, 12, TubeKind::kGreatVessel);
  tube(pa_split, a.hilum_right, 10, 8, TubeKind::kGreatVessel);
  tube(pa_split, a.hilum_left, 10, 8, TubeKind::kGreatVessel);
  // Superior vena cava.
  tube({xm - 24, yc - 0.10 * cb, a.z_top() + 20}, {xm - 22, yc - 0.14 * cb, zh + 25}, 10, 11,
       TubeKind::kGreatVessel);
  // Pulmonary veins to the left atrium.
  const V3 atrium = {xm + 6, a.y_vb - a.vb_r - 22, zh + 0.45 * a.heart_az};
  a.vein_root_right = {xm - med_w(zhil - 28) - 2, yc + 0.18 * cb, zhil - 28};
  a.vein_root_left = {xm + med_w(zhil - 22) + 2, yc + 0.18 * cb, zhil - 22};
  tube(atrium, a.vein_root_right, 8, 7, TubeKind::kGreatVessel);
  tube(atrium, a.vein_root_left, 8, 7, TubeKind::kGreatVessel);
  // Esophagus.
  const double y_es = a.y_vb - a.vb_r - 9;
  tube({xm + 4, y_es, a.z_top() + 20}, {xm + 6, y_es, a.z_bottom() - 20}, 8, 8, TubeKind::kEsophagus);
  // Trachea and main bronchi.
  const double y_tr = a.y_vb - a.vb_r - 26;
  const V3 carina = {xm, y_tr, a.z_carina};
  tube({xm, y_tr - 4, a.z_top() + 20}, carina, 8.5, 8.5, TubeKind::kCentralAirway);
  a.bronchus_right = {xm - med_w(a.z_carina - 20) - 3, y_tr + 4, a.z_carina - 20};
  a.bronchus_left = {xm + med_w(a.z_carina - 38) + 3, y_tr + 6, a.z_carina - 38};
  tube(carina, a.bronchus_right, 6.5, 5.5, TubeKind::kCentralAirway);
  tube(carina, a.bronchus_left, 6.0, 5.0, TubeKind::kCentralAirway);
  a.n_mediastinal = a.tubes.size();
  // Clavicles (bone, outside the cavity).
  for (int sgn : {-1, 1}) {
    const double zc = a.z_apex + rng.uniform(0, 10);
    tube({a.xc + sgn * 18, yc - cb - a.wall - a.muscle * 0.5, zc}, {a.xc + sgn * (a.cav_a + 10), yc - 0.25 * cb, zc + 12},
         6.5, 5.5, TubeKind::kBone);
  }
  return a;
}

// ---------------------------------------------------------------------------
// Trees (space colonization: attractor points spread through each lung pull
// the tips of the growing tree towards them; radii follow the pipe model)

namespace {

struct Node {
  V3 p{};
  int parent = -1;
  int children = 0;
  bool blocked = false;  // cannot grow (tried to leave the lung)
  double r = 0;
};

struct ColonyRules {
  int attractors = 3000;
  double step = 2.5;        // mm per growth step
  double influence = 20;    // an attractor pulls the nearest node within this distance
  double kill = 4;          // and is satisfied once a node comes this close
  double free_zone = 25;    // nodes this close to the root may grow outside the lungs (hilum)
  int max_iterations = 400;
  int max_nodes = 30000;
  double leaf_r = 0.35, gamma = 3.0;  // pipe model (Murray): r_parent^gamma = sum r_child^gamma
};

// A uniform grid of point indices over the chest.
class PointGrid {
 public:
  PointGrid(const Anatomy& a, double cell) : cell_(cell) {
    x0_ = a.xc - a.cav_a - 20;
    y0_ = a.yc - a.cav_b - 20;
    z0_ = a.z_bottom() - 20;
    nx_ = static_cast<int>((2 * a.cav_a + 40) / cell) + 1;
    ny_ = static_cast<int>((2 * a.cav_b + 40) / cell) + 1;
    nz_ = static_cast<int>((a.z_top() - z0_ + 40) / cell) + 1;
    cells_.resize(static_cast<size_t>(nx_) * ny_ * nz_);
  }
  void insert(const V3& p, int index) {
    const long c = cell_of(p);
    if (c >= 0) cells_[c].push_back(index);
  }
  // Calls fn(index) for points in the cells within `radius` of p.
  template <typename Fn>
  void visit(const V3& p, double radius, Fn&& fn) const {
    const int i0 = coord(p[0] - radius, x0_, nx_), i1 = coord(p[0] + radius, x0_, nx_);
    const int j0 = coord(p[1] - radius, y0_, ny_), j1 = coord(p[1] + radius, y0_, ny_);
    const int k0 = coord(p[2] - radius, z0_, nz_), k1 = coord(p[2] + radius, z0_, nz_);
    for (int k = k0; k <= k1; ++k)
      for (int j = j0; j <= j1; ++j)
        for (int i = i0; i <= i1; ++i)
          for (int index : cells_[(static_cast<size_t>(k) * ny_ + j) * nx_ + i]) fn(index);
  }

 private:
  int coord(double v, double o, int n) const {
    return std::clamp(static_cast<int>(std::floor((v - o) / cell_)), 0, n - 1);
  }
  long cell_of(const V3& p) const {
    const int i = static_cast<int>(std::floor((p[0] - x0_) / cell_));
    const int j = static_cast<int>(std::floor((p[1] - y0_) / cell_));
    const int k = static_cast<int>(std::floor((p[2] - z0_) / cell_));
    if (i < 0 || j < 0 || k < 0 || i >= nx_ || j >= ny_ || k >= nz_) return -1;
    return (static_cast<long>(k) * ny_ + j) * nx_ + i;
  }
  double cell_, x0_, y0_, z0_;
  int nx_, ny_, nz_;
  std::vector<std::vector<int>> cells_;
};

// Points spread uniformly through one lung.
std::vector<V3> lung_points(const Anatomy& a, bool right, int count, Rng& rng) {
  std::vector<V3> out;
  const double x_lo = right ? a.xc - a.cav_a : a.xm, x_hi = right ? a.xm : a.xc + a.cav_a;
  const CavityPart want = right ? CavityPart::kRightLung : CavityPart::kLeftLung;
  for (int tries = 0; tries < 40 * count && static_cast<int>(out.size()) < count; ++tries) {
    const V3 p{rng.uniform(x_lo, x_hi), rng.uniform(a.yc - a.cav_b, a.yc + a.cav_b),
               rng.uniform(std::min(a.z_base_left, a.z_base_right), a.z_apex)};
    if (a.classify(p[0], p[1], p[2]) == want) out.push_back(p);
  }
  return out;
}

// Grows `nodes` (a seed skeleton: nodes[0] is the root) towards `points`.
void colonize(const Anatomy& a, std::vector<Node>& nodes, const std::vector<V3>& points, const ColonyRules& rules) {
  struct Attractor {
    V3 p{};
    int nearest = -1;
    double dist = 0;
    bool alive = true;
  };
  std::vector<Attractor> att(points.size());
  PointGrid grid(a, rules.influence);
  for (size_t i = 0; i < points.size(); ++i) {
    att[i].p = points[i];
    att[i].dist = rules.influence;
    grid.insert(points[i], static_cast<int>(i));
  }
  const V3 root = nodes[0].p;
  // Introduce node n to the attractors around it.
  auto introduce = [&](int n) {
    const V3 p = nodes[n].p;
    grid.visit(p, rules.influence, [&](int i) {
      Attractor& t = att[i];
      if (!t.alive) return;
      const double d = norm(sub(t.p, p));
      if (d < rules.kill) {
        t.alive = false;
      } else if (d < t.dist) {
        t.dist = d;
        t.nearest = n;
      }
    });
  };
  for (size_t n = 0; n < nodes.size(); ++n) introduce(static_cast<int>(n));

  std::vector<V3> pull;
  std::vector<int> pulls;
  for (int iter = 0; iter < rules.max_iterations; ++iter) {
    pull.assign(nodes.size(), V3{0, 0, 0});
    pulls.assign(nodes.size(), 0);
    for (Attractor& t : att) {
      if (!t.alive || t.nearest < 0) continue;
      if (nodes[t.nearest].blocked) {
        t.alive = false;
        continue;
      }
      pull[t.nearest] = add(pull[t.nearest], normalize(sub(t.p, nodes[t.nearest].p)));
      ++pulls[t.nearest];
    }
    const size_t before = nodes.size();
    for (size_t n = 0; n < before && nodes.size() < static_cast<size_t>(rules.max_nodes); ++n) {
      if (!pulls[n]) continue;
      const double len = norm(pull[n]);
      if (len < 0.2 * pulls[n]) {  // pulled from opposite sides: stop here
        nodes[n].blocked = true;
        continue;
      }
      const V3 q = add(nodes[n].p, mul(pull[n], rules.step / len));
      if (!a.in_lung(q) && norm(sub(q, root)) > rules.free_zone) {
        nodes[n].blocked = true;
        continue;
      }
      Node child;
      child.p = q;
      child.parent = static_cast<int>(n);
      nodes[n].children++;
      nodes.push_back(child);
    }
    if (nodes.size() == before) break;
    for (size_t n = before; n < nodes.size(); ++n) introduce(static_cast<int>(n));
  }
}

// Pipe-model radii, leaves first (children always come after their parent).
void assign_radii(std::vector<Node>& nodes, const ColonyRules& rules) {
  std::vector<double> flow(nodes.size(), 0);
  for (size_t i = nodes.size(); i-- > 0;) {
    if (nodes[i].children == 0) flow[i] = std::pow(rules.leaf_r, rules.gamma);
    nodes[i].r = std::pow(flow[i], 1 / rules.gamma);
    if (nodes[i].parent >= 0) flow[nodes[i].parent] += flow[i];
  }
}

// Tubes for the tree, merging straight unbranched runs (up to 8 steps) into one tube.
void emit_tubes(const std::vector<Node>& nodes, TubeKind kind, double min_r, std::vector<Tube>& out) {
  std::vector<std::vector<int>> kids(nodes.size());
  for (size_t i = 1; i < nodes.size(); ++i) {
    if (nodes[i].parent >= 0) kids[nodes[i].parent].push_back(static_cast<int>(i));
  }
  // Runs start at the root's and every branch point's children; a run's last
  // node starts the next runs.
  std::vector<int> starts = {0};
  while (!starts.empty()) {
    const int s = starts.back();
    starts.pop_back();
    for (int first : kids[s]) {
      const V3 d0 = normalize(sub(nodes[first].p, nodes[s].p));
      int end = first;
      for (int length = 1; kids[end].size() == 1 && length < 8; ++length) {
        const int next = kids[end][0];
        if (dot(normalize(sub(nodes[next].p, nodes[s].p)), d0) < 0.978) break;  // turns more than ~12 degrees
        end = next;
      }
      if (nodes[first].r >= min_r) {
        Tube t;
        t.a = nodes[s].p;
        t.b = nodes[end].p;
        t.ra = nodes[first].r;
        t.rb = nodes[end].r;
        t.kind = kind;
        out.push_back(t);
      }
      starts.push_back(end);
    }
  }
}

double airway_wall(double lumen_r) { return 0.18 * lumen_r + 0.35; }

}  // namespace

void grow_trees(Anatomy& a, uint64_t seed) {
  for (int side = 0; side < 2; ++side) {
    const bool right = side == 0;
    const double lat = right ? -1 : 1;  // lateral is -x on the right
    Rng rng(seed, "trees", side);

    // Bronchi: a coarse tree from the end of the main bronchus.
    ColonyRules airway_rules;
    airway_rules.attractors = 70;
    airway_rules.step = 5;
    airway_rules.influence = 90;
    airway_rules.kill = 18;
    airway_rules.leaf_r = 0.9;
    airway_rules.gamma = 2.4;
    airway_rules.free_zone = 15;
    const V3 bronchus = right ? a.bronchus_right : a.bronchus_left;
    std::vector<Node> airways(1);
    airways[0].p = bronchus;
    colonize(a, airways, lung_points(a, right, airway_rules.attractors, rng), airway_rules);
    assign_radii(airways, airway_rules);
    // The main bronchus carries on from the root at its own calibre.
    emit_tubes(airways, TubeKind::kAirway, 0.9, a.tubes);

    // Arteries: a skeleton beside every bronchus (bronchovascular bundles),
    // then colonization of the whole lung from that skeleton.
    ColonyRules vessel_rules;
    const V3 hilum = right ? a.hilum_right : a.hilum_left;
    std::vector<Node> arteries(1);
    arteries[0].p = hilum;
    std::vector<int> artery_of(airways.size(), -1);
    const V3 bundle_dir = normalize({lat, 0.4, 0.25});
    artery_of[0] = 0;
    for (size_t i = 1; i < airways.size(); ++i) {
      const Node& n = airways[i];
      const int parent_artery = artery_of[n.parent];
      if (parent_artery < 0) continue;
      // Offset along a fixed lateral-posterior direction, made perpendicular
      // to the bronchus, so neighbouring offsets agree.
      const V3 d = normalize(sub(n.p, airways[n.parent].p));
      V3 side_dir = sub(bundle_dir, mul(d, dot(bundle_dir, d)));
      if (norm(side_dir) < 0.3) side_dir = sub(V3{0, 0, 1}, mul(d, d[2]));
      side_dir = normalize(side_dir);
      const V3 p = add(n.p, mul(side_dir, n.r + airway_wall(n.r) + n.r + 0.8));
      if (!a.in_lung(p) && norm(sub(p, hilum)) > vessel_rules.free_zone) continue;
      Node m;
      m.p = p;
      m.parent = parent_artery;
      arteries[parent_artery].children++;
      artery_of[i] = static_cast<int>(arteries.size());
      arteries.push_back(m);
    }
    colonize(a, arteries, lung_points(a, right, vessel_rules.attractors, rng), vessel_rules);
    assign_radii(arteries, vessel_rules);
    emit_tubes(arteries, TubeKind::kVessel, 0.0, a.tubes);

    // Veins: their own tree from the lower hilum.
    const V3 vroot = right ? a.vein_root_right : a.vein_root_left;
    std::vector<Node> veins(1);
    veins[0].p = vroot;
    colonize(a, veins, lung_points(a, right, vessel_rules.attractors, rng), vessel_rules);
    assign_radii(veins, vessel_rules);
    emit_tubes(veins, TubeKind::kVessel, 0.0, a.tubes);
  }
}

}  // namespace hilum::phantom
