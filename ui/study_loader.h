// Opening a study for the workstation: what runs on the worker thread when the
// radiologist opens a folder, a DICOMDIR or files.
//
// loadStudy() lists the series (scan_dicom), loads the chosen one
// (load_dicom_volume), reads the clinical text sidecar and draws the series
// thumbnail. It never touches widgets and may run on any thread.
#pragma once

#include <QImage>
#include <QString>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/io/dicom.h"
#include "vision/volume.h"

namespace hilum::ui {

struct StudyRequest {
  std::vector<std::filesystem::path> inputs;  // folders, DICOMDIRs or files
  std::optional<std::string> series;  // a stack selector ("UID" or "UID#k"); else the loader's default
};

// The selector load_dicom_volume takes for one stack of the scan: "UID" for a
// series' main stack, "UID#k" for the others.
std::string seriesSelector(const SeriesSummary& series);

struct LoadedStudyData {
  std::shared_ptr<const Volume> volume;
  StudyInfo info;                     // PHI: shown on screen, never logged
  std::vector<SeriesSummary> series;  // every stack the scan found
  std::string loadedSelector;         // which of them this is
  std::vector<std::string> warnings;
  std::string selectionNote;
  QString clinicalText;  // empty when neither a sidecar nor an SR with text was found
  QString clinicalTextPath;
  bool clinicalTextFromSr = false;  // the text came from a DICOM SR of the study
  QImage thumbnail;                 // of the loaded series
};

// True when this build has the DICOM loader (vision/io).
bool dicomLoaderAvailable();

// The clinical text: a sidecar (findClinicalSidecar), else the TEXT items of
// the DICOM SRs among the inputs (app/clinical_text.h).
Result<LoadedStudyData> loadStudy(const StudyRequest& request, Progress& progress);

// Loads one series only to draw its thumbnail (for the series browser).
Result<QImage> loadSeriesThumbnail(const std::vector<std::filesystem::path>& inputs,
                                   const std::string& selector, Progress& progress);

// The clinical text that came with a study: "clinical.txt" (or, failing that,
// the only *.txt file) in the study folder, or in its parent folder. For a
// file or DICOMDIR input the study folder is the file's folder.
std::optional<std::filesystem::path> findClinicalSidecar(const std::vector<std::filesystem::path>& inputs);

// A small grey image of the volume's middle axial slice in the lung window.
QImage makeThumbnail(const std::shared_ptr<const Volume>& volume, int size = 96);

}  // namespace hilum::ui
