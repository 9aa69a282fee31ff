// `hilum phantom` run as a real process: exit codes, files, messages.
// (The command exists only in builds with imaging.)
#if HILUM_HAVE_IMAGING
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace {

namespace fs = std::filesystem;

using CliRun = hilum::test::CommandResult;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("hilum_test_cli_phantom_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// Runs `hilum ARGS` (ARGS quoted by the caller).
CliRun hilum(const std::string& args) {
  return hilum::test::run_shell(hilum::test::shell_quote(HILUM_CLI) + " " + args);
}

std::vector<fs::path> listing(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir));
  std::sort(out.begin(), out.end());
  return out;
}

class CliPhantom : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { fs::remove_all(scratch()); }
};

TEST_F(CliPhantom, WritesAStudy) {
  const fs::path d = scratch() / "ok";
  const CliRun r = hilum("phantom --out '" + d.string() + "' --seed 3 --slices 20 --nodules 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("20 slices"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 nodules"), std::string::npos) << r.out;
  for (int i = 1; i <= 20; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "IM%05d.dcm", i);
    EXPECT_TRUE(fs::is_regular_file(d / "dicom" / name)) << name;
  }
  EXPECT_FALSE(fs::exists(d / "dicom" / "IM00021.dcm"));
  const std::string truth = slurp(d / "truth.csv");
  EXPECT_EQ(truth.rfind("seriesuid,coordX,coordY,coordZ,diameter_mm,type,", 0), 0u) << truth;
  EXPECT_EQ(std::count(truth.begin(), truth.end(), '\n'), 3);
  EXPECT_GT(slurp(d / "clinical.txt").size(), 80u);
  EXPECT_EQ(listing(d).size(), 3u + 20u);  // dicom/, 20 files, truth.csv, clinical.txt
}

TEST_F(CliPhantom, SameSeedSameBytesAcrossRuns) {
  const fs::path a = scratch() / "same_a", b = scratch() / "same_b";
  ASSERT_EQ(hilum("phantom --out '" + a.string() + "' --seed 99 --slices 16 -q").exit_code, 0);
  ASSERT_EQ(hilum("phantom --out '" + b.string() + "' --seed 99 --slices 16 -q").exit_code, 0);
  const auto files = listing(a);
  ASSERT_EQ(files, listing(b));
  for (const fs::path& f : files) {
    if (fs::is_regular_file(a / f)) {
      EXPECT_EQ(slurp(a / f), slurp(b / f)) << f;
    }
  }
  // Running again over the same folder replaces the study and leaves no staging folder.
  ASSERT_EQ(hilum("phantom --out '" + a.string() + "' --seed 100 --slices 16 -q").exit_code, 0);
  EXPECT_EQ(listing(a).size(), files.size());
  EXPECT_NE(slurp(a / "clinical.txt"), slurp(b / "clinical.txt"));
}

TEST_F(CliPhantom, LabelsOnRequest) {
  const fs::path d = scratch() / "labels";
  const CliRun r = hilum("phantom --out '" + d.string() + "' --seed 1 --slices 16 --nodules 0 --labels -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(d / "labels.npy"));
  EXPECT_EQ(fs::file_size(d / "labels.npy"), 128u + 16u * 512u * 512u);
}

struct BadCase {
  const char* args;
  const char* message;  // part of the one-line error
};

TEST_F(CliPhantom, BadArgumentsExitTwoWithAClearMessageAndNoOutput) {
  const fs::path file = scratch() / "plain_file";
  { std::ofstream(file) << "x"; }
  const std::string out = (scratch() / "bad").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"phantom --out '" + out + "' --seed -1", "--seed"},
      {"phantom --out '" + out + "' --seed seven", "--seed"},
      {"phantom --out '" + out + "' --seed 18446744073709551616", "--seed"},
      {"phantom --out '" + out + "' --seed 1 --slices 3", "--slices"},
      {"phantom --out '" + out + "' --seed 1 --slices 100000", "--slices"},
      {"phantom --out '" + out + "' --seed 1 --nodules 99", "--nodules"},
      {"phantom --out '" + out + "' --seed 1 --nodules -3", "--nodules"},
      {"phantom --out '" + out + "' --seed 1 --nodule-sites juxta=1", "unknown site 'juxta'"},
      {"phantom --out '" + out + "' --seed 1 --nodule-sites juxtavascular=-1", "'juxtavascular' must be a number"},
      {"phantom --out '" + out + "' --seed 1 --nodule-sites juxtavascular", "has no '='"},
      {"phantom --out '" + out + "' --seed 1 --nodule-sites isolated=0", "at least one site"},
      {"phantom --out '" + out + "' --seed 1 --nodule-sites ''", "--nodule-sites is empty"},
      {"phantom --seed 1", "--out"},
      {"phantom --out '" + out + "'", "--seed"},
      {"phantom --out '" + file.string() + "/study' --seed 1 --slices 16", "plain_file"},
      {"phantom --out '" + file.string() + "' --seed 1 --slices 16", "plain_file"},
  };
  for (const auto& [args, message] : cases) {
    SCOPED_TRACE(args);
    const CliRun r = hilum(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 3) << r.err;  // short, not a dump
    EXPECT_FALSE(fs::exists(out)) << "output folder left behind";
  }
  EXPECT_EQ(slurp(file), "x");
  EXPECT_EQ(listing(scratch() / "nothing_here").size(), 0u);
}

}  // namespace
#endif  // HILUM_HAVE_IMAGING
