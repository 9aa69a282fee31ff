// Progress for the command line: a redrawn bar on a terminal, plain lines
// (one per stage change or 10 % step) when stderr is a log file. Ctrl-C sets
// the cancellation flag, so long operations stop cleanly and remove partial
// outputs.
#pragma once

#include <chrono>
#include <string>

#include "model/progress.h"

namespace hilum::cli {

class TerminalProgress final : public CancellableProgress {
 public:
  explicit TerminalProgress(bool enabled = true);
  ~TerminalProgress() override;
  void report(double fraction, std::string_view stage) override;
  void finish();  // clears the bar
  void set_enabled(bool enabled) { enabled_ = enabled; }

 private:
  bool enabled_;
  bool tty_;
  std::string last_stage_;
  int last_decile_ = -1;
  int last_width_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// The process-wide progress whose cancel() the SIGINT handler calls.
TerminalProgress& process_progress();

}  // namespace hilum::cli
