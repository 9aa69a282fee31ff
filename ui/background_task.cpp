#include "ui/background_task.h"

#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <cmath>
#include <exception>

#include "model/log.h"

namespace hilum::ui {

void QtProgress::report(double fraction, std::string_view stage) {
  fraction = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    const bool stageChanged = stage != m_lastStage;
    if (!stageChanged && fraction - m_lastFraction < 0.005 && fraction < 1.0) return;
    if (!stageChanged && fraction == m_lastFraction) return;
    m_lastFraction = fraction;
    if (stageChanged) m_lastStage.assign(stage);
  }
  emit progressed(fraction, QString::fromUtf8(stage.data(), static_cast<qsizetype>(stage.size())));
}

BackgroundTask::BackgroundTask(QObject* parent) : QObject(parent) {
  connect(&m_watcher, &QFutureWatcher<void>::finished, this, &BackgroundTask::onFinished);
}

BackgroundTask::~BackgroundTask() {
  m_queued.reset();
  if (m_progress) m_progress->cancel();
  m_watcher.disconnect(this);
  m_watcher.waitForFinished();
}

void BackgroundTask::start(const QString& title, std::function<void(Progress&)> job,
                           std::function<void()> done) {
  Job next{title, std::move(job), std::move(done)};
  if (m_running) {
    m_progress->cancel();
    m_queued = std::move(next);
    return;
  }
  launch(std::move(next));
}

void BackgroundTask::launch(Job job) {
  m_progress = std::make_unique<QtProgress>();
  connect(m_progress.get(), &QtProgress::progressed, this, &BackgroundTask::progressed);
  m_title = job.title;
  m_running = true;
  QtProgress* progress = m_progress.get();
  auto work = job.work;
  m_current = std::move(job);
  emit started(m_title);
  m_watcher.setFuture(QtConcurrent::run([work, progress]() {
    try {
      work(*progress);
    } catch (const std::exception& e) {
      // Jobs return errors as values; an exception here is a bug in a library.
      log_error(std::string("background job failed: ") + e.what());
    }
  }));
}

void BackgroundTask::onFinished() {
  std::optional<Job> job = std::move(m_current);
  m_current.reset();
  m_running = false;
  if (m_queued) {
    Job next = std::move(*m_queued);
    m_queued.reset();
    launch(std::move(next));
    return;  // the superseded job's result is dropped
  }
  emit finished();
  // A cancelled job still completes (its result says "cancelled"), so the
  // caller can put the interface back in order.
  if (job && job->done) job->done();
}

void BackgroundTask::cancel() {
  m_queued.reset();
  if (m_progress && m_running) m_progress->cancel();
}

void BackgroundTask::waitForFinished() { m_watcher.waitForFinished(); }

}  // namespace hilum::ui
