#include "app/cli/terminal_progress.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>

namespace hilum::cli {

TerminalProgress::TerminalProgress(bool enabled)
    : enabled_(enabled), tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

TerminalProgress::~TerminalProgress() { finish(); }

void TerminalProgress::report(double fraction, std::string_view stage) {
  if (!enabled_) return;
  if (fraction < 0) fraction = 0;
  if (fraction > 1) fraction = 1;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(50) && stage == last_stage_ && fraction < 1) return;
    last_draw_ = now;
    last_stage_ = stage;
    constexpr int kBar = 30;
    int filled = static_cast<int>(fraction * kBar + 0.5);
    std::string bar(filled, '#');
    bar.append(kBar - filled, '.');
    char eta[32] = "";
    if (fraction > 0.02 && fraction < 1) {
      std::snprintf(eta, sizeof eta, " ETA %.0fs", elapsed * (1 - fraction) / fraction);
    }
    char line[256];
    int n = std::snprintf(line, sizeof line, "\r[%s] %3.0f%% %.*s%s", bar.c_str(), fraction * 100,
                          static_cast<int>(std::min<size_t>(stage.size(), 60)), stage.data(), eta);
    int pad = last_width_ > n ? last_width_ - n : 0;
    std::fprintf(stderr, "%s%*s", line, pad, "");
    std::fflush(stderr);
    last_width_ = n;
  } else {
    int decile = static_cast<int>(fraction * 10);
    if (stage == last_stage_ && decile == last_decile_) return;
    last_stage_ = stage;
    last_decile_ = decile;
    std::fprintf(stderr, "progress %3.0f%% %.*s (%.1fs)\n", fraction * 100, static_cast<int>(stage.size()),
                 stage.data(), elapsed);
  }
}

void TerminalProgress::finish() {
  if (enabled_ && tty_ && last_width_ > 0) {
    std::fprintf(stderr, "\r%*s\r", last_width_, "");
    std::fflush(stderr);
    last_width_ = 0;
  }
}

TerminalProgress& process_progress() {
  static TerminalProgress progress;
  return progress;
}

}  // namespace hilum::cli
