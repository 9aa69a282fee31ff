// The `hilum` command line: subcommands register an action; main() parses,
// runs the chosen action and maps its error to an exit code
// (0 ok, 2 bad input, 1 internal failure).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>

#include "model/result.h"

namespace hilum::cli {

using Action = std::function<Status()>;

class CommandLine {
 public:
  explicit CommandLine(CLI::App& root) : root_(root) {}

  CLI::App& root() { return root_; }
  // Adds `name` under `parent` (the root when null) with the action that runs it.
  CLI::App* add(CLI::App* parent, const std::string& name, const std::string& description, Action action);
  // A group of subcommands (`hilum eval roc`): needs one of its children.
  CLI::App* add_group(CLI::App* parent, const std::string& name, const std::string& description);

  // The action of the deepest parsed subcommand, or null.
  const Action* selected() const;

 private:
  CLI::App& root_;
  std::map<const CLI::App*, Action> actions_;
};

// Register functions, one per command family (defined in cli/cmd_*.cpp).
void register_dicom_commands(CommandLine& cl);   // info, volume, phantom
void register_phantom_command(CommandLine& cl);  // phantom (cmd_phantom.cpp)
void register_export_command(CommandLine& cl);   // export-training-set (cmd_export.cpp)
void register_tokenize_command(CommandLine& cl);  // tokenize
void register_eval_commands(CommandLine& cl);    // eval roc, eval froc, eval batch
void register_text_commands(CommandLine& cl);    // lm-logits, generate
void register_resnet_command(CommandLine& cl);   // resnet
void register_batch_commands(CommandLine& cl);   // analyze, batch (cmd_batch.cpp)
void register_pacs_commands(CommandLine& cl);    // pacs echo|find|get|move|store|wrap-pdf

}  // namespace hilum::cli
