// Slice rendering for the phantom: analytic anatomy sampled at voxel centres,
// small structures (tubes, nodules, lucencies) with box-filtered partial
// volume over the pixel and the slice thickness, then CT noise and a Gaussian
// point-spread function.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "vision/io/phantom_anatomy.h"

namespace hilum::phantom {

namespace {

constexpr double kPi = 3.14159265358979323846;

// HU of the tissues (non-contrast CT).
constexpr float kHuAir = -1000, kHuFat = -95, kHuMuscle = 45, kHuBlood = 40, kHuSoft = 35;
constexpr float kHuLiver = 58, kHuSpleen = 48, kHuStomach = 28, kHuCartilage = 110, kHuDisc = 85;
constexpr float kHuCortex = 700, kHuMarrow = 230, kHuAirwayWall = 45;

double airway_wall(double lumen_r) { return 0.18 * lumen_r + 0.35; }

// 1-D box-filter coverage of [-r, r] by a window of width w centred at d >= 0.
inline float box_coverage(double d, double r, double w) {
  const double hi = std::min(r, d + 0.5 * w), lo = std::max(-r, d - 0.5 * w);
  return hi > lo ? static_cast<float>(std::min(1.0, (hi - lo) / w)) : 0.f;
}

struct Box {
  int i0, i1, j0, j1;  // inclusive pixel ranges; empty when i0 > i1
};

// A float plane with the bounding box of what was written since clear().
class Coverage {
 public:
  Coverage(int nx, int ny) : nx_(nx), ny_(ny), v_(static_cast<size_t>(nx) * ny, 0.f) { reset_box(); }
  float* row(int j) { return v_.data() + static_cast<size_t>(j) * nx_; }
  void touch(const Box& b) {
    box_.i0 = std::min(box_.i0, b.i0);
    box_.i1 = std::max(box_.i1, b.i1);
    box_.j0 = std::min(box_.j0, b.j0);
    box_.j1 = std::max(box_.j1, b.j1);
  }
  const Box& box() const { return box_; }
  void clear() {
    for (int j = box_.j0; j <= box_.j1; ++j) std::fill(row(j) + box_.i0, row(j) + box_.i1 + 1, 0.f);
    reset_box();
  }

 private:
  void reset_box() { box_ = {nx_, -1, ny_, -1}; }
  int nx_, ny_;
  std::vector<float> v_;
  Box box_;
};

struct SliceGeometry {
  int nx, ny;
  double ox, oy, ps;
  double z, thickness;
  int n_sub;  // sub-slices for partial volume along z
  double sub_z(int s) const { return z + thickness * ((s + 0.5) / n_sub - 0.5); }
  Box box(double x0, double x1, double y0, double y1) const {
    Box b;
    b.i0 = std::max(0, static_cast<int>(std::floor((x0 - ox) / ps)));
    b.i1 = std::min(nx - 1, static_cast<int>(std::ceil((x1 - ox) / ps)));
    b.j0 = std::max(0, static_cast<int>(std::floor((y0 - oy) / ps)));
    b.j1 = std::min(ny - 1, static_cast<int>(std::ceil((y1 - oy) / ps)));
    return b;
  }
};

// Adds (max) the coverage of tube `t` with radius offset `extra` into `cov`.
void rasterize_tube(const Tube& t, double extra, const SliceGeometry& g, Coverage& cov) {
  const double ra = t.ra + extra, rb = t.rb + extra;
  const double rmax = std::max(ra, rb);
  // Clip the axis to the slab (plus the radius) to get a tight xy box.
  const double zlo = g.z - 0.5 * g.thickness - rmax, zhi = g.z + 0.5 * g.thickness + rmax;
  double u0 = 0, u1 = 1;
  const double dz = t.b[2] - t.a[2];
  if (std::abs(dz) > 1e-9) {
    double ua = (zlo - t.a[2]) / dz, ub = (zhi - t.a[2]) / dz;
    if (ua > ub) std::swap(ua, ub);
    u0 = std::max(u0, ua);
    u1 = std::min(u1, ub);
    if (u0 > u1) return;
  } else if (t.a[2] < zlo || t.a[2] > zhi) {
    return;
  }
  const double xa = t.a[0] + u0 * (t.b[0] - t.a[0]), xb = t.a[0] + u1 * (t.b[0] - t.a[0]);
  const double ya = t.a[1] + u0 * (t.b[1] - t.a[1]), yb = t.a[1] + u1 * (t.b[1] - t.a[1]);
  const double pad = rmax + g.ps;
  const Box b = g.box(std::min(xa, xb) - pad, std::max(xa, xb) + pad, std::min(ya, yb) - pad, std::max(ya, yb) + pad);
  if (b.i0 > b.i1 || b.j0 > b.j1) return;
  cov.touch(b);
  const double abx = t.b[0] - t.a[0], aby = t.b[1] - t.a[1], abz = dz;
  const double len2 = abx * abx + aby * aby + abz * abz;
  const double inv_len2 = len2 > 0 ? 1 / len2 : 0;
  const float inv_sub = 1.0f / g.n_sub;
  for (int j = b.j0; j <= b.j1; ++j) {
    const double py = g.oy + j * g.ps - t.a[1];
    float* row = cov.row(j);
    for (int i = b.i0; i <= b.i1; ++i) {
      const double px = g.ox + i * g.ps - t.a[0];
      float f = 0;
      for (int s = 0; s < g.n_sub; ++s) {
        const double pz = g.sub_z(s) - t.a[2];
        double u = (px * abx + py * aby + pz * abz) * inv_len2;
        u = u < 0 ? 0 : (u > 1 ? 1 : u);
        const double qx = px - u * abx, qy = py - u * aby, qz = pz - u * abz;
        const double d = std::sqrt(qx * qx + qy * qy + qz * qz);
        const double r = ra + u * (rb - ra);
        f += box_coverage(d, r, g.ps);
      }
      f *= inv_sub;
      if (f > row[i]) row[i] = f;
    }
  }
}

// Coverage of a nodule's outer union, its solid core and its spicules.
void rasterize_nodule(const NoduleShape& n, const SliceGeometry& g, Coverage& outer, Coverage& solid) {
  const double pad = n.reach + std::max(g.ps, n.edge_mm);
  if (std::abs(n.c[2] - g.z) > pad + g.thickness) return;
  const Box b = g.box(n.c[0] - pad, n.c[0] + pad, n.c[1] - pad, n.c[1] + pad);
  if (b.i0 > b.i1 || b.j0 > b.j1) return;
  outer.touch(b);
  solid.touch(b);
  const float inv_sub = 1.0f / g.n_sub;
  const double edge = std::max(g.ps, n.edge_mm);
  for (int j = b.j0; j <= b.j1; ++j) {
    const double y = g.oy + j * g.ps;
    float* orow = outer.row(j);
    float* srow = solid.row(j);
    for (int i = b.i0; i <= b.i1; ++i) {
      const double x = g.ox + i * g.ps;
      float fo = 0, fs = 0;
      for (int s = 0; s < g.n_sub; ++s) {
        const double z = g.sub_z(s);
        float best = 0;
        for (const auto& e : n.outer) {
          const double px = x - e.c[0], py = y - e.c[1], pz = z - e.c[2];
          const double dist = std::sqrt(px * px + py * py + pz * pz);
          double q2 = 0;
          for (int k = 0; k < 3; ++k) {
            const double q = (px * e.axis[k][0] + py * e.axis[k][1] + pz * e.axis[k][2]) / e.semi[k];
            q2 += q * q;
          }
          const double sr = std::sqrt(q2);
          double relief = 1;
          if (dist > 1e-9) {
            for (int k = 0; k < 3; ++k) {
              const double u = (px * e.relief_dir[k][0] + py * e.relief_dir[k][1] + pz * e.relief_dir[k][2]) / dist;
              relief += e.relief_amp[k] * (u * u - 1.0 / 3);
            }
          }
          // Signed distance to the surface along the ray from the centre.
          const double d = sr > 1e-9 ? dist * (1 - relief / sr) : -1e9;
          best = std::max(best, static_cast<float>(std::clamp(0.5 - d / edge, 0.0, 1.0)));
        }
        fo += best;
        if (n.core_r > 0) {
          const double px = x - n.core_c[0], py = y - n.core_c[1], pz = z - n.core_c[2];
          const double d = std::sqrt(px * px + py * py + pz * pz) - n.core_r;
          fs += static_cast<float>(std::clamp(0.5 - d / g.ps, 0.0, 1.0));
        }
      }
      fo *= inv_sub;
      fs *= inv_sub;
      orow[i] = std::max(orow[i], fo);
      srow[i] = std::max(srow[i], fs);
    }
  }
  for (const Tube& t : n.spicules) rasterize_tube(t, 0, g, solid);
}

}  // namespace

Renderer::Renderer(const Anatomy& anatomy, const Scan& scan, const std::vector<NoduleShape>& nodules,
                   const std::vector<Lucency>& lucencies, uint64_t texture_seed)
    : a_(anatomy), s_(scan), nodules_(nodules), lucencies_(lucencies) {
  const int nz = s_.nz;
  tubes_by_slice_.assign(nz, {});
  nodules_by_slice_.assign(nz, {});
  lucencies_by_slice_.assign(nz, {});
  auto bin = [&](std::vector<std::vector<int>>& bins, double zlo, double zhi, int index) {
    const double pad = 0.5 * s_.thickness + 1;
    int k0 = static_cast<int>(std::floor((zlo - pad - s_.origin[2]) / s_.thickness));
    int k1 = static_cast<int>(std::ceil((zhi + pad - s_.origin[2]) / s_.thickness));
    k0 = std::max(k0, 0);
    k1 = std::min(k1, nz - 1);
    for (int k = k0; k <= k1; ++k) bins[k].push_back(index);
  };
  for (size_t i = 0; i < a_.tubes.size(); ++i) {
    const Tube& t = a_.tubes[i];
    const double r = std::max(t.ra, t.rb) + airway_wall(std::max(t.ra, t.rb));
    bin(tubes_by_slice_, std::min(t.a[2], t.b[2]) - r, std::max(t.a[2], t.b[2]) + r, static_cast<int>(i));
  }
  for (size_t i = 0; i < nodules_.size(); ++i) {
    bin(nodules_by_slice_, nodules_[i].c[2] - nodules_[i].reach, nodules_[i].c[2] + nodules_[i].reach, static_cast<int>(i));
  }
  for (size_t i = 0; i < lucencies_.size(); ++i) {
    bin(lucencies_by_slice_, lucencies_[i].c[2] - lucencies_[i].r, lucencies_[i].c[2] + lucencies_[i].r, static_cast<int>(i));
  }

  // Parenchymal texture: two octaves of trilinearly interpolated white noise.
  auto make_grid = [&](Grid3& g, double step, uint64_t which) {
    g.step = step;
    g.x0 = s_.origin[0] - 2 * step;
    g.y0 = s_.origin[1] - 2 * step;
    g.z0 = s_.origin[2] - 2 * step;
    g.nx = static_cast<int>(s_.nx * s_.ps / step) + 5;
    g.ny = static_cast<int>(s_.ny * s_.ps / step) + 5;
    g.nz = static_cast<int>(s_.nz * s_.thickness / step) + 5;
    g.v.resize(static_cast<size_t>(g.nx) * g.ny * g.nz);
    Rng rng(texture_seed, "texture", which);
    for (float& v : g.v) v = rng.fast_normal();
  };
  make_grid(coarse_, 8.0, 0);
  make_grid(fine_, 3.0, 1);

  // In-plane PSF and the noise level that gives noise_sd after both blurs.
  const double sigma = s_.psf_sigma_mm / s_.ps;
  const int radius = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    kernel_.push_back(static_cast<float>(std::exp(-0.5 * i * i / (sigma * sigma))));
    sum += kernel_.back();
  }
  double sq = 0;
  for (float& k : kernel_) {
    k = static_cast<float>(k / sum);
    sq += double(k) * k;
  }
  const double w = z_weight_;
  const double z_norm = std::sqrt(2 * w * w + (1 - 2 * w) * (1 - 2 * w));
  noise_pre_sd_ = s_.noise_sd / (sq * z_norm);  // sq = ||k||^2 covers both in-plane axes
}

void Renderer::fill_texture_plane(const Grid3& g, double z, std::vector<float>& plane) const {
  const double gz = (z - g.z0) / g.step;
  const int k0 = std::clamp(static_cast<int>(std::floor(gz)), 0, g.nz - 2);
  const float fz = static_cast<float>(std::clamp(gz - k0, 0.0, 1.0));
  const size_t layer = static_cast<size_t>(g.nx) * g.ny;
  plane.resize(layer);
  const float* a = g.v.data() + k0 * layer;
  const float* b = a + layer;
  for (size_t i = 0; i < layer; ++i) plane[i] = a[i] + fz * (b[i] - a[i]);
}

void Renderer::render_slice(int k, float* hu, uint8_t* labels) const {
  const Anatomy& a = a_;
  const int nx = s_.nx, ny = s_.ny;
  SliceGeometry g;
  g.nx = nx;
  g.ny = ny;
  g.ox = s_.origin[0];
  g.oy = s_.origin[1];
  g.ps = s_.ps;
  g.z = s_.origin[2] + k * s_.thickness;
  g.thickness = s_.thickness;
  g.n_sub = std::max(1, static_cast<int>(std::ceil(s_.thickness / 0.7)));
  const double z = g.z;
  const CavitySlice cs = a.cavity_slice(z);

  // Texture planes and their per-column / per-row interpolation weights.
  std::vector<float> coarse, fine;
  fill_texture_plane(coarse_, z, coarse);
  fill_texture_plane(fine_, z, fine);
  struct Lerp {
    int i;
    float f;
  };
  auto lerps = [&](const Grid3& grid, int n, double o, bool x_axis) {
    std::vector<Lerp> out(n);
    for (int i = 0; i < n; ++i) {
      const double v = ((o + i * s_.ps) - (x_axis ? grid.x0 : grid.y0)) / grid.step;
      const int i0 = std::clamp(static_cast<int>(std::floor(v)), 0, (x_axis ? grid.nx : grid.ny) - 2);
      out[i] = {i0, static_cast<float>(std::clamp(v - i0, 0.0, 1.0))};
    }
    return out;
  };
  const auto cx = lerps(coarse_, nx, g.ox, true), cy = lerps(coarse_, ny, g.oy, false);
  const auto fx = lerps(fine_, nx, g.ox, true), fy = lerps(fine_, ny, g.oy, false);
  auto bilinear = [](const std::vector<float>& plane, int gnx, const Lerp& lx, const Lerp& ly) {
    const float* r0 = plane.data() + static_cast<size_t>(ly.i) * gnx + lx.i;
    const float* r1 = r0 + gnx;
    const float top = r0[0] + lx.f * (r0[1] - r0[0]);
    const float bottom = r1[0] + lx.f * (r1[1] - r1[0]);
    return top + ly.f * (bottom - top);
  };

  // ---- Torso layers and cavity contents, voxel by voxel.
  const double ca = cs.ca, cb = cs.cb;
  const double ring_a = ca + a.wall, ring_b = cb + a.wall;
  const double full_ring_a = a.cav_a + a.wall, full_ring_b = a.cav_b + a.wall;
  const double mus_a = full_ring_a + a.muscle, mus_b_ant = full_ring_b + a.muscle,
               mus_b_post = full_ring_b + a.back_muscle;
  const double body_a = mus_a + a.fat, body_b_ant = mus_b_ant + a.fat, body_b_post = mus_b_post + 0.6 * a.fat;
  const double y_table = a.yc + body_b_post + 1.5;
  const double table_half = body_a + 25;
  auto half_width = [](double ea, double b_ant, double b_post, double dy) {
    const double b = dy < 0 ? b_ant : b_post;
    if (std::abs(dy) >= b) return -1.0;
    return ea * std::sqrt(1 - (dy / b) * (dy / b));
  };
  // The back is flatter than an ellipse (a superellipse, exponent 3, behind
  // the centre), as a patient lying on the table is.
  auto outer_half_width = [&](double ea, double b_ant, double b_post, double dy) {
    if (dy < 0) return half_width(ea, b_ant, b_post, dy);
    if (dy >= b_post) return -1.0;
    return ea * std::cbrt(1 - std::pow(dy / b_post, 3));
  };
  const double left_dome_top = a.z_base_left + a.dome_height;
  const bool gas_bubble_here = z < left_dome_top && z > left_dome_top - 35;

  for (int j = 0; j < ny; ++j) {
    const double y = g.oy + j * g.ps;
    const double dy = y - a.yc;
    const double hw_body = outer_half_width(body_a, body_b_ant, body_b_post, dy);
    const double hw_mus = outer_half_width(mus_a, mus_b_ant, mus_b_post, dy);
    const double hw_ring = half_width(ring_a, ring_b, ring_b, dy);
    const double hw_cav = half_width(ca, cb, cb, dy);
    float* h = hu + static_cast<size_t>(j) * nx;
    uint8_t* l = labels + static_cast<size_t>(j) * nx;
    const double gravity = a.lung_gradient * std::clamp(dy / cb, -1.0, 1.0);
    for (int i = 0; i < nx; ++i) {
      const double x = g.ox + i * g.ps;
      const double adx = std::abs(x - a.xc);
      if (adx > hw_body) {
        h[i] = kHuAir;
        l[i] = kTissueAir;
        if (y >= y_table && y < y_table + 9 && std::abs(x - a.xc) < table_half) {
          const bool shell = y < y_table + 1.5 || y >= y_table + 7.5;
          h[i] = shell ? 150.f : -550.f;
          l[i] = kTissueTable;
        }
      } else if (adx > hw_mus) {
        h[i] = kHuFat;
        l[i] = kTissueFat;
      } else if (adx > hw_ring) {
        h[i] = kHuMuscle;
        l[i] = kTissueSoft;
      } else if (adx > hw_cav) {
        h[i] = kHuMuscle - 5;  // intercostal muscle; ribs are drawn below
        l[i] = kTissueSoft;
      } else {
        switch (cs.classify(x, y)) {
          case CavityPart::kRightLung:
          case CavityPart::kLeftLung:
            h[i] = static_cast<float>(a.lung_hu + gravity) + 14.f * bilinear(coarse, coarse_.nx, cx[i], cy[j]) +
                   10.f * bilinear(fine, fine_.nx, fx[i], fy[j]);
            l[i] = kTissueLung | kInLungBit;
            break;
          case CavityPart::kAbdomen: {
            // Liver on the right and across the midline, stomach
            // anterior-left (gas under the dome), spleen posterior-left.
            const double rx = (x - a.xc) / ca, ry = dy / cb;
            const double sx = (rx - 0.45) / 0.42, sy = (ry + 0.15) / 0.55;
            const double px = (rx - 0.62) / 0.3, py = (ry - 0.5) / 0.38;
            if (sx * sx + sy * sy < 1) {
              h[i] = kHuStomach;
              const double bx = (rx - 0.45) / 0.3, by = (ry + 0.2) / 0.3;
              if (gas_bubble_here && bx * bx + by * by < 1) {
                h[i] = kHuAir;
                l[i] = kTissueAir;
                break;
              }
            } else if (px * px + py * py < 1) {
              h[i] = kHuSpleen;
            } else {
              h[i] = kHuLiver;
            }
            l[i] = kTissueSoft;
            break;
          }
          default:
            h[i] = kHuFat;
            l[i] = kTissueFat;
            break;
        }
      }
    }
  }

  auto paint = [&](int i, int j, float v, uint8_t label) {
    const size_t p = static_cast<size_t>(j) * nx + i;
    hu[p] = v;
    labels[p] = label;
  };

  // ---- Heart (myocardium and blood alike without contrast).
  if (cs.heart) {
    const double f = std::sqrt(std::max(0.0, 1 - std::pow((z - a.heart_c[2]) / a.heart_az, 2)));
    const double ha = a.heart_ax * f, hb = a.heart_ay * f;
    if (ha > 0) {
      const double r = std::max(ha, hb);
      const Box b = g.box(a.heart_c[0] - r, a.heart_c[0] + r, a.heart_c[1] - r, a.heart_c[1] + r);
      for (int j = b.j0; j <= b.j1; ++j) {
        for (int i = b.i0; i <= b.i1; ++i) {
          const double hx = g.ox + i * g.ps - a.heart_c[0], hy = g.oy + j * g.ps - a.heart_c[1];
          const double u = (hx * cs.heart_cos - hy * cs.heart_sin) / ha, v = (hx * cs.heart_sin + hy * cs.heart_cos) / hb;
          if (u * u + v * v <= 1) paint(i, j, kHuBlood, kTissueSoft);
        }
      }
    }
  }

  // ---- Spine: vertebral body or disc, canal and cord, neural arch, processes.
  {
    const double phase = (a.z_t1 - z) / a.vert_pitch;
    const double frac = phase - std::floor(phase);
    const bool disc = frac > 0.8;
    const double r_vb = a.vb_r * (0.85 + 0.15 * std::clamp(phase / 12, 0.0, 1.0));
    const double ycanal = a.y_vb + r_vb + 8;
    const Box b = g.box(a.xc - 40, a.xc + 40, a.y_vb - r_vb - 1, ycanal + 36);
    for (int j = b.j0; j <= b.j1; ++j) {
      const double y = g.oy + j * g.ps;
      for (int i = b.i0; i <= b.i1; ++i) {
        const double x = g.ox + i * g.ps;
        const double dx = x - a.xc;
        const double dvb = std::hypot(dx, y - a.y_vb);
        if (dvb <= r_vb) {
          if (disc) paint(i, j, kHuDisc, kTissueSoft);
          else paint(i, j, dvb > r_vb - 1.8 ? kHuCortex : kHuMarrow, kTissueBone);
          continue;
        }
        const double dc = std::hypot(dx, y - ycanal);
        if (dc <= 7.5) {
          paint(i, j, dc <= 4.5 ? kHuSoft : 10.f, kTissueSoft);
          continue;
        }
        if (disc) continue;
        if (dc <= 12.5 && y > a.y_vb + r_vb - 1) {
          paint(i, j, 480, kTissueBone);
        } else if (frac > 0.1 && frac < 0.75 && std::abs(dx) < 3.5 && y > ycanal + 10 && y < ycanal + 34) {
          paint(i, j, 520, kTissueBone);
        } else if (frac < 0.6) {
          const double tx = (std::abs(dx) - 24) / 11, ty = (y - (ycanal - 1)) / 5;
          if (tx * tx + ty * ty <= 1) paint(i, j, 460, kTissueBone);
        }
      }
    }
  }

  // ---- Ribs, costal cartilage and sternum in the wall layer.
  {
    const double ea = ca + 0.5 * a.wall, eb = cb + 0.5 * a.wall;
    const double rib_half_h = 5.5, rib_half_t = 3.6;
    bool any_rib = z <= a.z_sternum_top && z >= a.z_sternum_bottom;
    for (const Rib& r : a.ribs) any_rib |= z <= r.z_posterior + rib_half_h && z >= r.z_posterior - r.drop - rib_half_h;
    if (any_rib) {
      for (int j = 0; j < ny; ++j) {
        const double y = g.oy + j * g.ps;
        const double dy = y - a.yc;
        const double hw_ring = half_width(ring_a, ring_b, ring_b, dy);
        if (hw_ring < 0) continue;
        const double hw_cav = half_width(ca, cb, cb, dy);
        for (int side = -1; side <= 1; side += 2) {
          const double lo = std::max(hw_cav, 0.0), hi = hw_ring;
          const Box b = side < 0 ? g.box(a.xc - hi, a.xc - lo, y, y) : g.box(a.xc + lo, a.xc + hi, y, y);
          for (int i = b.i0; i <= b.i1; ++i) {
            const double x = g.ox + i * g.ps;
            const double adx = std::abs(x - a.xc);
            if (adx <= hw_cav || adx > hw_ring) continue;
            const double u = adx / ea, v = dy / eb;
            const double rho = std::sqrt(u * u + v * v);
            const double rloc = std::sqrt(std::pow(ea * u / rho, 2) + std::pow(eb * v / rho, 2));
            const double radial = (rho - 1) * rloc;  // mm outwards from the rib centreline
            const double phi = std::atan2(u, v) / kPi;  // 0 posterior, 1 anterior
            if (phi > 0.93 && z <= a.z_sternum_top && z >= a.z_sternum_bottom) {
              const double half = z > a.z_sternum_top - 40 ? 0.07 : 0.05;
              if (phi > 1 - half && std::abs(radial) < 5) {
                paint(i, j, std::abs(radial) > 3.5 ? kHuCortex - 100 : kHuMarrow, kTissueBone);
                continue;
              }
            }
            if (phi < 0.1) continue;
            const double gphi = (phi - 0.1) / 0.9;
            for (const Rib& r : a.ribs) {
              if (phi > r.cartilage_end) continue;
              const double dzr = (z - (r.z_posterior - r.drop * gphi)) / rib_half_h;
              const double dr = radial / rib_half_t;
              const double q = dzr * dzr + dr * dr;
              if (q > 1) continue;
              if (phi <= r.bone_end) paint(i, j, q > 0.45 ? kHuCortex : kHuMarrow, kTissueBone);
              else paint(i, j, kHuCartilage, kTissueSoft);
              break;
            }
          }
        }
      }
    }
  }

  // ---- Scapulae: thin curved blades behind the upper ribs, outside the wall.
  if (z < a.z_apex + 25 && z > a.z_apex - 0.45 * a.lung_height) {
    const double ea = ring_a + 6, eb = ring_b + 6;
    const double reach = std::clamp((a.z_apex + 25 - z) / 40, 0.0, 1.0);  // blades widen below the spine of the scapula
    for (int j = 0; j < ny; ++j) {
      const double y = g.oy + j * g.ps;
      const double dy = y - a.yc;
      if (dy < 0.2 * eb) continue;  // posterior only
      for (int side = -1; side <= 1; side += 2) {
        const double hw = half_width(ea + 4, eb + 4, eb + 4, dy);
        if (hw < 0) continue;
        const Box b = side < 0 ? g.box(a.xc - hw, a.xc - 0.25 * ea, y, y) : g.box(a.xc + 0.25 * ea, a.xc + hw, y, y);
        for (int i = b.i0; i <= b.i1; ++i) {
          const double adx = std::abs(g.ox + i * g.ps - a.xc);
          const double u = adx / ea, v = dy / eb;
          const double rho = std::sqrt(u * u + v * v);
          const double radial = (rho - 1) * std::sqrt(std::pow(ea * u / rho, 2) + std::pow(eb * v / rho, 2));
          const double phi = std::atan2(u, v) / kPi;
          if (phi < 0.17 || phi > 0.17 + 0.22 * reach) continue;
          const double half = phi > 0.14 + 0.22 * reach ? 3.0 : 1.4;  // thick lateral border
          if (std::abs(radial) <= half) paint(i, j, std::abs(radial) > half - 0.9 ? kHuCortex - 150 : kHuMarrow, kTissueBone);
        }
      }
    }
  }

  // ---- Emphysema: low-attenuation foci in the parenchyma.
  Coverage cov(nx, ny), cov2(nx, ny);
  for (int li : lucencies_by_slice_[k]) {
    const Lucency& e = lucencies_[li];
    Tube t;
    t.a = t.b = e.c;
    t.ra = t.rb = e.r;
    rasterize_tube(t, 0, g, cov);
  }
  {
    const Box& b = cov.box();
    for (int j = b.j0; j <= b.j1; ++j) {
      const float* c = cov.row(j);
      for (int i = b.i0; i <= b.i1; ++i) {
        const size_t p = static_cast<size_t>(j) * nx + i;
        if (c[i] > 0 && (labels[p] & kInLungBit)) hu[p] += c[i] * (-975.f - hu[p]);
      }
    }
    cov.clear();
  }

  // ---- Tubes, kind by kind, each composited once from its max coverage.
  const std::vector<int>& tubes = tubes_by_slice_[k];
  auto composite_solid = [&](Coverage& c, float value, uint8_t lung_label, uint8_t other_label) {
    const Box& b = c.box();
    for (int j = b.j0; j <= b.j1; ++j) {
      const float* f = c.row(j);
      for (int i = b.i0; i <= b.i1; ++i) {
        if (f[i] <= 0) continue;
        const size_t p = static_cast<size_t>(j) * nx + i;
        const uint8_t tissue = labels[p] & 0x7F;
        if (tissue == kTissueBone || tissue == kTissueAir || tissue == kTissueTable) continue;
        hu[p] += f[i] * (value - hu[p]);
        if (f[i] >= 0.5f) labels[p] = (labels[p] & kInLungBit) ? (lung_label | kInLungBit) : other_label;
      }
    }
    c.clear();
  };
  auto composite_airway = [&](Coverage& outer, Coverage& lumen) {
    const Box& b = outer.box();
    for (int j = b.j0; j <= b.j1; ++j) {
      const float* fo = outer.row(j);
      const float* fi = lumen.row(j);
      for (int i = b.i0; i <= b.i1; ++i) {
        if (fo[i] <= 0) continue;
        const size_t p = static_cast<size_t>(j) * nx + i;
        const uint8_t tissue = labels[p] & 0x7F;
        if (tissue == kTissueBone || tissue == kTissueAir || tissue == kTissueTable) continue;
        const float o = fo[i], in = std::min(fi[i], o);
        hu[p] = hu[p] * (1 - o) + kHuAirwayWall * (o - in) + kHuAir * in;
        if (o >= 0.5f) labels[p] = kTissueAirway | (labels[p] & kInLungBit);
      }
    }
    outer.clear();
    lumen.clear();
  };
  auto draw_kind = [&](TubeKind kind, float value, uint8_t lung_label, uint8_t other_label) {
    bool any = false;
    for (int ti : tubes) {
      const Tube& t = a.tubes[ti];
      if (t.kind != kind) continue;
      rasterize_tube(t, 0, g, cov);
      any = true;
    }
    if (any) composite_solid(cov, value, lung_label, other_label);
  };
  auto draw_airways = [&](TubeKind kind) {
    bool any = false;
    for (int ti : tubes) {
      const Tube& t = a.tubes[ti];
      if (t.kind != kind) continue;
      // Wall thickness follows the lumen radius; rasterize the outer surface
      // as a tube with an offset radius.
      const double wall = airway_wall(0.5 * (t.ra + t.rb)) * (kind == TubeKind::kCentralAirway ? 4.0 : 1.0);
      rasterize_tube(t, std::min(wall, 2.0), g, cov);
      rasterize_tube(t, 0, g, cov2);
      any = true;
    }
    if (any) composite_airway(cov, cov2);
  };
  draw_kind(TubeKind::kGreatVessel, kHuBlood, kTissueVessel, kTissueSoft);
  draw_kind(TubeKind::kEsophagus, kHuSoft, kTissueSoft, kTissueSoft);
  draw_kind(TubeKind::kBone, 520, kTissueBone, kTissueBone);
  draw_kind(TubeKind::kVessel, kHuBlood, kTissueVessel, kTissueSoft);
  draw_airways(TubeKind::kCentralAirway);
  draw_airways(TubeKind::kAirway);

  // ---- Nodules, painted on lung voxels only (pleural-based ones are flattened
  // by the chest wall, as real ones are).
  for (int ni : nodules_by_slice_[k]) {
    const NoduleShape& n = nodules_[ni];
    rasterize_nodule(n, g, cov, cov2);
    const Box b = cov.box();
    for (int j = b.j0; j <= b.j1; ++j) {
      const float* fo = cov.row(j);
      const float* fs = cov2.row(j);
      for (int i = b.i0; i <= b.i1; ++i) {
        const size_t p = static_cast<size_t>(j) * nx + i;
        if (!(labels[p] & kInLungBit)) continue;
        const float o = fo[i], s = std::max(fs[i], n.type == NoduleType::kSolid ? o : 0.f);
        if (o <= 0 && s <= 0) continue;
        float v = hu[p];
        if (n.type != NoduleType::kSolid && o > 0) {
          // Ground glass is patchy (the parenchymal texture, amplified) and
          // keeps every vessel inside it.
          const float texture = 1.5f * (v - static_cast<float>(a.lung_hu));
          const float ggo = static_cast<float>(n.hu_ggo) + std::clamp(texture, -80.f, 80.f);
          v = std::max(v, v + o * (ggo - v));
        }
        if (s > 0) v += s * (static_cast<float>(n.hu_solid) - v);
        hu[p] = v;
        if (std::max(o, s) >= 0.5f) labels[p] = kTissueNodule | kInLungBit;
      }
    }
    cov.clear();
    cov2.clear();
  }

  // ---- CT noise, then the in-plane point-spread function.
  Rng rng(s_.seed, "noise", static_cast<uint64_t>(k));
  const float sd = static_cast<float>(noise_pre_sd_);
  const size_t npix = static_cast<size_t>(nx) * ny;
  for (size_t p = 0; p < npix; ++p) hu[p] += sd * rng.fast_normal();
  const int radius = static_cast<int>(kernel_.size() / 2);
  std::vector<float> tmp(npix);
  for (int j = 0; j < ny; ++j) {
    const float* src = hu + static_cast<size_t>(j) * nx;
    float* dst = tmp.data() + static_cast<size_t>(j) * nx;
    for (int i = 0; i < radius; ++i) {  // borders: clamp to the edge
      float a = 0, b = 0;
      for (int t = -radius; t <= radius; ++t) {
        a += kernel_[t + radius] * src[std::clamp(i + t, 0, nx - 1)];
        b += kernel_[t + radius] * src[std::clamp(nx - 1 - i + t, 0, nx - 1)];
      }
      dst[i] = a;
      dst[nx - 1 - i] = b;
    }
    std::fill(dst + radius, dst + nx - radius, 0.f);
    for (int t = -radius; t <= radius; ++t) {
      const float w = kernel_[t + radius];
      const float* s = src + t;
      for (int i = radius; i < nx - radius; ++i) dst[i] += w * s[i];
    }
  }
  for (int j = 0; j < ny; ++j) {
    float* dst = hu + static_cast<size_t>(j) * nx;
    std::fill(dst, dst + nx, 0.f);
    for (int t = -radius; t <= radius; ++t) {
      const float w = kernel_[t + radius];
      const float* src = tmp.data() + static_cast<size_t>(std::clamp(j + t, 0, ny - 1)) * nx;
      for (int i = 0; i < nx; ++i) dst[i] += w * src[i];
    }
  }
}

void Renderer::finish_rows(float* volume, int y0, int y1) const {
  const int nx = s_.nx, ny = s_.ny, nz = s_.nz;
  const float w = static_cast<float>(z_weight_), c = 1 - 2 * w;
  // In place along z, keeping the unfiltered previous and current rows.
  std::vector<float> prev(nx), cur(nx);
  for (int j = y0; j < y1; ++j) {
    auto row = [&](int k) { return volume + (static_cast<size_t>(k) * ny + j) * nx; };
    std::copy(row(0), row(0) + nx, cur.data());
    std::copy(row(0), row(0) + nx, prev.data());
    for (int k = 0; k < nz; ++k) {
      float* out = row(k);
      const float* next = k + 1 < nz ? row(k + 1) : cur.data();
      for (int i = 0; i < nx; ++i) {
        const float v = w * prev[i] + c * cur[i] + w * next[i];
        out[i] = std::clamp(std::floor(v + 0.5f), -1024.f, 3071.f);
      }
      if (k + 1 < nz) {
        std::swap(prev, cur);
        std::copy(next, next + nx, cur.data());
      }
    }
  }
}

}  // namespace hilum::phantom
