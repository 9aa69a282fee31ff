// `hilum export-training-set` through the real binary: files, shapes, labels,
// and bad input (exit 2, no partial outputs).
#include <gtest/gtest.h>

#if HILUM_HAVE_IMAGING

#include <fstream>
#include <sstream>

#include "model/npy.h"
#include "tests/support/test_support.h"

namespace hilum {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(ExportTrainingSet, WritesPatchesLabelsNotesAndStatistics) {
  test::ScratchDir dir;
  auto r = test::run_hilum({"-q", "export-training-set", "--out", (dir / "set").string(), "--seeds", "3-4",
                            "--slices", "48", "--nodules", "2", "--negatives", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 studies"), std::string::npos) << r.out;
  auto patches = read_npy(dir / "set" / "patches.npy");
  ASSERT_TRUE(patches.ok()) << patches.error().message();
  EXPECT_EQ(patches->dtype(), DType::kU8);
  ASSERT_EQ(patches->rank(), 4);
  EXPECT_EQ(patches->dim(1), 3);
  EXPECT_EQ(patches->dim(2), 64);
  const std::string labels = slurp(dir / "set" / "labels.csv");
  EXPECT_EQ(labels.rfind("study,seed,candidate,source,is_nodule,malignant,", 0), 0u);
  EXPECT_EQ(lines(labels) - 1, static_cast<size_t>(patches->dim(0)));  // one row per patch
  // Truth patches: one per nodule, labelled positive.
  size_t truth = 0, pos = 0;
  std::istringstream in(labels);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    truth += line.find(",truth,1,") != std::string::npos;
    pos += line.find(",detector,1,") != std::string::npos;
  }
  EXPECT_EQ(truth, 4u);
  EXPECT_GE(pos, 1u);
  EXPECT_LE(patches->dim(0), 2 * 20 + 4 + static_cast<int64_t>(pos));
  EXPECT_EQ(lines(slurp(dir / "set" / "notes.jsonl")), 2u);
  EXPECT_EQ(lines(slurp(dir / "set" / "nodules.csv")), 1u + 4u);
  EXPECT_EQ(lines(slurp(dir / "set" / "studies.csv")), 1u + 2u);
  EXPECT_NE(slurp(dir / "set" / "manifest.json").find("\"std\": 0.25"), std::string::npos);
}

TEST(ExportTrainingSet, BadSeedsAreBadInputAndWriteNothing) {
  test::ScratchDir dir;
  for (const char* seeds : {"5-2", "x", "1-", "2-x"}) {
    auto r = test::run_hilum({"export-training-set", "--out", (dir / "set").string(), "--seeds", seeds});
    EXPECT_EQ(r.exit_code, 2) << seeds;
    EXPECT_NE(r.err.find("--seeds"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "set" / "patches.npy"));
}

}  // namespace
}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
