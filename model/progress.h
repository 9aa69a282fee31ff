// Progress reporting and cancellation for long operations.
//
// Every long operation takes a Progress& and calls report() with the fraction
// done (0..1) of its own work and a short stage name, and polls cancelled() at
// convenient points (then returns cancelled_error()). Callers that run several
// steps give each step a ProgressRange, a slice of their own range.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

namespace hilum {

class Progress {
 public:
  virtual ~Progress() = default;
  // fraction in [0, 1] of the whole operation; stage is a short human label.
  virtual void report(double fraction, std::string_view stage) = 0;
  virtual bool cancelled() const { return false; }
};

// Ignores reports; never cancelled.
class NullProgress final : public Progress {
 public:
  void report(double, std::string_view) override {}
};

// Maps a sub-step's 0..1 onto [begin, end] of a parent Progress.
class ProgressRange final : public Progress {
 public:
  ProgressRange(Progress& parent, double begin, double end) : parent_(parent), begin_(begin), end_(end) {}
  void report(double fraction, std::string_view stage) override {
    if (fraction < 0) fraction = 0;
    if (fraction > 1) fraction = 1;
    parent_.report(begin_ + (end_ - begin_) * fraction, stage);
  }
  bool cancelled() const override { return parent_.cancelled(); }

 private:
  Progress& parent_;
  double begin_, end_;
};

// A Progress whose cancellation flag can be set from another thread (GUI Cancel
// button, SIGINT handler); reports go nowhere unless a subclass overrides.
class CancellableProgress : public Progress {
 public:
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const override { return cancelled_.load(std::memory_order_relaxed); }
  void report(double, std::string_view) override {}

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace hilum
