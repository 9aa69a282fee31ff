// The written phantom study: a valid DICOM CT series (read back with DCMTK,
// checked with dciodvfy), truth.csv and clinical.txt, same bytes for the same
// seed, and no partial output on failure.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "model/file_io.h"
#include "model/npy.h"
#include "vision/io/phantom.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("hilum_test_phantom_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  return d;
}

std::string slurp(const fs::path& p) {
  auto r = read_file(p);
  return r.ok() ? r.value() : std::string();
}

std::vector<fs::path> listing(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir));
  std::sort(out.begin(), out.end());
  return out;
}

class PhantomStudyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PhantomOptions o;
    o.seed = 7;
    o.slices = 24;
    o.nodules = 3;
    NullProgress progress;
    auto r = make_phantom(o, progress);
    ASSERT_TRUE(r.ok()) << r.error().message();
    phantom_ = std::make_unique<Phantom>(std::move(r).value());
    dir_ = fresh_dir("study");
    PhantomWriteOptions w;
    w.labels = true;
    const Status s = write_phantom_study(*phantom_, dir_, progress, w);
    ASSERT_TRUE(s.ok()) << s.error().message();
  }
  static void TearDownTestSuite() {
    phantom_.reset();
    fs::remove_all(dir_.parent_path());
  }
  static fs::path file(int instance) {
    char name[32];
    std::snprintf(name, sizeof name, "IM%05d.dcm", instance);
    return dir_ / "dicom" / name;
  }

  static std::unique_ptr<Phantom> phantom_;
  static fs::path dir_;
};
std::unique_ptr<Phantom> PhantomStudyTest::phantom_;
fs::path PhantomStudyTest::dir_;

TEST_F(PhantomStudyTest, WritesTheSeriesTruthAndNote) {
  std::vector<fs::path> expected = {"clinical.txt", "dicom", "labels.npy", "truth.csv"};
  for (int i = 1; i <= 24; ++i) expected.push_back(fs::relative(file(i), dir_));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listing(dir_), expected);  // nothing else (no staging leftovers)
  EXPECT_EQ(slurp(dir_ / "truth.csv"), phantom_truth_csv(*phantom_));
  EXPECT_EQ(slurp(dir_ / "clinical.txt"), phantom_->clinical_text);
  auto labels = read_npy(dir_ / "labels.npy");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->shape(), phantom_->labels.shape());
  EXPECT_EQ(labels->dtype(), DType::kU8);
}

TEST_F(PhantomStudyTest, DicomGeometryAndPixelsReadBackWithDcmtk) {
  const Volume& v = phantom_->volume;
  const int nz = static_cast<int>(v.nz());
  std::set<std::string> sop_uids;
  for (int instance = 1; instance <= nz; ++instance) {
    SCOPED_TRACE(file(instance).string());
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(file(instance).c_str()).good());
    DcmDataset* ds = ff.getDataset();
    EXPECT_EQ(ds->getOriginalXfer(), EXS_LittleEndianExplicit);
    OFString s;
    ASSERT_TRUE(ds->findAndGetOFString(DCM_SOPClassUID, s).good());
    EXPECT_EQ(s, UID_CTImageStorage);
    ASSERT_TRUE(ds->findAndGetOFString(DCM_SOPInstanceUID, s).good());
    sop_uids.insert(s.c_str());
    ASSERT_TRUE(ds->findAndGetOFString(DCM_Modality, s).good());
    EXPECT_EQ(s, "CT");
    ASSERT_TRUE(ds->findAndGetOFString(DCM_SeriesInstanceUID, s).good());
    EXPECT_EQ(s.c_str(), phantom_->info.series_instance_uid);
    // The k-th slice of the volume from the bottom is instance nz - k.
    const int k = nz - instance;
    ASSERT_TRUE(ds->findAndGetOFString(DCM_SOPInstanceUID, s).good());
    EXPECT_EQ(s.c_str(), phantom_->info.sop_instance_uids[k]);
    Float64 f = 0;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(ds->findAndGetFloat64(DCM_ImagePositionPatient, f, i).good());
      EXPECT_DOUBLE_EQ(f, v.world_from_voxel({0, 0, double(k)})[i]) << "IPP " << i;
    }
    const double iop[6] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(ds->findAndGetFloat64(DCM_ImageOrientationPatient, f, i).good());
      EXPECT_EQ(f, iop[i]);
    }
    ASSERT_TRUE(ds->findAndGetFloat64(DCM_PixelSpacing, f, 0).good());
    EXPECT_DOUBLE_EQ(f, v.spacing[1]);
    ASSERT_TRUE(ds->findAndGetFloat64(DCM_PixelSpacing, f, 1).good());
    EXPECT_DOUBLE_EQ(f, v.spacing[0]);
    ASSERT_TRUE(ds->findAndGetFloat64(DCM_SliceThickness, f).good());
    EXPECT_DOUBLE_EQ(f, v.spacing[2]);
    ASSERT_TRUE(ds->findAndGetFloat64(DCM_RescaleSlope, f).good());
    EXPECT_EQ(f, 1);
    ASSERT_TRUE(ds->findAndGetFloat64(DCM_RescaleIntercept, f).good());
    EXPECT_EQ(f, -1024);
    ASSERT_TRUE(ds->findAndGetFloat64(DCM_WindowCenter, f, 0).good());
    EXPECT_EQ(f, -600);
    ASSERT_TRUE(ds->findAndGetFloat64(DCM_WindowWidth, f, 1).good());
    EXPECT_EQ(f, 350);
    ASSERT_TRUE(ds->findAndGetOFString(DCM_WindowCenterWidthExplanation, s, 1).good());
    EXPECT_EQ(s, "MEDIASTINUM");
    Uint16 rows = 0, cols = 0, bits = 0;
    ASSERT_TRUE(ds->findAndGetUint16(DCM_Rows, rows).good());
    ASSERT_TRUE(ds->findAndGetUint16(DCM_Columns, cols).good());
    ASSERT_TRUE(ds->findAndGetUint16(DCM_BitsStored, bits).good());
    EXPECT_EQ(rows, 512);
    EXPECT_EQ(cols, 512);
    EXPECT_EQ(bits, 12);
    ASSERT_TRUE(ds->findAndGetOFString(DCM_PatientName, s).good());
    EXPECT_EQ(s, "PHANTOM^SEED7");
    ASSERT_TRUE(ds->findAndGetOFString(DCM_PatientIdentityRemoved, s).good());
    EXPECT_EQ(s, "YES");
    // Stored pixels decode to the volume's HU exactly.
    if (instance == 1 || instance == nz / 2 || instance == nz) {
      const Uint16* px = nullptr;
      unsigned long count = 0;
      ASSERT_TRUE(ds->findAndGetUint16Array(DCM_PixelData, px, &count).good());
      ASSERT_EQ(count, 512u * 512u);
      const float* hu = v.data() + static_cast<size_t>(k) * 512 * 512;
      size_t mismatches = 0;
      for (size_t i = 0; i < count; ++i) mismatches += (px[i] - 1024.0f) != hu[i];
      EXPECT_EQ(mismatches, 0u);
    }
  }
  EXPECT_EQ(sop_uids.size(), static_cast<size_t>(nz));
}

TEST_F(PhantomStudyTest, UidsAreValidAndDistinct) {
  const std::regex uid(R"(2\.25\.[1-9][0-9]*)");
  const StudyInfo& info = phantom_->info;
  std::set<std::string> all = {info.study_instance_uid, info.series_instance_uid, info.frame_of_reference_uid};
  for (const auto& u : info.sop_instance_uids) all.insert(u);
  EXPECT_EQ(all.size(), 3 + info.sop_instance_uids.size());
  for (const auto& u : all) {
    EXPECT_TRUE(std::regex_match(u, uid)) << u;
    EXPECT_LE(u.size(), 64u) << u;
  }
}

TEST_F(PhantomStudyTest, DciodvfyReportsNoErrorsOrWarnings) {
  if (std::system("command -v dciodvfy >/dev/null 2>&1") != 0) GTEST_SKIP() << "dciodvfy (dicom3tools) not installed";
  for (int instance : {1, 12, 24}) {
    const fs::path out = dir_.parent_path() / "dciodvfy.txt";
    const std::string cmd = "dciodvfy '" + file(instance).string() + "' >'" + out.string() + "' 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const std::string report = slurp(out);
    EXPECT_EQ(report.find("Error"), std::string::npos) << report;
    EXPECT_EQ(report.find("Warning"), std::string::npos) << report;
    EXPECT_NE(report.find("CTImage"), std::string::npos) << report;
  }
}

TEST(PhantomStudy, SameSeedSameBytes) {
  PhantomOptions o;
  o.seed = 4242;
  o.slices = 16;
  o.nodules = 2;
  NullProgress progress;
  const fs::path a = fresh_dir("same_a"), b = fresh_dir("same_b");
  for (const fs::path& d : {a, b}) {
    auto ph = make_phantom(o, progress);
    ASSERT_TRUE(ph.ok());
    ASSERT_TRUE(write_phantom_study(*ph, d, progress).ok());
  }
  const auto files = listing(a);
  ASSERT_EQ(files, listing(b));
  ASSERT_EQ(files.size(), 3u + 16u);
  for (const fs::path& f : files) {
    if (fs::is_directory(a / f)) continue;
    EXPECT_EQ(slurp(a / f), slurp(b / f)) << f;
  }
  fs::remove_all(a.parent_path());
}

TEST(PhantomStudy, ReplacesAnEarlierStudyAndKeepsOtherFiles) {
  const fs::path d = fresh_dir("replace");
  NullProgress progress;
  PhantomOptions o;
  o.seed = 1;
  o.slices = 20;
  o.nodules = 1;
  auto first = make_phantom(o, progress);
  ASSERT_TRUE(first.ok());
  PhantomWriteOptions with_labels;
  with_labels.labels = true;
  ASSERT_TRUE(write_phantom_study(*first, d, progress, with_labels).ok());
  ASSERT_TRUE(write_file_atomic(d / "notes.md", "mine").ok());
  o.slices = 16;
  o.seed = 2;
  auto second = make_phantom(o, progress);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(write_phantom_study(*second, d, progress).ok());
  EXPECT_EQ(slurp(d / "truth.csv"), phantom_truth_csv(*second));
  EXPECT_FALSE(fs::exists(d / "labels.npy"));  // the earlier study's, gone with it
  EXPECT_FALSE(fs::exists(d / "dicom" / "IM00017.dcm"));
  EXPECT_TRUE(fs::exists(d / "dicom" / "IM00016.dcm"));
  EXPECT_EQ(slurp(d / "notes.md"), "mine");
  EXPECT_EQ(listing(d).size(), 1u + 3u + 16u);
  fs::remove_all(d.parent_path());
}

TEST(PhantomStudy, UnwritableOutputIsBadInputAndLeavesNothing) {
  const fs::path base = fresh_dir("unwritable");
  fs::create_directories(base);
  ASSERT_TRUE(write_file_atomic(base / "a_file", "x").ok());
  NullProgress progress;
  PhantomOptions o;
  o.slices = 16;
  o.nodules = 0;
  auto ph = make_phantom(o, progress);
  ASSERT_TRUE(ph.ok());
  // A folder below a regular file cannot be created.
  Status s = write_phantom_study(*ph, base / "a_file" / "study", progress);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(s.error().message().find("a_file"), std::string::npos) << s.error().message();
  // The output path itself is a regular file.
  s = write_phantom_study(*ph, base / "a_file", progress);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kBadInput);
  EXPECT_EQ(listing(base), std::vector<fs::path>{"a_file"});
  EXPECT_EQ(slurp(base / "a_file"), "x");
  fs::remove_all(base.parent_path());
}

TEST(PhantomStudy, OutputFolderCheckBeforeGenerating) {
  const fs::path base = fresh_dir("check");
  fs::create_directories(base);
  ASSERT_TRUE(write_file_atomic(base / "a_file", "x").ok());
  EXPECT_TRUE(check_phantom_output_dir(base).ok());
  EXPECT_TRUE(check_phantom_output_dir(base / "new" / "deeper").ok());
  for (const fs::path& bad : {base / "a_file", base / "a_file" / "study"}) {
    const Status s = check_phantom_output_dir(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(s.error().message().find("a_file"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(base / "new"));  // checking creates nothing
  fs::remove_all(base.parent_path());
}

TEST(PhantomStudy, CancelledWriteRemovesWhatItCreatedAndKeepsAnEarlierStudy) {
  // Only the calling thread reports (after each slice it wrote, and once at the
  // end of the DICOM stage); on a loaded machine the other writer threads may
  // take all but one slice. Cancelling after the first report is certain to
  // hit: in the slice loop, or at the check after the DICOM stage.
  class CancelAfter : public Progress {
   public:
    explicit CancelAfter(int n) : n_(n) {}
    void report(double, std::string_view) override { ++reports_; }
    bool cancelled() const override { return reports_ > n_; }

   private:
    int n_, reports_ = 0;
  };
  NullProgress quiet;
  PhantomOptions o;
  o.seed = 5;
  o.slices = 32;
  o.nodules = 1;
  auto ph = make_phantom(o, quiet);
  ASSERT_TRUE(ph.ok());

  // Into a new folder (with a missing parent): nothing remains.
  const fs::path root = fresh_dir("cancel");
  fs::create_directories(root);
  CancelAfter early(0);
  Status s = write_phantom_study(*ph, root / "new" / "study", early);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kCancelled);
  EXPECT_TRUE(listing(root).empty());

  // Over an earlier study: it stays as it was.
  const fs::path d = root / "old";
  ASSERT_TRUE(write_phantom_study(*ph, d, quiet).ok());
  const auto before = listing(d);
  const std::string truth = slurp(d / "truth.csv");
  CancelAfter later(0);
  o.seed = 6;
  auto other = make_phantom(o, quiet);
  ASSERT_TRUE(other.ok());
  s = write_phantom_study(*other, d, later);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(listing(d), before);
  EXPECT_EQ(slurp(d / "truth.csv"), truth);
  fs::remove_all(root.parent_path());
}

}  // namespace
}  // namespace hilum
