#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "vision/patches.h"

namespace hilum {
namespace {

// A volume of parenchyma (-850 HU) with a +40 HU ball of `radius` mm at `center` (world).
Volume ball_volume(Vec3 center, double radius, Vec3 spacing, Vec3 origin, std::array<double, 9> direction) {
  Volume v = Volume::allocate(80, 70, 60, spacing, origin, direction);
  for (int64_t z = 0; z < v.nz(); ++z)
    for (int64_t y = 0; y < v.ny(); ++y)
      for (int64_t x = 0; x < v.nx(); ++x) {
        const Vec3 w = v.world_from_voxel({double(x), double(y), double(z)});
        const double d = std::hypot(w[0] - center[0], w[1] - center[1], w[2] - center[2]);
        v.data()[(z * v.ny() + y) * v.nx() + x] = d <= radius ? 40.f : -850.f;
      }
  return v;
}

// Centroid (row, col) of the bright pixels of one channel.
std::pair<double, double> bright_centroid(const Tensor& p, int64_t n, int ch) {
  const int64_t s = p.dim(2);
  double sr = 0, sc = 0, count = 0;
  for (int64_t r = 0; r < s; ++r)
    for (int64_t c = 0; c < s; ++c)
      if (p.data<uint8_t>()[((n * p.dim(1) + ch) * s + r) * s + c] > 128) sr += r, sc += c, ++count;
  return {count ? sr / count : -1, count ? sc / count : -1};
}

TEST(Patches, BallAtAKnownWorldPointIsCentredInAllThreePlanes) {
  // Anisotropic spacing and a flipped z axis (slices stacked inferior to superior).
  const Vec3 center{-20.5, 31.0, -140.2};
  Volume v = ball_volume(center, 5.0, {0.7, 0.7, 1.25}, {-48, 5, -105}, {1, 0, 0, 0, 1, 0, 0, 0, -1});
  NullProgress progress;
  auto p = extract_patches_u8(v, {center}, PatchOptions{}, progress);
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_EQ(p->shape(), (Shape{1, 3, 64, 64}));
  for (int ch = 0; ch < 3; ++ch) {
    auto [r, c] = bright_centroid(*p, 0, ch);
    EXPECT_NEAR(r, 31.5, 0.3) << "channel " << ch;
    EXPECT_NEAR(c, 31.5, 0.3) << "channel " << ch;
  }
  // Ball diameter 10 mm = ~14.3 pixels of 0.7 mm across the middle row of the axial plane.
  int bright = 0;
  for (int c = 0; c < 64; ++c) bright += p->data<uint8_t>()[32 * 64 + c] > 128;
  EXPECT_NEAR(bright, 10.0 / 0.7, 1.5);
}

TEST(Patches, PlaneOrientationFollowsWorldAxes) {
  // Ball offset +7 mm in x (patient left), +7 mm in y (posterior), +7 mm in z (superior).
  Volume v = ball_volume({7, 7, 7}, 3.0, {0.8, 0.8, 0.8}, {-32, -28, -24}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  NullProgress progress;
  PatchOptions o;
  o.spacing_mm = 0.5;
  // Planes through the ball, centred 7 mm away from it along the in-plane axes.
  auto q = extract_patches_u8(v, {Vec3{0, 0, 7}, Vec3{0, 7, 0}, Vec3{7, 0, 0}}, o, progress);
  ASSERT_TRUE(q.ok());
  // Axial slice z=7 centred at (0,0): the ball is +14 px right (x) and +14 px down (y).
  auto [r0, c0] = bright_centroid(*q, 0, 0);
  EXPECT_NEAR(c0, 31.5 + 14, 0.5);
  EXPECT_NEAR(r0, 31.5 + 14, 0.5);
  // Coronal slice y=7 centred at (0,7,0): +14 px right (x), 14 px up (superior = -row).
  auto [r1, c1] = bright_centroid(*q, 1, 1);
  EXPECT_NEAR(c1, 31.5 + 14, 0.5);
  EXPECT_NEAR(r1, 31.5 - 14, 0.5);
  // Sagittal slice x=7 centred at (7,0,0): +14 px right (posterior y), 14 px up.
  auto [r2, c2] = bright_centroid(*q, 2, 2);
  EXPECT_NEAR(c2, 31.5 + 14, 0.5);
  EXPECT_NEAR(r2, 31.5 - 14, 0.5);
}

// Bright pixels of one channel.
int bright_pixels(const Tensor& p, int64_t n, int ch) {
  const int64_t s = p.dim(2);
  int count = 0;
  for (int64_t i = 0; i < s * s; ++i) count += p.data<uint8_t>()[(n * p.dim(1) + ch) * s * s + i] > 128;
  return count;
}

TEST(Patches, SlabNeighboursSitAlongEachPlanesNormal) {
  // A 1.5 mm ball 3 mm from the patch centre along one axis; a 3 mm slab. The
  // neighbour of the plane whose normal is that axis runs through the ball's
  // centre; the other two of that plane miss it (3 and 6 mm away).
  NullProgress progress;
  const double h = std::sqrt(0.5);
  struct Case {
    const char* frame;
    Vec3 ball;
    int centred;  // the channel showing the ball at the patch centre
  } cases[] = {{"axes", {0, 0, 3}, 2},   {"axes", {0, 0, -3}, 0}, {"axes", {0, -3, 0}, 3},
               {"axes", {3, 0, 0}, 8},   {"rz45", {3 * h, 3 * h, 0}, 8}, {"rz45", {-3 * h, 3 * h, 0}, 5}};
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(k.frame) + " ball " + std::to_string(k.ball[0]) + "," + std::to_string(k.ball[1]) +
                 "," + std::to_string(k.ball[2]));
    Volume v = ball_volume(k.ball, 1.5, {0.6, 0.6, 0.9}, {-24, -21, -27}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
    PatchOptions plain;
    plain.spacing_mm = 0.5;
    plain.frame = *patch_frame(k.frame);
    PatchOptions slab = plain;
    slab.slab_mm = 3;
    ASSERT_EQ(slab.channels(), 9);
    auto p = extract_patches_u8(v, {Vec3{0, 0, 0}}, slab, progress);
    ASSERT_TRUE(p.ok()) << p.error().message();
    ASSERT_EQ(p->shape(), (Shape{1, 9, 64, 64}));
    auto [r, c] = bright_centroid(*p, 0, k.centred);
    EXPECT_NEAR(r, 31.5, 0.5);
    EXPECT_NEAR(c, 31.5, 0.5);
    EXPECT_NEAR(bright_pixels(*p, 0, k.centred), std::numbers::pi * 9, 10);  // a 3 mm disc, 0.5 mm pixels
    for (int other = k.centred - k.centred % 3; other < k.centred - k.centred % 3 + 3; ++other)
      if (other != k.centred) {
        EXPECT_EQ(bright_pixels(*p, 0, other), 0) << "channel " << other;
      }
    // The middle channel of each plane is the plain patch's plane, to the bit.
    auto q = extract_patches_u8(v, {Vec3{0, 0, 0}}, plain, progress);
    ASSERT_TRUE(q.ok());
    ASSERT_EQ(q->shape(), (Shape{1, 3, 64, 64}));
    for (int plane = 0; plane < 3; ++plane)
      for (int i = 0; i < 64 * 64; ++i)
        ASSERT_EQ(p->data<uint8_t>()[(3 * plane + 1) * 64 * 64 + i], q->data<uint8_t>()[plane * 64 * 64 + i])
            << "plane " << plane << " pixel " << i;
    auto f = patches_to_input(*p, slab);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->shape(), (Shape{1, 9, 64, 64}));
  }
}

TEST(Patches, ZoomCutsEachPlaneAgainAtTheFinerSpacing) {
  // A 6 mm ball 2 mm off the patch centre along x, in a rotated frame too. At
  // 0.7 mm per pixel its disc's centre sits 2 / 0.7 pixels off; in the zoomed
  // channel (0.35 mm) the disc is twice as wide and twice as far off, and each
  // zoomed channel is, to the bit, the plain patch cut at 0.35 mm.
  NullProgress progress;
  for (const char* frame : {"axes", "rz45"}) {
    SCOPED_TRACE(frame);
    const Vec3 ball = std::string(frame) == "axes" ? Vec3{2, 0, 0} : Vec3{2 * std::sqrt(0.5), 2 * std::sqrt(0.5), 0};
    Volume v = ball_volume(ball, 3, {0.6, 0.6, 0.9}, {-24, -21, -27}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
    PatchOptions plain;
    plain.frame = *patch_frame(frame);
    PatchOptions zoom = plain;
    zoom.zoom_spacing_mm = 0.35;
    ASSERT_EQ(zoom.channels(), 6);
    EXPECT_EQ(patch_channel_names(zoom), (std::vector<std::string>{"axial", "axial@0.35mm", "coronal",
                                                                   "coronal@0.35mm", "sagittal", "sagittal@0.35mm"}));
    auto p = extract_patches_u8(v, {Vec3{0, 0, 0}}, zoom, progress);
    ASSERT_TRUE(p.ok()) << p.error().message();
    ASSERT_EQ(p->shape(), (Shape{1, 6, 64, 64}));
    // Axial (channels 0, 1) and coronal (2, 3) planes hold the ball off centre
    // along their columns (the frame's x); the zoomed disc covers four times
    // the pixels.
    for (int plane : {0, 1}) {
      for (int zoomed : {0, 1}) {
        const double px = zoomed ? 0.35 : 0.7;
        auto [r, c] = bright_centroid(*p, 0, 2 * plane + zoomed);
        EXPECT_NEAR(r, 31.5, 0.5) << plane << zoomed;
        EXPECT_NEAR(c, 31.5 + 2 / px, 0.6) << plane << zoomed;
      }
      const double base = bright_pixels(*p, 0, 2 * plane), close = bright_pixels(*p, 0, 2 * plane + 1);
      EXPECT_NEAR(base, std::numbers::pi * 9 / 0.49, 12);
      EXPECT_NEAR(close / base, 4, 0.6) << plane;
    }
    auto base = extract_patches_u8(v, {Vec3{0, 0, 0}}, plain, progress);
    PatchOptions fine = plain;
    fine.spacing_mm = 0.35;
    auto close = extract_patches_u8(v, {Vec3{0, 0, 0}}, fine, progress);
    ASSERT_TRUE(base.ok() && close.ok());
    for (int plane = 0; plane < 3; ++plane)
      for (int i = 0; i < 64 * 64; ++i) {
        ASSERT_EQ(p->data<uint8_t>()[(2 * plane) * 64 * 64 + i], base->data<uint8_t>()[plane * 64 * 64 + i])
            << "plane " << plane << " pixel " << i;
        ASSERT_EQ(p->data<uint8_t>()[(2 * plane + 1) * 64 * 64 + i], close->data<uint8_t>()[plane * 64 * 64 + i])
            << "zoomed plane " << plane << " pixel " << i;
      }
    auto f = patches_to_input(*p, zoom);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->shape(), (Shape{1, 6, 64, 64}));
  }
}

TEST(Patches, WindowQuantisationAndNormalisation) {
  Volume v = Volume::allocate(4, 4, 4, {1, 1, 1}, {0, 0, 0});
  for (float& x : v.hu.span<float>()) x = -600.f;  // the window level -> 0.5
  NullProgress progress;
  PatchOptions o;
  o.size = 4;
  o.spacing_mm = 0.1;
  auto u8 = extract_patches_u8(v, {Vec3{1.5, 1.5, 1.5}}, o, progress);
  ASSERT_TRUE(u8.ok());
  EXPECT_EQ(u8->data<uint8_t>()[0], 128);  // round(0.5 * 255)
  auto f = patches_to_input(*u8, o);
  ASSERT_TRUE(f.ok());
  EXPECT_NEAR(f->data<float>()[0], (128 / 255.0 - 0.5) / 0.25, 1e-6);
  // Outside the volume reads as air: (-1000 - (-1350)) / 1500 * 255 = 59.5 -> 60.
  auto outside = extract_patches_u8(v, {Vec3{100, 100, 100}}, o, progress);
  EXPECT_EQ(outside->data<uint8_t>()[5], 60);
}

TEST(Patches, BadOptionsAreErrors) {
  Volume v = Volume::allocate(4, 4, 4, {1, 1, 1}, {0, 0, 0});
  NullProgress progress;
  PatchOptions o;
  o.size = 0;
  EXPECT_EQ(extract_patches_u8(v, {}, o, progress).error().kind(), ErrorKind::kBadInput);
  EXPECT_FALSE(extract_patches_u8(Volume{}, {}, PatchOptions{}, progress).ok());
  EXPECT_FALSE(patches_to_input(Tensor::zeros({1, 2, 4, 4}, DType::kU8), PatchOptions{}).ok());
  for (double slab : {-1.0, 20.5, std::nan("")}) {
    PatchOptions s;
    s.slab_mm = slab;
    auto r = extract_patches_u8(v, {Vec3{1, 1, 1}}, s, progress);
    ASSERT_FALSE(r.ok()) << slab;
    EXPECT_NE(r.error().message().find("slab must be between 0 and 20 mm"), std::string::npos);
  }
  for (double zoom : {-0.1, 5.5, std::nan("")}) {
    PatchOptions z;
    z.zoom_spacing_mm = zoom;
    auto r = extract_patches_u8(v, {Vec3{1, 1, 1}}, z, progress);
    ASSERT_FALSE(r.ok()) << zoom;
    EXPECT_NE(r.error().message().find("zoom spacing must be between 0 and 5 mm"), std::string::npos);
  }
  PatchOptions both;
  both.slab_mm = 2;
  both.zoom_spacing_mm = 0.35;
  auto r = extract_patches_u8(v, {Vec3{1, 1, 1}}, both, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("a slab and a zoom do not combine"), std::string::npos);
}

TEST(Patches, ViewsMirrorOrTransposeEveryPlaneAlike) {
  // Two patches of two 3x3 planes (odd size, the middle row/column stays), values 0..35.
  Tensor p = Tensor::empty({2, 2, 3, 3}, DType::kF32);
  for (int i = 0; i < 36; ++i) p.data<float>()[i] = static_cast<float>(i);
  const auto at = [](const Tensor& t, int n, int c, int r, int col) { return t.data<float>()[((n * 2 + c) * 3 + r) * 3 + col]; };
  auto id = patch_view(p, "identity");
  auto fx = patch_view(p, "flip_x");
  auto fy = patch_view(p, "flip_y");
  auto tr = patch_view(p, "transpose");
  ASSERT_TRUE(id.ok() && fx.ok() && fy.ok() && tr.ok());
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int r = 0; r < 3; ++r)
        for (int col = 0; col < 3; ++col) {
          EXPECT_EQ(at(*id, n, c, r, col), at(p, n, c, r, col));
          EXPECT_EQ(at(*fx, n, c, r, col), at(p, n, c, r, 2 - col));
          EXPECT_EQ(at(*fy, n, c, r, col), at(p, n, c, 2 - r, col));
          EXPECT_EQ(at(*tr, n, c, r, col), at(p, n, c, col, r));
        }
  // uint8 patches (the exported form) too; twice the same flip is the patch again.
  Tensor u8 = Tensor::empty({1, 3, 4, 4}, DType::kU8);
  for (int i = 0; i < 48; ++i) u8.data<uint8_t>()[i] = static_cast<uint8_t>(5 * i);
  auto once = patch_view(u8, "flip_y");
  ASSERT_TRUE(once.ok());
  auto twice = patch_view(*once, "flip_y");
  ASSERT_TRUE(twice.ok());
  EXPECT_NE(once->data<uint8_t>()[0], u8.data<uint8_t>()[0]);
  for (int i = 0; i < 48; ++i) EXPECT_EQ(twice->data<uint8_t>()[i], u8.data<uint8_t>()[i]);
  // Unknown views and non-square patches are refused.
  auto bad = patch_view(p, "rotate");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("unknown view 'rotate'"), std::string::npos);
  EXPECT_FALSE(patch_view(Tensor::zeros({1, 3, 4, 5}, DType::kF32), "flip_x").ok());
  EXPECT_EQ(patch_view_names().size(), 4u);
}

TEST(Patches, FramesCutTheSamePlanesOfARotatedCube) {
  // Three balls 7 mm from the centre: along (1, 1, 0)/sqrt2, along (0, 1, 1)/sqrt2 and along z.
  const double h = std::sqrt(0.5), d = 7.0;
  Volume v = Volume::allocate(80, 80, 80, {0.5, 0.5, 0.5}, {-20, -20, -20});
  const Vec3 balls[3] = {{d * h, d * h, 0}, {0, d * h, d * h}, {0, 0, d}};
  for (int64_t z = 0; z < v.nz(); ++z)
    for (int64_t y = 0; y < v.ny(); ++y)
      for (int64_t x = 0; x < v.nx(); ++x) {
        const Vec3 w = v.world_from_voxel({double(x), double(y), double(z)});
        float hu = -850.f;
        for (const Vec3& b : balls)
          if (std::hypot(w[0] - b[0], w[1] - b[1], w[2] - b[2]) <= 2.0) hu = 40.f;
        v.data()[(z * v.ny() + y) * v.nx() + x] = hu;
      }
  NullProgress progress;
  PatchOptions o;
  o.spacing_mm = 0.5;
  // The patch of the centre cut in a named frame, and where its axial plane shows a ball.
  auto cut = [&](const char* frame) {
    auto f = patch_frame(frame);
    EXPECT_TRUE(f.ok()) << frame;
    o.frame = f.ok() ? *f : PatchOptions{}.frame;
    auto p = extract_patches_u8(v, {Vec3{0, 0, 0}}, o, progress);
    EXPECT_TRUE(p.ok()) << frame;
    return p.ok() ? *p : Tensor::zeros({1, 3, 64, 64}, DType::kU8);
  };
  // The scanner's axes: the first ball lies in the axial plane, down-right on the diagonal.
  auto [ra, ca] = bright_centroid(cut("axes"), 0, 0);
  EXPECT_NEAR(ca, 31.5 + d * h / 0.5, 0.5);
  EXPECT_NEAR(ra, 31.5 + d * h / 0.5, 0.5);
  // rz45 turns x onto (1, 1, 0)/sqrt2: in its axial plane the first ball lies straight right;
  // in its coronal plane (x', -z) too, beside the third ball straight up.
  const Tensor turned = cut("rz45");
  auto [r0, c0] = bright_centroid(turned, 0, 0);
  EXPECT_NEAR(c0, 31.5 + d / 0.5, 0.5);
  EXPECT_NEAR(r0, 31.5, 0.5);
  const uint8_t* cor = turned.data<uint8_t>() + 64 * 64;  // channel 1
  EXPECT_GT(cor[32 * 64 + static_cast<int>(31.5 + d / 0.5)], 200);  // the first ball, right
  EXPECT_GT(cor[static_cast<int>(31.5 - d / 0.5) * 64 + 32], 200);  // the third, up (superior)
  // rx45 turns y onto (0, 1, 1)/sqrt2: the second ball lies straight down in its axial plane.
  auto [r1, c1] = bright_centroid(cut("rx45"), 0, 0);
  EXPECT_NEAR(c1, 31.5, 0.5);
  EXPECT_NEAR(r1, 31.5 + d / 0.5, 0.5);
  // "axes" is the identity (the default); every named frame is orthonormal and right-handed.
  auto id = patch_frame("axes");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, PatchOptions{}.frame);
  for (const std::string& name : patch_frame_names()) {
    auto f = patch_frame(name);
    ASSERT_TRUE(f.ok()) << name;
    const Vec3& a = (*f)[0];
    const Vec3& b = (*f)[1];
    const Vec3& c = (*f)[2];
    EXPECT_NEAR(a[1] * b[2] - a[2] * b[1], c[0], 1e-12) << name;
    EXPECT_NEAR(a[2] * b[0] - a[0] * b[2], c[1], 1e-12) << name;
    EXPECT_NEAR(a[0] * b[1] - a[1] * b[0], c[2], 1e-12) << name;
  }
  // Unknown frames and frames that are not rotations are refused.
  auto unknown = patch_frame("rz30");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("unknown frame 'rz30'"), std::string::npos);
  o.frame = {{{1, 0, 0}, {1, 1, 0}, {0, 0, 1}}};
  auto skew = extract_patches_u8(v, {Vec3{0, 0, 0}}, o, progress);
  ASSERT_FALSE(skew.ok());
  EXPECT_NE(skew.error().message().find("not orthonormal"), std::string::npos);
}

TEST(Patches, ViewSpecsNameAPatchViewOrAFrame) {
  auto flip = parse_view_spec("flip_x");
  ASSERT_TRUE(flip.ok());
  EXPECT_EQ(flip->frame, "axes");
  EXPECT_EQ(flip->view, "flip_x");
  auto frame = parse_view_spec("ry45");
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->frame, "ry45");
  EXPECT_EQ(frame->view, "identity");
  for (const char* bad : {"axes", "rotate", ""}) {
    auto r = parse_view_spec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("flip_x, flip_y, transpose, rz45, rx45, ry45"), std::string::npos)
        << r.error().message();
  }
}

}  // namespace
}  // namespace hilum
