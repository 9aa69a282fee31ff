// Long work off the GUI thread: loading a study, analysis, report drafting.
//
// A BackgroundTask runs one job at a time on Qt's thread pool. The job gets a
// Progress whose report() is forwarded to the GUI thread as the progressed()
// signal and whose cancelled() reads an atomic flag that cancel() sets. The
// completion callback runs on the GUI thread. Starting a job while one runs
// cancels the running one and queues the new one (the cancelled job's
// completion callback is not called). The destructor cancels and waits, so
// jobs may refer to the task's owner.
#pragma once

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "model/progress.h"
#include "model/result.h"

namespace hilum::ui {

// Progress of a worker, shown by the GUI: report() may be called from any
// thread (even several at once) and is throttled to about 200 updates per run.
class QtProgress final : public QObject, public Progress {
  Q_OBJECT

 public:
  explicit QtProgress(QObject* parent = nullptr) : QObject(parent) {}
  void report(double fraction, std::string_view stage) override;
  bool cancelled() const override { return m_cancelled.load(std::memory_order_relaxed); }
  void cancel() { m_cancelled.store(true, std::memory_order_relaxed); }

 signals:
  // Emitted on the reporting thread; queued to receivers on the GUI thread.
  void progressed(double fraction, const QString& stage);

 private:
  std::atomic<bool> m_cancelled{false};
  std::mutex m_mutex;
  double m_lastFraction = -1;
  std::string m_lastStage;
};

class BackgroundTask : public QObject {
  Q_OBJECT

 public:
  explicit BackgroundTask(QObject* parent = nullptr);
  ~BackgroundTask() override;

  // Runs job(progress) on a worker; then done() on the GUI thread.
  void start(const QString& title, std::function<void(Progress&)> job, std::function<void()> done);

  // Typed convenience: the job's Result is handed to done() on the GUI thread.
  template <typename T>
  void run(const QString& title, std::function<Result<T>(Progress&)> job,
           std::function<void(Result<T>)> done) {
    auto slot = std::make_shared<std::optional<Result<T>>>();
    start(
        title,
        [slot, job = std::move(job)](Progress& p) {
          try {
            slot->emplace(job(p));
          } catch (const std::exception& e) {
            slot->emplace(internal_error(std::string("unexpected exception: ") + e.what()));
          }
        },
        [slot, done = std::move(done)]() {
          if (!slot->has_value()) slot->emplace(internal_error("the job did not finish"));
          done(std::move(**slot));
        });
  }

  void cancel();  // the running job and any queued one
  bool isRunning() const { return m_running; }
  QString title() const { return m_title; }
  void waitForFinished();  // blocks; for the destructor and the screenshot mode

 signals:
  void started(const QString& title);
  void progressed(double fraction, const QString& stage);
  void finished();

 private:
  struct Job {
    QString title;
    std::function<void(Progress&)> work;
    std::function<void()> done;
  };
  void launch(Job job);
  void onFinished();

  QFutureWatcher<void> m_watcher;
  std::unique_ptr<QtProgress> m_progress;
  std::optional<Job> m_current, m_queued;
  QString m_title;
  bool m_running = false;
};

}  // namespace hilum::ui
