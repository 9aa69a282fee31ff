// `hilum eval roc|froc|batch`: clinical evaluation (see docs/evaluation.md).
#include <cstdio>
#include <memory>

#include "app/cli/cli.h"
#include "app/eval_run.h"

namespace hilum::cli {

namespace {

void add_bootstrap_options(CLI::App* cmd, int& bootstrap, uint64_t& seed) {
  cmd->add_option("--bootstrap", bootstrap, "Bootstrap replicates for confidence intervals (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", seed, "Seed of the bootstrap's random generator (same seed, same intervals)")
      ->capture_default_str();
}

// Prints the summary of a finished evaluation on stdout.
Status print_summary(const Result<std::string>& result, const std::filesystem::path& out_dir) {
  if (!result.ok()) return result.error();
  std::printf("%s\nwrote %s\n", result->c_str(), (out_dir / "metrics.json").c_str());
  return Status::Ok();
}

}  // namespace

void register_eval_commands(CommandLine& cl) {
  CLI::App* eval = cl.add_group(nullptr, "eval", "Evaluate scores and detections: ROC/AUC, LUNA16 FROC/CPM");

  {
    auto o = std::make_shared<RocEvalOptions>();
    auto compare = std::make_shared<std::string>();
    CLI::App* cmd =
        cl.add(eval, "roc",
               "ROC analysis of score columns against a 0/1 label column: AUC with DeLong and "
               "bootstrap intervals, paired DeLong test, Youden point; metrics.json, roc.png, roc.svg",
               [o, compare]() -> Status {
                 if (!compare->empty()) {
                   const size_t comma = compare->find(',');
                   if (comma == std::string::npos || comma == 0 || comma + 1 == compare->size() ||
                       compare->find(',', comma + 1) != std::string::npos) {
                     return bad_input("--compare takes two score columns: --compare A,B");
                   }
                   o->compare = std::make_pair(compare->substr(0, comma), compare->substr(comma + 1));
                 }
                 return print_summary(run_roc_eval(*o), o->out_dir);
               });
    cmd->add_option("--csv", o->csv, "CSV table with a header row")->required();
    cmd->add_option("--out", o->out_dir, "Output directory")->required();
    cmd->add_option("--label-col", o->label_column, "Truth column (1 = positive, 0 = negative)")
        ->capture_default_str();
    auto* score =
        cmd->add_option("--score-col", o->score_column, "Score column (higher = more likely positive)")
            ->capture_default_str();
    cmd->add_option("--compare", *compare,
                    "Two score columns A,B: both curves and DeLong's paired test of A vs B")
        ->excludes(score);
    add_bootstrap_options(cmd, o->bootstrap, o->seed);
  }

  {
    auto o = std::make_shared<FrocEvalOptions>();
    auto excluded = std::make_shared<std::string>();
    CLI::App* cmd =
        cl.add(eval, "froc",
               "LUNA16 FROC of CAD marks: sensitivities at 1/8..8 false positives per scan and the "
               "CPM; metrics.json, froc.png, froc.svg, froc_curve.csv",
               [o, excluded]() -> Status {
                 if (!excluded->empty()) o->excluded = *excluded;
                 return print_summary(run_froc_eval(*o), o->out_dir);
               });
    cmd->add_option("--annotations", o->annotations, "Nodules: seriesuid,coordX,coordY,coordZ,diameter_mm")
        ->required();
    cmd->add_option("--seriesuids", o->seriesuids, "The evaluated scans, one series UID per line")
        ->required();
    cmd->add_option("--candidates", o->candidates, "CAD marks: seriesuid,coordX,coordY,coordZ,probability")
        ->required();
    cmd->add_option(
        "--excluded", *excluded,
        "Findings whose marks are ignored (annotations_excluded.csv; same columns as --annotations)");
    cmd->add_option("--out", o->out_dir, "Output directory")->required();
    cmd->add_option("--max-marks", o->max_marks_per_scan, "Marks kept per scan (LUNA16: 100; 0: all)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--by", o->by,
                    "Also by subgroup of the nodules, per value of an annotations column or in numeric bins "
                    "(diameter_mm:6,10); repeatable. Writes by_group.csv");
    add_bootstrap_options(cmd, o->bootstrap, o->seed);
  }

  {
    auto o = std::make_shared<BatchEvalOptions>();
    auto excluded = std::make_shared<std::string>();
    auto unmatched = std::make_shared<std::string>("zero");
    CLI::App* cmd = cl.add(
        eval, "batch",
        "Evaluate a `hilum batch` output directory against truth: detection FROC/CPM, "
        "malignancy ROC/AUC, the findings list, and the findings' sizes, types and Lung-RADS",
        [o, excluded, unmatched]() -> Status {
          if (!excluded->empty()) o->excluded = *excluded;
          o->unmatched = *unmatched == "exclude" ? UnmatchedNodules::kExclude : UnmatchedNodules::kScoreZero;
          return print_summary(run_batch_eval(*o), o->out_dir);
        });
    cmd->add_option("--batch", o->batch_dir, "Batch output directory (<study>/findings.json, candidates.csv)")
        ->required();
    cmd->add_option("--truth", o->truth,
                    "Truth nodules: seriesuid,coordX,coordY,coordZ,diameter_mm,malignant (0/1)")
        ->required();
    cmd->add_option("--excluded", *excluded,
                    "Findings whose marks are ignored (LUNA16 annotations_excluded.csv)");
    cmd->add_option("--out", o->out_dir, "Output directory")->required();
    cmd->add_option("--unmatched", *unmatched,
                    "Malignancy score of a true nodule no finding hits: zero (counts as a miss) or exclude")
        ->check(CLI::IsMember({"zero", "exclude"}))
        ->capture_default_str();
    cmd->add_option("--by", o->by,
                    "Also by subgroup of the truth nodules, per value of a truth.csv column (e.g. type) or in "
                    "numeric bins (diameter_mm:6,8,15); repeatable. Writes by_group.csv");
    cmd->add_option("--min-probability", o->min_probability,
                    "Count only the findings at or above this detection probability, as `hilum batch "
                    "--min-probability` would have kept them (default: every finding written)")
        ->type_name("P");
    add_bootstrap_options(cmd, o->bootstrap, o->seed);
  }
}

}  // namespace hilum::cli
