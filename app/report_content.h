// What a study report shows, as plain strings and pixels: the header (with
// the patient identifiers: the report is an output the user asked for), the
// findings table, Lung-RADS and management, one key image per nodule, the
// narrative impression and the AI disclaimer. The PDF renderer
// (app/pdf/report_pdf_qt.h) only lays this out; everything a test wants to
// check about a report's content is decided here, without Qt.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "app/narrative.h"
#include "fusion/findings.h"
#include "model/result.h"
#include "vision/volume.h"

namespace hilum {

inline constexpr const char* kAiDisclaimer =
    "Research software, not a medical device. AI-generated findings must be reviewed by a radiologist.";

// An axial image through a nodule's centre in the lung window (W1500/L-600),
// columns towards the patient's left, rows towards posterior (the radiological
// view), with the nodule's outline as a circle of its long axis.
struct KeyImage {
  int finding_id = 0;
  int slice_index = 0;  // 0-based axial slice in volume order
  int width = 0, height = 0;
  std::vector<uint8_t> gray;  // row-major, width * height
  double mm_per_pixel = 0;
  double center_x = 0, center_y = 0;  // nodule centre, pixels
  double radius_px = 0;               // long axis / 2
  std::string caption;
};

struct ReportTableRow {
  std::string id, location, long_axis, short_axis, mean_diameter, volume, type, probability, malignancy,
      lung_rads;
};

struct ReportContent {
  std::string title;
  std::vector<std::pair<std::string, std::string>> header;  // label, value (PHI included)
  std::vector<ReportTableRow> rows;
  std::string study_lung_rads;             // "4A (suspicious)"
  std::string management;                  // the study category's follow-up
  std::vector<std::string> finding_notes;  // per-finding Lung-RADS notes ("Nodule 2: ...")
  std::string impression;
  std::string impression_label;    // "AI draft - review before use" or "Template impression"
  std::string impression_note;     // Narrative::note
  std::vector<std::string> notes;  // the document's notes (no PHI)
  std::string disclaimer = kAiDisclaimer;
  std::string footer;  // generator, model bundle, series
  // The date written into the PDF's metadata, YYYYMMDDHHMMSS: the study's date
  // and time (so a rerun gives identical bytes), 19700101000000 when unknown.
  std::string document_time = "19700101000000";
  std::vector<KeyImage> images;
};

// "20000101" -> "2000-01-01"; anything else unchanged. "DOE^JANE" -> "DOE, JANE".
std::string format_dicom_date(const std::string& da);
std::string format_person_name(const std::string& pn);

// Builds the content. `volume` may be empty (no pixels): then there are no
// key images. Fails only on inconsistent input (a finding whose slice lies
// outside the volume is kBadInput).
Result<ReportContent> build_report_content(const FindingsDocument& doc, const Volume& volume,
                                           const StudyInfo& study, const Narrative& narrative);

// One key image (exposed for tests): side = max(60 mm, 3 x long axis), `pixels` square.
Result<KeyImage> make_key_image(const Volume& volume, const Finding& finding, int pixels = 256);

}  // namespace hilum
