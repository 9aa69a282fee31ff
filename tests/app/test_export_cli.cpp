// `hilum export-training-set` through the real binary: files, shapes, labels,
// and bad input (exit 2, no partial outputs).
#include <gtest/gtest.h>

#if HILUM_HAVE_IMAGING

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/csv.h"
#include "model/npy.h"
#include "tests/support/test_support.h"
#include "vision/io/candidates.h"

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

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

// Rows of a CSV as column-name -> value maps.
std::vector<std::map<std::string, std::string>> read_csv_rows(const std::filesystem::path& p) {
  std::istringstream in(slurp(p));
  std::string line;
  std::getline(in, line);
  const auto header = split_csv(line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    const auto cells = split_csv(line);
    EXPECT_EQ(cells.size(), header.size()) << line;
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::istringstream in(slurp(p));
  std::string line;
  std::vector<nlohmann::json> out;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The two parts of the malignancy logit travel with the data, and together
// they give the probability the phantom drew each label from.
TEST(ExportTrainingSet, CarriesImageAndNoteLogits) {
  test::ScratchDir dir;
  auto r = test::run_hilum({"-q", "export-training-set", "--out", (dir / "set").string(), "--seeds", "11-12",
                            "--slices", "40", "--nodules", "3", "--negatives", "5", "--no-sizing"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto notes = read_jsonl(dir / "set" / "notes.jsonl");
  ASSERT_EQ(notes.size(), 2u);
  std::map<std::string, double> note_logit;
  for (const auto& n : notes) {
    ASSERT_TRUE(n.contains("note_logit")) << n.dump();
    note_logit[std::to_string(n["seed"].get<uint64_t>())] = n["note_logit"].get<double>();
  }
  const auto nodules = read_csv_rows(dir / "set" / "nodules.csv");
  ASSERT_EQ(nodules.size(), 6u);
  std::map<std::string, std::string> image_logit;  // "seed/nodule" -> value
  for (const auto& n : nodules) {
    const double il = std::stod(n.at("image_logit"));
    const double p = 1 / (1 + std::exp(-3 * (il + note_logit.at(n.at("seed")) - 2.5)));
    EXPECT_NEAR(p, std::stod(n.at("malignancy_probability")), 6e-5) << n.at("seed") << " " << n.at("nodule");
    image_logit[n.at("seed") + "/" + n.at("nodule")] = n.at("image_logit");
  }
  int positives = 0;
  for (const auto& row : read_csv_rows(dir / "set" / "labels.csv")) {
    // A truth patch has no candidate, so neither measurements nor the pleural flag.
    EXPECT_EQ(row.at("pleural").empty(), row.at("source") == "truth") << row.at("candidate");
    EXPECT_EQ(row.at("bulge").empty(), row.at("source") == "truth") << row.at("candidate");
    if (row.at("is_nodule") == "1") {
      ++positives;
      EXPECT_EQ(row.at("image_logit"), image_logit.at(row.at("seed") + "/" + row.at("nodule")));
    } else {
      EXPECT_EQ(row.at("image_logit"), "");
    }
  }
  EXPECT_GE(positives, 6);  // the truth patches at least
}

// --notes-only renders nothing and gives the very notes of a full export.
TEST(ExportTrainingSet, NotesOnlyMatchesTheFullExport) {
  test::ScratchDir dir;
  auto full =
      test::run_hilum({"-q", "export-training-set", "--out", (dir / "full").string(), "--seeds", "21-22",
                       "--slices", "32", "--nodules", "1", "--negatives", "0", "--no-sizing"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  auto only = test::run_hilum(
      {"-q", "export-training-set", "--out", (dir / "notes").string(), "--seeds", "21-22", "--notes-only"});
  ASSERT_EQ(only.exit_code, 0) << only.err;
  EXPECT_NE(only.out.find("2 notes"), std::string::npos) << only.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "notes" / "patches.npy"));
  EXPECT_FALSE(std::filesystem::exists(dir / "notes" / "labels.csv"));
  EXPECT_NE(slurp(dir / "notes" / "manifest.json").find("\"notes_only\": true"), std::string::npos);
  const auto a = read_jsonl(dir / "full" / "notes.jsonl");
  const auto b = read_jsonl(dir / "notes" / "notes.jsonl");
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["seed"], b[i]["seed"]);
    EXPECT_EQ(a[i]["text"], b[i]["text"]);
    EXPECT_EQ(a[i]["profile"], b[i]["profile"]);
    EXPECT_EQ(a[i]["note_logit"], b[i]["note_logit"]);
    EXPECT_FALSE(b[i].contains("series_uid"));
    EXPECT_GT(b[i]["text"].get<std::string>().size(), 50u);
  }
  // Cheap for many seeds.
  auto many = test::run_hilum(
      {"-q", "export-training-set", "--out", (dir / "many").string(), "--seeds", "1-2000", "--notes-only"});
  ASSERT_EQ(many.exit_code, 0) << many.err;
  EXPECT_EQ(lines(slurp(dir / "many" / "notes.jsonl")), 2000u);
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

// --truth-jitter adds patches centred at random inside each true nodule (source
// "jitter", labelled positive), drawn from the seed within a ball of a quarter of
// the diameter (0.75-2 mm); the other rows and their patches stay as they were.
// Out of range is refused before anything is written.
TEST(ExportTrainingSet, TruthJitterAddsPatchesCentredInsideEachNodule) {
  test::ScratchDir dir;
  auto run = [&](const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> a = {"-q", "export-training-set", "--out", (dir / name).string()};
    for (const char* arg :
         {"--seeds", "3-4", "--slices", "48", "--nodules", "2", "--negatives", "5", "--no-sizing"})
      a.push_back(arg);
    a.insert(a.end(), extra.begin(), extra.end());
    return test::run_hilum(a);
  };
  auto plain = run("plain", {});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto jit = run("jit", {"--truth-jitter", "3"});
  ASSERT_EQ(jit.exit_code, 0) << jit.err;
  auto again = run("again", {"--truth-jitter", "3"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(slurp(dir / "jit" / "labels.csv"), slurp(dir / "again" / "labels.csv"));  // from the seed

  const auto base = read_csv_rows(dir / "plain" / "labels.csv");
  const auto rows = read_csv_rows(dir / "jit" / "labels.csv");
  auto p0 = read_npy(dir / "plain" / "patches.npy");
  auto p1 = read_npy(dir / "jit" / "patches.npy");
  ASSERT_TRUE(p0.ok() && p1.ok());
  ASSERT_EQ(p1->dim(0), static_cast<int64_t>(rows.size()));
  const int64_t patch = 3 * 64 * 64;
  // The truth centres, by (seed, nodule).
  std::map<std::pair<std::string, std::string>, std::array<double, 4>> truth;  // x, y, z, diameter
  for (const auto& r : base)
    if (r.at("source") == "truth")
      truth[{r.at("seed"), r.at("nodule")}] = {std::stod(r.at("x_mm")), std::stod(r.at("y_mm")),
                                               std::stod(r.at("z_mm")), std::stod(r.at("diameter_mm"))};
  ASSERT_EQ(truth.size(), 4u);
  // Each study's rows: the plain export's, then three jitter rows per nodule.
  size_t b = 0, jitter = 0;
  std::map<std::pair<std::string, std::string>, int> per_nodule;
  double farthest = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r.at("source") != "jitter") {
      ASSERT_LT(b, base.size());
      EXPECT_EQ(r, base[b]) << "row " << i;
      EXPECT_EQ(std::memcmp(p1->data<uint8_t>() + i * patch, p0->data<uint8_t>() + b * patch, patch), 0) << i;
      ++b;
      continue;
    }
    ++jitter;
    EXPECT_EQ(r.at("is_nodule"), "1");
    EXPECT_EQ(r.at("candidate"), "-1");
    EXPECT_EQ(r.at("response"), "");  // no detector measurements
    const auto key = std::make_pair(r.at("seed"), r.at("nodule"));
    ASSERT_TRUE(truth.count(key)) << i;
    ++per_nodule[key];
    const auto& t = truth.at(key);
    EXPECT_EQ(std::stod(r.at("diameter_mm")), t[3]);
    const double d = std::hypot(std::stod(r.at("x_mm")) - t[0], std::stod(r.at("y_mm")) - t[1],
                                std::stod(r.at("z_mm")) - t[2]);
    const double radius = std::clamp(t[3] / 4, 0.75, 2.0);
    EXPECT_LE(d, radius + 0.02) << i;
    EXPECT_NEAR(std::stod(r.at("distance_mm")), d, 0.02) << i;
    farthest = std::max(farthest, d / radius);
    // A patch of its own: not the truth patch's pixels.
    const uint8_t* mine = p1->data<uint8_t>() + i * patch;
    bool same_as_truth = false;
    for (size_t k = 0; k < base.size(); ++k)
      if (base[k].at("source") == "truth" && base[k].at("seed") == r.at("seed") &&
          base[k].at("nodule") == r.at("nodule"))
        same_as_truth = std::memcmp(mine, p0->data<uint8_t>() + k * patch, patch) == 0;
    EXPECT_FALSE(same_as_truth) << i;
  }
  EXPECT_EQ(b, base.size());
  EXPECT_EQ(jitter, 12u);
  for (const auto& [key, n] : per_nodule) EXPECT_EQ(n, 3) << key.first << " " << key.second;
  EXPECT_GT(farthest, 0.3);  // spread over the ball, not all at the centre
  const auto manifest = nlohmann::json::parse(slurp(dir / "jit" / "manifest.json"));
  EXPECT_EQ(manifest["labels"]["truth_jitter"], 3);
  EXPECT_EQ(
      manifest["counts"]["positives"].get<int64_t>(),
      nlohmann::json::parse(slurp(dir / "plain" / "manifest.json"))["counts"]["positives"].get<int64_t>() +
          12);

  for (const char* bad : {"-1", "17"}) {
    auto r = run("bad", {"--truth-jitter", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--truth-jitter"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad" / "patches.npy"));
}

// --max-candidates moves the detector's cut from the 500 candidates hilum
// analyze keeps (to study how its score ranks the maxima beyond it), records
// the cut in the manifest, and refuses a value out of range before writing
// anything. Seed 3 at 48 slices has about 4,000 maxima.
TEST(ExportTrainingSet, MaxCandidatesChangesTheDetectorsCutOnly) {
  test::ScratchDir dir;
  auto rows_of = [&](const std::string& part) {
    std::istringstream in(slurp(dir / part / "labels.csv"));
    std::string line;
    int n = -1;  // the header
    while (std::getline(in, line)) ++n;
    return n;
  };
  const int cut = CandidateOptions{}.max_candidates;
  for (const auto& [part, flag] :
       std::vector<std::pair<std::string, std::string>>{{"plain", ""}, {"more", "650"}, {"fewer", "120"}}) {
    std::vector<std::string> a = {
        "-q", "export-training-set", "--out", (dir / part).string(), "--seeds",    "3", "--slices",
        "48", "--negatives",         "-1",    "--no-truth-patches",  "--no-sizing"};
    if (!flag.empty()) a.insert(a.end(), {"--max-candidates", flag});
    auto r = test::run_hilum(a);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Each cut, then up to pleural_max_candidates ranked-out candidates the pleural caps keep,
  // then up to bulge_extra_candidates bulges past the bulge quota.
  const CandidateOptions defaults;
  const int pleural = defaults.pleural_max_candidates, extras = defaults.bulge_extra_candidates;
  for (const auto& [part, n] : std::vector<std::pair<std::string, int>>{{"plain", cut}, {"more", 650}, {"fewer", 120}}) {
    EXPECT_GE(rows_of(part), n) << part;
    EXPECT_LE(rows_of(part), n + pleural + extras) << part;
    // The pleural column flags only candidates beyond the cut, and each of those is
    // a pleural cap or a bulge; the bulge column at most the quota and the extras.
    int bulges = 0;
    for (const auto& row : read_csv_rows(dir / part / "labels.csv")) {
      const bool beyond = std::stoi(row.at("candidate")) >= n;
      EXPECT_TRUE(row.at("pleural") == "0" || row.at("pleural") == "1") << row.at("pleural");
      EXPECT_TRUE(row.at("bulge") == "0" || row.at("bulge") == "1") << row.at("bulge");
      if (beyond) {
        EXPECT_TRUE(row.at("pleural") == "1" || (extras > 0 && row.at("bulge") == "1"))
            << part << " " << row.at("candidate");
      } else {
        EXPECT_EQ(row.at("pleural"), "0") << part << " " << row.at("candidate");
      }
      bulges += row.at("bulge") == "1";
    }
    EXPECT_LE(bulges, defaults.bulge_max_candidates + extras) << part;
  }
  const auto manifest = nlohmann::json::parse(slurp(dir / "plain" / "manifest.json"))["candidates"];
  EXPECT_EQ(manifest["max_candidates"], cut);
  EXPECT_EQ(manifest["pleural_max_candidates"], pleural);
  EXPECT_EQ(manifest["bulge_extra_candidates"], CandidateOptions{}.bulge_extra_candidates);
  EXPECT_EQ(nlohmann::json::parse(slurp(dir / "more" / "manifest.json"))["candidates"]["max_candidates"],
            650);
  // The rows before each cut are the same candidates: only the cut moved (the
  // study's one nodule is hit first, so no hit beyond a cut reorders the rows).
  auto first_lines = [&](const std::string& part, int n) {  // the header and n rows
    std::istringstream in(slurp(dir / part / "labels.csv"));
    std::string line, out;
    for (int k = 0; k <= n && std::getline(in, line); ++k) out += line + "\n";
    return out;
  };
  EXPECT_EQ(first_lines("plain", 120), first_lines("fewer", 120));
  EXPECT_EQ(first_lines("more", cut), first_lines("plain", cut));
  for (const char* bad : {"-1", "100001"}) {
    auto r = test::run_hilum(
        {"export-training-set", "--out", (dir / "bad").string(), "--seeds", "3", "--max-candidates", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--max-candidates must be between 0"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(std::string("got ") + bad), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));
}

// --nodule-sites reaches the phantoms of an export (a juxtavascular-rich set
// for training or for measuring the image branch on its weakest kind) and the
// manifest says so; a bad value stops before anything is written.
TEST(ExportTrainingSet, NoduleSitesReachThePhantomsAndTheManifest) {
  test::ScratchDir dir;
  auto r = test::run_hilum({"-q", "export-training-set", "--out", (dir / "jv").string(), "--seeds", "31", "--slices",
                            "200", "--nodules", "4", "--negatives", "0", "--no-truth-patches", "--no-sizing",
                            "--nodule-sites", "juxtavascular=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto manifest = nlohmann::json::parse(slurp(dir / "jv" / "manifest.json"));
  EXPECT_EQ(manifest["phantom"]["nodule_sites"], "isolated=0,juxtapleural=0,juxtavascular=1");
  auto nodules = read_csv(dir / "jv" / "nodules.csv");
  ASSERT_TRUE(nodules.ok()) << nodules.error().message();
  auto col = nodules->column("juxtavascular");
  ASSERT_TRUE(col.ok()) << col.error().message();
  int vascular = 0;
  for (size_t i = 0; i < nodules->size(); ++i) vascular += nodules->text(i, *col) == "1";
  EXPECT_EQ(nodules->size(), 4u);
  EXPECT_GE(vascular, 3);
  auto bad = test::run_hilum({"export-training-set", "--out", (dir / "bad").string(), "--seeds", "3",
                              "--nodule-sites", "juxtavascular=1,vessel=2"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--nodule-sites: unknown site 'vessel'"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));
}

// scripts/train/pack_gpu_data.py packs several exports as one (what
// scripts/gpu/train_vision_more.sh gives the image branch): the studies
// numbered on, every nodule patch, per study the strongest and random other
// candidates by the counts given for its export, and the sources recorded.
TEST(ExportTrainingSet, PackedWithAnotherExportTakesEachOnesCounts) {
  test::ScratchDir dir;
  auto a = test::run_hilum({"-q", "export-training-set", "--out", (dir / "a").string(), "--seeds", "3-4",
                            "--slices", "48", "--negatives", "-1", "--no-sizing"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = test::run_hilum({"-q", "export-training-set", "--out", (dir / "b").string(), "--seeds", "21",
                            "--slices", "48", "--nodules", "5", "--negatives", "-1", "--no-sizing"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string script = std::string(HILUM_SOURCE_DIR) + "/scripts/train/pack_gpu_data.py";
  auto r = test::run_command("/usr/bin/python3",
                             {script, "--train", (dir / "a").string(), (dir / "b").string(), "--vision-only",
                              "--raw", "--hard", "2,6", "--easy", "1,3", "--out", (dir / "gpu").string()});
  if (r.exit_code != 0 && r.err.find("No module named 'numpy'") != std::string::npos) GTEST_SKIP() << "numpy";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // What the packer must have kept: from each export's labels.csv.
  auto kept = [&](const std::string& part, int hard_easy, int first_study) {
    std::map<int, int> nodules, others;
    std::istringstream in(slurp(dir / part / "labels.csv"));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      const int study = std::stoi(line.substr(0, line.find(','))) + first_study;
      (line.find(",detector,1,") != std::string::npos || line.find(",truth,1,") != std::string::npos
           ? nodules
           : others)[study]++;
    }
    std::map<int, int> out;
    for (auto& [s, n] : nodules) out[s] += n;
    for (auto& [s, n] : others) out[s] += std::min(n, hard_easy);
    return out;
  };
  std::map<int, int> want = kept("a", 2 + 1, 0);
  for (auto& [s, n] : kept("b", 6 + 3, 2)) want[s] += n;
  ASSERT_EQ(want.size(), 3u);
  // labels.npz is a zip of .npy arrays; the script reads back what it wrote.
  auto check = test::run_command(
      "/usr/bin/python3", {"-c",
                           "import json, sys, numpy as np\n"
                           "l = np.load(sys.argv[1] + '/labels.npz')\n"
                           "n = int(np.prod(l['shape']))\n"
                           "import os; assert os.path.getsize(sys.argv[1] + '/patches.u8') == n, 'raw size'\n"
                           "print(json.dumps({'study': l['study'].tolist(), 'seed': l['seed'].tolist()}))",
                           (dir / "gpu").string()});
  ASSERT_EQ(check.exit_code, 0) << check.err;
  const auto packed = nlohmann::json::parse(check.out);
  std::map<int, int> got;
  std::map<int, int> seed_of;
  for (size_t i = 0; i < packed["study"].size(); ++i) {
    got[packed["study"][i].get<int>()]++;
    seed_of[packed["study"][i].get<int>()] = packed["seed"][i].get<int>();
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(seed_of, (std::map<int, int>{{0, 3}, {1, 4}, {2, 21}}));
  const auto manifest = nlohmann::json::parse(slurp(dir / "gpu" / "pack_manifest.json"));
  ASSERT_EQ(manifest["sources"].size(), 2u);
  EXPECT_EQ(manifest["sources"][1]["phantom"]["nodules"], 5);
  EXPECT_EQ(manifest["sources"][1]["hard"], 6);
  EXPECT_EQ(manifest["sources"][0]["easy"], 1);
  // Counts that do not match the exports are refused.
  auto bad = test::run_command(
      "/usr/bin/python3", {script, "--train", (dir / "a").string(), (dir / "b").string(), "--vision-only",
                           "--hard", "1,2,3", "--out", (dir / "bad").string()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--hard/--easy"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));
}

// --patch-frames: the same rows cut in rotated frames (patches_<frame>.npy),
// carried through merge_exports.py and pack_gpu_data.py --frames row for row.
TEST(ExportTrainingSet, PatchFramesCutTheSameRowsInRotatedFrames) {
  test::ScratchDir dir;
  for (const char* seeds : {"3", "4"}) {
    auto r = test::run_hilum({"-q", "export-training-set", "--out", (dir / (std::string("p") + seeds)).string(),
                              "--seeds", seeds, "--slices", "48", "--negatives", "6", "--no-sizing",
                              "--patch-frames", "rz45,ry45"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto axes = read_npy(dir / "p3" / "patches.npy");
  auto rz = read_npy(dir / "p3" / "patches_rz45.npy");
  auto ry = read_npy(dir / "p3" / "patches_ry45.npy");
  ASSERT_TRUE(axes.ok() && rz.ok() && ry.ok());
  EXPECT_EQ(rz->shape(), axes->shape());
  EXPECT_EQ(ry->shape(), axes->shape());
  // Rotated planes show other pixels (the axial plane turned 45 degrees is not the axial plane).
  EXPECT_NE(std::memcmp(rz->raw(), axes->raw(), axes->nbytes()), 0);
  EXPECT_NE(std::memcmp(ry->raw(), rz->raw(), rz->nbytes()), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "p3" / "patches_rx45.npy"));
  const auto manifest = nlohmann::json::parse(slurp(dir / "p3" / "manifest.json"));
  EXPECT_EQ(manifest["patches"]["extra_frames"], nlohmann::json::array({"rz45", "ry45"}));
  // Merged and packed: each packed row's frames are the export rows' frames.
  const std::string train = std::string(HILUM_SOURCE_DIR) + "/scripts/train/";
  auto merged = test::run_command("/usr/bin/python3", {train + "merge_exports.py", "--out", (dir / "all").string(),
                                                       (dir / "p4").string(), (dir / "p3").string()});
  if (merged.exit_code != 0 && merged.err.find("No module named 'numpy'") != std::string::npos)
    GTEST_SKIP() << "numpy";
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  auto packed = test::run_command("/usr/bin/python3",
                                  {train + "pack_gpu_data.py", "--train", (dir / "all").string(), "--vision-only",
                                   "--raw", "--frames", "--hard", "2", "--easy", "1", "--out", (dir / "gpu").string()});
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  auto check = test::run_command(
      "/usr/bin/python3",
      {"-c",
       "import sys, numpy as np\n"
       "d, g = sys.argv[1], sys.argv[2]\n"
       "l = np.load(g + '/labels.npz')\n"
       "assert list(l['frames']) == ['rz45', 'ry45'], l['frames']\n"
       "shape = tuple(l['shape'])\n"
       "src = {f: np.load(d + '/' + f + '.npy') for f in ('patches', 'patches_rz45', 'patches_ry45')}\n"
       "assert all(a.shape[0] == src['patches'].shape[0] for a in src.values())\n"
       "got = {f: np.fromfile(g + '/' + f + '.u8', dtype=np.uint8).reshape(shape) for f in src}\n"
       "flat = src['patches'].reshape(len(src['patches']), -1)\n"
       "for i, p in enumerate(got['patches']):\n"
       "    j = np.nonzero((flat == p.reshape(-1)).all(1))[0][0]\n"
       "    for f in ('patches_rz45', 'patches_ry45'):\n"
       "        assert (got[f][i] == src[f][j]).all(), (f, i, j)\n"
       "print(len(got['patches']))",
       (dir / "all").string(), (dir / "gpu").string()});
  ASSERT_EQ(check.exit_code, 0) << check.err;
  EXPECT_GT(std::stoi(check.out), 4);
  // Names that are not extra frames are refused before anything is written.
  for (const char* bad : {"axes", "rz30"}) {
    auto r = test::run_hilum({"export-training-set", "--out", (dir / "bad").string(), "--seeds", "3",
                              "--patch-frames", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find(std::string("--patch-frames: '") + bad + "' is not an extra frame"), std::string::npos)
        << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));
  // Packing frames from an export without them is refused.
  auto none = test::run_hilum({"-q", "export-training-set", "--out", (dir / "plain").string(), "--seeds", "3",
                               "--slices", "48", "--negatives", "2", "--no-sizing"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  auto refused = test::run_command("/usr/bin/python3",
                                   {train + "pack_gpu_data.py", "--train", (dir / "plain").string(), "--vision-only",
                                    "--raw", "--frames", "--out", (dir / "gpu2").string()});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("--frames: every --train folder needs the same extra frames"), std::string::npos)
      << refused.err;
}

// The training steps on the export root/name of extra channels: packed alone
// into root/gpu (the result returned), while packing it with root/plain is
// refused because their patches differ in `key`.
test::CommandResult pack_alone(const std::filesystem::path& root, const std::string& name, const std::string& key) {
  const std::string train = std::string(HILUM_SOURCE_DIR) + "/scripts/train/";
  auto packed = test::run_command("/usr/bin/python3", {train + "pack_gpu_data.py", "--train", (root / name).string(),
                                                       "--vision-only", "--raw", "--hard", "3", "--easy", "2",
                                                       "--out", (root / "gpu").string()});
  if (packed.exit_code != 0) return packed;
  auto mixed = test::run_command("/usr/bin/python3", {train + "pack_gpu_data.py", "--train", (root / name).string(),
                                                      (root / "plain").string(), "--vision-only", "--raw", "--out",
                                                      (root / "mixed").string()});
  EXPECT_NE(mixed.exit_code, 0);
  EXPECT_NE(mixed.err.find("the exports' patches differ in " + key), std::string::npos) << mixed.err;
  return packed;
}

// Then (torch needed) a ResNet on all `channels` of root/gpu (root/v<channels>)
// and one on its three base planes (root/v3, --centre-planes), one epoch each;
// their training logs record `log_key` as `value`, and as 0.
void train_on_all_and_base_planes(const std::filesystem::path& root, int channels, const std::string& log_key,
                                  double value) {
  const std::string train = std::string(HILUM_SOURCE_DIR) + "/scripts/train/";
  for (const int c : {channels, 3}) {
    const std::string v = "v" + std::to_string(c);
    std::vector<std::string> args = {train + "train_vision.py", "--data", (root / "gpu").string(), "--out",
                                     (root / v).string(), "--epochs", "1", "--val-seeds", "3"};
    if (c == 3) args.push_back("--centre-planes");
    auto r = test::run_command("/usr/bin/python3", args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto log = nlohmann::json::parse(slurp(root / v / "training_log.json"));
    EXPECT_EQ(log["in_channels"], c);
    EXPECT_EQ(log[log_key], c == 3 ? 0.0 : value);
  }
}

// --patch-slab: nine channels, each plane with its neighbours along its normal;
// the middle channel of each plane is the plain export's plane, row for row.
TEST(ExportTrainingSet, PatchSlabWritesEachPlaneWithItsNeighbours) {
  test::ScratchDir dir;
  auto plain = test::run_hilum({"-q", "export-training-set", "--out", (dir / "plain").string(), "--seeds", "3",
                                "--slices", "48", "--negatives", "6", "--no-sizing"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto slab = test::run_hilum({"-q", "export-training-set", "--out", (dir / "slab").string(), "--seeds", "3",
                               "--slices", "48", "--negatives", "6", "--no-sizing", "--patch-slab", "2",
                               "--patch-frames", "rz45"});
  ASSERT_EQ(slab.exit_code, 0) << slab.err;
  auto p3 = read_npy(dir / "plain" / "patches.npy");
  auto p9 = read_npy(dir / "slab" / "patches.npy");
  auto f9 = read_npy(dir / "slab" / "patches_rz45.npy");
  ASSERT_TRUE(p3.ok() && p9.ok() && f9.ok());
  ASSERT_EQ(p3->rank(), 4);
  ASSERT_GT(p3->dim(0), 6);
  EXPECT_EQ(p9->shape(), (Shape{p3->dim(0), 9, 64, 64}));
  EXPECT_EQ(f9->shape(), p9->shape());
  EXPECT_EQ(slurp(dir / "plain" / "labels.csv"), slurp(dir / "slab" / "labels.csv"));
  const int64_t plane = 64 * 64;
  int differs = 0;
  for (int64_t i = 0; i < p3->dim(0); ++i)
    for (int64_t c = 0; c < 3; ++c) {
      const uint8_t* mid = p9->data<uint8_t>() + (i * 9 + 3 * c + 1) * plane;
      ASSERT_EQ(std::memcmp(mid, p3->data<uint8_t>() + (i * 3 + c) * plane, plane), 0) << "row " << i << " plane " << c;
      differs += std::memcmp(mid - plane, mid, plane) != 0 && std::memcmp(mid + plane, mid, plane) != 0;
    }
  EXPECT_EQ(differs, 3 * p3->dim(0));  // the neighbours 2 mm away show other pixels
  const auto manifest = nlohmann::json::parse(slurp(dir / "slab" / "manifest.json"));
  EXPECT_EQ(manifest["patches"]["slab_mm"], 2.0);
  EXPECT_EQ(manifest["patches"]["channels"],
            nlohmann::json::array({"axial-2mm", "axial", "axial+2mm", "coronal-2mm", "coronal", "coronal+2mm",
                                   "sagittal-2mm", "sagittal", "sagittal+2mm"}));
  EXPECT_EQ(nlohmann::json::parse(slurp(dir / "plain" / "manifest.json"))["patches"]["channels"],
            nlohmann::json::array({"axial", "coronal", "sagittal"}));
  // A slab out of range is refused before anything is written.
  for (const char* bad : {"-1", "25", "nan"}) {
    auto r = test::run_hilum({"export-training-set", "--out", (dir / "bad").string(), "--seeds", "3",
                              "--patch-slab", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--patch-slab"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));

  // The training steps: packed as they are; a ResNet of nine input channels
  // trained on them, one of three on their middle planes (--centre-planes);
  // Hilum's C++ ResNet gives what PyTorch gives for the nine-channel one.
  const std::string train = std::string(HILUM_SOURCE_DIR) + "/scripts/train/";
  auto packed = pack_alone(dir.path(), "slab", "slab_mm");
  if (packed.err.find("No module named 'numpy'") != std::string::npos) GTEST_SKIP() << "numpy";
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  // Weights that are no ResNet are refused by name, before any patch is read.
  const std::string head = std::string(HILUM_SOURCE_DIR) + "/resources/models/fusion/fusion_head.safetensors";
  auto not_resnet = test::run_command("/usr/bin/python3",
                                      {train + "image_tokens.py", "--export", (dir / "slab").string(), "--weights",
                                       head, "--out", (dir / "t.npy").string(), "--hilum", HILUM_CLI});
  EXPECT_NE(not_resnet.exit_code, 0);
  EXPECT_NE(not_resnet.err.find(head + ": no conv1.weight (not a ResNet)"), std::string::npos) << not_resnet.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "t.npy"));
  auto modules = test::run_command("/usr/bin/python3", {"-c", "import torch, torchvision"});
  if (modules.exit_code != 0) GTEST_SKIP() << modules.err;
  train_on_all_and_base_planes(dir.path(), 9, "patch_slab_mm", 2.0);
  if (HasFatalFailure()) return;
  // --centre-planes needs a slab's nine channels.
  auto plain_packed = test::run_command("/usr/bin/python3",
                                        {train + "pack_gpu_data.py", "--train", (dir / "plain").string(),
                                         "--vision-only", "--raw", "--out", (dir / "gpu3").string()});
  ASSERT_EQ(plain_packed.exit_code, 0) << plain_packed.err;
  auto three = test::run_command("/usr/bin/python3", {train + "train_vision.py", "--data", (dir / "gpu3").string(),
                                                      "--out", (dir / "v33").string(), "--epochs", "1",
                                                      "--centre-planes", "--val-seeds", "3"});
  EXPECT_NE(three.exit_code, 0);
  EXPECT_NE(three.err.find("--centre-planes: " + (dir / "gpu3").string() + " has 3-channel patches"),
            std::string::npos)
      << three.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "v33"));
  auto parity = test::run_command(
      "/usr/bin/python3",
      {"-c",
       "import sys, subprocess, numpy as np, torch\n"
       "sys.path.insert(0, sys.argv[1])\n"
       "import st_io\n"
       "from train_vision import make_model, normalise\n"
       "sd = st_io.load_file(sys.argv[2] + '/v9/resnet.safetensors')\n"
       "m = make_model(sd['conv1.weight'].shape[0], sd['conv1.weight'].shape[1]); m.load_state_dict(sd); m.eval()\n"
       "p = np.load(sys.argv[2] + '/slab/patches.npy')[:4]\n"
       "x = normalise(torch.from_numpy(p.copy()))\n"
       "np.save(sys.argv[2] + '/x.npy', x.numpy())\n"
       "subprocess.run([sys.argv[3], '-q', 'resnet', '--weights', sys.argv[2] + '/v9/resnet.safetensors', '--input',\n"
       "                sys.argv[2] + '/x.npy', '--out', sys.argv[2] + '/y.npy', '--device', 'cpu'], check=True)\n"
       "with torch.no_grad(): want = m(x).numpy()\n"
       "got = np.load(sys.argv[2] + '/y.npy')\n"
       "assert got.shape == want.shape == (4, 2), (got.shape, want.shape)\n"
       "print(float(np.abs(got - want).max()))",
       train, dir.path().string(), HILUM_CLI});
  ASSERT_EQ(parity.exit_code, 0) << parity.err;
  EXPECT_LT(std::stod(parity.out), 1e-3) << parity.out;
  // A three-plane export cannot feed the nine-channel net: one line naming the export.
  auto tokens = test::run_command("/usr/bin/python3",
                                  {train + "image_tokens.py", "--export", (dir / "plain").string(), "--weights",
                                   (dir / "v9" / "resnet.safetensors").string(), "--out",
                                   (dir / "tokens.npy").string(), "--hilum", HILUM_CLI});
  EXPECT_NE(tokens.exit_code, 0);
  EXPECT_NE(tokens.err.find((dir / "plain").string() + ": 3-channel patches, but the ResNet takes 9"),
            std::string::npos)
      << tokens.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "tokens.npy"));
}

// --patch-zoom: six channels, each plane at the base spacing (the plain
// export's plane, row for row) and again at the zoom's; the training steps take
// them: packed alone (not with three-plane exports), a six-channel ResNet, or a
// three-channel one on the base planes (--centre-planes), whose zoom shifts
// follow the base ones in mm.
TEST(ExportTrainingSet, PatchZoomWritesEachPlaneAtTwoSpacings) {
  test::ScratchDir dir;
  auto plain = test::run_hilum({"-q", "export-training-set", "--out", (dir / "plain").string(), "--seeds", "3",
                                "--slices", "48", "--negatives", "6", "--no-sizing"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto zoom = test::run_hilum({"-q", "export-training-set", "--out", (dir / "zoom").string(), "--seeds", "3",
                               "--slices", "48", "--negatives", "6", "--no-sizing", "--patch-zoom", "0.35"});
  ASSERT_EQ(zoom.exit_code, 0) << zoom.err;
  auto p3 = read_npy(dir / "plain" / "patches.npy");
  auto p6 = read_npy(dir / "zoom" / "patches.npy");
  ASSERT_TRUE(p3.ok() && p6.ok());
  ASSERT_GT(p3->dim(0), 6);
  EXPECT_EQ(p6->shape(), (Shape{p3->dim(0), 6, 64, 64}));
  EXPECT_EQ(slurp(dir / "plain" / "labels.csv"), slurp(dir / "zoom" / "labels.csv"));
  const int64_t plane = 64 * 64;
  int differs = 0;
  for (int64_t i = 0; i < p3->dim(0); ++i)
    for (int64_t c = 0; c < 3; ++c) {
      const uint8_t* base = p6->data<uint8_t>() + (i * 6 + 2 * c) * plane;
      ASSERT_EQ(std::memcmp(base, p3->data<uint8_t>() + (i * 3 + c) * plane, plane), 0) << "row " << i << " plane " << c;
      differs += std::memcmp(base + plane, base, plane) != 0;
    }
  EXPECT_EQ(differs, 3 * p3->dim(0));  // the zoomed planes show other pixels
  const auto manifest = nlohmann::json::parse(slurp(dir / "zoom" / "manifest.json"));
  EXPECT_EQ(manifest["patches"]["zoom_spacing_mm"], 0.35);
  EXPECT_EQ(manifest["patches"]["channels"],
            nlohmann::json::array({"axial", "axial@0.35mm", "coronal", "coronal@0.35mm", "sagittal",
                                   "sagittal@0.35mm"}));
  // A zoom out of range, or with a slab, is refused before anything is written.
  for (std::vector<std::string> bad : {std::vector<std::string>{"--patch-zoom", "-1"}, {"--patch-zoom", "6"},
                                       {"--patch-zoom", "nan"}, {"--patch-zoom", "0.35", "--patch-slab", "2"}}) {
    std::vector<std::string> args = {"export-training-set", "--out", (dir / "bad").string(), "--seeds", "3"};
    args.insert(args.end(), bad.begin(), bad.end());
    auto r = test::run_hilum(args);
    EXPECT_EQ(r.exit_code, 2) << bad[1];
    EXPECT_NE(r.err.find("--patch-zoom"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad"));

  const std::string train = std::string(HILUM_SOURCE_DIR) + "/scripts/train/";
  auto packed = pack_alone(dir.path(), "zoom", "zoom_spacing_mm");
  if (packed.err.find("No module named 'numpy'") != std::string::npos) GTEST_SKIP() << "numpy";
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  auto modules = test::run_command("/usr/bin/python3", {"-c", "import torch, torchvision"});
  if (modules.exit_code != 0) GTEST_SKIP() << modules.err;
  train_on_all_and_base_planes(dir.path(), 6, "patch_zoom_spacing_mm", 0.35);
  if (HasFatalFailure()) return;
  // The augmentation shifts a zoomed plane twice as many of its (half-size)
  // pixels as its base plane, and keeps each plane's two scales together.
  auto shifts = test::run_command(
      "/usr/bin/python3",
      {"-c",
       "import sys, torch\n"
       "sys.path.insert(0, sys.argv[1])\n"
       "from train_vision import augment\n"
       "x = torch.zeros(64, 6, 16, 16)\n"
       "for c in range(6): x[:, c, 7:9, 7:9] = 1 + c // 2  # centred: flips keep it there\n"
       "g = torch.Generator(); g.manual_seed(7)\n"
       "moved = 0\n"
       "def centre(a):\n"
       "    bg = float(a.min()); m = a > bg + 0.5 * (float(a.max()) - bg)\n"
       "    r, c = torch.nonzero(m, as_tuple=True)\n"
       "    return float(r.float().mean()) - 7.5, float(c.float().mean()) - 7.5\n"
       "for _ in range(20):\n"
       "    y = augment(x, g, max_shift=2, zoom_ratio=2.0)\n"
       "    for i in range(64):\n"
       "        for p in range(3):\n"
       "            a, b = y[i, 2 * p], y[i, 2 * p + 1]\n"
       "            assert abs(float(a.max()) - float(b.max())) < 1e-5, (i, p)  # one plane's two scales\n"
       "            (ra, ca), (rb, cb) = centre(a), centre(b)\n"
       "            assert abs(rb - 2 * ra) < 1e-6 and abs(cb - 2 * ca) < 1e-6, (ra, ca, rb, cb)\n"
       "            moved += ra != 0 or ca != 0\n"
       "assert moved > 100, moved\n"
       "print(moved)\n",
       train});
  ASSERT_EQ(shifts.exit_code, 0) << shifts.err;
}

// The frame steps refuse data without the frames they need, each in one line
// naming what is missing, before they write anything.
TEST(ExportTrainingSet, FrameStepsRefuseDataWithoutFrames) {
  test::ScratchDir dir;
  // The demo bundle's patches (two spacings), so that its image branch reads them below.
  auto framed = test::run_hilum({"-q", "export-training-set", "--out", (dir / "p3").string(), "--seeds", "3",
                                 "--slices", "48", "--negatives", "2", "--no-sizing", "--patch-frames", "rz45",
                                 "--patch-zoom", "0.35"});
  ASSERT_EQ(framed.exit_code, 0) << framed.err;
  auto plain = test::run_hilum({"-q", "export-training-set", "--out", (dir / "p4").string(), "--seeds", "4",
                                "--slices", "48", "--negatives", "2", "--no-sizing", "--patch-zoom", "0.35"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const std::string src = HILUM_SOURCE_DIR;
  const std::string train = src + "/scripts/train/";
  // install_frames.sh: a results folder without the variant's files (nothing is installed).
  auto install = test::run_command("/bin/bash", {src + "/scripts/train/install_frames.sh", (dir / "none").string(),
                                                 "f120", (dir / "p3").string()});
  EXPECT_EQ(install.exit_code, 2);
  EXPECT_NE(install.err.find("install_frames: " + (dir / "none").string() + " has no f120-resnet.safetensors"),
            std::string::npos)
      << install.err;
  // merge_exports.py: a later part without the first part's frame array.
  auto merged = test::run_command("/usr/bin/python3", {train + "merge_exports.py", "--out", (dir / "all").string(),
                                                       (dir / "p3").string(), (dir / "p4").string()});
  if (merged.err.find("No module named 'numpy'") != std::string::npos) GTEST_SKIP() << "numpy";
  EXPECT_NE(merged.exit_code, 0);
  EXPECT_NE(merged.err.find("p4: patches_rz45.npy is missing (the first part has it)"), std::string::npos)
      << merged.err;
  auto packed = test::run_command("/usr/bin/python3", {train + "pack_gpu_data.py", "--train", (dir / "p4").string(),
                                                       "--vision-only", "--raw", "--out", (dir / "gpu").string()});
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  // The Python training steps need torch, torchvision and regex (python3-torch, python3-torchvision,
  // python3-regex; not on the CI machine).
  auto modules = test::run_command("/usr/bin/python3", {"-c", "import torch, torchvision, regex"});
  if (modules.exit_code != 0) GTEST_SKIP() << modules.err;
  auto vision =
      test::run_command("/usr/bin/python3", {train + "train_vision.py", "--data", (dir / "gpu").string(),
                                             "--out", (dir / "v").string(), "--frames", "--epochs", "1"});
  EXPECT_NE(vision.exit_code, 0);
  EXPECT_NE(vision.err.find("no extra frames packed (pack_gpu_data.py --frames)"), std::string::npos) << vision.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "v"));
  // A scratch bundle with the demo bundle's image branch and head.
  const auto bundle = dir / "bundle";
  std::filesystem::create_directories(bundle);
  for (const char* part : {"vision", "fusion"})
    std::filesystem::copy(src + "/resources/models/" + part, bundle / part,
                          std::filesystem::copy_options::recursive);
  auto fusion = test::run_command("/usr/bin/python3",
                                  {train + "train_fusion.py", "--data", (dir / "p3").string(), "--export",
                                   (dir / "p3").string(), "--bundle", bundle.string(), "--frames", "--tokens",
                                   (dir / "tokens.npy").string(), "--val-seeds", "3"});
  EXPECT_NE(fusion.exit_code, 0);
  EXPECT_NE(fusion.err.find("--frames needs --export (with its patches_<frame>.npy) and no --tokens"),
            std::string::npos)
      << fusion.err;
  // The juxtavascular weight needs the export's nodules.csv, and a positive weight.
  for (const auto& [w, message] : std::vector<std::pair<std::string, std::string>>{
           {"4",
            "--juxtavascular-weight needs --export (its nodules.csv says which nodules are juxtavascular)"},
           {"0", "--juxtavascular-weight 0.0: must be above 0"}}) {
    auto weighted =
        test::run_command("/usr/bin/python3", {train + "train_fusion.py", "--data", (dir / "p3").string(),
                                               "--bundle", bundle.string(), "--juxtavascular-weight", w});
    EXPECT_NE(weighted.exit_code, 0);
    EXPECT_NE(weighted.err.find(message), std::string::npos) << weighted.err;
  }
  auto views = test::run_command("/usr/bin/python3",
                                 {train + "patch_views.py", "--export", (dir / "p4").string(), "--bundle",
                                  bundle.string(), "--views", "identity,rz45", "--val-seeds", "4", "--report-only",
                                  "--hilum", HILUM_CLI});
  EXPECT_NE(views.exit_code, 0);
  EXPECT_NE(views.err.find("view rz45: " + (dir / "p4").string() + "/patches_rz45.npy is missing"),
            std::string::npos)
      << views.err;
}

}  // namespace
}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
