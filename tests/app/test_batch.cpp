// `hilum batch` end to end on phantom studies with a tiny random model bundle:
// per-study outputs, failures recorded while the batch goes on, summary.csv and
// the combined candidates.csv, `hilum eval batch` on the output, shards, and a
// run killed with SIGKILL at several points and resumed, compared byte for
// byte with an uninterrupted run. Plus the library parts (shards, study lists,
// clinical text sources) and the bad-argument exits.
#if HILUM_HAVE_IMAGING && defined(HILUM_CLI)
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "app/batch.h"
#include "app/csv.h"
#include "model/file_io.h"
#include "tests/app/report_fixture.h"
#include "tests/support/test_support.h"

extern char** environ;

namespace hilum {
namespace {

namespace fs = std::filesystem;

// Shared inputs of the suite: phantom studies, a broken and an empty study,
// the tiny bundle and the truth table, made once per test process.
class BatchRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("hilum_batch_suite_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_ / "in");
    std::string truth;
    for (int seed : {12, 14}) {
      const fs::path study = *root_ / "in" / ("study" + std::to_string(seed));
      auto r = test::run_hilum({"-q", "phantom", "--out", study.string(), "--seed", std::to_string(seed),
                                "--slices", "30", "--nodules", "3"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const std::string t = *read_file(study / "truth.csv");
      truth += truth.empty() ? t : t.substr(t.find('\n') + 1);
    }
    (void)write_file_atomic(*root_ / "truth.csv", truth);
    fs::create_directories(*root_ / "in" / "broken");
    (void)write_file_atomic(*root_ / "in" / "broken" / "IM00001.dcm", "this is not DICOM");
    fs::create_directories(*root_ / "in" / "empty");
    test::TinyBundleOptions b;
    b.nodule_bias = 8;
    b.head_std = 4;
    test::write_tiny_bundle(*root_ / "bundle", b);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete root_;
  }

  static std::vector<std::string> batch_args(const fs::path& out) {
    return {"-q",
            "batch",
            "--input",
            (*root_ / "in").string(),
            "--out",
            out.string(),
            "--model-bundle",
            (*root_ / "bundle").string(),
            "--min-probability",
            "0",
            "--max-findings",
            "1"};
  }
  static fs::path root() { return *root_; }

  static fs::path* root_;
};
fs::path* BatchRun::root_ = nullptr;

// Every file under `dir` (relative path -> bytes), without the lock file.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), dir).string();
    if (rel == ".batch.lock") continue;
    out[rel] = *read_file(e.path());
  }
  return out;
}

void expect_same_tree(const fs::path& a, const fs::path& b) {
  const auto ta = tree(a), tb = tree(b);
  std::vector<std::string> na, nb;
  for (const auto& [k, v] : ta) na.push_back(k);
  for (const auto& [k, v] : tb) nb.push_back(k);
  ASSERT_EQ(na, nb);
  for (const auto& [k, v] : ta) EXPECT_TRUE(v == tb.at(k)) << k << " differs";
}

// Starts `hilum args...` as a child process (output discarded).
pid_t spawn_hilum(const std::vector<std::string>& args) {
  std::vector<std::string> all = {HILUM_CLI};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, HILUM_CLI, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Waits until `ready()` holds (or the child exits, or 60 s pass), then SIGKILLs the child.
void kill_when(pid_t pid, const std::function<bool()>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return;  // finished before the kill
    if (ready()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

bool has_partial(const fs::path& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    if (e.path().filename().string().rfind(".partial-", 0) == 0) return true;
  }
  return false;
}

TEST_F(BatchRun, WritesEveryStudyRecordsFailuresAndFeedsEval) {
  test::ScratchDir d;
  auto r = test::run_hilum(batch_args(d / "out"));
  // Two studies fail (no DICOM), the others are written: exit status 3.
  ASSERT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("broken"), std::string::npos);
  for (const char* s : {"study12", "study14"}) {
    for (const char* f : {"findings.json", "candidates.csv", "report.pdf", "report-sr.dcm", "done.json"}) {
      EXPECT_TRUE(fs::is_regular_file(d / "out" / s / f)) << s << "/" << f;
    }
    EXPECT_FALSE(fs::exists(d / "out" / s / "failed.json"));
  }
  for (const char* s : {"broken", "empty"}) {
    EXPECT_TRUE(fs::is_regular_file(d / "out" / s / "failed.json")) << s;
    EXPECT_FALSE(fs::exists(d / "out" / s / "findings.json")) << s;
  }
  EXPECT_FALSE(has_partial(d / "out"));

  auto summary = read_csv(d / "out" / "summary.csv");
  ASSERT_TRUE(summary.ok()) << summary.error().message();
  ASSERT_EQ(summary->size(), 4u);
  const size_t status = *summary->column("status"), study = *summary->column("study");
  const size_t message = *summary->column("message"), findings = *summary->column("findings");
  std::map<std::string, std::string> by_study;
  for (size_t i = 0; i < summary->size(); ++i) by_study[summary->text(i, study)] = summary->text(i, status);
  EXPECT_EQ(by_study["study12"], "ok");
  EXPECT_EQ(by_study["study14"], "ok");
  EXPECT_EQ(by_study["broken"], "failed");
  EXPECT_EQ(by_study["empty"], "failed");
  EXPECT_NE(summary->text(0, message).find("no DICOM"), std::string::npos);  // "broken" sorts first
  EXPECT_EQ(summary->text(2, findings), "1");

  // The combined candidates.csv holds every study's rows.
  auto all = read_csv(d / "out" / "candidates.csv");
  ASSERT_TRUE(all.ok());
  size_t rows = 0;
  for (const char* s : {"study12", "study14"}) rows += read_csv(d / "out" / s / "candidates.csv")->size();
  EXPECT_EQ(all->size(), rows);
  EXPECT_GT(rows, 0u);

  // `hilum eval batch` reads the batch folder as it is.
  auto ev = test::run_hilum({"-q", "eval", "batch", "--batch", (d / "out").string(), "--truth",
                             (root() / "truth.csv").string(), "--out", (d / "eval").string()});
  ASSERT_EQ(ev.exit_code, 0) << ev.err;
  const auto metrics = nlohmann::json::parse(*read_file(d / "eval" / "metrics.json"));
  EXPECT_EQ(metrics["batch"]["studies"], 2);
  EXPECT_EQ(metrics["batch"]["marks_source"], "candidates.csv");
  EXPECT_EQ(metrics["detection"]["nodules_total"], 6);
  EXPECT_EQ(metrics["malignancy"]["n_positive"], 4);

  // --resume on a finished run does nothing new and leaves identical files.
  const auto before = tree(d / "out");
  auto again = test::run_hilum([&] {
    auto a = batch_args(d / "out");
    a.push_back("--resume");
    return a;
  }());
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_TRUE(before == tree(d / "out"));
}

TEST_F(BatchRun, KilledAtAnyPointAndResumedEqualsAnUninterruptedRun) {
  test::ScratchDir d;
  ASSERT_EQ(test::run_hilum(batch_args(d / "whole")).exit_code, 3);

  const fs::path out = d / "killed";
  auto resume_args = batch_args(out);
  resume_args.push_back("--resume");
  // 1: killed while the first study is being written.
  pid_t pid = spawn_hilum(batch_args(out));
  ASSERT_GT(pid, 0);
  kill_when(pid, [&] { return has_partial(out); });
  // 2: killed just after a study was published.
  pid = spawn_hilum(resume_args);
  ASSERT_GT(pid, 0);
  kill_when(pid, [&] {
    int done = 0;
    for (const char* s : {"study12", "study14"}) done += fs::exists(out / s / "done.json") ? 1 : 0;
    return done >= 1;
  });
  // 3: killed after a short while, wherever it is.
  pid = spawn_hilum(resume_args);
  ASSERT_GT(pid, 0);
  kill_when(pid, [start = std::chrono::steady_clock::now()] {
    return std::chrono::steady_clock::now() - start > std::chrono::milliseconds(700);
  });
  // Then to the end.
  auto last = test::run_hilum(resume_args);
  EXPECT_EQ(last.exit_code, 3) << last.err;
  EXPECT_FALSE(has_partial(out));
  expect_same_tree(d / "whole", out);
}

TEST_F(BatchRun, ShardsTogetherEqualOneRun) {
  test::ScratchDir d;
  auto whole = batch_args(d / "whole");
  whole.insert(whole.end(), {"--jobs", "2"});  // and two studies at a time give the same files
  ASSERT_EQ(test::run_hilum(whole).exit_code, 3);
  // Shard 0 of 2 takes broken and study12 (positions 0 and 2); shard 1 empty and study14.
  auto s0 = batch_args(d / "sharded");
  s0.insert(s0.end(), {"--shard", "0/2"});
  auto r0 = test::run_hilum(s0);
  EXPECT_EQ(r0.exit_code, 3);  // "broken" fails in this shard
  auto summary = read_csv(d / "sharded" / "summary.csv");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->text(1, 1), "pending");  // "empty" belongs to shard 1
  EXPECT_FALSE(fs::exists(d / "sharded" / "study14"));
  auto s1 = batch_args(d / "sharded");
  s1.insert(s1.end(), {"--shard", "1/2"});
  EXPECT_EQ(test::run_hilum(s1).exit_code, 3);  // "empty" fails here
  expect_same_tree(d / "whole", d / "sharded");
  // --summary-only rebuilds the same run-wide files without models.
  fs::remove(d / "sharded" / "summary.csv");
  auto so = test::run_hilum({"-q", "batch", "--input", (root() / "in").string(), "--out",
                             (d / "sharded").string(), "--summary-only"});
  EXPECT_EQ(so.exit_code, 0) << so.err;
  expect_same_tree(d / "whole", d / "sharded");
}

TEST_F(BatchRun, ListFileInputAndAllStudiesOk) {
  test::ScratchDir d;
  std::ofstream(d / "list.txt") << "# two studies\n"
                                << (root() / "in" / "study12").string() << "\n\n"
                                << fs::relative(root() / "in" / "study14", d.path()).string() << "/\n";
  auto args = batch_args(d / "out");
  args[3] = (d / "list.txt").string();
  args.insert(args.end(), {"--jobs", "2"});
  auto r = test::run_hilum(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(d / "out" / "study12" / "done.json"));
  EXPECT_TRUE(fs::exists(d / "out" / "study14" / "done.json"));
  EXPECT_EQ(read_csv(d / "out" / "summary.csv")->size(), 2u);
}

TEST_F(BatchRun, BadArgumentsExit2AndWriteNothing) {
  test::ScratchDir d;
  auto with = [&](std::vector<std::string> extra, const fs::path& out) {
    auto a = batch_args(out);
    a.insert(a.end(), extra.begin(), extra.end());
    return test::run_hilum(a);
  };
  for (const std::string shard : {"2/2", "1", "a/b", "-1/2", "0/0", "1/2/3", ""}) {
    auto r = with({"--shard", shard}, d / "o1");
    EXPECT_EQ(r.exit_code, 2) << shard;
    EXPECT_NE(r.err.find("--shard"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(d / "o1"));
  EXPECT_EQ(with({"--jobs", "0"}, d / "o2").exit_code, 2);
  // Output under a regular file: not creatable.
  std::ofstream(d / "file") << "x";
  auto r = with({}, d / "file" / "out");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("output folder"), std::string::npos) << r.err;
  // Missing input, missing bundle.
  auto a = batch_args(d / "o3");
  a[3] = (d / "missing").string();
  EXPECT_EQ(test::run_hilum(a).exit_code, 2);
  a = batch_args(d / "o3");
  a[7] = (d / "nobundle").string();
  r = test::run_hilum(a);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("manifest.json"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "o3"));     // the folder this run created is gone again
  a.erase(a.begin() + 6, a.begin() + 8);  // no --model-bundle: $HILUM_MODEL_BUNDLE (before the demo bundle)
  r = test::run_command("/usr/bin/env", [&] {
    std::vector<std::string> v = {"HILUM_MODEL_BUNDLE=" + (d / "envbundle").string(), HILUM_CLI};
    v.insert(v.end(), a.begin(), a.end());
    return v;
  }());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("envbundle"), std::string::npos) << r.err;
  // Two studies with one name in a list file.
  std::ofstream(d / "dup.txt") << (root() / "in" / "study12").string() << "\n"
                               << (d / "x" / "study12").string() << "\n";
  a = batch_args(d / "o4");
  a[3] = (d / "dup.txt").string();
  r = test::run_hilum(a);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("two studies"), std::string::npos) << r.err;
}

TEST_F(BatchRun, AnalyzeWritesTheFourFilesAndRefusesBadInput) {
  test::ScratchDir d;
  const std::string bundle = (root() / "bundle").string();
  auto r =
      test::run_hilum({"-q", "analyze", (root() / "in" / "study12").string(), "--out", (d / "out").string(),
                       "--model-bundle", bundle, "--min-probability", "0", "--max-findings", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 finding"), std::string::npos) << r.out;
  for (const char* f : {"findings.json", "candidates.csv", "report.pdf", "report-sr.dcm"}) {
    EXPECT_TRUE(fs::is_regular_file(d / "out" / f)) << f;
  }
  const auto doc = read_findings_json(d / "out" / "findings.json");
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(doc->clinical_text_used);  // the phantom's clinical.txt was found
  EXPECT_EQ(doc->model_bundle, "hilum-test-tiny 1");
  // The rule that chose the findings travels with them.
  ASSERT_TRUE(doc->reporting.has_value());
  EXPECT_EQ(doc->reporting->min_probability, 0.0);
  EXPECT_EQ(doc->reporting->max_findings, 1);
  EXPECT_EQ(doc->reporting->min_long_axis_mm, 3.0);
  // The same as the batch writes for that study.
  auto b = test::run_hilum(batch_args(d / "batch"));
  ASSERT_EQ(b.exit_code, 3);
  for (const char* f : {"findings.json", "candidates.csv", "report.pdf", "report-sr.dcm"}) {
    EXPECT_TRUE(*read_file(d / "out" / f) == *read_file(d / "batch" / "study12" / f)) << f;
  }
  // Bad input: exit 2, nothing written.
  std::ofstream(d / "bad.txt") << std::string("\xfe\xff");
  r = test::run_hilum({"-q", "analyze", (root() / "in" / "study12").string(), "--out", (d / "o2").string(),
                       "--model-bundle", bundle, "--clinical-text", (d / "bad.txt").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("UTF-8"), std::string::npos) << r.err;
  r = test::run_hilum({"-q", "analyze", (root() / "in" / "broken").string(), "--out", (d / "o3").string(),
                       "--model-bundle", bundle});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no DICOM"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "o3"));
}

// ---- library parts ------------------------------------------------------------

TEST(Batch, ParseShard) {
  EXPECT_EQ(parse_shard("0/1")->count, 1);
  EXPECT_EQ(parse_shard("7/8")->index, 7);
  for (const char* bad : {"8/8", "x/2", "1/", "/2", "1/0", "+1/2", "1 /2", "1/2/3", "99999999/100000000"}) {
    EXPECT_FALSE(parse_shard(bad).ok()) << bad;
  }
}

TEST(Batch, ShardsPartitionTheSortedList) {
  std::vector<BatchStudy> all;
  for (int i = 0; i < 10; ++i) all.push_back({"s" + std::to_string(i), {}});
  std::vector<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    for (const auto& s : shard_studies(all, {i, 3})) seen.push_back(s.name);
  }
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), 10u);
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
  EXPECT_EQ(shard_studies(all, {1, 3}).front().name, "s1");
  EXPECT_EQ(shard_studies(all, {1, 3})[1].name, "s4");
}

TEST(Batch, ListingSkipsHiddenFoldersAndFiles) {
  test::ScratchDir d;
  for (const char* s : {"b", "a", ".hidden"}) fs::create_directories(d / "in" / s);
  std::ofstream(d / "in" / "notes.txt") << "x";
  auto l = list_batch_studies(d / "in");
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].name, "a");
  EXPECT_EQ((*l)[1].name, "b");
  fs::create_directories(d / "none");
  EXPECT_FALSE(list_batch_studies(d / "none").ok());
}

TEST(Batch, ClinicalTextSources) {
  test::ScratchDir d;
  fs::create_directories(d / "s1");
  std::ofstream(d / "s1" / "clinical.txt") << "Sidecar note.";
  EXPECT_EQ(*find_clinical_text(d / "s1", "clinical.txt"), "Sidecar note.");
  fs::create_directories(d / "s2");
  std::ofstream(d / "s2.txt") << "Beside the folder.";
  EXPECT_EQ(*find_clinical_text(d / "s2", "clinical.txt"), "Beside the folder.");
  fs::create_directories(d / "s3");
  std::ofstream(d / "s3" / "clinical.txt") << std::string("bad \xff byte");
  auto bad = find_clinical_text(d / "s3", "clinical.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(bad.error().message().find("UTF-8"), std::string::npos);
  // A DICOM SR with a text item in the study folder.
  fs::create_directories(d / "s4" / "sr");
  DSRDocument doc(DSRTypes::DT_BasicTextSR);
  doc.createNewDocument(DSRTypes::DT_BasicTextSR);
  doc.getTree().addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
  doc.getTree().getCurrentContentItem().setConceptName(
      DSRCodedEntryValue("18748-4", "LN", "Diagnostic imaging report"));
  doc.getTree().addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, DSRTypes::AM_belowCurrent);
  doc.getTree().getCurrentContentItem().setConceptName(DSRCodedEntryValue("121060", "DCM", "History"));
  doc.getTree().getCurrentContentItem().setStringValue("Ex-smoker, 30 pack-years.");
  DcmFileFormat ff;
  ASSERT_TRUE(doc.write(*ff.getDataset()).good());
  ASSERT_TRUE(ff.saveFile((d / "s4" / "sr" / "note.dcm").c_str(), EXS_LittleEndianExplicit).good());
  EXPECT_EQ(*find_clinical_text(d / "s4", "clinical.txt"), "Ex-smoker, 30 pack-years.");
  // Nothing: empty text.
  fs::create_directories(d / "s5");
  EXPECT_EQ(*find_clinical_text(d / "s5", "clinical.txt"), "");
}

}  // namespace
}  // namespace hilum

#endif
