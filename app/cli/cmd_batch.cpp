// `hilum analyze` (one study) and `hilum batch` (many): findings, reports and
// the run-wide tables. See docs/reports.md and docs/batch.md. Imaging builds only.
#if HILUM_HAVE_IMAGING
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "app/analyze.h"
#include "app/batch.h"
#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "app/narrative.h"
#include "model/file_io.h"
#include "model/log.h"
#include "model/stopwatch.h"
#include "model/tokenizer.h"
#if HILUM_HAVE_REPORT_PDF
#include "app/pdf/report_pdf_qt.h"
#endif
#if HILUM_HAVE_PACS
#include "app/pacs/pacs_config.h"
#include "app/pacs_batch.h"
#endif

namespace hilum::cli {

namespace fs = std::filesystem;

namespace {

// Exit status of `hilum batch` when some studies failed (the others were written).
constexpr int kExitSomeStudiesFailed = 3;

struct ModelArgs {
  std::string bundle;
  std::string device = "cpu";
  double min_probability = FindingsOptions{}.min_probability;
  int max_findings = FindingsOptions{}.max_findings;
  std::string narrative_model;  // a Hugging Face folder, "none", or empty (the bundle's text model)
};

void add_model_options(CLI::App* cmd, ModelArgs& m) {
  cmd->add_option(
         "--model-bundle", m.bundle,
         "Model bundle folder (manifest.json, vision/, text/, fusion/); default $HILUM_MODEL_BUNDLE, "
         "else the demo bundle (resources/models) unless HILUM_DEFAULT_BUNDLE=none")
      ->type_name("DIR");
  cmd->add_option("--device", m.device, "cpu, cuda or auto: where the candidate detector, the image branch, the fusion and the impression draft run (the clinical note is encoded on the CPU)")->type_name("D");
  cmd->add_option(
         "--min-probability", m.min_probability,
         "Operating point: a candidate becomes a finding at or above this nodule probability (default 0.5)")
      ->type_name("P");
  cmd->add_option("--max-findings", m.max_findings, "At most this many findings per study (default 25)")
      ->type_name("N");
  cmd->add_option(
         "--narrative-model", m.narrative_model,
         "Text model folder (with tokenizer.json) that drafts the impression, or 'none' for the template; "
         "default: the bundle's general text model")
      ->type_name("DIR");
}

Result<fs::path> bundle_dir(const ModelArgs& m) {
  if (!m.bundle.empty()) return fs::path(m.bundle);
  HILUM_ASSIGN_OR_RETURN(fs::path dir, default_model_bundle_dir());
  if (!dir.empty()) return dir;
  HILUM_ASSIGN_OR_RETURN(const bool built_in, built_in_bundles_allowed());
  return bad_input(std::string("no model bundle: give --model-bundle DIR or set HILUM_MODEL_BUNDLE (") +
                   (built_in ? "the demo bundle in resources/models/ of the source tree is not there"
                             : "HILUM_DEFAULT_BUNDLE=none turns the built-in bundles off") +
                   ")");
}

struct LoadedModels {
  std::shared_ptr<const ModelBundle> bundle;
  std::shared_ptr<const ImpressionDrafter> drafter;
  double load_seconds = 0;
};

Result<LoadedModels> load_models(const ModelArgs& m) {
  LoadedModels out;
  const Stopwatch clock;
  HILUM_ASSIGN_OR_RETURN(fs::path dir, bundle_dir(m));
  if (!(m.min_probability >= 0 && m.min_probability <= 1)) {
    return bad_input("--min-probability must lie in [0, 1]");
  }
  if (m.max_findings < 0) return bad_input("--max-findings must not be negative");
  BundleOptions bo;
  bo.device = m.device;
  bo.findings.min_probability = m.min_probability;
  bo.findings.max_findings = m.max_findings;
  HILUM_ASSIGN_OR_RETURN(out.bundle, load_model_bundle(dir, bo));
  out.load_seconds = clock.seconds();
  if (m.narrative_model == "none") return out;
  if (m.narrative_model.empty()) {
    out.drafter = model_bundle_drafter(*out.bundle);
  } else {
    HILUM_ASSIGN_OR_RETURN(out.drafter,
                           ImpressionDrafter::load(m.narrative_model, model_bundle_device(*out.bundle)));
  }
  return out;
}

Status install_pdf() {
#if HILUM_HAVE_REPORT_PDF
  return install_qt_pdf_renderer();
#else
  log_warning("this build has no Qt: report.pdf is not written");
  return Status::Ok();
#endif
}

// ---- analyze ---------------------------------------------------------------

struct AnalyzeArgs {
  std::vector<std::string> inputs;
  std::string out;
  std::string clinical_text;
  std::string series;
  bool no_clinical_text = false;
  bool timings = false;
  ModelArgs models;
};

Status analyze_into(const AnalyzeArgs& a, const std::string& note);

Status run_analyze(const AnalyzeArgs& a) {
  if (a.out.empty()) return bad_input("--out must name a folder");
  std::string note;
  if (a.no_clinical_text) {
    // The text branch sees an empty note (findings.json: clinical_text_used false).
  } else if (!a.clinical_text.empty()) {
    HILUM_ASSIGN_OR_RETURN(note, read_file(a.clinical_text));
    size_t bad = 0;
    if (!is_valid_utf8(note, &bad)) {
      return bad_input(a.clinical_text + ": the clinical text is not UTF-8 (bad byte at offset " +
                       std::to_string(bad) + ")");
    }
  } else if (a.inputs.size() == 1) {
    HILUM_ASSIGN_OR_RETURN(note, find_clinical_text(a.inputs.front(), "clinical.txt"));
  }
  std::error_code ec;
  const bool out_existed = fs::exists(a.out, ec);
  HILUM_RETURN_IF_ERROR(check_output_folder(a.out));
  const Status s = analyze_into(a, note);
  if (!s.ok() && !out_existed && fs::is_empty(a.out, ec)) fs::remove(a.out, ec);  // leave nothing behind
  return s;
}

Status analyze_into(const AnalyzeArgs& a, const std::string& note) {
  HILUM_ASSIGN_OR_RETURN(LoadedModels models, load_models(a.models));
  HILUM_RETURN_IF_ERROR(install_pdf());
  AnalyzeRequest request;
  for (const std::string& i : a.inputs) request.inputs.emplace_back(i);
  request.clinical_text = note;
  request.series = a.series;
  TerminalProgress& progress = process_progress();
  StudyAnalysis analysis;
  {
    ProgressRange p(progress, 0, 0.85);
    HILUM_ASSIGN_OR_RETURN(analysis, analyze_study(request, *models.bundle, p));
  }
  Narrative narrative;
  Stopwatch clock;
  {
    ProgressRange p(progress, 0.85, 0.95);
    narrative = write_impression(analysis.findings, models.drafter.get(), &p);
  }
  analysis.stage_seconds.emplace_back("impression", clock.lap());
  HILUM_ASSIGN_OR_RETURN(StudyReportFiles files, write_study_reports(analysis, narrative, a.out));
  analysis.stage_seconds.emplace_back("reports (JSON, CSV, SR, PDF)", clock.lap());
  progress.finish();
  if (a.timings) {
    double total = 0;
    for (const auto& [stage, s] : analysis.stage_seconds) total += s;
    for (const auto& [stage, s] : analysis.stage_seconds) {
      std::fprintf(stderr, "timing: %-30s %8.3f s\n", stage.c_str(), s);
    }
    std::fprintf(stderr, "timing: %-30s %8.3f s (after the models loaded in %.3f s)\n", "total", total,
                 models.load_seconds);
  }
  for (const std::string& n : files.notes) log_warning(n);
  std::printf("analyze: %zu finding%s, Lung-RADS %s; impression: %s\n", analysis.findings.findings.size(),
              analysis.findings.findings.size() == 1 ? "" : "s", analysis.findings.lung_rads_study.c_str(),
              narrative.source == Narrative::Source::kModel ? "AI draft (text model)" : "template");
  std::printf("analyze: wrote findings.json, candidates.csv, report-sr.dcm%s to %s\n",
              files.pdf_written ? ", report.pdf" : "", a.out.c_str());
  return Status::Ok();
}

// ---- batch -----------------------------------------------------------------

// `hilum batch --from-pacs`: where the studies come from and where results go.
struct PacsArgs {
  bool from_pacs = false, store_results = false, keep_inbox = false;
  std::string query, config, node, retrieve = "get";
};

struct BatchArgs {
  std::string input, out, shard = "0/1", clinical_text_name = "clinical.txt";
  bool resume = false, summary_only = false, no_clinical_text = false;
  int jobs = 1;
  ModelArgs models;
  PacsArgs pacs;
};

#if HILUM_HAVE_PACS
Result<pacs::Node> batch_pacs_node(const PacsArgs& p) {
  const std::optional<fs::path> path = p.config.empty() ? pacs::default_config_path() : fs::path(p.config);
  if (!path) {
    return bad_input(
        "--from-pacs needs a PACS configuration: --pacs-config FILE, $HILUM_PACS_CONFIG or "
        "~/.config/hilum/pacs.json (docs/pacs.md)");
  }
  HILUM_ASSIGN_OR_RETURN(pacs::Config config, pacs::load_config(*path));
  HILUM_ASSIGN_OR_RETURN(pacs::Node node, config.node(p.node));
  HILUM_RETURN_IF_ERROR(pacs::validate_node(node, "PACS node " + node.name));
  return node;
}

// The PACS options, checked before anything touches the network or the disk.
Result<PacsBatchOptions> pacs_batch_options(const PacsArgs& p) {
  PacsBatchOptions po;
  if (p.query.empty()) {
    return bad_input("--from-pacs needs --query KEY=VALUE,... (keys: " + pacs_query_keys() + ")");
  }
  HILUM_ASSIGN_OR_RETURN(po.query, parse_pacs_query(p.query));
  HILUM_ASSIGN_OR_RETURN(po.node, batch_pacs_node(p));
  po.retrieve = p.retrieve == "move" ? RetrieveMethod::kMove : RetrieveMethod::kGet;
  po.store_results = p.store_results;
  po.keep_inbox = p.keep_inbox;
  return po;
}
#endif

Status run_batch_command(const BatchArgs& a) {
  BatchOptions o;
  HILUM_ASSIGN_OR_RETURN(o.shard, parse_shard(a.shard));
  if (a.jobs < 1) return bad_input("--jobs must be at least 1 (got " + std::to_string(a.jobs) + ")");
  if (a.clinical_text_name.find('/') != std::string::npos) {
    return bad_input("--clinical-text-name must be a file name, not a path (got '" + a.clinical_text_name +
                     "')");
  }
  if (a.input.empty() && !a.pacs.from_pacs) {
    return bad_input("give the studies: --input DIR|LIST, or --from-pacs --query KEY=VALUE,...");
  }
  o.input = a.input;
  o.out = a.out;
  o.resume = a.resume;
  o.jobs = a.jobs;
  o.clinical_text_name = a.clinical_text_name;
  o.no_clinical_text = a.no_clinical_text;
  o.summary_only = a.summary_only;
  // Cheap checks before the network and the models.
#if HILUM_HAVE_PACS
  std::optional<PacsBatchOptions> pacs_options;
  if (a.pacs.from_pacs) {
    HILUM_ASSIGN_OR_RETURN(pacs_options, pacs_batch_options(a.pacs));
  }
#endif
  if (!a.pacs.from_pacs) {
    if (auto studies = list_batch_studies(o.input); !studies.ok()) return studies.error();
  }
  if (auto dir = bundle_dir(a.models); !o.summary_only && !dir.ok()) return dir.error();
  TerminalProgress& progress = process_progress();
  progress.set_enabled(false);  // per-study lines instead of a bar
  const bool quiet = log_level() >= LogLevel::kError;
  auto log = [quiet](const std::string& line) {
    if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
  bool nothing_to_analyse = false;
#if HILUM_HAVE_PACS
  if (pacs_options) {
    HILUM_ASSIGN_OR_RETURN(o.source, find_pacs_studies(*pacs_options, o.out, progress));
    const size_t n = o.source->studies.size();
    if (n == 0) {
      std::printf("batch: the query matched no study on %s; nothing to do\n",
                  pacs_options->node.address().c_str());
    } else {
      log("batch: the query matched " + std::to_string(n) + " stud" + (n == 1 ? "y" : "ies") + " on " +
          pacs_options->node.address());
    }
    nothing_to_analyse = shard_studies_by_name(o.source->studies, o.shard).empty();
  }
#endif
  std::error_code ec;
  const bool out_existed = fs::exists(o.out, ec);
  HILUM_RETURN_IF_ERROR(check_output_folder(o.out));
  LoadedModels models;
  StudyAnalyzer analyzer;
  if (!o.summary_only && !nothing_to_analyse) {
    auto loaded = load_models(a.models);
    if (!loaded.ok()) {
      if (!out_existed && fs::is_empty(o.out, ec)) fs::remove(o.out, ec);  // leave nothing behind
      return loaded.error();
    }
    models = std::move(*loaded);
    HILUM_RETURN_IF_ERROR(install_pdf());
    analyzer = bundle_analyzer(models.bundle);
  }
  HILUM_ASSIGN_OR_RETURN(BatchOutcome r, run_batch(o, analyzer, models.drafter.get(), progress, log));
  if (o.summary_only) {
    std::printf("batch: rebuilt %s/summary.csv and candidates.csv\n", a.out.c_str());
    return Status::Ok();
  }
  std::string stored;
  if (a.pacs.store_results) {
    stored = ", " + std::to_string(r.stored) + " stored" +
             (r.store_failed ? " (" + std::to_string(r.store_failed) + " store failed)" : std::string());
  }
  std::printf(
      "batch: shard %d/%d: %d studies, %d done now, %d already done, %d failed%s; summary: %s/summary.csv\n",
      o.shard.index, o.shard.count, r.studies, r.succeeded, r.skipped, r.failed, stored.c_str(),
      a.out.c_str());
  if (r.failed > 0 || r.store_failed > 0) {
    for (const std::string& f : r.failures) std::fprintf(stderr, "hilum: study failed: %s\n", f.c_str());
    std::fflush(stdout);
    std::fflush(stderr);
    std::exit(kExitSomeStudiesFailed);  // the outputs are complete; the status says some studies failed
  }
  return Status::Ok();
}

}  // namespace

void register_batch_commands(CommandLine& cl) {
  auto aa = std::make_shared<AnalyzeArgs>();
  CLI::App* analyze =
      cl.add(nullptr, "analyze",
             "Analyse one CT study: findings.json, candidates.csv, report.pdf and report-sr.dcm "
             "(DICOM SR, TID 1500) in --out.",
             [aa] { return run_analyze(*aa); });
  analyze->add_option("study", aa->inputs, "DICOM folder(s), file(s) or DICOMDIR of one study")->required();
  analyze->add_option("--out", aa->out, "Output folder (created)")->required()->type_name("DIR");
  CLI::Option* text =
      analyze
          ->add_option("--clinical-text", aa->clinical_text,
                       "Clinical note (UTF-8 text); default: the study's clinical.txt, <study>.txt or SR text")
          ->type_name("FILE");
  analyze
      ->add_flag("--no-clinical-text", aa->no_clinical_text,
                 "Image only: the text branch sees an empty note, even when the study has one")
      ->excludes(text);
  analyze->add_flag("--timings", aa->timings, "Print the wall time of each stage to stderr");
  analyze->add_option("--series", aa->series, "Series to analyse (UID or UID#k, see `hilum info`)")
      ->type_name("UID");
  add_model_options(analyze, aa->models);

  auto ba = std::make_shared<BatchArgs>();
  CLI::App* batch =
      cl.add(nullptr, "batch",
             "Analyse every study of a folder (one subfolder per study), a list file or a PACS query into "
             "OUT/<study>/; OUT/summary.csv and OUT/candidates.csv for the run. Exit status 3 when some "
             "studies failed (the others are written).",
             [ba] { return run_batch_command(*ba); });
  CLI::Option* input =
      batch->add_option("--input", ba->input, "Folder of study folders, or a file listing study paths")
          ->type_name("DIR|LIST");
  batch->add_option("--out", ba->out, "Output folder (created; shared by all shards)")
      ->required()
      ->type_name("DIR");
  batch->add_option("--shard", ba->shard, "Run shard I of N (studies i with i % N == I, sorted by name)")
      ->type_name("I/N");
  batch->add_flag("--resume", ba->resume, "Skip studies whose output is complete");
  batch->add_option("--jobs", ba->jobs, "Studies analysed at the same time (default 1)")->type_name("J");
  batch
      ->add_option("--clinical-text-name", ba->clinical_text_name,
                   "Sidecar file name of a study's clinical note (default clinical.txt)")
      ->type_name("NAME");
  batch
      ->add_flag("--no-clinical-text", ba->no_clinical_text,
                 "Image only: every study's text branch sees an empty note")
      ->excludes(batch->get_option("--clinical-text-name"));
  batch->add_flag("--summary-only", ba->summary_only,
                  "Only rebuild summary.csv and candidates.csv from the study folders (after all shards)");
  add_model_options(batch, ba->models);
#if HILUM_HAVE_PACS
  const char* group = "Studies from a PACS (docs/batch.md)";
  CLI::Option* from_pacs =
      batch
          ->add_flag(
              "--from-pacs", ba->pacs.from_pacs,
              "Analyse the studies a PACS query returns (retrieved into OUT/.inbox/), instead of --input")
          ->group(group)
          ->excludes(input);
  batch
      ->add_option("--query", ba->pacs.query,
                   "Study-level C-FIND keys, comma-separated key=value pairs: " + pacs_query_keys() +
                       " (e.g. \"patient-id=LUNG*,date=20260101-20261231,modality=CT\")")
      ->type_name("QUERY")
      ->group(group)
      ->needs(from_pacs);
  batch
      ->add_option("--pacs-config", ba->pacs.config,
                   "PACS configuration (pacs.json; default: $HILUM_PACS_CONFIG or ~/.config/hilum/pacs.json)")
      ->type_name("FILE")
      ->group(group)
      ->needs(from_pacs);
  batch->add_option("--node", ba->pacs.node, "Node of the PACS configuration (default: its default node)")
      ->type_name("NAME")
      ->group(group)
      ->needs(from_pacs);
  batch
      ->add_option("--retrieve", ba->pacs.retrieve,
                   "get (C-GET, default) or move (C-MOVE to Hilum's storage SCP on the node's storage_port)")
      ->check(CLI::IsMember({"get", "move"}))
      ->type_name("get|move")
      ->group(group)
      ->needs(from_pacs);
  batch
      ->add_flag("--store-results", ba->pacs.store_results,
                 "Store each study's report-sr.dcm and report.pdf (as encapsulated PDF) back in the PACS")
      ->group(group)
      ->needs(from_pacs);
  batch
      ->add_flag("--keep-inbox", ba->pacs.keep_inbox,
                 "Keep the retrieved images in OUT/.inbox/ after a study is analysed")
      ->group(group)
      ->needs(from_pacs);
#else
  (void)input;
#endif
}

}  // namespace hilum::cli

#endif  // HILUM_HAVE_IMAGING
