#include "app/pacs/encapsulated_pdf.h"

#include <algorithm>
#include <ctime>
#include <random>

#include "app/pacs/dcmtk_net.h"
#include "model/file_io.h"

namespace hilum::pacs {

namespace {

bool is_uid(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

bool non_ascii(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

std::string now_string(const char* format) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string get(DcmDataset& ds, const DcmTagKey& tag) {
  OFString v;
  if (ds.findAndGetOFStringArray(tag, v).bad()) return "";
  return v.c_str();
}

}  // namespace

std::string new_dicom_uid() {
  std::random_device rd;
  unsigned __int128 v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 32) | rd();
  // RFC 9562 version 4 (random) and variant bits.
  v &= ~(static_cast<unsigned __int128>(0xF) << 76);
  v |= static_cast<unsigned __int128>(0x4) << 76;
  v &= ~(static_cast<unsigned __int128>(0x3) << 62);
  v |= static_cast<unsigned __int128>(0x2) << 62;
  std::string digits;
  while (v > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return "2.25." + (digits.empty() ? std::string("0") : digits);
}

Result<std::string> write_encapsulated_pdf(const std::filesystem::path& pdf_file, const StudyInfo& study,
                                           const EncapsulatedPdfOptions& options,
                                           const std::filesystem::path& out_file) {
  detail::init_dcmtk();
  HILUM_ASSIGN_OR_RETURN(std::string pdf, read_file(pdf_file));
  if (pdf.size() < 5 || pdf.compare(0, 5, "%PDF-") != 0) {
    return bad_input(pdf_file.string() + ": not a PDF file (no %PDF- header)");
  }
  if (pdf.size() > 0xFFFFFFF0ull)
    return bad_input(pdf_file.string() + ": PDF larger than DICOM allows (4 GB)");
  if (study.study_instance_uid.empty()) {
    return bad_input(pdf_file.string() + ": the study to attach the report to has no Study Instance UID");
  }
  if (!is_uid(study.study_instance_uid)) {
    return bad_input("Study Instance UID '" + study.study_instance_uid + "' is not a DICOM UID");
  }
  for (const std::string* uid : {&options.series_instance_uid, &options.sop_instance_uid}) {
    if (!uid->empty() && !is_uid(*uid)) return bad_input("'" + *uid + "' is not a DICOM UID");
  }
  const std::string series_uid =
      options.series_instance_uid.empty() ? new_dicom_uid() : options.series_instance_uid;
  const std::string sop_uid = options.sop_instance_uid.empty() ? new_dicom_uid() : options.sop_instance_uid;
  const std::string date = options.content_date.empty() ? now_string("%Y%m%d") : options.content_date;
  const std::string time = options.content_time.empty() ? now_string("%H%M%S") : options.content_time;

  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  auto put = [&ds](const DcmTagKey& tag, const std::string& value) {
    ds.putAndInsertString(tag, value.c_str());
  };

  const bool utf8 = non_ascii(study.patient.name) || non_ascii(study.patient.id) ||
                    non_ascii(study.study_description) || non_ascii(options.document_title) ||
                    non_ascii(options.series_description) || non_ascii(options.referring_physician) ||
                    non_ascii(study.accession_number) || non_ascii(options.study_id);
  // SOP Common
  if (utf8) put(DCM_SpecificCharacterSet, "ISO_IR 192");
  put(DCM_SOPClassUID, UID_EncapsulatedPDFStorage);
  put(DCM_SOPInstanceUID, sop_uid);
  put(DCM_InstanceCreationDate, date);
  put(DCM_InstanceCreationTime, time);
  // Patient
  put(DCM_PatientName, study.patient.name);
  put(DCM_PatientID, study.patient.id);
  put(DCM_PatientBirthDate, study.patient.birth_date);
  put(DCM_PatientSex, study.patient.sex);
  // General Study
  put(DCM_StudyInstanceUID, study.study_instance_uid);
  put(DCM_StudyDate, study.study_date);
  put(DCM_StudyTime, study.study_time);
  put(DCM_ReferringPhysicianName, options.referring_physician);
  put(DCM_StudyID, options.study_id);
  put(DCM_AccessionNumber, study.accession_number);
  if (!study.study_description.empty()) put(DCM_StudyDescription, study.study_description);
  // Encapsulated Document Series
  put(DCM_Modality, "DOC");
  put(DCM_SeriesInstanceUID, series_uid);
  put(DCM_SeriesNumber, std::to_string(options.series_number));
  if (!options.series_description.empty()) put(DCM_SeriesDescription, options.series_description);
  // General Equipment, SC Equipment
  put(DCM_Manufacturer, "Hilum");
  put(DCM_ManufacturerModelName, "Hilum workstation");
  put(DCM_ConversionType, "WSD");
  // Encapsulated Document
  put(DCM_InstanceNumber, std::to_string(options.instance_number));
  put(DCM_ContentDate, date);
  put(DCM_ContentTime, time);
  put(DCM_AcquisitionDateTime, date + time);
  put(DCM_BurnedInAnnotation, "YES");  // the report shows the patient's identifiers
  put(DCM_DocumentTitle, options.document_title);
  ds.insertEmptyElement(DCM_ConceptNameCodeSequence);
  put(DCM_MIMETypeOfEncapsulatedDocument, "application/pdf");
  // OB values have even length: pad with a zero byte; the true length goes in
  // EncapsulatedDocumentLength.
  std::string padded = pdf;
  if (padded.size() % 2) padded.push_back('\0');
  OFCondition c =
      ds.putAndInsertUint8Array(DCM_EncapsulatedDocument, reinterpret_cast<const Uint8*>(padded.data()),
                                static_cast<unsigned long>(padded.size()));
  if (c.good()) c = ds.putAndInsertUint32(DCM_EncapsulatedDocumentLength, static_cast<Uint32>(pdf.size()));
  if (c.bad())
    return internal_error(out_file.string() + ": cannot build the DICOM object (" + c.text() + ")");

  HILUM_ASSIGN_OR_RETURN(std::string bytes, detail::encode_file(file, EXS_LittleEndianExplicit));
  HILUM_RETURN_IF_ERROR(write_file_atomic(out_file, bytes));
  return sop_uid;
}

Result<StudyInfo> read_study_identifiers(const std::filesystem::path& dicom_file, std::string* study_id,
                                         std::string* referring_physician) {
  detail::init_dcmtk();
  DcmFileFormat file;
  OFCondition c = file.loadFile(dicom_file.c_str(), EXS_Unknown, EGL_noChange, 4096);
  if (c.bad()) return bad_input(dicom_file.string() + ": not a readable DICOM file (" + c.text() + ")");
  DcmDataset& ds = *file.getDataset();
  ds.convertToUTF8();
  StudyInfo info;
  info.patient.name = get(ds, DCM_PatientName);
  info.patient.id = get(ds, DCM_PatientID);
  info.patient.birth_date = get(ds, DCM_PatientBirthDate);
  info.patient.sex = get(ds, DCM_PatientSex);
  info.patient_age = get(ds, DCM_PatientAge);
  info.study_instance_uid = get(ds, DCM_StudyInstanceUID);
  info.series_instance_uid = get(ds, DCM_SeriesInstanceUID);
  info.study_date = get(ds, DCM_StudyDate);
  info.study_time = get(ds, DCM_StudyTime);
  info.accession_number = get(ds, DCM_AccessionNumber);
  info.study_description = get(ds, DCM_StudyDescription);
  info.modality = get(ds, DCM_Modality);
  if (study_id) *study_id = get(ds, DCM_StudyID);
  if (referring_physician) *referring_physician = get(ds, DCM_ReferringPhysicianName);
  if (info.study_instance_uid.empty()) return bad_input(dicom_file.string() + ": no Study Instance UID");
  return info;
}

}  // namespace hilum::pacs
