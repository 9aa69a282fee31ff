// `hilum batch`: many studies, one output folder per study, resumable and
// shardable. Imaging builds only. See docs/batch.md.
//
// Input: a folder whose subfolders are the studies (hidden ones skipped), or a
// list file with one study path per line (blank lines and # comments skipped;
// relative paths are relative to the list file). A study's name is its
// folder's name; names must be unique. Studies are sorted by name (byte order)
// and shard I of N takes those at positions i with i % N == I.
//
// Output (the contract `hilum eval batch` reads, docs/evaluation.md):
//   OUT/<study>/findings.json, candidates.csv, report.pdf, report-sr.dcm, done.json
//   OUT/<study>/failed.json     instead, when the study failed (the message; no PHI)
//   OUT/<study>/stored.json     when a BatchSource delivered the results (or failed to)
//   OUT/summary.csv             study,status,findings,lung_rads,impression,series_uid,stored,message
//   OUT/candidates.csv          every study's candidates (LUNA16), in study order
// A study is built in OUT/.partial-<study>.<pid>/ and renamed into place;
// done.json is its last file. --resume skips studies with done.json. The two
// run-wide files are rebuilt from the per-study folders at the end of every
// run (under a lock on OUT/.batch.lock), so shards and resumed runs end with
// the same files as one uninterrupted run. Outputs carry no timestamps.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/analyze.h"
#include "app/narrative.h"
#include "model/progress.h"
#include "model/result.h"

namespace hilum {

struct BatchStudy {
  std::string name;            // output folder name
  std::filesystem::path path;  // the study's folder (or file)
};

struct Shard {
  int index = 0;
  int count = 1;
};

// "I/N" with 0 <= I < N; kBadInput otherwise ("--shard must be I/N ...").
Result<Shard> parse_shard(const std::string& text);

// The studies of `input` (folder or list file), sorted by name. kBadInput when
// the input is missing, lists no study, or two studies share a name.
Result<std::vector<BatchStudy>> list_batch_studies(const std::filesystem::path& input);

// Creates `out` when missing and checks that files can be written there;
// kBadInput naming the folder otherwise.
Status check_output_folder(const std::filesystem::path& out);

// Positions i % count == index of the sorted list.
std::vector<BatchStudy> shard_studies(const std::vector<BatchStudy>& studies, const Shard& shard);

// The studies whose name hashes (64-bit FNV-1a) to shard.index modulo
// shard.count: a study's shard does not depend on the rest of the list.
std::vector<BatchStudy> shard_studies_by_name(const std::vector<BatchStudy>& studies, const Shard& shard);

// The clinical text of a study: <study>/<sidecar_name>, else <study>.txt beside
// the study folder, else the TEXT content items of a DICOM SR in the study
// (not one written by Hilum; app/clinical_text.h), else empty. kBadInput for a sidecar that is not
// UTF-8 text.
Result<std::string> find_clinical_text(const std::filesystem::path& study, const std::string& sidecar_name);

// Where the results of a study went, as a BatchSource's deliver() reports it.
struct Delivery {
  std::string destination;         // e.g. "ORTHANC@pacs:4242" (no patient data)
  std::vector<std::string> files;  // the files sent, named relative to OUT/<study>/
};

// Studies that are not folders on disk yet, and a place their results go next
// (`hilum batch --from-pacs`, app/pacs_batch.h). Each hook may be empty; hooks
// run on the worker thread of the study and must be safe to call from several
// at once.
//
// A run with a source shards by a hash of the study name (not by position), so
// that shards agree on who does what even when their lists differ a little
// (a PACS that gains a study between the shards' queries).
struct BatchSource {
  std::vector<BatchStudy> studies;  // the run's studies; names unique

  // Makes the study's images available and returns the folder to analyse. An
  // error fails the study, recorded as "retrieve: <message>".
  std::function<Result<std::filesystem::path>(const BatchStudy& study, Progress& progress)> fetch;
  // After the analysis of a fetched study (`analysed`: whether it succeeded).
  std::function<void(const BatchStudy& study, bool analysed)> release;
  // Sends a finished study's outputs (the folder OUT/<study>/) on. The outcome
  // is recorded in OUT/<study>/stored.json and the `stored` column of
  // summary.csv; an error is "store: <message>" and counts as a failure, but
  // the study's outputs stay. With --resume, a finished study whose results
  // were not delivered yet is delivered without being analysed again.
  std::function<Result<Delivery>(const BatchStudy& study, const std::filesystem::path& study_out,
                                 Progress& progress)>
      deliver;
};

struct BatchOptions {
  std::filesystem::path input;  // ignored when `source` is set
  std::shared_ptr<const BatchSource> source;
  std::filesystem::path out;
  Shard shard;
  bool resume = false;
  int jobs = 1;
  std::string clinical_text_name = "clinical.txt";
  bool no_clinical_text = false;  // every study's text branch sees an empty note
  bool summary_only = false;  // only rebuild summary.csv and candidates.csv
};

struct BatchOutcome {
  int studies = 0;    // in this shard
  int succeeded = 0;  // processed now
  int skipped = 0;    // already done (--resume)
  int failed = 0;
  int stored = 0;                     // results delivered now (BatchSource::deliver)
  int store_failed = 0;               // deliveries that failed (their studies are analysed)
  std::vector<std::string> failures;  // "<study>: <message>", store failures included
};

// Progress lines ("[3/8] study ok ... ETA 0:21") go to `log` when set.
using BatchLog = std::function<void(const std::string& line)>;

// Runs the batch. Errors (kBadInput) only for the run as a whole: unreadable
// input, an output folder that cannot be created or written. A study that
// fails is recorded (failed.json, summary.csv) and the batch goes on. A source
// with no studies is a run with nothing to do (empty tables), not an error.
Result<BatchOutcome> run_batch(const BatchOptions& options, const StudyAnalyzer& analyzer,
                               const ImpressionDrafter* drafter, Progress& progress,
                               const BatchLog& log = nullptr);

// Rebuilds OUT/summary.csv and OUT/candidates.csv from the per-study folders
// of `studies` (all shards). Callers hold the lock on OUT/.batch.lock (run_batch
// does); stale temporary files of a killed run are removed.
Status write_batch_summary(const std::filesystem::path& out, const std::vector<BatchStudy>& studies);

}  // namespace hilum
