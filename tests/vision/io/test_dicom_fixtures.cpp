// Real DICOM fixtures: the test files Debian's python3-pydicom ships, decoded
// by Hilum and compared with tests/golden/dicom_expected.json, which
// tests/golden/dicom_expected.py computes with pydicom (+ GDCM for compressed
// files, cross-checked against uncompressed twins).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vision/io/dicom.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

fs::path pydicom_files() {
  if (const char* env = std::getenv("HILUM_PYDICOM_TEST_FILES")) return env;
  return "/usr/lib/python3/dist-packages/pydicom/data/test_files";
}

// The golden file, or an empty object when it cannot be read (the tests then
// fail on its missing entries; the test names, made before any test runs, fall
// back to numbers instead of aborting the whole binary).
const nlohmann::json& expected() {
  static const nlohmann::json j = [] {
    std::ifstream in(fs::path(HILUM_SOURCE_DIR) / "tests/golden/dicom_expected.json");
    nlohmann::json parsed = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    return parsed.is_discarded() ? nlohmann::json::object() : parsed;
  }();
  return j;
}

#define SKIP_WITHOUT_PYDICOM()                                                            \
  if (!fs::exists(pydicom_files() / "CT_small.dcm")) {                                    \
    GTEST_SKIP() << "pydicom test files not installed (apt-get install python3-pydicom)"; \
  }

Result<LoadedStudy> load(const fs::path& p, LoadOptions options = {}) {
  NullProgress progress;
  return load_dicom_volume({p}, options, progress);
}

class PydicomFile : public ::testing::TestWithParam<size_t> {};

TEST_P(PydicomFile, ModalityValuesAndGeometryMatchPydicom) {
  SKIP_WITHOUT_PYDICOM();
  ASSERT_TRUE(expected().contains("files")) << "tests/golden/dicom_expected.json unreadable";
  const auto& e = expected()["files"][GetParam()];
  const std::string name = e["file"];
  SCOPED_TRACE(name);
  auto r = load(pydicom_files() / name);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  ASSERT_EQ(v.nz(), 1);
  ASSERT_EQ(v.ny(), e["rows"].get<int>());
  ASSERT_EQ(v.nx(), e["columns"].get<int>());
  const double tol = e["tolerance"].get<double>();
  // Lossless: the same float32 values (sums to float rounding). Lossy: two
  // decoders may round the inverse transform differently by `tol` per pixel.
  const double value_tol = tol == 0 ? 1e-3 : tol;
  double mn = 1e30, mx = -1e30, sum = 0;
  const size_t n = static_cast<size_t>(v.hu.numel());
  for (size_t i = 0; i < n; ++i) {
    const double x = v.data()[i];
    mn = std::min(mn, x);
    mx = std::max(mx, x);
    sum += x;
  }
  EXPECT_NEAR(mn, e["min"].get<double>(), value_tol);
  EXPECT_NEAR(mx, e["max"].get<double>(), value_tol);
  EXPECT_NEAR(sum / n, e["mean"].get<double>(),
              tol == 0 ? 1e-6 * std::fabs(e["mean"].get<double>()) + 1e-6 : tol);
  if (tol == 0) {
    EXPECT_NEAR(sum, e["sum"].get<double>(), 1e-6 * std::fabs(e["sum"].get<double>()) + 1e-3);
  }
  for (const auto& s : e["samples"]) {
    const int row = s[0], col = s[1];
    EXPECT_NEAR(v.at(col, row, 0), s[2].get<double>(), value_tol) << "pixel row " << row << " column " << col;
  }
  if (e.contains("position")) {
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(v.origin[a], e["position"][a].get<double>(), 1e-9);
  }
  if (e.contains("pixel_spacing")) {
    EXPECT_NEAR(v.spacing[0], e["pixel_spacing"][1].get<double>(), 1e-9);  // columns
    EXPECT_NEAR(v.spacing[1], e["pixel_spacing"][0].get<double>(), 1e-9);  // rows
  }
  if (e.contains("orientation")) {
    const auto& o = e["orientation"];
    // Row cosines are column x of the direction matrix, column cosines column y.
    for (int a = 0; a < 3; ++a) {
      EXPECT_NEAR(v.direction[a * 3 + 0], o[a].get<double>(), 1e-4);
      EXPECT_NEAR(v.direction[a * 3 + 1], o[3 + a].get<double>(), 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, PydicomFile, ::testing::Range<size_t>(0, 15),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           const nlohmann::json& files = expected().value("files", nlohmann::json::array());
                           if (info.param >= files.size()) return "file" + std::to_string(info.param);
                           std::string name = files[info.param]["file"];
                           std::string out;
                           for (char c : name.substr(0, name.size() - 4))
                             out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return out;
                         });

TEST(PydicomFixtures, GoldenFileListsFifteenFiles) {
  // The parameter range above is fixed; keep it in step with the golden file.
  EXPECT_EQ(expected().value("files", nlohmann::json::array()).size(), 15u) << "tests/golden/dicom_expected.json";
}

class PydicomVolume : public ::testing::TestWithParam<size_t> {};

TEST_P(PydicomVolume, SortedStackMatchesPydicom) {
  SKIP_WITHOUT_PYDICOM();
  ASSERT_TRUE(expected().contains("volumes")) << "tests/golden/dicom_expected.json unreadable";
  const auto& e = expected()["volumes"][GetParam()];
  SCOPED_TRACE(e["input"].get<std::string>());
  auto r = load(pydicom_files() / e["input"].get<std::string>());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Volume& v = r->volume;
  EXPECT_EQ(r->info.series_instance_uid, e["series_uid"].get<std::string>());
  ASSERT_EQ(v.nz(), e["shape"][0].get<int>());
  ASSERT_EQ(v.ny(), e["shape"][1].get<int>());
  ASSERT_EQ(v.nx(), e["shape"][2].get<int>());
  for (int a = 0; a < 3; ++a) {
    EXPECT_NEAR(v.spacing[a], e["spacing"][a].get<double>(), 1e-6);
    EXPECT_NEAR(v.origin[a], e["origin"][a].get<double>(), 1e-6);
  }
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(v.direction[i], e["direction"][i].get<double>(), 1e-9);
  const size_t plane = static_cast<size_t>(v.nx() * v.ny());
  for (int64_t z = 0; z < v.nz(); ++z) {
    double s = 0;
    for (size_t i = 0; i < plane; ++i) s += v.data()[z * plane + i];
    EXPECT_NEAR(s, e["slice_sums"][z].get<double>(), 1e-3) << "slice " << z;
  }
  for (const auto& s : e["samples"]) {
    EXPECT_FLOAT_EQ(v.at(s[2].get<int>(), s[1].get<int>(), s[0].get<int>()), s[3].get<float>());
  }
  EXPECT_FALSE(r->info.patient.id.empty());  // PHI is read into StudyInfo...
  for (const auto& w : r->warnings) EXPECT_EQ(w.find(r->info.patient.id), std::string::npos) << w;  // ...only
}

INSTANTIATE_TEST_SUITE_P(Golden, PydicomVolume, ::testing::Range<size_t>(0, 2));

TEST(PydicomFixtures, DicomdirScanFindsSeriesLocalizersAndGap) {
  SKIP_WITHOUT_PYDICOM();
  NullProgress progress;
  auto inv = scan_dicom({pydicom_files() / "dicomdirtests/DICOMDIR"}, progress);
  ASSERT_TRUE(inv.ok()) << inv.error().message();
  EXPECT_EQ(inv->dicom_images, 31);
  int localizers = 0, defaults = 0;
  bool gap_refused = false;
  for (const auto& s : inv->series) {
    localizers += s.is_localizer;
    defaults += s.is_default;
    if (s.series_uid == "1.3.6.1.4.1.5962.1.1.0.0.0.1196530851.28319.0.2") {
      // 4 slices: one at z=-99.48 and three at 103.02..105.52 with 1.25 mm steps.
      EXPECT_NE(s.problem.find("gap of 161 missing slice"), std::string::npos) << s.problem;
      gap_refused = true;
    }
    if (s.is_default) {
      EXPECT_EQ(s.series_uid, "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6");
    }
  }
  EXPECT_EQ(localizers, 2);  // the two CT scouts (ImageType LOCALIZER)
  EXPECT_EQ(defaults, 1);
  EXPECT_TRUE(gap_refused);
}

TEST(PydicomFixtures, DicomdirVariantsListTheSameFiles) {
  SKIP_WITHOUT_PYDICOM();
  NullProgress progress;
  for (const char* variant : {"DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-reordered"}) {
    auto inv = scan_dicom({pydicom_files() / "dicomdirtests" / variant}, progress);
    ASSERT_TRUE(inv.ok()) << variant << ": " << inv.error().message();
    EXPECT_EQ(inv->dicom_images, 31) << variant;
  }
  auto empty = scan_dicom({pydicom_files() / "dicomdirtests/DICOMDIR-empty.dcm"}, progress);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().kind(), ErrorKind::kBadInput);
}

TEST(PydicomFixtures, TruncatedPixelDataIsAnErrorNamingTheFile) {
  SKIP_WITHOUT_PYDICOM();
  auto r = load(pydicom_files() / "MR_truncated.dcm");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("MR_truncated.dcm"), std::string::npos) << r.error().message();
}

TEST(PydicomFixtures, ColourImagesAreRefusedClearly) {
  SKIP_WITHOUT_PYDICOM();
  for (const char* f :
       {"SC_rgb_rle.dcm", "ExplVR_BigEnd.dcm", "SC_rgb_jpeg_gdcm.dcm", "GDCMJ2K_TextGBR.dcm"}) {
    auto r = load(pydicom_files() / f);
    ASSERT_FALSE(r.ok()) << f;
    EXPECT_EQ(r.error().kind(), ErrorKind::kUnsupported) << f;
    EXPECT_NE(r.error().message().find("colour"), std::string::npos) << r.error().message();
  }
}

TEST(PydicomFixtures, NonImageDicomIsRefused) {
  SKIP_WITHOUT_PYDICOM();
  for (const char* f : {"rtplan.dcm", "test-SR.dcm", "waveform_ecg.dcm"}) {
    auto r = load(pydicom_files() / f);
    ASSERT_FALSE(r.ok()) << f;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find("no PixelData"), std::string::npos) << r.error().message();
  }
}

TEST(PydicomFixtures, JpegLosslessAndJ2kLosslessEqualTheirUncompressedTwin) {
  SKIP_WITHOUT_PYDICOM();
  auto ref = load(pydicom_files() / "MR_small.dcm");
  ASSERT_TRUE(ref.ok());
  for (const char* f : {"MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
                        "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_expb.dcm"}) {
    auto r = load(pydicom_files() / f);
    ASSERT_TRUE(r.ok()) << f << ": " << r.error().message();
    ASSERT_EQ(r->volume.hu.numel(), ref->volume.hu.numel());
    EXPECT_EQ(std::memcmp(r->volume.data(), ref->volume.data(), ref->volume.hu.nbytes()), 0) << f;
  }
}

}  // namespace
}  // namespace hilum
