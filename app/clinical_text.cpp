#include "app/clinical_text.h"

#include <algorithm>

#if HILUM_HAVE_IMAGING
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/oflog/oflog.h>

#include <mutex>
#endif

#include "model/tokenizer.h"

namespace hilum {

namespace fs = std::filesystem;

#if HILUM_HAVE_IMAGING

namespace {

// Appends the non-blank values of the TEXT content items below `item`, in
// document order (depth first, as the content tree reads).
void collect_text_items(DcmItem& item, std::string& text) {
  DcmSequenceOfItems* content = nullptr;
  if (item.findAndGetSequence(DCM_ContentSequence, content).bad() || content == nullptr) return;
  for (unsigned long i = 0; i < content->card(); ++i) {
    DcmItem* child = content->getItem(i);
    OFString type, value;
    child->findAndGetOFString(DCM_ValueType, type);
    if (type == "TEXT" && child->findAndGetOFStringArray(DCM_TextValue, value).good()) {
      const size_t end = value.find_last_not_of(" \t\r\n");
      if (end != OFString_npos) {
        if (!text.empty()) text += "\n";
        text.append(value.c_str(), end + 1);
      }
    }
    collect_text_items(*child, text);
  }
}

}  // namespace

std::optional<std::string> read_sr_text(const fs::path& file) {
  // DCMTK logs element values on parse problems (PHI): Hilum stays quiet.
  static std::once_flag quiet;
  std::call_once(quiet, [] { OFLog::configure(OFLogger::OFF_LOG_LEVEL); });
  // The header first (values over 4 KiB not loaded): most files of a study
  // are images, and this is all it takes to skip them.
  DcmFileFormat head;
  if (head.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 4096).bad()) return std::nullopt;
  DcmDataset* ds = head.getDataset();
  OFString cls, manufacturer;
  const std::string sr_prefix = "1.2.840.10008.5.1.4.1.1.88.";
  if (ds->findAndGetOFString(DCM_SOPClassUID, cls).bad() ||
      cls.compare(0, sr_prefix.size(), sr_prefix.c_str()) != 0) {
    return std::nullopt;
  }
  ds->findAndGetOFString(DCM_Manufacturer, manufacturer);
  if (manufacturer == "Hilum") return std::nullopt;
  DcmFileFormat full;
  if (full.loadFile(file.c_str()).bad()) return std::nullopt;
  // Values in Latin-1 and other character sets (also one set per content
  // item) become UTF-8; when the character set is unknown they stay as they
  // are and the UTF-8 check below decides.
  (void)full.getDataset()->convertToUTF8();
  // The content tree is walked directly rather than through
  // DSRDocument::read: that rejects a whole document for one item it finds
  // invalid (an empty TEXT, an unusual relationship: real-world SRs have
  // them), and its checks depend on process-wide dcmdata settings (a DcmSCP,
  // as in a C-MOVE, switches input correction off, and then odd-length UIDs
  // fail them).
  std::string text;
  collect_text_items(*full.getDataset(), text);
  if (text.empty() || !is_valid_utf8(text)) return std::nullopt;
  return text;
}

SrClinicalText find_sr_clinical_text(const std::vector<fs::path>& inputs) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const fs::path& input : inputs) {
    fs::path dir;
    if (fs::is_directory(input, ec)) {
      dir = input;
    } else if (input.filename() == "DICOMDIR") {
      dir = input.parent_path().empty() ? fs::path(".") : input.parent_path();
    } else if (fs::is_regular_file(input, ec)) {
      files.push_back(input);
      continue;
    } else {
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && it->path().filename() != "DICOMDIR") files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  SrClinicalText out;
  for (const fs::path& f : files) {
    auto t = read_sr_text(f);
    if (!t) continue;
    if (out.files == 0) out.first_file = f;
    out.text += (out.text.empty() ? "" : "\n") + *t;
    ++out.files;
  }
  return out;
}

#else

std::optional<std::string> read_sr_text(const fs::path&) { return std::nullopt; }
SrClinicalText find_sr_clinical_text(const std::vector<fs::path>&) { return {}; }

#endif

}  // namespace hilum
