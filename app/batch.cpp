#include "app/batch.h"

#if HILUM_HAVE_IMAGING

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "app/clinical_text.h"
#include "model/file_io.h"
#include "model/stopwatch.h"
#include "model/tokenizer.h"

namespace hilum {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string clock_text(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

// The per-study slice of the run's progress: cancellation only.
class StudyProgress final : public Progress {
 public:
  explicit StudyProgress(Progress& parent) : parent_(parent) {}
  void report(double, std::string_view) override {}
  bool cancelled() const override { return parent_.cancelled(); }

 private:
  Progress& parent_;
};

enum class Stored { kNotAsked, kYes, kFailed };

struct StudyResult {
  bool ok = false;
  bool cancelled = false;
  std::string message;
  int findings = 0;
  std::string lung_rads;
  Stored stored = Stored::kNotAsked;
  std::string store_message;
};

Status write_json(const fs::path& path, const nlohmann::ordered_json& j) {
  return write_file_atomic(path, j.dump(2) + "\n");
}

void remove_partials(const fs::path& out, const std::string& name) {
  std::error_code ec;
  const std::string prefix = ".partial-" + name + ".";
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string f = e.path().filename().string();
    if (f.size() > prefix.size() && f.compare(0, prefix.size(), prefix) == 0 &&
        std::all_of(f.begin() + static_cast<long>(prefix.size()), f.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      fs::remove_all(e.path(), ec);
    }
  }
}

// Moves the finished folder into place (replacing an earlier attempt).
Status publish(const fs::path& tmp, const fs::path& dest) {
  std::error_code ec;
  fs::remove_all(dest, ec);
  if (ec) return internal_error(dest.string() + ": cannot replace the earlier output (" + ec.message() + ")");
  fs::rename(tmp, dest, ec);
  if (ec)
    return internal_error(dest.string() + ": cannot move the study's output into place (" + ec.message() +
                          ")");
  return Status::Ok();
}

// Whether OUT/<study>/stored.json records a successful delivery.
bool delivered(const fs::path& study_out) {
  std::error_code ec;
  if (!fs::is_regular_file(study_out / "stored.json", ec)) return false;
  auto text = read_file(study_out / "stored.json");
  if (!text.ok()) return false;
  const auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.value("stored", "") == "yes";
}

// Analyses one study into OUT/<study>/ (fetching it first when the source
// says how), or records its failure there.
StudyResult analyse_study(const BatchStudy& study, const BatchOptions& o, const StudyAnalyzer& analyzer,
                          const ImpressionDrafter* drafter, int decode_threads, Progress& progress) {
  StudyResult r;
  remove_partials(o.out, study.name);
  const fs::path tmp = o.out / (".partial-" + study.name + "." + std::to_string(::getpid()));
  const fs::path dest = o.out / study.name;
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) {
    r.message = tmp.string() + ": cannot create (" + ec.message() + ")";
    return r;
  }
  StudyProgress sp(progress);
  const BatchSource* source = o.source.get();
  bool fetched = false;
  const char* stage = "analysis";
  auto run = [&]() -> Status {
    fs::path input = study.path;
    if (source && source->fetch) {
      stage = "retrieve";
      auto got = source->fetch(study, sp);
      if (!got.ok()) {
        if (got.error().kind() == ErrorKind::kCancelled) return got.error();
        return Error(got.error().kind(), "retrieve: " + got.error().message());
      }
      input = *got;
      fetched = true;
      stage = "analysis";
    }
    if (!fs::exists(input, ec)) return bad_input(input.string() + ": no such study folder or file");
    std::string note;
    if (!o.no_clinical_text) {
      HILUM_ASSIGN_OR_RETURN(note, find_clinical_text(input, o.clinical_text_name));
    }
    AnalyzeRequest request;
    request.inputs = {input};
    request.clinical_text = note;
    request.threads = decode_threads;
    HILUM_ASSIGN_OR_RETURN(StudyAnalysis analysis, analyzer(request, sp));
    const Narrative narrative = write_impression(analysis.findings, drafter, &sp);
    if (progress.cancelled()) return cancelled_error();
    HILUM_ASSIGN_OR_RETURN(StudyReportFiles files, write_study_reports(analysis, narrative, tmp));
    nlohmann::ordered_json done;
    done["study"] = study.name;
    done["status"] = "ok";
    done["series_uid"] = analysis.findings.series_uid;
    done["findings"] = analysis.findings.findings.size();
    done["lung_rads"] = analysis.findings.lung_rads_study;
    done["impression"] = narrative.source == Narrative::Source::kModel ? "model" : "template";
    done["impression_note"] = narrative.note;
    done["files"] = files.pdf_written
                        ? nlohmann::ordered_json::array(
                              {"findings.json", "candidates.csv", "report-sr.dcm", "report.pdf"})
                        : nlohmann::ordered_json::array({"findings.json", "candidates.csv", "report-sr.dcm"});
    HILUM_RETURN_IF_ERROR(write_json(tmp / "done.json", done));  // last: the completion marker
    r.findings = static_cast<int>(analysis.findings.findings.size());
    r.lung_rads = analysis.findings.lung_rads_study;
    return Status::Ok();
  };
  const Status s = run();
  if (fetched && source->release) source->release(study, s.ok());
  if (s.ok()) {
    const Status moved = publish(tmp, dest);
    r.ok = moved.ok();
    if (!moved.ok()) r.message = moved.error().message();
    return r;
  }
  fs::remove_all(tmp, ec);
  if (s.error().kind() == ErrorKind::kCancelled) {
    r.cancelled = true;
    r.message = "cancelled";
    return r;
  }
  r.message = s.error().message();
  // Record the failure (and drop any earlier output of the study).
  fs::create_directories(tmp, ec);
  nlohmann::ordered_json failed;
  failed["study"] = study.name;
  failed["status"] = "failed";
  failed["stage"] = stage;
  failed["error"] = s.error().kind() == ErrorKind::kBadInput || s.error().kind() == ErrorKind::kUnsupported
                        ? "bad input"
                        : "internal";
  failed["message"] = r.message;
  if (write_json(tmp / "failed.json", failed).ok()) (void)publish(tmp, dest);
  fs::remove_all(tmp, ec);
  return r;
}

// Sends the study's finished outputs on and records the outcome in stored.json.
void deliver_study(const BatchStudy& study, const BatchOptions& o, Progress& progress, StudyResult& r) {
  const fs::path dest = o.out / study.name;
  StudyProgress sp(progress);
  auto sent = o.source->deliver(study, dest, sp);
  if (!sent.ok() && sent.error().kind() == ErrorKind::kCancelled) {
    r.cancelled = true;
    r.message = "cancelled";
    return;
  }
  nlohmann::ordered_json record;
  record["study"] = study.name;
  if (sent.ok()) {
    record["stored"] = "yes";
    record["destination"] = sent->destination;
    record["files"] = sent->files;
    r.stored = Stored::kYes;
  } else {
    record["stored"] = "failed";
    record["message"] = "store: " + sent.error().message();
    r.stored = Stored::kFailed;
    r.store_message = record["message"].get<std::string>();
  }
  const Status written = write_json(dest / "stored.json", record);
  if (!written.ok() && r.stored == Stored::kYes) {
    r.stored = Stored::kFailed;  // stored, but not recorded: the next --resume stores again
    r.store_message = "store: " + written.error().message();
  }
}

StudyResult process_study(const BatchStudy& study, const BatchOptions& o, const StudyAnalyzer& analyzer,
                          const ImpressionDrafter* drafter, int decode_threads, bool deliver_only,
                          Progress& progress) {
  StudyResult r;
  if (deliver_only) {
    // Analysed by an earlier run (--resume): its done.json says what was found.
    r.ok = true;
    if (auto text = read_file(o.out / study.name / "done.json"); text.ok()) {
      const auto j = nlohmann::json::parse(*text, nullptr, false);
      if (j.is_object()) {
        r.findings = j.value("findings", 0);
        r.lung_rads = j.value("lung_rads", "");
      }
    }
  } else {
    r = analyse_study(study, o, analyzer, drafter, decode_threads, progress);
  }
  if (r.ok && o.source && o.source->deliver) deliver_study(study, o, progress, r);
  return r;
}

// An exclusive lock on OUT/.batch.lock while the run-wide files are rebuilt.
class OutputLock {
 public:
  explicit OutputLock(const fs::path& out) {
    fd_ = ::open((out / ".batch.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~OutputLock() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

Result<Shard> parse_shard(const std::string& text) {
  const std::string msg = "--shard must be I/N with whole numbers 0 <= I < N (got '" + text + "')";
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) return bad_input(msg);
  auto number = [](const std::string& s) -> std::optional<int> {
    if (s.empty() || s.size() > 6 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    return std::stoi(s);
  };
  auto i = number(text.substr(0, slash)), n = number(text.substr(slash + 1));
  if (!i || !n || *n < 1 || *i >= *n) return bad_input(msg);
  return Shard{*i, *n};
}

Result<std::vector<BatchStudy>> list_batch_studies(const fs::path& input) {
  std::vector<BatchStudy> studies;
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    for (const auto& e : fs::directory_iterator(input, ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.' || !e.is_directory(ec)) continue;
      studies.push_back({name, e.path()});
    }
    if (ec) return bad_input(input.string() + ": cannot list the folder (" + ec.message() + ")");
    if (studies.empty()) return bad_input(input.string() + ": no study folders (one subfolder per study)");
  } else if (fs::is_regular_file(input, ec)) {
    HILUM_ASSIGN_OR_RETURN(std::string text, read_file(input));
    std::istringstream lines(text);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      ++n;
      line = trim(line);
      if (line.empty() || line[0] == '#') continue;
      fs::path p(line);
      if (p.is_relative()) p = input.parent_path() / p;
      fs::path named = p.filename().empty() ? p.parent_path() : p;
      std::string name = named.filename().string();
      if (name.empty() || name == "." || name == "..") {
        return bad_input(input.string() + ":" + std::to_string(n) + ": '" + line + "' names no study folder");
      }
      if (fs::is_regular_file(named, ec)) name = named.stem().string();
      studies.push_back({name, named});
    }
    if (studies.empty()) return bad_input(input.string() + ": the list names no study");
  } else {
    return bad_input(input.string() + ": no such folder or list file");
  }
  std::sort(studies.begin(), studies.end(),
            [](const BatchStudy& a, const BatchStudy& b) { return a.name < b.name; });
  for (size_t i = 1; i < studies.size(); ++i) {
    if (studies[i].name == studies[i - 1].name) {
      return bad_input(input.string() + ": two studies are named '" + studies[i].name +
                       "' (output folders are named after the study folders)");
    }
  }
  return studies;
}

std::vector<BatchStudy> shard_studies(const std::vector<BatchStudy>& studies, const Shard& shard) {
  std::vector<BatchStudy> out;
  for (size_t i = 0; i < studies.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(shard.count)) == shard.index) out.push_back(studies[i]);
  }
  return out;
}

std::vector<BatchStudy> shard_studies_by_name(const std::vector<BatchStudy>& studies, const Shard& shard) {
  std::vector<BatchStudy> out;
  for (const BatchStudy& s : studies) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s.name) h = (h ^ c) * 0x100000001b3ull;
    if (static_cast<int>(h % static_cast<uint64_t>(shard.count)) == shard.index) out.push_back(s);
  }
  return out;
}

Result<std::string> find_clinical_text(const fs::path& study, const std::string& sidecar_name) {
  std::error_code ec;
  std::vector<fs::path> sidecars;
  if (fs::is_directory(study, ec)) {
    if (!sidecar_name.empty()) sidecars.push_back(study / sidecar_name);
    fs::path s = study;
    if (s.filename().empty()) s = s.parent_path();
    sidecars.push_back(s.parent_path() / (s.filename().string() + ".txt"));
  } else {
    fs::path s = study;
    sidecars.push_back(s.replace_extension(".txt"));
  }
  for (const fs::path& p : sidecars) {
    if (!fs::is_regular_file(p, ec)) continue;
    HILUM_ASSIGN_OR_RETURN(std::string text, read_file(p));
    size_t bad = 0;
    if (!is_valid_utf8(text, &bad)) {
      return bad_input(p.string() + ": the clinical text is not UTF-8 (bad byte at offset " +
                       std::to_string(bad) + ")");
    }
    return text;
  }
  if (!fs::is_directory(study, ec)) return std::string();
  return find_sr_clinical_text({study}).text;
}

Status write_batch_summary(const fs::path& out, const std::vector<BatchStudy>& studies) {
  // Temporary files of a run killed while it wrote these tables (the caller holds the lock).
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("summary.csv.tmp-", 0) == 0 || f.rfind("candidates.csv.tmp-", 0) == 0)
      fs::remove(e.path(), ec);
  }
  std::string summary = "study,status,findings,lung_rads,impression,series_uid,stored,message\n";
  std::string candidates = "seriesuid,coordX,coordY,coordZ,probability\n";
  for (const BatchStudy& s : studies) {
    const fs::path dir = out / s.name;
    std::string status = "pending", findings, lung_rads, impression, series, stored, message;
    if (fs::is_regular_file(dir / "done.json", ec)) {
      try {
        HILUM_ASSIGN_OR_RETURN(std::string text, read_file(dir / "done.json"));
        const auto j = nlohmann::json::parse(text);
        status = "ok";
        findings = std::to_string(j.at("findings").get<int>());
        lung_rads = j.at("lung_rads").get<std::string>();
        impression = j.at("impression").get<std::string>();
        series = j.at("series_uid").get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        return bad_input((dir / "done.json").string() + ": malformed (" + e.what() + ")");
      }
      HILUM_ASSIGN_OR_RETURN(std::string rows, read_file(dir / "candidates.csv"));
      const size_t eol = rows.find('\n');
      if (eol != std::string::npos) candidates += rows.substr(eol + 1);
      if (fs::is_regular_file(dir / "stored.json", ec)) {
        auto text = read_file(dir / "stored.json");
        const auto j = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
        stored = j.is_object() ? j.value("stored", "") : "";
        if (stored != "yes") {
          stored = "failed";
          message = j.is_object() ? j.value("message", "") : "stored.json is malformed";
        }
      }
    } else if (fs::is_regular_file(dir / "failed.json", ec)) {
      status = "failed";
      try {
        HILUM_ASSIGN_OR_RETURN(std::string text, read_file(dir / "failed.json"));
        message = nlohmann::json::parse(text).at("message").get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        message = "failed.json is malformed";
      }
    }
    summary += csv_field(s.name) + "," + status + "," + findings + "," + lung_rads + "," + impression + "," +
               csv_field(series) + "," + stored + "," + csv_field(message) + "\n";
  }
  HILUM_RETURN_IF_ERROR(write_file_atomic(out / "candidates.csv", candidates));
  return write_file_atomic(out / "summary.csv", summary);
}

Status check_output_folder(const fs::path& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out, ec)) {
    return bad_input(out.string() + ": cannot create the output folder" +
                     (ec ? " (" + ec.message() + ")" : ""));
  }
  // access() rather than a probe file: a process killed at any moment leaves nothing behind.
  if (::access(out.c_str(), W_OK | X_OK) != 0)
    return bad_input(out.string() + ": the output folder is not writable");
  return Status::Ok();
}

Result<BatchOutcome> run_batch(const BatchOptions& o, const StudyAnalyzer& analyzer,
                               const ImpressionDrafter* drafter, Progress& progress, const BatchLog& log) {
  if (o.jobs < 1) return bad_input("--jobs must be at least 1");
  if (o.shard.count < 1 || o.shard.index < 0 || o.shard.index >= o.shard.count) {
    return bad_input("--shard must be I/N with 0 <= I < N");
  }
  std::vector<BatchStudy> all;
  if (o.source) {
    all = o.source->studies;
    std::sort(all.begin(), all.end(),
              [](const BatchStudy& a, const BatchStudy& b) { return a.name < b.name; });
    for (size_t i = 1; i < all.size(); ++i) {
      if (all[i].name == all[i - 1].name)
        return internal_error("two studies are named '" + all[i].name + "'");
    }
  } else {
    HILUM_ASSIGN_OR_RETURN(all, list_batch_studies(o.input));
  }
  HILUM_RETURN_IF_ERROR(check_output_folder(o.out));
  std::error_code ec;
  BatchOutcome outcome;
  const std::vector<BatchStudy> mine =
      o.source ? shard_studies_by_name(all, o.shard) : shard_studies(all, o.shard);
  outcome.studies = static_cast<int>(mine.size());
  if (o.summary_only || mine.empty()) {
    OutputLock lock(o.out);
    HILUM_RETURN_IF_ERROR(write_batch_summary(o.out, all));
    return outcome;
  }

  // Studies to analyse, and (--resume) finished ones whose results still go somewhere.
  std::vector<BatchStudy> todo;
  std::vector<bool> deliver_only;
  const bool delivering = o.source && o.source->deliver;
  for (const BatchStudy& s : mine) {
    if (o.resume && fs::is_regular_file(o.out / s.name / "done.json", ec)) {
      ++outcome.skipped;
      if (delivering && !delivered(o.out / s.name)) {
        todo.push_back(s);
        deliver_only.push_back(true);
      }
    } else {
      todo.push_back(s);
      deliver_only.push_back(false);
    }
  }
  if (log && outcome.skipped > 0) {
    const long to_store = std::count(deliver_only.begin(), deliver_only.end(), true);
    log("batch: " + std::to_string(outcome.skipped) + " of " + std::to_string(mine.size()) +
        " studies already done (--resume)" +
        (to_store > 0 ? "; storing the results of " + std::to_string(to_store) + " of them" : std::string()));
  }
  const int jobs = std::max(1, std::min<int>(o.jobs, static_cast<int>(todo.size())));
  const int decode_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / jobs);
  std::mutex mu;
  std::atomic<size_t> next{0};
  size_t finished = 0;
  bool cancelled = false;
  const Stopwatch run_clock;
  auto worker = [&] {
    while (true) {
      if (progress.cancelled()) return;
      const size_t i = next.fetch_add(1);
      if (i >= todo.size()) return;
      const Stopwatch study_clock;
      const StudyResult r =
          process_study(todo[i], o, analyzer, drafter, decode_threads, deliver_only[i], progress);
      const double secs = study_clock.seconds();
      std::lock_guard<std::mutex> lock(mu);
      if (r.cancelled) {
        cancelled = true;
        return;
      }
      ++finished;
      if (!r.ok) {
        ++outcome.failed;
        outcome.failures.push_back(todo[i].name + ": " + r.message);
      } else if (!deliver_only[i]) {
        ++outcome.succeeded;
      }
      if (r.stored == Stored::kYes) ++outcome.stored;
      if (r.stored == Stored::kFailed) {
        ++outcome.store_failed;
        outcome.failures.push_back(todo[i].name + ": " + r.store_message);
      }
      progress.report(static_cast<double>(finished) / todo.size(), "batch");
      if (log) {
        const double elapsed = run_clock.seconds();
        const double eta = elapsed / finished * static_cast<double>(todo.size() - finished);
        char t[32];
        std::snprintf(t, sizeof t, "%.1f s", secs);
        std::string line = "batch: [" + std::to_string(finished) + "/" + std::to_string(todo.size()) + "] " +
                           todo[i].name + ": ";
        if (!r.ok) {
          line += "FAILED: " + r.message;
        } else {
          line += deliver_only[i] ? std::string("analysed earlier, ") : std::string("ok, ");
          line += std::to_string(r.findings) + " finding" + (r.findings == 1 ? "" : "s") + ", Lung-RADS " +
                  r.lung_rads;
          if (r.stored == Stored::kYes) line += "; results stored";
          if (r.stored == Stored::kFailed) line += "; STORE FAILED: " + r.store_message;
        }
        line += " (" + std::string(t) + ")";
        if (finished < todo.size()) line += "; ETA " + clock_text(eta);
        log(line);
      }
    }
  };
  if (jobs == 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (int j = 0; j < jobs; ++j) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
  }
  {
    OutputLock lock(o.out);
    HILUM_RETURN_IF_ERROR(write_batch_summary(o.out, all));
  }
  if (cancelled || progress.cancelled()) return cancelled_error();
  std::sort(outcome.failures.begin(), outcome.failures.end());
  return outcome;
}

}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
