// `hilum`: the command-line front end. Each subcommand lives in cli/cmd_*.cpp.
#include <csignal>
#include <cstdio>
#include <exception>

#include "app/build_info.h"
#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "model/allocator.h"
#include "model/log.h"

namespace hilum::cli {

CLI::App* CommandLine::add(CLI::App* parent, const std::string& name, const std::string& description,
                           Action action) {
  CLI::App* sub = (parent ? parent : &root_)->add_subcommand(name, description);
  actions_[sub] = std::move(action);
  return sub;
}

CLI::App* CommandLine::add_group(CLI::App* parent, const std::string& name, const std::string& description) {
  CLI::App* sub = (parent ? parent : &root_)->add_subcommand(name, description);
  sub->require_subcommand(1);
  return sub;
}

const Action* CommandLine::selected() const {
  const CLI::App* app = &root_;
  const Action* found = nullptr;
  while (true) {
    auto subs = app->get_subcommands();
    if (subs.empty()) break;
    app = subs.front();
    auto it = actions_.find(app);
    if (it != actions_.end()) found = &it->second;
  }
  return found;
}

}  // namespace hilum::cli

namespace {
void on_sigint(int) { hilum::cli::process_progress().cancel(); }
}  // namespace

int main(int argc, char** argv) {
  using namespace hilum;
  keep_large_buffers();
  CLI::App app{"Hilum: multimodal lung-nodule CT analysis (research software, not a medical device).\n"
               "Run `hilum <command> --help` for the options of a command.",
               "hilum"};
  app.set_version_flag("--version", "hilum " + hilum_version() + " (" + build_features() + ")");
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "Log what each stage does");
  app.add_flag("-q,--quiet", quiet, "Only print errors (no progress)");
  app.require_subcommand(1);
  app.fallthrough();

  cli::CommandLine cl(app);
#if HILUM_HAVE_IMAGING
  cli::register_dicom_commands(cl);
  cli::register_phantom_command(cl);
  cli::register_export_command(cl);
  cli::register_batch_commands(cl);
#endif
  cli::register_tokenize_command(cl);
  cli::register_eval_commands(cl);
  cli::register_text_commands(cl);
  cli::register_resnet_command(cl);
#if HILUM_HAVE_PACS
  cli::register_pacs_commands(cl);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  set_log_level(quiet ? LogLevel::kError : verbose ? LogLevel::kInfo : LogLevel::kWarning);
  cli::process_progress().set_enabled(!quiet);
  std::signal(SIGINT, on_sigint);

  const cli::Action* action = cl.selected();
  if (!action) {
    std::fprintf(stderr, "hilum: no command given (see hilum --help)\n");
    return 2;
  }
  Status status;
  try {
    status = (*action)();
  } catch (const std::exception& e) {
    status = internal_error(std::string("unexpected exception: ") + e.what());
  }
  cli::process_progress().finish();
  if (!status.ok()) {
    std::fprintf(stderr, "hilum: error: %s\n", status.error().message().c_str());
    return exit_code_for(status.error());
  }
  return 0;
}
