#include "app/report_sr.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <vector>

#if HILUM_HAVE_IMAGING

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/cmr/init.h>
#include <dcmtk/dcmsr/cmr/tid1500.h>
#include <dcmtk/dcmsr/cmr/tid4019.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/codes/ucum.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#endif

namespace hilum {
namespace {

uint64_t fnv1a(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // splitmix64 finaliser
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

}  // namespace

std::string hashed_uid(const std::string& key) {
  uint64_t hi = fnv1a(key, 0x48494c554d000001ull), lo = fnv1a(key, 0x48494c554d000002ull);
  hi = (hi & ~0xF000ull) | 0x8000ull;                         // version 8
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  unsigned __int128 v = (static_cast<unsigned __int128>(hi) << 64) | lo;
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return "2.25." + digits;
}

#if HILUM_HAVE_IMAGING

namespace {

// Codes (SNOMED CT unless said otherwise).
const DSRBasicCodedEntry kNodule("27925004", "SCT", "Nodule");
const DSRBasicCodedEntry kLung("39607008", "SCT", "Lung");
const DSRBasicCodedEntry kLongAxis("103339001", "SCT", "Long Axis");
const DSRBasicCodedEntry kShortAxis("103340004", "SCT", "Short Axis");
const DSRBasicCodedEntry kDiameter("81827009", "SCT", "Diameter");
const DSRBasicCodedEntry kVolume("118565006", "SCT", "Volume");
const DSRBasicCodedEntry kMean("373098007", "SCT", "Mean");
const DSRBasicCodedEntry kCtChest("169069000", "SCT", "CT of chest");
const DSRBasicCodedEntry kSourceOfMeasurement("121112", "DCM", "Source of Measurement");
const DSRBasicCodedEntry kImpression("121073", "DCM", "Impression");
const DSRBasicCodedEntry kRecommendation("121075", "DCM", "Recommendation");
const DSRBasicCodedEntry kMm3("mm3", "UCUM", "cubic millimeter");
const DSRBasicCodedEntry kNoUnits("1", "UCUM", "no units");
constexpr const char* kPrivateScheme = "99HILUM";
const DSRBasicCodedEntry kNoduleType("NODTYPE", kPrivateScheme, "Nodule type");
const DSRBasicCodedEntry kLungRads("LUNGRADS", kPrivateScheme, "Lung-RADS v2022 category");
const DSRBasicCodedEntry kNoduleProbability("NODPROB", kPrivateScheme, "Nodule probability");
const DSRBasicCodedEntry kMalignancy("MALPROB", kPrivateScheme, "Malignancy probability");

DSRBasicCodedEntry lobe_code(const std::string& lobe) {
  if (lobe == "RUL") return DSRBasicCodedEntry("42400003", "SCT", "Upper lobe of right lung");
  if (lobe == "RML") return DSRBasicCodedEntry("72481006", "SCT", "Middle lobe of right lung");
  if (lobe == "RLL") return DSRBasicCodedEntry("266005", "SCT", "Lower lobe of right lung");
  if (lobe == "LUL") return DSRBasicCodedEntry("44714003", "SCT", "Upper lobe of left lung");
  if (lobe == "LLL") return DSRBasicCodedEntry("41224006", "SCT", "Lower lobe of left lung");
  return kLung;
}

std::string decimal(double v, int places) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", places, v);
  return buf;
}

Status check(const OFCondition& c, const std::string& what) {
  if (c.good()) return Status::Ok();
  return internal_error("DICOM SR: " + what + ": " + c.text());
}

// DICOM DS/TM/DA helpers: a date of 8 digits or nothing.
std::string valid_date(const std::string& da) {
  if (da.size() != 8) return "";
  for (char c : da) {
    if (c < '0' || c > '9') return "";
  }
  return da;
}

Status add_measurement(TID1500_MeasurementReport::TID1501_Measurements& group, const DSRBasicCodedEntry& name,
                       const std::string& value, const DSRBasicCodedEntry& unit,
                       const DSRImageReferenceValue& image, bool mean, const std::string& software) {
  using Value = TID1500_MeasurementReport::TID1501_Measurements::MeasurementValue;
  Value v(value.c_str(), DSRCodedEntryValue(unit), OFFalse /*check*/);
  HILUM_RETURN_IF_ERROR(
      check(group.addMeasurement(DSRCodedEntryValue(name), v, OFFalse /*checkEmpty*/, OFFalse),
            std::string("measurement ") + name.CodeMeaning.c_str()));
  auto& m = group.getMeasurement();
  if (mean) HILUM_RETURN_IF_ERROR(check(m.setDerivation(DSRCodedEntryValue(kMean), OFFalse), "derivation"));
  HILUM_RETURN_IF_ERROR(
      check(m.addImage(DSRCodedEntryValue(kSourceOfMeasurement), image, OFFalse), "image reference"));
  return Status::Ok();
}

// TID 4019 (Algorithm Identification) under every measurement: DCMTK's TID 300
// class does not offer it, so it is added to the expanded document tree.
Status add_algorithm_identification(DSRDocumentTree& tree, const std::string& software) {
  const std::string version = software.rfind("hilum ", 0) == 0 ? software.substr(6) : software;
  std::vector<size_t> measurements;
  if (tree.gotoRoot() > 0) {
    do {
      if (tree.getCurrentContentItem().getValueType() == DSRTypes::VT_Num)
        measurements.push_back(tree.getNodeID());
    } while (tree.iterate() > 0);
  }
  const DSRBasicCodedEntry name("111001", "DCM", "Algorithm Name"), ver("111003", "DCM", "Algorithm Version");
  for (size_t id : measurements) {
    if (tree.gotoNode(id) == 0) return internal_error("DICOM SR: lost a measurement node");
    if (tree.addContentItem(DSRTypes::RT_hasConceptMod, DSRTypes::VT_Text, DSRTypes::AM_belowCurrent) == 0 ||
        tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue(name), OFFalse).bad() ||
        tree.getCurrentContentItem().setStringValue("hilum", OFFalse).bad() ||
        tree.addContentItem(DSRTypes::RT_hasConceptMod, DSRTypes::VT_Text, DSRTypes::AM_afterCurrent) == 0 ||
        tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue(ver), OFFalse).bad() ||
        tree.getCurrentContentItem().setStringValue(version.c_str(), OFFalse).bad()) {
      return internal_error("DICOM SR: could not add the algorithm identification");
    }
  }
  return Status::Ok();
}

}  // namespace

Status write_report_sr(const std::filesystem::path& path, const FindingsDocument& doc, const StudyInfo& study,
                       const SrOptions& options) {
  const std::string series_uid =
      study.series_instance_uid.empty() ? doc.series_uid : study.series_instance_uid;
  if (series_uid.empty()) return bad_input(path.string() + ": the study has no series UID to reference");
  const std::string study_uid =
      study.study_instance_uid.empty() ? hashed_uid("study:" + series_uid) : study.study_instance_uid;
  const std::string ct_class = UID_CTImageStorage;
  auto slice_reference = [&](const Finding& f) -> Result<DSRImageReferenceValue> {
    const int k = f.location.slice_index;
    if (k < 0 || k >= static_cast<int>(study.sop_instance_uids.size())) {
      return bad_input(path.string() + ": nodule " + std::to_string(f.id) + " lies on slice " +
                       std::to_string(k) + ", which has no SOP Instance UID (" +
                       std::to_string(study.sop_instance_uids.size()) + " slices known)");
    }
    const std::string& cls =
        k < static_cast<int>(study.sop_class_uids.size()) && !study.sop_class_uids[k].empty()
            ? study.sop_class_uids[k]
            : ct_class;
    return DSRImageReferenceValue(cls.c_str(), study.sop_instance_uids[k].c_str());
  };

  const std::string software = options.software_version.empty() ? doc.generator : options.software_version;
  const std::string findings_key = series_uid + "|" + findings_to_json(doc) + "|" + options.impression;
  const std::string sr_series_uid = hashed_uid("sr-series:" + series_uid + "|" + software);
  const std::string sr_instance_uid = hashed_uid("sr-instance:" + findings_key);
  const std::string device_uid = hashed_uid("device:hilum");

  // DCMTK fills its context-group code lists lazily, which is not thread-safe: once, up front.
  static std::once_flag cmr_init;
  std::call_once(cmr_init, [] { CMR_ContentMappingResource::initializeAllContextGroups(); });
  TID1500_MeasurementReport report(CMR_CID7021::ImagingMeasurementReport);
  HILUM_RETURN_IF_ERROR(check(report.setLanguage(CID5000_Languages::English_US), "language"));
  HILUM_RETURN_IF_ERROR(check(report.getObservationContext().addDeviceObserver(device_uid.c_str(), "hilum",
                                                                               "Hilum", software.c_str()),
                              "device observer"));
  HILUM_RETURN_IF_ERROR(
      check(report.addProcedureReported(DSRCodedEntryValue(kCtChest), OFFalse), "procedure"));

  // Image library: every slice of the series.
  TID1600_ImageLibrary& library = report.getImageLibrary();
  if (!library.hasImageLibrary())
    HILUM_RETURN_IF_ERROR(check(library.createNewImageLibrary(), "image library"));
  HILUM_RETURN_IF_ERROR(check(library.addImageGroup(), "image library group"));
  for (size_t k = 0; k < study.sop_instance_uids.size(); ++k) {
    DcmItem item;
    const std::string& cls = k < study.sop_class_uids.size() && !study.sop_class_uids[k].empty()
                                 ? study.sop_class_uids[k]
                                 : ct_class;
    item.putAndInsertString(DCM_SOPClassUID, cls.c_str());
    item.putAndInsertString(DCM_SOPInstanceUID, study.sop_instance_uids[k].c_str());
    item.putAndInsertString(DCM_Modality, study.modality.empty() ? "CT" : study.modality.c_str());
    HILUM_RETURN_IF_ERROR(check(library.addImageEntry(item, TID1600_ImageLibrary::withoutDescriptors,
                                                      TID1600_ImageLibrary::ConceptNameList(), OFFalse),
                                "image library entry"));
  }

  // One measurement group per nodule.
  for (size_t i = 0; i < doc.findings.size(); ++i) {
    const Finding& f = doc.findings[i];
    HILUM_ASSIGN_OR_RETURN(DSRImageReferenceValue image, slice_reference(f));
    if (i > 0) HILUM_RETURN_IF_ERROR(check(report.addIndividualMeasurements(OFFalse), "measurement group"));
    auto& group = report.getIndividualMeasurements();
    const std::string tracking_id = "Nodule " + std::to_string(f.id);
    const std::string tracking_uid =
        hashed_uid("nodule:" + series_uid + "|" + std::to_string(f.id) + "|" + decimal(f.center_mm[0], 2) +
                   "|" + decimal(f.center_mm[1], 2) + "|" + decimal(f.center_mm[2], 2));
    HILUM_RETURN_IF_ERROR(check(group.setTrackingIdentifier(tracking_id.c_str()), "tracking identifier"));
    HILUM_RETURN_IF_ERROR(check(group.setTrackingUniqueIdentifier(tracking_uid.c_str()), "tracking UID"));
    HILUM_RETURN_IF_ERROR(check(group.setFinding(DSRCodedEntryValue(kNodule), OFFalse), "finding"));
    const LungSide side = f.location.side != LungSide::kUnknown ? f.location.side
                          : f.location.lobe.empty()             ? LungSide::kUnknown
                          : f.location.lobe[0] == 'R'           ? LungSide::kRight
                                                                : LungSide::kLeft;
    const CID244e_Laterality laterality(side == LungSide::kRight ? CID244e_Laterality::mapImageLaterality("R")
                                        : side == LungSide::kLeft
                                            ? CID244e_Laterality::mapImageLaterality("L")
                                            : DSRCodedEntryValue());
    HILUM_RETURN_IF_ERROR(check(group.addFindingSite(DSRCodedEntryValue(lobe_code(f.location.lobe)),
                                                     laterality, DSRCodedEntryValue(), OFFalse),
                                "finding site"));
    HILUM_RETURN_IF_ERROR(add_measurement(group, kLongAxis, decimal(f.long_axis_mm, 1), CODE_UCUM_Millimeter,
                                          image, false, software));
    HILUM_RETURN_IF_ERROR(add_measurement(group, kShortAxis, decimal(f.short_axis_mm, 1),
                                          CODE_UCUM_Millimeter, image, false, software));
    HILUM_RETURN_IF_ERROR(add_measurement(group, kDiameter, decimal(f.mean_diameter_mm, 1),
                                          CODE_UCUM_Millimeter, image, true, software));
    HILUM_RETURN_IF_ERROR(
        add_measurement(group, kVolume, decimal(f.volume_mm3, 1), kMm3, image, false, software));
    HILUM_RETURN_IF_ERROR(add_measurement(group, kNoduleProbability, decimal(f.probability, 3), kNoUnits,
                                          image, false, software));
    HILUM_RETURN_IF_ERROR(
        add_measurement(group, kMalignancy, decimal(f.malignancy, 3), kNoUnits, image, false, software));
    HILUM_RETURN_IF_ERROR(
        check(group.addQualitativeEvaluation(DSRCodedEntryValue(kNoduleType),
                                             std::string(nodule_type_name(f.type)).c_str(), OFFalse),
              "nodule type"));
    HILUM_RETURN_IF_ERROR(check(
        group.addQualitativeEvaluation(DSRCodedEntryValue(kLungRads),
                                       std::string(lung_rads_label(f.lung_rads.category)).c_str(), OFFalse),
        "Lung-RADS"));
  }

  // Study-level evaluations.
  const std::string study_cat =
      doc.lung_rads_study.empty() ? study_lung_rads(doc.findings) : doc.lung_rads_study;
  HILUM_RETURN_IF_ERROR(
      check(report.addQualitativeEvaluation(DSRCodedEntryValue(kLungRads), study_cat.c_str(), OFFalse),
            "study Lung-RADS"));
  if (auto cat = parse_lung_rads(study_cat); cat.ok()) {
    HILUM_RETURN_IF_ERROR(
        check(report.addQualitativeEvaluation(DSRCodedEntryValue(kRecommendation),
                                              std::string(lung_rads_management(*cat)).c_str(), OFFalse),
              "recommendation"));
  }
  if (!options.impression.empty()) {
    const std::string text =
        options.impression + (options.impression_note.empty() ? "" : " [" + options.impression_note + "]");
    HILUM_RETURN_IF_ERROR(
        check(report.addQualitativeEvaluation(DSRCodedEntryValue(kImpression), text.c_str(), OFFalse),
              "impression"));
  }
  if (!report.isValid()) return internal_error("DICOM SR: the TID 1500 tree is incomplete");

  DSRDocument sr;
  HILUM_RETURN_IF_ERROR(check(sr.setTreeFromRootTemplate(report, OFTrue /*expandTree*/), "document tree"));
  HILUM_RETURN_IF_ERROR(add_algorithm_identification(sr.getTree(), software));
  sr.getCodingSchemeIdentification().addItem(kPrivateScheme);
  sr.getCodingSchemeIdentification().setCodingSchemeName("Hilum findings codes");
  sr.getCodingSchemeIdentification().setCodingSchemeResponsibleOrganization("Hilum project");
  HILUM_RETURN_IF_ERROR(check(sr.createNewSeriesInStudy(study_uid.c_str()), "study"));
  sr.setSpecificCharacterSetType(DSRTypes::CS_UTF8);
  sr.setPatientName(study.patient.name.c_str(), OFFalse);
  sr.setPatientID(study.patient.id.c_str(), OFFalse);
  sr.setPatientBirthDate(valid_date(study.patient.birth_date).c_str(), OFFalse);
  sr.setPatientSex(study.patient.sex.c_str(), OFFalse);
  sr.setStudyDate(valid_date(study.study_date).c_str(), OFFalse);
  sr.setStudyTime(study.study_time.c_str(), OFFalse);
  sr.setAccessionNumber(study.accession_number.c_str(), OFFalse);
  sr.setStudyDescription(study.study_description.c_str(), OFFalse);
  sr.setSeriesDescription("Hilum AI lung nodule measurements", OFFalse);
  sr.setSeriesNumber("9901", OFFalse);
  sr.setInstanceNumber("1", OFFalse);
  sr.setManufacturer("Hilum", OFFalse);
  sr.setManufacturerModelName("hilum", OFFalse);
  sr.setSoftwareVersions(software.c_str(), OFFalse);
  sr.setPreliminaryFlag(DSRTypes::PF_Preliminary);
  for (size_t k = 0; k < study.sop_instance_uids.size(); ++k) {
    const std::string& cls = k < study.sop_class_uids.size() && !study.sop_class_uids[k].empty()
                                 ? study.sop_class_uids[k]
                                 : ct_class;
    sr.getCurrentRequestedProcedureEvidence().addItem(study_uid.c_str(), series_uid.c_str(), cls.c_str(),
                                                      study.sop_instance_uids[k].c_str());
  }
  // Deterministic dates and UIDs: the study's date/time (a fixed date when unknown).
  const std::string date = valid_date(study.study_date).empty() ? "19700101" : study.study_date;
  std::string time = study.study_time.empty() ? "000000" : study.study_time;
  HILUM_RETURN_IF_ERROR(check(sr.setContentDate(date.c_str(), OFFalse), "content date"));
  HILUM_RETURN_IF_ERROR(check(sr.setContentTime(time.c_str(), OFFalse), "content time"));

  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  HILUM_RETURN_IF_ERROR(check(sr.write(*ds), "encoding"));
  ds->putAndInsertString(DCM_SOPInstanceUID, sr_instance_uid.c_str());
  ds->putAndInsertString(DCM_SeriesInstanceUID, sr_series_uid.c_str());
  ds->putAndInsertString(DCM_InstanceCreationDate, date.c_str());
  ds->putAndInsertString(DCM_InstanceCreationTime, time.c_str());
  ds->putAndInsertString(DCM_SeriesDate, date.c_str());
  ds->putAndInsertString(DCM_SeriesTime, time.c_str());
  ds->putAndInsertString(DCM_InstanceCreatorUID, device_uid.c_str());

  static std::atomic<unsigned> counter{0};
  const std::filesystem::path tmp =
      path.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const OFCondition saved = file.saveFile(tmp.c_str(), EXS_LittleEndianExplicit);
  std::error_code ec;
  if (saved.bad()) {
    std::filesystem::remove(tmp, ec);
    return internal_error(path.string() + ": could not write the DICOM SR (" + saved.text() + ")");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return internal_error(path.string() + ": could not rename the DICOM SR into place (" + ec.message() +
                          ")");
  }
  return Status::Ok();
}

#else

Status write_report_sr(const std::filesystem::path& path, const FindingsDocument&, const StudyInfo&,
                       const SrOptions&) {
  return unsupported(path.string() + ": this build has no DICOM support (DCMTK)");
}

#endif

}  // namespace hilum
