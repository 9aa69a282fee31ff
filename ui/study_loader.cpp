#include "ui/study_loader.h"

#include <algorithm>
#include <system_error>

#include "app/clinical_text.h"
#include "model/file_io.h"
#include "ui/slice_renderer.h"

namespace hilum::ui {

namespace fs = std::filesystem;

std::string seriesSelector(const SeriesSummary& series) {
  return series.stack_index > 0 ? series.series_uid + "#" + std::to_string(series.stack_index)
                                : series.series_uid;
}

bool dicomLoaderAvailable() {
#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING
  return true;
#else
  return false;
#endif
}

std::optional<fs::path> findClinicalSidecar(const std::vector<fs::path>& inputs) {
  if (inputs.empty()) return std::nullopt;
  std::error_code ec;
  const fs::path first = inputs.front();
  const fs::path folder = fs::is_directory(first, ec) ? first : first.parent_path();
  for (const fs::path& dir : {folder, folder.parent_path()}) {
    if (dir.empty() || !fs::is_directory(dir, ec)) continue;
    if (fs::is_regular_file(dir / "clinical.txt", ec)) return dir / "clinical.txt";
    std::vector<fs::path> texts;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_regular_file(ec) && entry.path().extension() == ".txt") texts.push_back(entry.path());
    }
    if (texts.size() == 1) return texts.front();
  }
  return std::nullopt;
}

QImage makeThumbnail(const std::shared_ptr<const Volume>& volume, int size) {
  if (!volume || volume->nz() == 0) return {};
  SliceRenderer renderer(volume);
  const QImage slice = renderer.render(Plane::Axial, renderer.sliceCount(Plane::Axial) / 2, kLungWindow);
  const QSizeF mm(slice.width() * renderer.pixelSpacing(Plane::Axial).width(),
                  slice.height() * renderer.pixelSpacing(Plane::Axial).height());
  const QSize target = mm.scaled(size, size, Qt::KeepAspectRatio).toSize().expandedTo(QSize(1, 1));
  return slice.scaled(target, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
}

Result<LoadedStudyData> loadStudy(const StudyRequest& request, Progress& progress) {
  if (request.inputs.empty()) return bad_input("no study given");
#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING
  LoadedStudyData data;
  ProgressRange scanning(progress, 0.0, 0.05);
  HILUM_ASSIGN_OR_RETURN(DicomInventory inventory, scan_dicom(request.inputs, scanning));
  if (progress.cancelled()) return cancelled_error();
  data.series = std::move(inventory.series);
  data.warnings = std::move(inventory.warnings);

  LoadOptions options;
  options.series_uid = request.series;
  ProgressRange loading(progress, 0.05, 0.97);
  HILUM_ASSIGN_OR_RETURN(LoadedStudy study, load_dicom_volume(request.inputs, options, loading));
  if (progress.cancelled()) return cancelled_error();

  data.volume = std::make_shared<const Volume>(std::move(study.volume));
  data.info = std::move(study.info);
  data.loadedSelector = study.series_selector;
  data.warnings.insert(data.warnings.end(), study.warnings.begin(), study.warnings.end());
  data.selectionNote = std::move(study.selection_note);

  progress.report(0.98, "clinical text");
  if (auto sidecar = findClinicalSidecar(request.inputs)) {
    std::error_code ec;
    const auto bytes = fs::file_size(*sidecar, ec);
    if (!ec && bytes <= (1u << 20)) {
      if (auto text = read_file(*sidecar); text.ok()) {
        data.clinicalText = QString::fromUtf8(text->data(), static_cast<qsizetype>(text->size()));
        data.clinicalTextPath = QString::fromStdString(sidecar->string());
      } else {
        data.warnings.push_back("clinical text not read: " + text.error().message());
      }
    } else {
      data.warnings.push_back("clinical text " + sidecar->filename().string() +
                              " skipped (larger than 1 MiB)");
    }
  } else if (SrClinicalText sr = find_sr_clinical_text(request.inputs); !sr.text.empty()) {
    data.clinicalText = QString::fromStdString(sr.text);
    data.clinicalTextPath = QString::fromStdString(sr.first_file.string());
    data.clinicalTextFromSr = true;
  }
  data.thumbnail = makeThumbnail(data.volume);
  progress.report(1.0, "done");
  return data;
#else
  (void)progress;
  return unsupported("this build of Hilum has no DICOM loader (vision/io is not built)");
#endif
}

Result<QImage> loadSeriesThumbnail(const std::vector<fs::path>& inputs, const std::string& selector,
                                   Progress& progress) {
#if defined(HILUM_HAVE_IMAGING) && HILUM_HAVE_IMAGING
  LoadOptions options;
  options.series_uid = selector;
  options.threads = 1;  // background work: leave the other core to the radiologist
  HILUM_ASSIGN_OR_RETURN(LoadedStudy study, load_dicom_volume(inputs, options, progress));
  return makeThumbnail(std::make_shared<const Volume>(std::move(study.volume)));
#else
  (void)inputs, (void)selector, (void)progress;
  return unsupported("this build of Hilum has no DICOM loader (vision/io is not built)");
#endif
}

}  // namespace hilum::ui
