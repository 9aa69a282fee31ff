// The phantom generator: anatomy and HU, nodules and truth, determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vision/io/phantom.h"
#include "vision/io/phantom_anatomy.h"

namespace hilum {
namespace {

// One shared small study (40 slices at 2.5 mm, six nodules).
class PhantomTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PhantomOptions o;
    o.seed = 3;
    o.slices = 40;
    o.nodules = 6;
    NullProgress progress;
    auto r = make_phantom(o, progress);
    ASSERT_TRUE(r.ok()) << r.error().message();
    phantom_ = std::make_unique<Phantom>(std::move(r).value());
  }
  static void TearDownTestSuite() { phantom_.reset(); }

  static const Phantom& ph() { return *phantom_; }
  static uint8_t label(int64_t x, int64_t y, int64_t z) {
    const Volume& v = ph().volume;
    return ph().labels.data<uint8_t>()[(z * v.ny() + y) * v.nx() + x];
  }
  // Mean HU over voxels of `tissue` whose 3x3x3 neighbourhood is all that tissue.
  static double interior_mean(uint8_t tissue, int64_t* count) {
    const Volume& v = ph().volume;
    double sum = 0;
    int64_t n = 0;
    for (int64_t z = 1; z + 1 < v.nz(); ++z) {
      for (int64_t y = 1; y + 1 < v.ny(); y += 2) {
        for (int64_t x = 1; x + 1 < v.nx(); x += 2) {
          if ((label(x, y, z) & 0x7F) != tissue) continue;
          bool inside = true;
          for (int dz = -1; dz <= 1 && inside; ++dz)
            for (int dy = -1; dy <= 1 && inside; ++dy)
              for (int dx = -1; dx <= 1 && inside; ++dx) inside = (label(x + dx, y + dy, z + dz) & 0x7F) == tissue;
          if (!inside) continue;
          sum += v.at(x, y, z);
          ++n;
        }
      }
    }
    *count = n;
    return n ? sum / n : 0;
  }
  static Vec3 voxel_of(const Vec3& world) {
    const Vec3 v = ph().volume.voxel_from_world(world);
    return {std::round(v[0]), std::round(v[1]), std::round(v[2])};
  }

  static std::unique_ptr<Phantom> phantom_;
};
std::unique_ptr<Phantom> PhantomTest::phantom_;

TEST_F(PhantomTest, GeometryIsARealisticChestCt) {
  const Volume& v = ph().volume;
  EXPECT_EQ(v.nx(), 512);
  EXPECT_EQ(v.ny(), 512);
  EXPECT_EQ(v.nz(), 40);
  EXPECT_EQ(v.spacing[0], v.spacing[1]);
  EXPECT_GE(v.spacing[0], 0.6);
  EXPECT_LE(v.spacing[0], 0.9);
  EXPECT_DOUBLE_EQ(v.spacing[2], 2.5);  // 300 mm / 40 clamped to 2.5 mm
  const std::array<double, 9> identity{1, 0, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_EQ(v.direction, identity);
  EXPECT_EQ(ph().labels.dtype(), DType::kU8);
  EXPECT_EQ(ph().labels.shape(), v.hu.shape());
  EXPECT_DOUBLE_EQ(ph().info.slice_thickness_mm, 2.5);
  EXPECT_EQ(ph().info.sop_instance_uids.size(), 40u);
  // Whole HU values within the 12-bit stored range.
  for (int64_t i = 0; i < v.hu.numel(); i += 997) {
    const float h = v.data()[i];
    ASSERT_EQ(h, std::round(h));
    ASSERT_GE(h, -1024);
    ASSERT_LE(h, 3071);
  }
}

TEST_F(PhantomTest, TissuesHaveTheirHounsfieldUnits) {
  int64_t n = 0;
  const double lung = interior_mean(kTissueLung, &n);
  EXPECT_GT(n, 100000);
  EXPECT_NEAR(lung, -850, 30) << "lung parenchyma";
  const double fat = interior_mean(kTissueFat, &n);
  EXPECT_GT(n, 10000);
  EXPECT_NEAR(fat, -95, 20) << "fat";
  const double soft = interior_mean(kTissueSoft, &n);
  EXPECT_GT(n, 10000);
  EXPECT_NEAR(soft, 45, 20) << "muscle and organs";
  const double bone = interior_mean(kTissueBone, &n);
  EXPECT_GT(n, 500);
  EXPECT_GT(bone, 250) << "bone";
  const double vessel = interior_mean(kTissueVessel, &n);
  EXPECT_GT(n, 20);
  EXPECT_GT(vessel, -150) << "vessel cores are blood-bright";
  const double air = interior_mean(kTissueAir, &n);
  EXPECT_NEAR(air, -1000, 10);
}

TEST_F(PhantomTest, NoiseMatchesTheDrawnLevel) {
  // Corner of the field of view: air only, so the spread is CT noise.
  const Volume& v = ph().volume;
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  for (int64_t z = 0; z < v.nz(); ++z) {
    for (int64_t y = 4; y < 60; ++y) {
      for (int64_t x = 4; x < 60; ++x) {
        const double h = v.at(x, y, z);
        sum += h;
        sum2 += h * h;
        ++n;
      }
    }
  }
  const double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  EXPECT_GE(ph().noise_sd_hu, 10);
  EXPECT_LE(ph().noise_sd_hu, 20);
  EXPECT_NEAR(sd, ph().noise_sd_hu, 0.25 * ph().noise_sd_hu);
}

TEST_F(PhantomTest, LungsBranchingVesselsAndAirwaysArePresent) {
  // Every slice of this mid-chest scan shows both lungs.
  const Volume& v = ph().volume;
  for (int64_t z = 0; z < v.nz(); ++z) {
    int64_t right = 0, left = 0, vessels = 0, airways = 0;
    for (int64_t y = 0; y < v.ny(); ++y) {
      for (int64_t x = 0; x < v.nx(); ++x) {
        const uint8_t l = label(x, y, z);
        if (l & kInLungBit) (x < v.nx() / 2 ? right : left)++;
        vessels += (l & 0x7F) == kTissueVessel;
        airways += (l & 0x7F) == kTissueAirway;
      }
    }
    EXPECT_GT(right, 5000) << "slice " << z;
    EXPECT_GT(left, 5000) << "slice " << z;
    EXPECT_GT(vessels, 50) << "slice " << z;
    (void)airways;
  }
}

TEST_F(PhantomTest, NodulesLieInsideTheLungsWithTheirTypesHu) {
  ASSERT_EQ(ph().nodules.size(), 6u);
  const Volume& v = ph().volume;
  for (const PhantomNodule& n : ph().nodules) {
    SCOPED_TRACE(std::string(nodule_type_name(n.type)) + " " + std::to_string(n.diameter_mm) + " mm");
    const Vec3 c = voxel_of(n.center_mm);
    ASSERT_GE(c[2], 0);
    ASSERT_LT(c[2], v.nz());
    const auto x = static_cast<int64_t>(c[0]), y = static_cast<int64_t>(c[1]), z = static_cast<int64_t>(c[2]);
    EXPECT_TRUE(label(x, y, z) & kInLungBit) << "centre outside the lungs";
    EXPECT_GE(n.diameter_mm, 3);
    EXPECT_LE(n.diameter_mm, 30);
    // Mean of the 3x3 in-plane neighbourhood at the centre.
    double hu = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) hu += v.at(x + dx, y + dy, z);
    hu /= 9;
    // The whole nodule lies within the scanned slab.
    EXPECT_GE(n.center_mm[2] - n.diameter_mm / 2, v.origin[2]);
    EXPECT_LE(n.center_mm[2] + n.diameter_mm / 2, v.origin[2] + (v.nz() - 1) * v.spacing[2]);
    switch (n.type) {
      case NoduleType::kSolid:
        EXPECT_DOUBLE_EQ(n.solid_diameter_mm, n.diameter_mm);
        if (n.diameter_mm >= 6) EXPECT_GT(hu, -150);
        else EXPECT_GT(hu, -600);
        break;
      case NoduleType::kPartSolid:
        EXPECT_GT(n.solid_diameter_mm, 0);
        EXPECT_LT(n.solid_diameter_mm, n.diameter_mm);
        if (n.solid_diameter_mm >= 5) EXPECT_GT(hu, -300);
        else EXPECT_GT(hu, -650);
        break;
      case NoduleType::kGroundGlass:
        EXPECT_EQ(n.solid_diameter_mm, 0);
        EXPECT_GT(hu, -780);
        EXPECT_LT(hu, -350);
        break;
    }
  }
}

TEST(Phantom, JuxtapleuralAndJuxtavascularNodulesTouchWallAndVessel) {
  // Placement only (no rendering), over a few studies.
  int pleural = 0, vascular = 0;
  for (uint64_t seed : {21, 22, 23, 24}) {
    PhantomOptions o;
    o.seed = seed;
    o.slices = 120;
    o.nodules = 8;
    auto plan = phantom::plan_phantom(o);
    ASSERT_TRUE(plan.ok()) << plan.error().message();
    const phantom::Anatomy& a = plan->anatomy;
    for (const PhantomNodule& n : plan->phantom.nodules) {
      const double r = n.diameter_mm / 2;
      ASSERT_TRUE(a.in_lung(n.center_mm));
      bool wall = false;
      const double edge = a.distance_to_lung_edge(n.center_mm, r + 5, &wall);
      if (n.juxtapleural) {
        ++pleural;
        EXPECT_TRUE(wall);
        EXPECT_LE(edge, r + 0.5);
      } else {
        EXPECT_GT(edge, 0.45 * r);
      }
      if (n.juxtavascular) {
        ++vascular;
        // A pulmonary vessel of 2 mm or more within 1.5 mm of the surface.
        double gap = 1e9;
        for (size_t i = a.n_mediastinal; i < a.tubes.size(); ++i) {
          const phantom::Tube& t = a.tubes[i];
          if (t.kind != phantom::TubeKind::kVessel || std::max(t.ra, t.rb) < 1.0) continue;
          const Vec3 ab{t.b[0] - t.a[0], t.b[1] - t.a[1], t.b[2] - t.a[2]};
          const Vec3 ap{n.center_mm[0] - t.a[0], n.center_mm[1] - t.a[1], n.center_mm[2] - t.a[2]};
          const double len2 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
          const double u = std::clamp((ap[0] * ab[0] + ap[1] * ab[1] + ap[2] * ab[2]) / len2, 0.0, 1.0);
          const double dx = ap[0] - u * ab[0], dy = ap[1] - u * ab[1], dz = ap[2] - u * ab[2];
          gap = std::min(gap, std::sqrt(dx * dx + dy * dy + dz * dz) - (t.ra + u * (t.rb - t.ra)) - r);
        }
        EXPECT_LT(gap, 1.5);
      }
    }
  }
  EXPECT_GE(pleural, 3);
  EXPECT_GE(vascular, 3);
}

TEST_F(PhantomTest, TruthCsvMatchesTheNodules) {
  const std::string csv = phantom_truth_csv(ph());
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line,
            "seriesuid,coordX,coordY,coordZ,diameter_mm,type,solid_diameter_mm,malignant,juxtapleural,"
            "juxtavascular,"
            "margin,malignancy_probability,axial_long_mm,axial_short_mm,axial_mean_mm,volume_mm3");
  size_t i = 0;
  while (std::getline(in, line)) {
    ASSERT_LT(i, ph().nodules.size());
    const PhantomNodule& n = ph().nodules[i++];
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    ASSERT_EQ(f.size(), 16u) << line;
    EXPECT_EQ(f[0], ph().info.series_instance_uid);
    EXPECT_NEAR(std::stod(f[1]), n.center_mm[0], 1e-3);
    EXPECT_NEAR(std::stod(f[2]), n.center_mm[1], 1e-3);
    EXPECT_NEAR(std::stod(f[3]), n.center_mm[2], 1e-3);
    EXPECT_NEAR(std::stod(f[4]), n.diameter_mm, 0.051);
    EXPECT_EQ(f[5], nodule_type_name(n.type));
    EXPECT_EQ(f[7], n.malignant ? "1" : "0");
    EXPECT_EQ(f[8], n.juxtapleural ? "1" : "0");
    EXPECT_EQ(f[9], n.juxtavascular ? "1" : "0");
    EXPECT_EQ(f[10], nodule_margin_name(n.margin));
    // The drawn nodule as sizing measures it: within its nominal long axis (the
    // ellipsoid's short axes are 0.75-1 of it; spicules, left out of diameter_mm,
    // may reach further), the mean between the two axes, a volume below the
    // nominal ball's and above a third of it (a vessel may overlap a quarter).
    const double long_mm = std::stod(f[12]), short_mm = std::stod(f[13]), mean_mm = std::stod(f[14]);
    const double ball = 4.18879 * std::pow(n.diameter_mm / 2, 3);
    EXPECT_NEAR(long_mm, n.drawn_long_mm, 0.051);
    EXPECT_NEAR(mean_mm, (n.drawn_long_mm + n.drawn_short_mm) / 2, 0.051);
    EXPECT_GT(short_mm, 0.4 * n.diameter_mm) << line;
    EXPECT_LE(short_mm, long_mm) << line;
    EXPECT_GT(std::stod(f[15]), ball / 3) << line;
    if (n.margin != NoduleMargin::kSpiculated) {
      EXPECT_LT(long_mm, n.diameter_mm + 1.5) << line;
      EXPECT_LT(std::stod(f[15]), 1.3 * ball) << line;
    }
    // The centre in the volume is nodule tissue.
    const Vec3 c = voxel_of({std::stod(f[1]), std::stod(f[2]), std::stod(f[3])});
    EXPECT_EQ(label(static_cast<int64_t>(c[0]), static_cast<int64_t>(c[1]), static_cast<int64_t>(c[2])) & 0x7F,
              kTissueNodule)
        << line;
  }
  EXPECT_EQ(i, ph().nodules.size());
}

TEST(Phantom, SameSeedSameVolumeOtherSeedOtherVolume) {
  PhantomOptions o;
  o.seed = 11;
  o.slices = 16;
  o.nodules = 2;
  NullProgress progress;
  auto a = make_phantom(o, progress);
  auto b = make_phantom(o, progress);
  o.seed = 12;
  auto c = make_phantom(o, progress);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ(a->volume.hu.nbytes(), b->volume.hu.nbytes());
  EXPECT_EQ(std::memcmp(a->volume.data(), b->volume.data(), a->volume.hu.nbytes()), 0);
  EXPECT_EQ(std::memcmp(a->labels.raw(), b->labels.raw(), a->labels.nbytes()), 0);
  EXPECT_EQ(a->clinical_text, b->clinical_text);
  EXPECT_EQ(a->info.series_instance_uid, b->info.series_instance_uid);
  EXPECT_EQ(phantom_truth_csv(*a), phantom_truth_csv(*b));
  EXPECT_NE(a->info.series_instance_uid, c->info.series_instance_uid);
  EXPECT_NE(a->clinical_text, c->clinical_text);
}

TEST(Phantom, SliceCountSetsThicknessWithinLimits) {
  for (auto [slices, thickness] : std::vector<std::pair<int, double>>{{16, 2.5}, {120, 2.5}, {150, 2.0}, {240, 1.25},
                                                                      {300, 1.0}, {480, 0.625}, {640, 0.625}}) {
    PhantomOptions o;
    o.seed = 5;
    o.slices = slices;
    o.nodules = 1;
    auto plan = phantom::plan_phantom(o);
    ASSERT_TRUE(plan.ok()) << plan.error().message();
    EXPECT_EQ(plan->scan.nz, slices);
    EXPECT_DOUBLE_EQ(plan->scan.thickness, thickness) << slices << " slices";
  }
  // Drawn from the seed: thickness from the list, about 300 mm covered.
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    PhantomOptions o;
    o.seed = seed;
    auto plan = phantom::plan_phantom(o);
    ASSERT_TRUE(plan.ok());
    EXPECT_GE(plan->scan.thickness, 0.625);
    EXPECT_LE(plan->scan.thickness, 2.5);
    EXPECT_NEAR(plan->scan.nz * plan->scan.thickness, 300, 3);
    EXPECT_GE(plan->phantom.nodules.size(), 1u);
    EXPECT_LE(plan->phantom.nodules.size(), 4u);
    EXPECT_GE(plan->scan.ps, 0.6);
    EXPECT_LE(plan->scan.ps, 0.9);
  }
}

TEST(Phantom, OptionsOutOfRangeAreBadInput) {
  NullProgress progress;
  PhantomOptions o;
  o.slices = 3;
  auto r = make_phantom(o, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("--slices"), std::string::npos);
  o.slices = PhantomOptions::kMaxSlices + 1;
  EXPECT_FALSE(validate_phantom_options(o).ok());
  o.slices = -1;
  o.nodules = PhantomOptions::kMaxNodules + 1;
  auto s = validate_phantom_options(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("--nodules"), std::string::npos);
  o.nodules = -2;
  EXPECT_FALSE(validate_phantom_options(o).ok());
  o.nodules = 0;
  EXPECT_TRUE(validate_phantom_options(o).ok());
}

TEST(Phantom, NoduleSitesTextAndValidation) {
  EXPECT_EQ(nodule_sites_text({1, 0, 3}), "isolated=1,juxtapleural=0,juxtavascular=3");
  PhantomOptions o;
  o.site_weights = {0, 0, 0};
  EXPECT_FALSE(validate_phantom_options(o).ok());
  o.site_weights = {1, -1, 0};
  EXPECT_FALSE(validate_phantom_options(o).ok());
}

// Sites chosen by weight: every nodule on a vessel where there is room (or only
// isolated ones), with the nodules' number, types and margins as the seed draws
// them by default (they are drawn before the site).
TEST(Phantom, NoduleSitesChooseWhereNodulesSit) {
  int vascular = 0, total = 0;
  for (uint64_t seed : {31, 32, 33}) {
    PhantomOptions o;
    o.seed = seed;
    o.slices = 200;
    o.nodules = 4;
    auto base = phantom::plan_phantom(o);
    o.site_weights = {0, 0, 1};
    auto jv = phantom::plan_phantom(o);
    ASSERT_TRUE(base.ok() && jv.ok());
    ASSERT_EQ(jv->phantom.nodules.size(), base->phantom.nodules.size());
    for (size_t i = 0; i < jv->phantom.nodules.size(); ++i) {
      const PhantomNodule &a = base->phantom.nodules[i], &b = jv->phantom.nodules[i];
      EXPECT_EQ(a.type, b.type);
      EXPECT_EQ(a.margin, b.margin);
      vascular += b.juxtavascular;
      ++total;
    }
    EXPECT_NE(jv->phantom.info.series_instance_uid, base->phantom.info.series_instance_uid);
    o.site_weights = {1, 0, 0};
    auto iso = phantom::plan_phantom(o);
    ASSERT_TRUE(iso.ok());
    for (const PhantomNodule& n : iso->phantom.nodules) EXPECT_FALSE(n.juxtapleural);
  }
  EXPECT_GE(vascular, total - 2) << vascular << " of " << total << " juxtavascular";
}

TEST(Phantom, ManyNodulesInAShortScanStillFit) {
  PhantomOptions o;
  o.seed = 9;
  o.slices = 16;  // 40 mm of chest
  o.nodules = PhantomOptions::kMaxNodules;
  auto plan = phantom::plan_phantom(o);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->phantom.nodules.size(), static_cast<size_t>(PhantomOptions::kMaxNodules));
}

TEST(Phantom, CancellationStopsRendering) {
  class CancelAfter : public Progress {
   public:
    void report(double, std::string_view) override { ++reports_; }
    bool cancelled() const override { return reports_ > 3; }

   private:
    int reports_ = 0;
  } progress;
  PhantomOptions o;
  o.seed = 2;
  o.slices = 64;
  auto r = make_phantom(o, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kCancelled);
}

}  // namespace
}  // namespace hilum
