#include "app/clinical_text.h"

#include <algorithm>

#if HILUM_HAVE_IMAGING
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcspchrs.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <dcmtk/oflog/oflog.h>

#include <mutex>
#endif

#include "model/tokenizer.h"

namespace hilum {

namespace fs = std::filesystem;

#if HILUM_HAVE_IMAGING

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
  // Values in Latin-1 and other character sets become UTF-8.
  DcmSpecificCharacterSet charset;
  const bool convert = DcmSpecificCharacterSet::isConversionAvailable() &&
                       charset.selectCharacterSet(*full.getDataset()).good();
  // Leniently: an SR from another system with a slightly invalid item (an
  // empty TEXT, an unusual relationship) still gives its text.
  DSRDocument doc;
  const size_t flags = DSRTypes::RF_acceptInvalidContentItemValue | DSRTypes::RF_ignoreContentItemErrors |
                       DSRTypes::RF_acceptUnknownRelationshipType |
                       DSRTypes::RF_ignoreRelationshipConstraints;
  if (doc.read(*full.getDataset(), flags).bad()) return std::nullopt;
  std::string text;
  DSRDocumentTree& tree = doc.getTree();
  if (tree.gotoRoot() > 0) {
    do {
      const DSRContentItem& item = tree.getCurrentContentItem();
      if (item.getValueType() == DSRTypes::VT_Text) {
        OFString value = item.getStringValue();
        if (convert) {
          OFString utf8;
          if (charset.convertString(value, utf8).good()) value = utf8;
        }
        if (value.find_first_not_of(" \t\r\n") == OFString_npos) continue;
        if (!text.empty()) text += "\n";
        text += value.c_str();
      }
    } while (tree.iterate() > 0);
  }
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
