// A small synthetic chest CT built inside the tests: body ellipse in air, two
// ellipsoid lungs (or one joined air space), trachea and main bronchi, vessels,
// and balls/ellipsoids as nodules with partial-volume edges, plus noise.
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "vision/volume.h"

namespace hilum::testing {

struct Ball {
  Vec3 center;             // world mm
  Vec3 radii;              // mm (x, y, z semi-axes)
  float hu;                // inside value
  float core_hu = 0;       // part-solid: solid core value
  double core_radius = 0;  // part-solid: core radius (mm), 0: none
};

struct Tube {
  Vec3 a, b;  // world mm end points
  double radius;
  float hu;
};

struct ChestSpec {
  int64_t nx = 160, ny = 128, nz = 72;
  Vec3 spacing{2.0, 2.0, 2.5};
  double body_rx = 150, body_ry = 105;
  double lung_rx = 55, lung_ry = 75, lung_rz = 80, lung_cx = 68;  // lungs at x = -cx (right), +cx (left)
  float parenchyma_hu = -850;
  bool trachea = true;
  bool join_lungs = false;  // an air bridge across the midline
  float noise_sd = 15;
  std::vector<Ball> balls;
  std::vector<Tube> tubes;
  uint32_t seed = 1;
};

inline double ellipsoid_level(const Vec3& p, const Vec3& c, const Vec3& r) {
  const double x = (p[0] - c[0]) / r[0], y = (p[1] - c[1]) / r[1], z = (p[2] - c[2]) / r[2];
  return x * x + y * y + z * z;
}

inline double tube_distance(const Vec3& p, const Tube& t) {
  Vec3 d{t.b[0] - t.a[0], t.b[1] - t.a[1], t.b[2] - t.a[2]};
  const double len2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
  double u = ((p[0] - t.a[0]) * d[0] + (p[1] - t.a[1]) * d[1] + (p[2] - t.a[2]) * d[2]) / len2;
  u = std::clamp(u, 0.0, 1.0);
  const double x = t.a[0] + u * d[0] - p[0], y = t.a[1] + u * d[1] - p[1], z = t.a[2] + u * d[2] - p[2];
  return std::sqrt(x * x + y * y + z * z);
}

// Volume centred on the world origin (x, y), z from -nz*sz/2 (inferior, slice 0) upwards.
inline Volume make_chest(const ChestSpec& s) {
  const Vec3 origin{-(s.nx - 1) * s.spacing[0] / 2, -(s.ny - 1) * s.spacing[1] / 2,
                    -(s.nz - 1) * s.spacing[2] / 2};
  Volume v = Volume::allocate(s.nx, s.ny, s.nz, s.spacing, origin);
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> noise(0.f, s.noise_sd);
  const double top = (s.nz - 1) * s.spacing[2] / 2;
  const Vec3 carina{0, -5, 0.35 * top};
  std::vector<Tube> airways;
  if (s.trachea) {
    airways.push_back({{0, -5, top + 10}, carina, 8, -1000});
    airways.push_back({carina, {-s.lung_cx + 25, 0, 0.2 * top}, 5, -1000});
    airways.push_back({carina, {s.lung_cx - 25, 0, 0.2 * top}, 5, -1000});
  }
  // Supersampling of each voxel (3 x 3 x 3) gives partial-volume edges to the balls.
  const int ss = 3;
  for (int64_t z = 0; z < s.nz; ++z)
    for (int64_t y = 0; y < s.ny; ++y)
      for (int64_t x = 0; x < s.nx; ++x) {
        const Vec3 p0 = v.world_from_voxel({double(x), double(y), double(z)});
        auto value_at = [&](const Vec3& p) -> float {
          const double bx = p[0] / s.body_rx, by = p[1] / s.body_ry;
          if (bx * bx + by * by > 1) return -1000.f;
          float hu = 40.f;
          const Vec3 rl{-s.lung_cx, 0, 0}, ll{s.lung_cx, 0, 0}, r{s.lung_rx, s.lung_ry, s.lung_rz};
          bool lung = ellipsoid_level(p, rl, r) <= 1 || ellipsoid_level(p, ll, r) <= 1;
          if (s.join_lungs && std::abs(p[0]) < s.lung_cx && std::abs(p[1] + 20) < 12 && std::abs(p[2]) < 30)
            lung = true;
          if (lung) hu = s.parenchyma_hu;
          for (const Tube& t : airways)
            if (tube_distance(p, t) <= t.radius) hu = t.hu;
          if (lung)
            for (const Tube& t : s.tubes)
              if (tube_distance(p, t) <= t.radius) hu = t.hu;
          for (const Ball& b : s.balls) {
            if (ellipsoid_level(p, b.center, b.radii) <= 1) {
              hu = b.hu;
              if (b.core_radius > 0 &&
                  ellipsoid_level(p, b.center, {b.core_radius, b.core_radius, b.core_radius}) <= 1)
                hu = b.core_hu;
            }
          }
          return hu;
        };
        // Cheap path: sample the centre; supersample only near ball surfaces.
        bool near_ball = false;
        for (const Ball& b : s.balls) {
          const double rmax = std::max({b.radii[0], b.radii[1], b.radii[2]}) +
                              2 * std::max({s.spacing[0], s.spacing[1], s.spacing[2]});
          const double dx = p0[0] - b.center[0], dy = p0[1] - b.center[1], dz = p0[2] - b.center[2];
          if (dx * dx + dy * dy + dz * dz <= rmax * rmax) near_ball = true;
        }
        float hu;
        if (!near_ball) {
          hu = value_at(p0);
        } else {
          double acc = 0;
          for (int k = 0; k < ss; ++k)
            for (int j = 0; j < ss; ++j)
              for (int i = 0; i < ss; ++i)
                acc += value_at({p0[0] + ((i + 0.5) / ss - 0.5) * s.spacing[0],
                                 p0[1] + ((j + 0.5) / ss - 0.5) * s.spacing[1],
                                 p0[2] + ((k + 0.5) / ss - 0.5) * s.spacing[2]});
          hu = static_cast<float>(acc / (ss * ss * ss));
        }
        v.data()[(z * s.ny + y) * s.nx + x] = hu + (s.noise_sd > 0 ? noise(rng) : 0.f);
      }
  return v;
}

}  // namespace hilum::testing
