// Synthetic series written with DCMTK for the edge cases real loaders meet:
// ordering, duplicates, gaps, spacing, tilt, value mapping, series selection,
// enhanced multi-frame CT, DICOMDIR and the transfer syntaxes DCMTK encodes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>

#include "tests/vision/io/dicom_writer.h"
#include "vision/io/dicom.h"

namespace hilum {
namespace {

using namespace hilum::dicomtest;

Result<LoadedStudy> load(const std::vector<fs::path>& inputs, LoadOptions options = {}) {
  NullProgress progress;
  return load_dicom_volume(inputs, options, progress);
}
Result<LoadedStudy> load(const fs::path& input, LoadOptions options = {}) {
  return load(std::vector<fs::path>{input}, options);
}

bool has_warning(const LoadedStudy& s, const std::string& needle) {
  return std::any_of(s.warnings.begin(), s.warnings.end(),
                     [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

std::string all_warnings(const LoadedStudy& s) {
  std::string out;
  for (const auto& w : s.warnings) out += w + "; ";
  return out;
}

void expect_no_phi(const std::string& text) {
  EXPECT_EQ(text.find(kSecretName), std::string::npos) << text;
  EXPECT_EQ(text.find(kSecretId), std::string::npos) << text;
  EXPECT_EQ(text.find(kSecretBirth), std::string::npos) << text;
}

// Slice z of the volume equals pattern(z) - 1024.
void expect_pattern(const Volume& v, int z, int source_z) {
  for (int r = 0; r < v.ny(); ++r) {
    for (int c = 0; c < v.nx(); ++c) {
      ASSERT_FLOAT_EQ(v.at(c, r, z), pattern_hu(r, c, source_z)) << "z " << z << " row " << r << " col " << c;
    }
  }
}

TEST(DicomSynthetic, ShuffledInstanceNumbersAndFileNamesSortByPosition) {
  TempDir dir("shuffled");
  SeriesSpec spec;
  spec.slices = 9;
  auto slices = axial_series(spec);
  std::vector<int> numbers(slices.size());
  std::iota(numbers.begin(), numbers.end(), 1);
  std::mt19937 rng(3);
  std::shuffle(numbers.begin(), numbers.end(), rng);
  for (size_t i = 0; i < slices.size(); ++i) slices[i].instance_number = numbers[i];
  std::shuffle(slices.begin(), slices.end(), rng);  // file names no longer follow z either
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  ASSERT_EQ(v.nz(), 9);
  for (int z = 0; z < 9; ++z) expect_pattern(v, z, z);
  EXPECT_DOUBLE_EQ(v.spacing[2], 2.5);
  EXPECT_DOUBLE_EQ(v.spacing[0], 0.5);   // PixelSpacing[1]: between columns
  EXPECT_DOUBLE_EQ(v.spacing[1], 0.75);  // PixelSpacing[0]: between rows
  EXPECT_DOUBLE_EQ(v.origin[2], -20);
  EXPECT_TRUE(r->warnings.empty()) << all_warnings(*r);
  EXPECT_EQ(r->info.patient.name, kSecretName);
  EXPECT_EQ(r->info.sop_instance_uids.size(), 9u);
}

TEST(DicomSynthetic, ReversedOrderAndCoronalOrientation) {
  TempDir dir("reversed");
  SeriesSpec spec;
  spec.slices = 5;
  auto slices = axial_series(spec);
  // Coronal slices: rows along -z (feet), columns along x; normal = x * (-z) = +y.
  for (size_t i = 0; i < slices.size(); ++i) {
    slices[i].orientation = {1, 0, 0, 0, 0, -1};
    slices[i].position = {-10, 50.0 - 3.0 * static_cast<double>(i), 30};  // decreasing along the normal
    slices[i].instance_number = static_cast<int>(i) + 1;
  }
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  ASSERT_EQ(v.nz(), 5);
  // Sorted ascending along the normal (+y): the last written slice comes first.
  for (int z = 0; z < 5; ++z) expect_pattern(v, z, 4 - z);
  EXPECT_DOUBLE_EQ(v.origin[1], 50.0 - 12.0);
  EXPECT_DOUBLE_EQ(v.spacing[2], 3.0);
  const std::array<double, 9> expected{1, 0, 0, 0, 0, 1, 0, -1, 0};
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(v.direction[i], expected[i], 1e-12) << i;
  // World position of voxel (0,0,z) is the IPP of that slice.
  const Vec3 w = v.world_from_voxel({0, 0, 4});
  EXPECT_NEAR(w[1], 50.0, 1e-9);
}

TEST(DicomSynthetic, IdenticalDuplicatesAreDroppedWithAWarning) {
  TempDir dir("dup");
  SeriesSpec spec;
  auto slices = axial_series(spec);
  SliceSpec copy = slices[2];
  copy.sop_uid.clear();  // another SOP instance, same position and pixels
  copy.instance_number = 99;
  slices.push_back(copy);
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->volume.nz(), spec.slices);
  EXPECT_TRUE(has_warning(*r, "dropped 1 duplicate slice")) << all_warnings(*r);
  for (int z = 0; z < spec.slices; ++z) expect_pattern(r->volume, z, z);
}

TEST(DicomSynthetic, DuplicatesWithDifferentPixelsAreRefused) {
  TempDir dir("dupdiff");
  SeriesSpec spec;
  auto slices = axial_series(spec);
  SliceSpec other = slices[2];
  other.pixels = pattern(spec.rows, spec.columns, 40);
  slices.push_back(other);
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("same position"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find(spec.series_uid), std::string::npos) << r.error().message();
  expect_no_phi(r.error().message());
}

TEST(DicomSynthetic, CopiedFileWithTheSameSopInstanceIsReadOnce) {
  TempDir dir("copy");
  SeriesSpec spec;
  auto slices = axial_series(spec);
  ASSERT_EQ(write_series(dir.path(), slices), "");
  fs::create_directories(dir / "again");
  fs::copy_file(dir / "IM0001", dir / "again" / "IM0001");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->volume.nz(), spec.slices);
  EXPECT_TRUE(has_warning(*r, "repeating an SOPInstanceUID")) << all_warnings(*r);
}

TEST(DicomSynthetic, OneMissingSliceIsFilledByInterpolationAndReported) {
  TempDir dir("gap");
  SeriesSpec spec;
  spec.slices = 8;
  auto slices = axial_series(spec);
  slices.erase(slices.begin() + 4);
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  ASSERT_EQ(v.nz(), 8);
  EXPECT_DOUBLE_EQ(v.spacing[2], 2.5);
  // The content is linear in z, so linear interpolation rebuilds slice 4 exactly.
  for (int z = 0; z < 8; ++z) expect_pattern(v, z, z);
  EXPECT_TRUE(has_warning(*r, "gap: 1 slice(s) missing")) << all_warnings(*r);
  EXPECT_TRUE(has_warning(*r, "resampled")) << all_warnings(*r);

  LoadOptions strict;
  strict.max_gap_slices = 0;
  auto refused = load(dir.path(), strict);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("gap of 1 missing slice"), std::string::npos)
      << refused.error().message();
  LoadOptions no_resample;
  no_resample.resample_spacing = false;
  auto refused2 = load(dir.path(), no_resample);
  ASSERT_FALSE(refused2.ok());
  EXPECT_NE(refused2.error().message().find("resampling is turned off"), std::string::npos);
}

TEST(DicomSynthetic, LargeGapIsRefused) {
  TempDir dir("biggap");
  SeriesSpec spec;
  spec.slices = 10;
  auto slices = axial_series(spec);
  slices.erase(slices.begin() + 3, slices.begin() + 7);  // 4 missing
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("gap of 4 missing slice(s)"), std::string::npos) << r.error().message();
}

TEST(DicomSynthetic, NonUniformSpacingIsResampledOntoTheMedianStep) {
  TempDir dir("nonuniform");
  SeriesSpec spec;
  spec.slices = 7;
  auto slices = axial_series(spec);
  // Steps 2, 2, 2, 3, 1, 2 mm; pixels follow position (100 HU per 2 mm).
  const double z[] = {0, 2, 4, 6, 9, 10, 12};
  for (int i = 0; i < 7; ++i) {
    slices[static_cast<size_t>(i)].position[2] = z[i];
    for (int r = 0; r < spec.rows; ++r) {
      for (int c = 0; c < spec.columns; ++c) {
        slices[static_cast<size_t>(i)].pixels[static_cast<size_t>(r * spec.columns + c)] =
            static_cast<uint16_t>(1000 + 50 * z[i] + 10 * r + c);
      }
    }
  }
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  ASSERT_EQ(v.nz(), 7);  // 12 mm / median step 2 mm + 1
  EXPECT_NEAR(v.spacing[2], 2.0, 1e-9);
  for (int k = 0; k < 7; ++k) {
    const double zz = k * 2.0;
    EXPECT_NEAR(v.at(2, 3, k), 1000 + 50 * zz + 32 - 1024, 1e-3) << k;
  }
  EXPECT_TRUE(has_warning(*r, "non-uniform slice spacing")) << all_warnings(*r);
  LoadOptions no_resample;
  no_resample.resample_spacing = false;
  auto refused = load(dir.path(), no_resample);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("non-uniform slice spacing"), std::string::npos);
}

TEST(DicomSynthetic, GantryTiltIsResampledOntoAnOrthogonalGridOrRefused) {
  TempDir dir("tilt");
  const int rows = 16, cols = 12, n = 6;
  const double step = 2.0, tilt_deg = 20.0;
  const double shift = step * std::tan(tilt_deg * M_PI / 180.0);  // mm along y per slice
  const double sy = 0.75;                                         // PixelSpacing[0], the writer's default
  std::vector<SliceSpec> slices;
  const std::string uid = new_uid();
  // World-linear content: HU = 2*y_world + 5*z_world (+1024 stored offset).
  auto world_hu = [](double y, double z) { return 2.0 * y + 5.0 * z; };
  for (int k = 0; k < n; ++k) {
    SliceSpec s;
    s.series_uid = uid;
    s.rows = rows;
    s.columns = cols;
    s.position = {0, k * shift, k * step};
    s.gantry_tilt = tilt_deg;
    s.instance_number = k + 1;
    s.pixels.resize(static_cast<size_t>(rows * cols));
    for (int j = 0; j < rows; ++j) {
      for (int i = 0; i < cols; ++i) {
        const double y = s.position[1] + j * sy, z = s.position[2];
        s.pixels[static_cast<size_t>(j * cols + i)] =
            static_cast<uint16_t>(std::lround(world_hu(y, z) * 4 + 1024));
      }
    }
    s.slope = 0.25;
    s.intercept = -256.0;
    slices.push_back(std::move(s));
  }
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  ASSERT_EQ(v.nz(), n);
  EXPECT_NEAR(v.spacing[2], step, 1e-9);
  // The grid is orthogonal: z axis along the normal, not along the tilted stack.
  EXPECT_NEAR(v.direction[8], 1.0, 1e-12);
  EXPECT_TRUE(has_warning(*r, "gantry tilt 20.0 deg")) << all_warnings(*r);
  // Interior voxels hold the world function at their own world position.
  int checked = 0;
  for (int k = 0; k < n; ++k) {
    for (int j = 0; j < rows; ++j) {
      const Vec3 w = v.world_from_voxel({3, static_cast<double>(j), static_cast<double>(k)});
      // Inside the field of view of slice k (shifted by k*shift)?
      const double jj = (w[1] - k * shift) / sy;
      if (jj < 0 || jj > rows - 1) {
        EXPECT_FLOAT_EQ(v.at(3, j, k), -1024.0f);  // outside: air
        continue;
      }
      // Stored values are quantised to 0.25 HU (slope), hence half a step.
      EXPECT_NEAR(v.at(3, j, k), world_hu(w[1], w[2]), 0.125 + 1e-4) << "k " << k << " j " << j;
      ++checked;
    }
  }
  EXPECT_GT(checked, n * rows / 2);

  LoadOptions refuse;
  refuse.resample_tilt = false;
  auto refused = load(dir.path(), refuse);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(refused.error().message().find("gantry tilt of 20.0 deg"), std::string::npos)
      << refused.error().message();
}

TEST(DicomSynthetic, Monochrome1KeepsModalityValuesButInvertsImagesWithoutRescale) {
  TempDir dir("mono1");
  SeriesSpec spec;
  spec.slices = 2;
  auto ct = axial_series(spec);
  for (auto& s : ct) s.photometric = "MONOCHROME1";
  ASSERT_EQ(write_series(dir / "ct", ct), "");
  auto r = load(dir / "ct");
  ASSERT_TRUE(r.ok()) << r.error().message();
  expect_pattern(r->volume, 1, 1);  // HU are the rescaled stored values
  EXPECT_TRUE(has_warning(*r, "MONOCHROME1")) << all_warnings(*r);

  spec.modality = "OT";
  auto ot = axial_series(spec);
  for (auto& s : ot) {
    s.photometric = "MONOCHROME1";
    s.sop_class = UID_SecondaryCaptureImageStorage;
    s.slope.reset();
    s.intercept.reset();
    s.bits_stored = 12;
    s.high_bit = 11;
    s.pixel_representation = 0;
  }
  ASSERT_EQ(write_series(dir / "ot", ot), "");
  auto inv = load(dir / "ot");
  ASSERT_TRUE(inv.ok()) << inv.error().message();
  EXPECT_FLOAT_EQ(inv->volume.at(2, 3, 1), 4095.0f - (1000 + 100 + 30 + 2));
  EXPECT_TRUE(has_warning(*inv, "inverted")) << all_warnings(*inv);
}

TEST(DicomSynthetic, BitsStoredMasksJunkInTheHighBitsAndSignExtends) {
  TempDir dir("bits");
  SeriesSpec spec;
  spec.slices = 2;
  auto unsigned12 = axial_series(spec);
  for (auto& s : unsigned12) {
    s.bits_stored = 12;
    s.high_bit = 11;
    s.pixel_representation = 0;
    for (auto& p : s.pixels) p = static_cast<uint16_t>(p | 0xA000);  // junk overlay bits
  }
  ASSERT_EQ(write_series(dir / "u12", unsigned12), "");
  auto u = load(dir / "u12");
  ASSERT_TRUE(u.ok()) << u.error().message();
  expect_pattern(u->volume, 0, 0);
  expect_pattern(u->volume, 1, 1);

  auto signed12 = axial_series(spec);
  for (auto& s : signed12) {
    s.bits_stored = 12;
    s.high_bit = 11;
    s.pixel_representation = 1;
    s.intercept = 0.0;
    for (size_t i = 0; i < s.pixels.size(); ++i) {
      const int value = -1500 + static_cast<int>(i);  // negative stored values
      s.pixels[i] = static_cast<uint16_t>((value & 0x0fff) | 0x5000);
    }
  }
  ASSERT_EQ(write_series(dir / "s12", signed12), "");
  auto sg = load(dir / "s12");
  ASSERT_TRUE(sg.ok()) << sg.error().message();
  EXPECT_FLOAT_EQ(sg->volume.at(0, 0, 0), -1500.0f);
  EXPECT_FLOAT_EQ(sg->volume.at(5, 7, 0), -1500.0f + 7 * 6 + 5);

  // HighBit above BitsStored - 1: the value sits higher in the word.
  auto shifted = axial_series(spec);
  for (auto& s : shifted) {
    s.bits_stored = 12;
    s.high_bit = 14;
    s.pixel_representation = 0;
    for (auto& p : s.pixels) p = static_cast<uint16_t>((p << 3) | 0x8005);
  }
  ASSERT_EQ(write_series(dir / "shift", shifted), "");
  auto sh = load(dir / "shift");
  ASSERT_TRUE(sh.ok()) << sh.error().message();
  expect_pattern(sh->volume, 1, 1);
}

TEST(DicomSynthetic, SignedPixelsAndPerSliceRescale) {
  TempDir dir("rescale");
  SeriesSpec spec;
  spec.slices = 3;
  auto slices = axial_series(spec);
  const double slopes[] = {1.0, 0.5, 2.0}, intercepts[] = {-1024, 0, -3000};
  for (size_t i = 0; i < 3; ++i) {
    slices[i].slope = slopes[i];
    slices[i].intercept = intercepts[i];
    for (auto& p : slices[i].pixels) p = static_cast<uint16_t>(static_cast<int16_t>(-static_cast<int>(p)));
  }
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  for (int z = 0; z < 3; ++z) {
    const double stored = -(1000 + 100 * z + 10 * 4 + 3);
    EXPECT_FLOAT_EQ(r->volume.at(3, 4, z), static_cast<float>(stored * slopes[z] + intercepts[z])) << z;
  }
}

TEST(DicomSynthetic, PixelPaddingBecomesAirInStoredValueSpace) {
  TempDir dir("padding");
  SeriesSpec spec;
  spec.slices = 2;
  auto single = axial_series(spec);
  for (auto& s : single) {
    s.padding = -2000;
    s.pixels[0] = static_cast<uint16_t>(static_cast<int16_t>(-2000));
    s.pixels[1] = static_cast<uint16_t>(static_cast<int16_t>(-1999));  // not padding
  }
  ASSERT_EQ(write_series(dir / "single", single), "");
  auto r = load(dir / "single");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FLOAT_EQ(r->volume.at(0, 0, 0), -1024.0f);
  EXPECT_FLOAT_EQ(r->volume.at(1, 0, 0), -1999.0f - 1024.0f);
  EXPECT_TRUE(has_warning(*r, "PixelPaddingValue")) << all_warnings(*r);

  auto range = axial_series(spec);
  for (auto& s : range) {
    s.pixel_representation = 0;
    s.intercept = -1000.0;
    s.padding = 4095;
    s.padding_limit = 4000;
    s.pixels[0] = 4050;  // inside [4000, 4095]
    s.pixels[1] = 3999;
  }
  ASSERT_EQ(write_series(dir / "range", range), "");
  auto rr = load(dir / "range");
  ASSERT_TRUE(rr.ok()) << rr.error().message();
  EXPECT_FLOAT_EQ(rr->volume.at(0, 0, 1), -1024.0f);
  EXPECT_FLOAT_EQ(rr->volume.at(1, 0, 1), 2999.0f);
}

TEST(DicomSynthetic, MixedSeriesPickTheLargestCtUnlessAsked) {
  TempDir dir("mixed");
  SeriesSpec a, b, mr;
  a.slices = 6;
  b.slices = 4;
  mr.slices = 9;
  mr.modality = "MR";
  ASSERT_EQ(write_series(dir / "a", axial_series(a)), "");
  ASSERT_EQ(write_series(dir / "b", axial_series(b)), "");
  ASSERT_EQ(write_series(dir / "mr", axial_series(mr)), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->info.series_instance_uid, a.series_uid);
  EXPECT_EQ(r->volume.nz(), 6);
  EXPECT_NE(r->selection_note.find("the CT series with the most slices"), std::string::npos)
      << r->selection_note;

  LoadOptions pick;
  pick.series_uid = b.series_uid;
  auto rb = load(dir.path(), pick);
  ASSERT_TRUE(rb.ok()) << rb.error().message();
  EXPECT_EQ(rb->volume.nz(), 4);
  pick.series_uid = mr.series_uid;
  auto rm = load(dir.path(), pick);
  ASSERT_TRUE(rm.ok()) << rm.error().message();
  EXPECT_EQ(rm->volume.nz(), 9);
  EXPECT_FLOAT_EQ(rm->volume.at(0, 0, 0), 1000.0f - 1024.0f);

  pick.series_uid = "1.2.3.4.404";
  auto missing = load(dir.path(), pick);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(missing.error().message().find("no series 1.2.3.4.404"), std::string::npos)
      << missing.error().message();
  EXPECT_NE(missing.error().message().find(a.series_uid), std::string::npos);  // lists what is there

  NullProgress progress;
  auto inv = scan_dicom({dir.path()}, progress);
  ASSERT_TRUE(inv.ok());
  ASSERT_EQ(inv->series.size(), 3u);
  for (const auto& s : inv->series) EXPECT_EQ(s.is_default, s.series_uid == a.series_uid);
}

TEST(DicomSynthetic, LocalizersAndScoutsAreNotLoaded) {
  TempDir dir("localizer");
  SeriesSpec spec;
  spec.slices = 10;
  auto slices = axial_series(spec);
  // A LOCALIZER image in the same series and two coronal scouts without the flag.
  SliceSpec loc = slices[0];
  loc.sop_uid.clear();
  loc.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
  loc.orientation = {0, 1, 0, 0, 0, -1};
  slices.push_back(loc);
  for (int i = 0; i < 2; ++i) {
    SliceSpec scout = slices[0];
    scout.sop_uid.clear();
    scout.orientation = {1, 0, 0, 0, 0, -1};
    scout.position = {0, static_cast<double>(i), 0};
    slices.push_back(scout);
  }
  // A separate localizer series with more images than the CT.
  SeriesSpec lspec;
  lspec.slices = 12;
  auto lslices = axial_series(lspec);
  for (auto& s : lslices) s.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
  ASSERT_EQ(write_series(dir / "ct", slices), "");
  ASSERT_EQ(write_series(dir / "loc", lslices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->info.series_instance_uid, spec.series_uid);
  EXPECT_EQ(r->volume.nz(), 10);
  for (int z = 0; z < 10; ++z) expect_pattern(r->volume, z, z);

  NullProgress progress;
  auto inv = scan_dicom({dir.path()}, progress);
  ASSERT_TRUE(inv.ok());
  int localizers = 0;
  bool scout_seen = false;
  for (const auto& s : inv->series) {
    localizers += s.is_localizer;
    for (const auto& w : s.warnings) scout_seen |= w.find("scout: 2 slice(s)") != std::string::npos;
  }
  EXPECT_EQ(localizers, 3);  // the in-series localizer, the coronal scouts, the localizer series
  EXPECT_TRUE(scout_seen);
}

TEST(DicomSynthetic, ConflictingOrientationsInOneSeriesAreRefusedUnlessAStackIsChosen) {
  TempDir dir("conflict");
  SeriesSpec spec;
  spec.slices = 5;
  auto slices = axial_series(spec);
  for (int i = 0; i < 5; ++i) {
    SliceSpec cor = slices[static_cast<size_t>(i)];
    cor.sop_uid.clear();
    cor.orientation = {1, 0, 0, 0, 0, -1};
    cor.position = {0, 2.0 * i, 0};
    slices.push_back(cor);
  }
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("different orientation"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find(spec.series_uid), std::string::npos);
  LoadOptions pick;
  pick.series_uid = spec.series_uid + "#1";
  auto one = load(dir.path(), pick);
  ASSERT_TRUE(one.ok()) << one.error().message();
  EXPECT_EQ(one->volume.nz(), 5);
}

TEST(DicomSynthetic, TwoAcquisitionsAtTheSamePositionsSplitIntoStacks) {
  TempDir dir("acq");
  SeriesSpec spec;
  spec.slices = 5;
  auto first = axial_series(spec);
  auto second = axial_series(spec);
  for (auto& s : first) s.acquisition_number = 1;
  for (auto& s : second) {
    s.acquisition_number = 2;
    s.sop_uid.clear();
    for (auto& p : s.pixels) p = static_cast<uint16_t>(p + 500);
  }
  first.insert(first.end(), second.begin(), second.end());
  ASSERT_EQ(write_series(dir.path(), first), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->volume.nz(), 5);
  LoadOptions pick;
  pick.series_uid = spec.series_uid + "#1";
  auto other = load(dir.path(), pick);
  ASSERT_TRUE(other.ok()) << other.error().message();
  EXPECT_EQ(other->volume.nz(), 5);
  EXPECT_FLOAT_EQ(std::fabs(other->volume.at(0, 0, 0) - r->volume.at(0, 0, 0)), 500.0f);
}

TEST(DicomSynthetic, AcquisitionNumbersAloneDoNotSplitAStack) {
  TempDir dir("acqcontig");
  SeriesSpec spec;
  spec.slices = 6;
  auto slices = axial_series(spec);
  for (size_t i = 0; i < slices.size(); ++i) slices[i].acquisition_number = i < 3 ? 1 : 2;
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->volume.nz(), 6);
}

TEST(DicomSynthetic, EnhancedMultiFrameCtUsesPerFrameFunctionalGroups) {
  TempDir dir("enhanced");
  const int rows = 8, cols = 6;
  std::vector<EnhancedFrame> frames;
  const int order[] = {3, 0, 4, 1, 2};  // frames stored out of position order
  for (int f = 0; f < 5; ++f) {
    EnhancedFrame fr;
    fr.position = {-5, -5, 10.0 + 1.5 * order[f]};
    fr.pixels = pattern(rows, cols, order[f]);
    if (order[f] == 2) fr.rescale = std::array<double, 2>{2.0, -2048.0};  // per-frame override
    frames.push_back(fr);
  }
  const std::string uid = new_uid();
  ASSERT_EQ(write_enhanced_ct(dir / "enhanced.dcm", uid, rows, cols, frames, 1.0, -1024.0), "");
  auto r = load(dir / "enhanced.dcm");
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  ASSERT_EQ(v.nz(), 5);
  EXPECT_DOUBLE_EQ(v.spacing[2], 1.5);
  EXPECT_DOUBLE_EQ(v.origin[2], 10.0);
  for (int z : {0, 1, 3, 4}) expect_pattern(v, z, z);
  EXPECT_FLOAT_EQ(v.at(1, 1, 2), static_cast<float>((1000 + 200 + 11) * 2.0 - 2048.0));
  EXPECT_EQ(r->info.sop_class_uids.front(), UID_EnhancedCTImageStorage);
}

TEST(DicomSynthetic, DicomdirFollowsItsRecords) {
  TempDir dir("dicomdir");
  SeriesSpec spec;
  spec.slices = 4;
  ASSERT_EQ(write_series(dir / "SER1", axial_series(spec)), "");
  std::vector<std::string> files;
  for (int i = 0; i < 4; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "SER1/IM%04d", i);
    files.push_back(name);
  }
  ASSERT_EQ(write_dicomdir(dir.path(), files), "");
  // A series not referenced by the DICOMDIR sits beside it and must be ignored.
  SeriesSpec stray;
  stray.slices = 9;
  ASSERT_EQ(write_series(dir / "STRAY", axial_series(stray)), "");
  auto r = load(dir / "DICOMDIR");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->info.series_instance_uid, spec.series_uid);
  EXPECT_EQ(r->volume.nz(), 4);
  for (int z = 0; z < 4; ++z) expect_pattern(r->volume, z, z);
}

// Every syntax DCMTK can encode must decode to the same values as the plain file.
struct SyntaxCase {
  const char* name;
  E_TransferSyntax xfer;
  double tolerance;  // lossy codecs
  int bits_stored;
  int near = 0;
};

class TransferSyntax : public ::testing::TestWithParam<SyntaxCase> {};

TEST_P(TransferSyntax, DecodesLikeTheUncompressedSeries) {
  const SyntaxCase& c = GetParam();
  TempDir dir("xfer");
  SeriesSpec spec;
  spec.slices = 3;
  spec.rows = 32;
  spec.columns = 24;
  auto plain = axial_series(spec);
  std::mt19937 rng(5);
  for (auto& s : plain) {
    s.bits_stored = c.bits_stored;
    s.high_bit = c.bits_stored - 1;
    s.pixel_representation = c.bits_stored == 16 ? 1 : 0;
    if (c.bits_stored == 8) {
      s.bits_allocated = 8;
      s.intercept = 0.0;
    }
    const int max = (1 << (c.bits_stored == 16 ? 12 : c.bits_stored)) - 1;
    std::uniform_int_distribution<int> noise(-3, 3);
    for (size_t i = 0; i < s.pixels.size(); ++i) {
      // Smooth content plus a little noise: realistic for lossy codecs.
      const int value = static_cast<int>(i % 24) * 9 + static_cast<int>(i / 24) * 5 + 40 + noise(rng);
      s.pixels[i] = static_cast<uint16_t>(std::clamp(value, 0, max));
    }
  }
  auto coded = plain;
  for (auto& s : coded) {
    s.xfer = c.xfer;
    s.near_lossless = c.near;
  }
  ASSERT_EQ(write_series(dir / "plain", plain), "");
  ASSERT_EQ(write_series(dir / "coded", coded), "");
  auto a = load(dir / "plain");
  auto b = load(dir / "coded");
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << c.name << ": " << b.error().message();
  ASSERT_EQ(a->volume.hu.numel(), b->volume.hu.numel());
  double worst = 0;
  for (int64_t i = 0; i < a->volume.hu.numel(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(a->volume.data()[i] - b->volume.data()[i])));
  }
  EXPECT_LE(worst, c.tolerance) << c.name;
  EXPECT_NE(b->transfer_syntax, a->transfer_syntax);
}

INSTANTIATE_TEST_SUITE_P(Dcmtk, TransferSyntax,
                         ::testing::Values(SyntaxCase{"ImplicitLittle", EXS_LittleEndianImplicit, 0, 16},
                                           SyntaxCase{"ExplicitBig", EXS_BigEndianExplicit, 0, 16},
                                           SyntaxCase{"Deflated", EXS_DeflatedLittleEndianExplicit, 0, 16},
                                           SyntaxCase{"Rle", EXS_RLELossless, 0, 16},
                                           SyntaxCase{"JpegLosslessSV1", EXS_JPEGProcess14SV1, 0, 12},
                                           SyntaxCase{"JpegLossless14", EXS_JPEGProcess14, 0, 12},
                                           SyntaxCase{"JpegLsLossless", EXS_JPEGLSLossless, 0, 16},
                                           SyntaxCase{"JpegLsNearLossless", EXS_JPEGLSLossy, 2, 12, 2},
                                           SyntaxCase{"JpegBaseline", EXS_JPEGProcess1, 12, 8},
                                           SyntaxCase{"JpegExtended12", EXS_JPEGProcess2_4, 12, 12}),
                         [](const ::testing::TestParamInfo<SyntaxCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(DicomSynthetic, ThreadCountDoesNotChangeTheResult) {
  TempDir dir("threads");
  SeriesSpec spec;
  spec.slices = 17;
  ASSERT_EQ(write_series(dir.path(), axial_series(spec)), "");
  LoadOptions one, four;
  one.threads = 1;
  four.threads = 4;
  auto a = load(dir.path(), one);
  auto b = load(dir.path(), four);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->volume.hu.nbytes(), b->volume.hu.nbytes());
  EXPECT_EQ(std::memcmp(a->volume.data(), b->volume.data(), a->volume.hu.nbytes()), 0);
}

// Collects what a VolumeWriter receives (write() may run on several threads).
class RecordingWriter final : public VolumeWriter {
 public:
  Status begin(const Volume& geometry, const Shape& shape) override {
    EXPECT_FALSE(begun_);
    begun_ = true;
    shape_ = shape;
    spacing_ = geometry.spacing;
    data_.assign(static_cast<size_t>(shape_numel(shape)), std::nanf(""));
    writes_.assign(static_cast<size_t>(shape[0]), 0);
    return fail_ ? internal_error("disk full") : Status::Ok();
  }
  Status write(int64_t z, const float* slice) override {
    EXPECT_TRUE(begun_);
    const size_t plane = static_cast<size_t>(shape_[1] * shape_[2]);
    std::lock_guard<std::mutex> lock(mu_);
    std::copy(slice, slice + plane, data_.begin() + static_cast<std::ptrdiff_t>(z * plane));
    ++writes_[static_cast<size_t>(z)];
    return Status::Ok();
  }
  bool fail_ = false;
  bool begun_ = false;
  Shape shape_;
  Vec3 spacing_{};
  std::vector<float> data_;
  std::vector<int> writes_;
  std::mutex mu_;
};

TEST(DicomSynthetic, VolumeWriterReceivesEverySliceOnce) {
  TempDir dir("writer");
  SeriesSpec spec;
  spec.slices = 23;
  auto slices = axial_series(spec);
  std::mt19937 rng(9);
  std::shuffle(slices.begin(), slices.end(), rng);
  ASSERT_EQ(write_series(dir / "uniform", slices), "");
  for (int threads : {1, 3}) {
    RecordingWriter writer;
    LoadOptions options;
    options.threads = threads;
    options.writer = &writer;
    auto r = load(dir / "uniform", options);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->volume.hu.defined());  // the writer took the slices
    EXPECT_DOUBLE_EQ(r->volume.spacing[2], 2.5);
    ASSERT_EQ(writer.shape_, (Shape{23, spec.rows, spec.columns}));
    EXPECT_DOUBLE_EQ(writer.spacing_[2], 2.5);
    for (int z = 0; z < 23; ++z) {
      EXPECT_EQ(writer.writes_[static_cast<size_t>(z)], 1) << z;
      EXPECT_FLOAT_EQ(writer.data_[static_cast<size_t>((z * spec.rows + 2) * spec.columns + 1)],
                      pattern_hu(2, 1, z));
    }
  }
  // A resampled stack reaches the writer after resampling (same values as in memory).
  slices.erase(slices.begin() + 3);
  ASSERT_EQ(write_series(dir / "gap", slices), "");
  RecordingWriter writer;
  LoadOptions options;
  options.writer = &writer;
  auto r = load(dir / "gap", options);
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto in_memory = load(dir / "gap");
  ASSERT_TRUE(in_memory.ok());
  ASSERT_EQ(writer.shape_, in_memory->volume.hu.shape());
  EXPECT_EQ(std::memcmp(writer.data_.data(), in_memory->volume.data(), in_memory->volume.hu.nbytes()), 0);
  // A failing writer stops the load with its error.
  RecordingWriter failing;
  failing.fail_ = true;
  options.writer = &failing;
  auto failed = load(dir / "uniform", options);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), "disk full");
}

TEST(DicomSynthetic, VolumeWriterGetsEveryFrameOfAnEnhancedCt) {
  TempDir dir("writer-enhanced");
  std::vector<EnhancedFrame> frames;
  for (int f = 0; f < 7; ++f) {
    EnhancedFrame fr;
    fr.position = {0, 0, 3.0 * ((f * 3) % 7)};  // stored out of order
    fr.pixels = pattern(8, 6, (f * 3) % 7);
    frames.push_back(fr);
  }
  ASSERT_EQ(write_enhanced_ct(dir / "mf.dcm", new_uid(), 8, 6, frames, 1.0, -1024.0), "");
  RecordingWriter writer;
  LoadOptions options;
  options.writer = &writer;
  options.threads = 2;
  auto r = load(dir / "mf.dcm", options);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(writer.shape_, (Shape{7, 8, 6}));
  for (int z = 0; z < 7; ++z) {
    EXPECT_EQ(writer.writes_[static_cast<size_t>(z)], 1);
    EXPECT_FLOAT_EQ(writer.data_[static_cast<size_t>((z * 8 + 4) * 6 + 5)], pattern_hu(4, 5, z)) << z;
  }
}

TEST(DicomSynthetic, CancellationStopsTheLoad) {
  TempDir dir("cancel");
  SeriesSpec spec;
  spec.slices = 8;
  ASSERT_EQ(write_series(dir.path(), axial_series(spec)), "");
  CancellableProgress progress;
  progress.cancel();
  auto r = load_dicom_volume({dir.path()}, {}, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kCancelled);
}

// ---- bad input -------------------------------------------------------------

TEST(DicomBadInput, NonDicomFilesInAFolderAreSkippedAndCounted) {
  TempDir dir("nondicom");
  SeriesSpec spec;
  ASSERT_EQ(write_series(dir.path(), axial_series(spec)), "");
  write_text(dir / "notes.txt", "referral: cough\n");
  write_text(dir / ".DS_Store", std::string(300, '\0'));
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(has_warning(*r, "skipped 2 non-DICOM file(s)")) << all_warnings(*r);
}

TEST(DicomBadInput, ExplicitNonDicomFileIsAnError) {
  TempDir dir("explicit");
  write_text(dir / "report.txt", "not an image");
  auto r = load(dir / "report.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("report.txt"), std::string::npos);
  EXPECT_NE(r.error().message().find("not a DICOM file"), std::string::npos);
}

TEST(DicomBadInput, EmptyFolderAndMissingPath) {
  TempDir dir("empty");
  auto r = load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("no DICOM images found"), std::string::npos) << r.error().message();
  auto m = load(dir / "nope");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("no such file or folder"), std::string::npos);
}

TEST(DicomBadInput, TruncatedFilesAreErrorsNamingTheFile) {
  TempDir dir("truncated");
  SeriesSpec spec;
  spec.rows = 64;
  spec.columns = 64;
  ASSERT_EQ(write_series(dir / "ok", axial_series(spec)), "");
  for (double keep : {0.1, 0.6, 0.99}) {
    const fs::path cut = dir / ("cut" + std::to_string(static_cast<int>(keep * 100)) + ".dcm");
    truncate_copy(dir / "ok" / "IM0002", cut, keep);
    auto r = load(cut);
    ASSERT_FALSE(r.ok()) << keep;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput) << r.error().message();
    EXPECT_NE(r.error().message().find(cut.filename().string()), std::string::npos) << r.error().message();
    expect_no_phi(r.error().message());
  }
  // Inside a folder: the series has a broken slice; the load fails naming it or
  // reports it skipped, never silently builds a volume with a hole.
  fs::remove(dir / "ok" / "IM0002");
  truncate_copy(dir / "cut60.dcm", dir / "ok" / "IM0002", 1.0);
  auto f = load(dir / "ok");
  if (f.ok()) {
    EXPECT_TRUE(has_warning(*f, "unreadable DICOM")) << all_warnings(*f);
    EXPECT_TRUE(has_warning(*f, "gap: 1 slice(s) missing")) << all_warnings(*f);
  } else {
    EXPECT_NE(f.error().message().find("IM0002"), std::string::npos) << f.error().message();
  }
}

TEST(DicomBadInput, MissingPixelData) {
  TempDir dir("nopixels");
  SeriesSpec spec;
  auto slices = axial_series(spec);
  slices[0].pixel_data = false;
  ASSERT_EQ(write_slice(dir / "empty.dcm", slices[0]), "");
  auto r = load(dir / "empty.dcm");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("empty.dcm: no PixelData"), std::string::npos) << r.error().message();
}

TEST(DicomBadInput, HeaderPromisingAHugeImageIsRefusedBeforeAllocating) {
  TempDir dir("huge");
  SeriesSpec spec;
  auto slices = axial_series(spec);
  slices[0].rows = 60000;
  slices[0].columns = 60000;  // 14 GB of float32, with 96 bytes of pixel data
  ASSERT_EQ(write_slice(dir / "huge.dcm", slices[0]), "");
  auto r = load(dir / "huge.dcm");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("huge.dcm: PixelData holds 96 bytes"), std::string::npos)
      << r.error().message();
}

TEST(DicomBadInput, ZeroOrNegativePixelSpacing) {
  for (double bad : {0.0, -0.7}) {
    TempDir dir("spacing");
    SeriesSpec spec;
    auto slices = axial_series(spec);
    for (auto& s : slices) s.pixel_spacing = std::array<double, 2>{bad, 0.7};
    ASSERT_EQ(write_series(dir.path(), slices), "");
    auto r = load(dir.path());
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find("is not positive"), std::string::npos) << r.error().message();
  }
}

TEST(DicomBadInput, AllSlicesAtOnePositionWithDifferentPixelsIsRefused) {
  TempDir dir("zerostep");
  SeriesSpec spec;
  spec.step = 0;  // zero slice spacing
  ASSERT_EQ(write_series(dir.path(), axial_series(spec)), "");
  auto r = load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("same position"), std::string::npos) << r.error().message();
}

TEST(DicomBadInput, DegenerateOrientationIsRefused) {
  TempDir dir("iop");
  SeriesSpec spec;
  auto slices = axial_series(spec);
  for (auto& s : slices) s.orientation = {1, 0, 0, 1, 0, 0};
  ASSERT_EQ(write_series(dir.path(), slices), "");
  auto r = load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("not two orthogonal unit vectors"), std::string::npos)
      << r.error().message();
}

TEST(DicomBadInput, MessagesAndWarningsCarryNoPatientIdentifiers) {
  TempDir dir("phi");
  SeriesSpec spec;
  auto slices = axial_series(spec);
  slices.erase(slices.begin() + 2);
  ASSERT_EQ(write_series(dir.path(), slices), "");
  write_text(dir / "junk.bin", "junk");
  auto r = load(dir.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->info.patient.id, kSecretId);
  expect_no_phi(all_warnings(*r) + r->selection_note);
  NullProgress progress;
  auto inv = scan_dicom({dir.path()}, progress);
  ASSERT_TRUE(inv.ok());
  for (const auto& s : inv->series) {
    std::string text = s.description + s.problem + s.image_type;
    for (const auto& w : s.warnings) text += w;
    expect_no_phi(text);
  }
}

}  // namespace
}  // namespace hilum
