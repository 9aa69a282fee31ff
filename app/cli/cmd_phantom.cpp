// `hilum phantom`: writes a synthetic chest CT study (DICOM series, truth.csv,
// clinical.txt). See docs/phantom.md. Built only with imaging (DCMTK).
#if HILUM_HAVE_IMAGING
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "app/training_export.h"  // parse_nodule_sites
#include "vision/io/phantom.h"

namespace hilum::cli {

namespace {

struct PhantomArgs {
  std::string out;
  std::string seed;
  int nodules = -1;
  int slices = -1;
  std::optional<std::string> nodule_sites;
  bool labels = false;
};

// The seed as an unsigned 64-bit number; anything else is bad input.
Result<uint64_t> parse_seed(const std::string& text) {
  const std::string msg = "--seed must be a whole number from 0 to 18446744073709551615 (got '" + text + "')";
  if (text.empty() || text.size() > 20) return bad_input(msg);
  unsigned __int128 v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad_input(msg);
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > UINT64_MAX) return bad_input(msg);
  return static_cast<uint64_t>(v);
}

Status run_phantom(const PhantomArgs& args) {
  PhantomOptions options;
  HILUM_ASSIGN_OR_RETURN(options.seed, parse_seed(args.seed));
  options.nodules = args.nodules;
  options.slices = args.slices;
  if (args.nodule_sites) {
    HILUM_ASSIGN_OR_RETURN(options.site_weights, parse_nodule_sites(*args.nodule_sites));
  }
  HILUM_RETURN_IF_ERROR(validate_phantom_options(options));
  if (args.out.empty()) return bad_input("--out must name a folder");
  HILUM_RETURN_IF_ERROR(check_phantom_output_dir(args.out));

  TerminalProgress& progress = process_progress();
  Phantom phantom;
  {
    ProgressRange generate(progress, 0, 0.6);
    HILUM_ASSIGN_OR_RETURN(phantom, make_phantom(options, generate));
  }
  PhantomWriteOptions write_options;
  write_options.labels = args.labels;
  ProgressRange write(progress, 0.6, 1.0);
  HILUM_RETURN_IF_ERROR(write_phantom_study(phantom, args.out, write, write_options));
  progress.finish();

  int malignant = 0;
  for (const auto& n : phantom.nodules) malignant += n.malignant ? 1 : 0;
  const Volume& v = phantom.volume;
  std::printf("phantom: wrote %lld slices of %lldx%lld (%.3f mm pixels, %.3f mm slices) with %zu nodule%s (%d malignant) to %s\n",
              static_cast<long long>(v.nz()), static_cast<long long>(v.nx()), static_cast<long long>(v.ny()),
              v.spacing[0], v.spacing[2], phantom.nodules.size(), phantom.nodules.size() == 1 ? "" : "s", malignant,
              args.out.c_str());
  return Status::Ok();
}

}  // namespace

void register_phantom_command(CommandLine& cl) {
  auto args = std::make_shared<PhantomArgs>();
  CLI::App* cmd = cl.add(nullptr, "phantom",
                         "Write a synthetic chest CT study: DIR/dicom/ (CT series), DIR/truth.csv (nodules, LUNA16 "
                         "format plus type and malignancy) and DIR/clinical.txt (referral note). Same seed, same bytes.",
                         [args] { return run_phantom(*args); });
  cmd->add_option("--out", args->out, "Output folder (created; an earlier phantom there is replaced)")
      ->required()
      ->type_name("DIR");
  cmd->add_option("--seed", args->seed, "Seed, a whole number >= 0: it decides everything in the study")
      ->required()
      ->type_name("N");
  cmd->add_option("--nodules", args->nodules,
                  "Number of nodules, 0-" + std::to_string(PhantomOptions::kMaxNodules) + " (default: 1-4 from the seed)")
      ->type_name("K");
  cmd->add_option("--slices", args->slices,
                  "Number of axial slices, " + std::to_string(PhantomOptions::kMinSlices) + "-" +
                      std::to_string(PhantomOptions::kMaxSlices) +
                      "; slice thickness is 300 mm / slices within 0.625-2.5 mm (default: from the seed)")
      ->type_name("Z");
  cmd->add_option("--nodule-sites", args->nodule_sites,
                  "Relative weights of the nodules' sites, e.g. juxtavascular=1 or isolated=1,juxtavascular=3 "
                  "(sites not named: 0; default isolated=0.5,juxtapleural=0.25,juxtavascular=0.25); a nodule with no "
                  "room at its site is placed as an isolated one")
      ->type_name("NAME=W,...");
  cmd->add_flag("--labels", args->labels, "Also write DIR/labels.npy (u8 tissue labels, z/y/x)");
}

}  // namespace hilum::cli
#endif  // HILUM_HAVE_IMAGING
