// The clinical text that came with a study when it is not a sidecar file: the
// TEXT content items of a DICOM Structured Report sent with the images (a
// referral, "Clinical history", "Reason for request", a prior report). Batch
// processing and the workstation both read it here. Imaging builds only
// (DCMTK); without imaging nothing is found.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace hilum {

// The TEXT content items of one DICOM SR file, in document order, one per
// line (blank ones skipped), converted to UTF-8 from the file's character set.
// Read leniently from the content tree: an item another system got slightly
// wrong does not lose the document's text, and the result does not depend on
// dcmdata's process-wide settings. nullopt when the file is not a readable
// DICOM SR, has no non-blank TEXT item, is not valid UTF-8 after conversion,
// or was written by Hilum (Manufacturer "Hilum": its own report is not
// clinical text).
std::optional<std::string> read_sr_text(const std::filesystem::path& file);

struct SrClinicalText {
  std::string text;                  // empty when no SR with text was found
  std::filesystem::path first_file;  // the first SR that had text
  int files = 0;                     // SRs that contributed text
};

// The text of every such SR among `inputs` (files; folders searched
// recursively; a DICOMDIR stands for its folder), joined by newlines in path
// order. Unreadable files are skipped: this never fails.
SrClinicalText find_sr_clinical_text(const std::vector<std::filesystem::path>& inputs);

}  // namespace hilum
