// A PDF report as a DICOM object (Encapsulated PDF Storage, PS3.3 A.45.1), so
// that it can be stored in the PACS next to the study it describes.
//
// The patient and study identifiers are copied from the study (they are what
// makes the PACS file the document under the right patient and study); the
// document gets its own series (modality DOC) and new UIDs unless given.
#pragma once

#include <filesystem>
#include <string>

#include "model/result.h"
#include "vision/volume.h"

namespace hilum::pacs {

struct EncapsulatedPdfOptions {
  std::string document_title = "Hilum lung nodule report";
  std::string series_description = "Hilum report (PDF)";
  int series_number = 9001;
  int instance_number = 1;
  std::string series_instance_uid;  // empty: a new UID
  std::string sop_instance_uid;     // empty: a new UID
  std::string content_date;         // DA; empty: today (local time)
  std::string content_time;         // TM; empty: now
  // Study-level attributes StudyInfo does not hold (DICOM type 2: may stay empty).
  std::string study_id;
  std::string referring_physician;
};

// Wraps the PDF file `pdf_file` for the study `study` (uses its patient
// identity, study UID, date, time, accession number, description) and writes the
// DICOM file atomically to `out_file` (explicit VR little endian, file meta
// header). Returns the new SOP Instance UID.
// Bad input: `pdf_file` unreadable or not a PDF ("%PDF-" header), the study has
// no Study Instance UID, a UID option that is not a UID, the PDF is over 4 GB.
Result<std::string> write_encapsulated_pdf(const std::filesystem::path& pdf_file, const StudyInfo& study,
                                           const EncapsulatedPdfOptions& options,
                                           const std::filesystem::path& out_file);

// Reads the patient and study identifiers from the header of one DICOM file of
// the study (no pixel data is loaded). `study_id` and `referring_physician`, when
// given, receive those study attributes too.
// Bad input: not a readable DICOM file, or no Study Instance UID.
Result<StudyInfo> read_study_identifiers(const std::filesystem::path& dicom_file,
                                         std::string* study_id = nullptr,
                                         std::string* referring_physician = nullptr);

// A new DICOM UID under the 2.25 root (a random UUID written in decimal).
std::string new_dicom_uid();

}  // namespace hilum::pacs
