// `hilum export-training-set`: training data from phantoms through the
// inference pipeline's own preprocessing (see app/training_export.h).
#if HILUM_HAVE_IMAGING

#include <cstdio>
#include <memory>
#include <optional>

#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "app/training_export.h"

namespace hilum::cli {

namespace {
struct ExportArgs {
  std::string out;
  std::string seeds;
  int slices = -1;
  int nodules = -1;
  std::optional<std::string> nodule_sites;
  int negatives = 100;
  int max_candidates = 0;
  bool no_truth_patches = false;
  int truth_jitter = 0;
  bool no_sizing = false;
  bool notes_only = false;
  std::vector<std::string> patch_frames;
  double patch_slab = 0;
  double patch_zoom = 0;
};
}  // namespace

void register_export_command(CommandLine& cl) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = cl.add(
      nullptr, "export-training-set",
      "Generate phantoms and write training data made by the inference pipeline's own lung mask, candidate "
      "detector and patch extractor: patches.npy (uint8 [N,3,64,64]; [N,9,64,64] with --patch-slab, [N,6,64,64] with --patch-zoom), labels.csv, notes.jsonl, nodules.csv, "
      "studies.csv, manifest.json",
      [args]() -> Status {
        TrainingExportOptions o;
        o.out = args->out;
        HILUM_RETURN_IF_ERROR(parse_seed_range(args->seeds, o.first_seed, o.last_seed));
        o.slices = args->slices;
        o.nodules = args->nodules;
        if (args->nodule_sites) {
          HILUM_ASSIGN_OR_RETURN(o.site_weights, parse_nodule_sites(*args->nodule_sites));
        }
        o.negatives_per_study = args->negatives;
        o.max_candidates = args->max_candidates;
        o.truth_patches = !args->no_truth_patches;
        o.truth_jitter = args->truth_jitter;
        o.measure_sizing = !args->no_sizing;
        o.notes_only = args->notes_only;
        o.extra_frames = args->patch_frames;
        o.patch_slab_mm = args->patch_slab;
        o.patch_zoom_spacing_mm = args->patch_zoom;
        HILUM_ASSIGN_OR_RETURN(TrainingExportSummary s, export_training_set(o, process_progress()));
        process_progress().finish();
        if (o.notes_only) {
          std::printf("export-training-set: %d notes; wrote %s\n", s.studies, args->out.c_str());
          return Status::Ok();
        }
        std::printf(
            "export-training-set: %d studies, %lld patches (%lld positive); %d of %d nodules >= 3 mm have a "
            "candidate "
            "(%.1f %%), %.1f candidates per study; wrote %s\n",
            s.studies, static_cast<long long>(s.patches), static_cast<long long>(s.positives),
            s.nodules_detected, s.nodules, s.nodules ? 100.0 * s.nodules_detected / s.nodules : 0.0,
            s.mean_candidates, args->out.c_str());
        return Status::Ok();
      });
  cmd->add_option("--out", args->out, "Output folder (created; files there are replaced)")->required();
  cmd->add_option("--seeds", args->seeds, "Phantom seeds, A-B (inclusive) or A")->required();
  cmd->add_option("--slices", args->slices, "Axial slices per phantom (default: from the seed)");
  cmd->add_option("--nodules", args->nodules, "Nodules per phantom (default: from the seed)");
  cmd->add_option("--nodule-sites", args->nodule_sites,
                  "Relative weights of the nodules' sites, e.g. juxtavascular=1 or isolated=1,juxtavascular=3 "
                  "(sites not named: 0; default isolated=0.5,juxtapleural=0.25,juxtavascular=0.25)")
      ->type_name("NAME=W,...");
  cmd->add_option("--negatives", args->negatives,
                  "Non-nodule candidates kept per study, strongest first (default 100; -1: all)");
  cmd->add_option("--max-candidates", args->max_candidates,
                  "Candidates the detector keeps per study, best score first (default: the 500 hilum analyze "
                  "keeps; more, to study how its score ranks the maxima)");
  cmd->add_option("--patch-frames", args->patch_frames,
                  "Also write the same rows' patches cut in these rotated frames, as patches_<frame>.npy "
                  "(rz45, rx45, ry45: 45 degrees about z, x or y)")
      ->delimiter(',');
  cmd->add_option("--patch-slab", args->patch_slab,
                  "Nine-channel patches: each plane with its two neighbours this far along its normal, in mm "
                  "(0, the default: the three planes alone)")
      ->type_name("MM");
  cmd->add_option("--patch-zoom", args->patch_zoom,
                  "Six-channel patches: each plane again through the same centre at this pixel spacing, in mm "
                  "(e.g. 0.35: a close look; 0, the default: one spacing, 0.7 mm)")
      ->type_name("MM");
  cmd->add_flag("--no-truth-patches", args->no_truth_patches,
                "Do not add a patch centred on each true nodule");
  cmd->add_option("--truth-jitter", args->truth_jitter,
                  "Also this many patches per true nodule, centred at random within it (source jitter: "
                  "uniform in a ball of a quarter of its diameter, 0.75 to 2 mm; default 0)")
      ->type_name("N");
  cmd->add_flag("--no-sizing", args->no_sizing, "Skip sizing the detected true nodules (nodules.csv)");
  cmd->add_flag("--notes-only", args->notes_only,
                "Write only notes.jsonl (note, profile, note_logit per seed) and manifest.json; no volume is "
                "rendered");
}

}  // namespace hilum::cli

#endif  // HILUM_HAVE_IMAGING
