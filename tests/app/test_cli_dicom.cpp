// `hilum info` and `hilum volume` run as the real binary on real DICOM written
// with DCMTK: outputs, exit codes, one-line errors, no partial outputs, no PHI.
#if HILUM_HAVE_IMAGING

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/npy.h"
#include "tests/support/test_support.h"
#include "tests/vision/io/dicom_writer.h"
#include "vision/volume.h"

namespace hilum {
namespace {

using namespace hilum::dicomtest;

using CliRun = test::CommandResult;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

// Runs `hilum ARGS` (ARGS quoted by the caller).
CliRun hilum(const std::string& args) { return test::run_shell(test::shell_quote(HILUM_CLI) + " " + args); }

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void expect_no_phi(const std::string& text) {
  EXPECT_EQ(text.find(kSecretName), std::string::npos) << text;
  EXPECT_EQ(text.find(kSecretId), std::string::npos) << text;
  EXPECT_EQ(text.find(kSecretBirth), std::string::npos) << text;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

TEST(CliDicom, VolumeWritesNpyAndMeta) {
  TempDir dir("cli-volume");
  SeriesSpec spec;
  spec.slices = 6;
  auto slices = axial_series(spec);
  std::reverse(slices.begin(), slices.end());
  ASSERT_EQ(write_series(dir / "in", slices), "");
  fs::create_directories(dir / "out");
  CliRun r = hilum("volume " + quote(dir / "in") + " --out " + quote(dir / "out/vol.npy") + " --meta " +
                   quote(dir / "out/meta.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto t = read_npy(dir / "out/vol.npy");
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_EQ(t->dtype(), DType::kF32);
  ASSERT_EQ(t->shape(), (Shape{6, 8, 6}));
  const float* v = t->data<float>();
  for (int z = 0; z < 6; ++z) EXPECT_FLOAT_EQ(v[(z * 8 + 3) * 6 + 2], pattern_hu(3, 2, z));
  auto meta = nlohmann::json::parse(slurp(dir / "out/meta.json"));
  EXPECT_EQ(meta["series_uid"], spec.series_uid);
  EXPECT_EQ(meta["spacing"], (nlohmann::json{0.5, 0.75, 2.5}));
  EXPECT_EQ(meta["origin"], (nlohmann::json{-10.0, -20.0, -20.0}));
  EXPECT_EQ(meta["direction"], (nlohmann::json{1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0}));
  EXPECT_TRUE(meta["warnings"].is_array());
  EXPECT_EQ(meta["units"], "HU");
  EXPECT_EQ(files_in(dir / "out").size(), 2u);  // no temporary files left
  expect_no_phi(r.err + slurp(dir / "out/meta.json"));
}

TEST(CliDicom, InfoListsSeriesWithoutPatientIdentifiers) {
  TempDir dir("cli-info");
  SeriesSpec a, b;
  a.slices = 5;
  b.slices = 3;
  b.modality = "MR";
  ASSERT_EQ(write_series(dir / "a", axial_series(a)), "");
  ASSERT_EQ(write_series(dir / "b", axial_series(b)), "");
  write_text(dir / "readme.txt", "hello");
  CliRun text = hilum("info " + quote(dir.path()));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find(a.series_uid), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(b.series_uid), std::string::npos);
  EXPECT_NE(text.out.find("[loaded by default]"), std::string::npos);
  EXPECT_NE(text.out.find("skipped 1 non-DICOM file"), std::string::npos);
  expect_no_phi(text.out + text.err);

  CliRun json = hilum("info --json " + quote(dir.path()));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["series"].size(), 2u);
  for (const auto& s : j["series"]) {
    EXPECT_EQ(s["default"].get<bool>(), s["series_uid"] == a.series_uid);
    EXPECT_EQ(s["rows"], 8);
    EXPECT_EQ(s["plane"], "axial");
  }
  expect_no_phi(json.out);
}

TEST(CliDicom, SeveralSeriesSaySoOnStderrAndInMeta) {
  TempDir dir("cli-select");
  SeriesSpec a, b;
  a.slices = 4;
  b.slices = 7;
  ASSERT_EQ(write_series(dir / "in/a", axial_series(a)), "");
  ASSERT_EQ(write_series(dir / "in/b", axial_series(b)), "");
  CliRun r = hilum("volume " + quote(dir / "in") + " --out " + quote(dir / "v.npy") + " --meta " +
                   quote(dir / "m.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("hilum: note: 2 series"), std::string::npos) << r.err;
  auto meta = nlohmann::json::parse(slurp(dir / "m.json"));
  EXPECT_EQ(meta["series_uid"], b.series_uid);
  EXPECT_NE(meta["selection_note"].get<std::string>().find("most slices"), std::string::npos);

  CliRun pick = hilum("-q volume " + quote(dir / "in") + " --series " + a.series_uid + " --out " +
                      quote(dir / "v.npy") + " --meta " + quote(dir / "m.json"));
  ASSERT_EQ(pick.exit_code, 0) << pick.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(dir / "m.json"))["shape"][0], 4);
}

// End to end with the phantom generator (once `hilum phantom` is in the build):
// the nodules of truth.csv sit, in world coordinates, where the loaded volume
// shows tissue denser than lung.
TEST(CliDicomPhantom, TruthNodulesAreDenseInTheLoadedVolume) {
  const CliRun help = hilum("--help");
  if (help.out.find("\n  phantom ") == std::string::npos) GTEST_SKIP() << "this build has no `hilum phantom`";
  TempDir dir("cli-phantom");
  const CliRun gen =
      hilum("-q phantom --out " + quote(dir / "study") + " --seed 11 --nodules 4 --slices 120");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const CliRun load = hilum("-q volume " + quote(dir / "study") + " --out " + quote(dir / "v.npy") +
                            " --meta " + quote(dir / "m.json"));
  ASSERT_EQ(load.exit_code, 0) << load.err;
  auto vol = read_npy(dir / "v.npy");
  ASSERT_TRUE(vol.ok()) << vol.error().message();
  const auto meta = nlohmann::json::parse(slurp(dir / "m.json"));
  ASSERT_EQ(meta["shape"][0], 120);
  Volume v;
  v.hu = *vol;
  for (int a = 0; a < 3; ++a) {
    v.spacing[a] = meta["spacing"][a];
    v.origin[a] = meta["origin"][a];
  }
  for (int i = 0; i < 9; ++i) v.direction[i] = meta["direction"][i];
  std::istringstream truth(slurp(dir / "study/truth.csv"));
  std::string line;
  std::getline(truth, line);  // header
  int checked = 0;
  while (std::getline(truth, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    ASSERT_GE(f.size(), 5u) << line;
    EXPECT_EQ(f[0], meta["series_uid"].get<std::string>());
    if (std::stod(f[4]) < 8) continue;  // small nodules blur into 2.5 mm slices
    const Vec3 ijk = v.voxel_from_world({std::stod(f[1]), std::stod(f[2]), std::stod(f[3])});
    const int x = static_cast<int>(std::lround(ijk[0])), y = static_cast<int>(std::lround(ijk[1])),
              z = static_cast<int>(std::lround(ijk[2]));
    ASSERT_TRUE(x >= 0 && y >= 0 && z >= 0 && x < v.nx() && y < v.ny() && z < v.nz()) << line;
    EXPECT_GT(v.at(x, y, z), -750.0f) << "nodule " << line;  // lung parenchyma is about -850 HU
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// ---- bad input: exit 2, one line naming the file or series, no output left -----

struct BadCase {
  std::string name;
  std::function<std::string(const fs::path& dir)> make;  // writes the input, returns the extra args
  std::string needle;                                    // must appear in the message
};

void expect_refused(const BadCase& c) {
  SCOPED_TRACE(c.name);
  TempDir dir("cli-bad");
  fs::create_directories(dir / "out");
  const std::string input_args = c.make(dir.path());
  CliRun r = hilum("-q volume " + input_args + " --out " + quote(dir / "out/vol.npy") + " --meta " +
                   quote(dir / "out/meta.json"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("hilum: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
  EXPECT_TRUE(files_in(dir / "out").empty()) << "left behind: " << files_in(dir / "out").front();
  expect_no_phi(r.err);
}

TEST(CliDicomBadInput, TruncatedFile) {
  expect_refused({"truncated",
                  [](const fs::path& d) {
                    SeriesSpec s;
                    s.slices = 1;
                    s.rows = s.columns = 64;
                    write_series(d / "ok", axial_series(s));
                    truncate_copy(d / "ok/IM0000", d / "cut.dcm", 0.5);
                    return quote(d / "cut.dcm");
                  },
                  "cut.dcm"});
}

TEST(CliDicomBadInput, NonDicomFile) {
  expect_refused({"non-DICOM",
                  [](const fs::path& d) {
                    write_text(d / "photo.jpg", "\xff\xd8\xff\xe0 not DICOM");
                    return quote(d / "photo.jpg");
                  },
                  "photo.jpg: not a DICOM file"});
}

TEST(CliDicomBadInput, EmptyFolder) {
  expect_refused({"empty folder",
                  [](const fs::path& d) {
                    fs::create_directories(d / "empty");
                    return quote(d / "empty");
                  },
                  "no DICOM images found"});
}

TEST(CliDicomBadInput, MissingPixelData) {
  expect_refused({"missing PixelData",
                  [](const fs::path& d) {
                    SeriesSpec s;
                    auto slices = axial_series(s);
                    slices[0].pixel_data = false;
                    write_slice(d / "nopix.dcm", slices[0]);
                    return quote(d / "nopix.dcm");
                  },
                  "nopix.dcm: no PixelData"});
}

TEST(CliDicomBadInput, ZeroAndNegativeSpacing) {
  for (double bad : {0.0, -1.0}) {
    expect_refused({"spacing",
                    [bad](const fs::path& d) {
                      SeriesSpec s;
                      auto slices = axial_series(s);
                      for (auto& sl : slices) sl.pixel_spacing = std::array<double, 2>{0.7, bad};
                      write_series(d / "in", slices);
                      return quote(d / "in");
                    },
                    "is not positive"});
  }
}

TEST(CliDicomBadInput, ConflictingOrientations) {
  expect_refused({"orientations",
                  [](const fs::path& d) {
                    SeriesSpec s;
                    s.slices = 4;
                    auto slices = axial_series(s);
                    for (int i = 0; i < 4; ++i) {
                      SliceSpec sag = slices[static_cast<size_t>(i)];
                      sag.sop_uid.clear();
                      sag.orientation = {0, 1, 0, 0, 0, -1};
                      sag.position = {static_cast<double>(i), 0, 0};
                      slices.push_back(sag);
                    }
                    write_series(d / "in", slices);
                    return quote(d / "in");
                  },
                  "different orientation"});
}

TEST(CliDicomBadInput, MixedSeriesWithMissingSeriesUid) {
  expect_refused({"--series missing",
                  [](const fs::path& d) {
                    SeriesSpec a, b;
                    write_series(d / "in/a", axial_series(a));
                    write_series(d / "in/b", axial_series(b));
                    return quote(d / "in") + " --series 1.2.3.999";
                  },
                  "no series 1.2.3.999"});
}

TEST(CliDicomBadInput, DuplicatePositionsWithDifferentPixels) {
  expect_refused({"duplicates",
                  [](const fs::path& d) {
                    SeriesSpec s;
                    auto slices = axial_series(s);
                    SliceSpec other = slices[1];
                    other.pixels = pattern(s.rows, s.columns, 30);
                    slices.push_back(other);
                    write_series(d / "in", slices);
                    return quote(d / "in");
                  },
                  "same position"});
}

TEST(CliDicomBadInput, TiltRefusedWhenAsked) {
  expect_refused({"tilt",
                  [](const fs::path& d) {
                    SeriesSpec s;
                    auto slices = axial_series(s);
                    for (size_t i = 0; i < slices.size(); ++i)
                      slices[i].position[1] = 0.9 * static_cast<double>(i);
                    write_series(d / "in", slices);
                    return quote(d / "in") + " --no-resample-tilt";
                  },
                  "gantry tilt"});
}

TEST(CliDicomBadInput, MissingInputAndOutputFolder) {
  expect_refused({"missing input", [](const fs::path& d) { return quote(d / "nothing-here"); },
                  "no such file or folder"});
  TempDir dir("cli-outdir");
  SeriesSpec s;
  ASSERT_EQ(write_series(dir / "in", axial_series(s)), "");
  CliRun r = hilum("-q volume " + quote(dir / "in") + " --out " + quote(dir / "no/such/vol.npy") +
                   " --meta " + quote(dir / "m.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "m.json"));
}

TEST(CliDicomBadInput, InfoOnNonDicomFileExitsTwo) {
  TempDir dir("cli-info-bad");
  write_text(dir / "x.txt", "plain text");
  CliRun r = hilum("-q info " + quote(dir / "x.txt"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("x.txt: not a DICOM file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
