// Small real DICOM files for the PACS tests, written with DCMTK: CT/MR image
// series with known pixels, a Basic Text SR and a minimal PDF. Synthetic
// patients only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/pacs/encapsulated_pdf.h"
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmsr/dsrdoc.h"

namespace hilum::test {

struct TestPatient {
  std::string name, id, birth_date, sex;
};

struct TestInstance {
  std::filesystem::path file;
  std::string sop_class_uid, sop_instance_uid, study_uid, series_uid, modality;
  std::vector<int16_t> pixels;
};

struct TestStudy {
  TestPatient patient;
  std::string study_uid, study_date, study_time, accession, description;
  std::vector<std::string> series_uids;
  std::vector<TestInstance> instances;
};

inline void put(DcmDataset& ds, const DcmTagKey& tag, const std::string& v) {
  ds.putAndInsertString(tag, v.c_str());
}

// Adds a series of `slices` 8x8 images (pixels depend on the series and slice,
// so every file differs) to `study`, written under `dir`.
inline void add_image_series(TestStudy& study, const std::filesystem::path& dir, const std::string& modality,
                             int series_number, int slices, const std::string& description) {
  const std::string series_uid = pacs::new_dicom_uid();
  study.series_uids.push_back(series_uid);
  std::filesystem::create_directories(dir);
  const char* sop_class = modality == "MR" ? UID_MRImageStorage : UID_CTImageStorage;
  for (int k = 0; k < slices; ++k) {
    TestInstance inst;
    inst.sop_class_uid = sop_class;
    inst.sop_instance_uid = pacs::new_dicom_uid();
    inst.study_uid = study.study_uid;
    inst.series_uid = series_uid;
    inst.modality = modality;
    const int rows = 8, cols = 8;
    for (int i = 0; i < rows * cols; ++i) {
      inst.pixels.push_back(static_cast<int16_t>(-1000 + series_number * 100 + k * 7 + i * 3));
    }
    DcmFileFormat ff;
    DcmDataset& ds = *ff.getDataset();
    const bool utf8 = std::any_of(study.patient.name.begin(), study.patient.name.end(),
                                  [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    if (utf8) put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
    put(ds, DCM_SOPClassUID, sop_class);
    put(ds, DCM_SOPInstanceUID, inst.sop_instance_uid);
    put(ds, DCM_PatientName, study.patient.name);
    put(ds, DCM_PatientID, study.patient.id);
    put(ds, DCM_PatientBirthDate, study.patient.birth_date);
    put(ds, DCM_PatientSex, study.patient.sex);
    put(ds, DCM_StudyInstanceUID, study.study_uid);
    put(ds, DCM_StudyDate, study.study_date);
    put(ds, DCM_StudyTime, study.study_time);
    put(ds, DCM_AccessionNumber, study.accession);
    put(ds, DCM_StudyDescription, study.description);
    put(ds, DCM_StudyID, "1");
    put(ds, DCM_ReferringPhysicianName, "");
    put(ds, DCM_SeriesInstanceUID, series_uid);
    put(ds, DCM_SeriesNumber, std::to_string(series_number));
    put(ds, DCM_SeriesDescription, description);
    put(ds, DCM_Modality, modality);
    put(ds, DCM_InstanceNumber, std::to_string(k + 1));
    put(ds, DCM_ImagePositionPatient, "0\\0\\" + std::to_string(k * 2.5));
    put(ds, DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
    put(ds, DCM_PixelSpacing, "0.7\\0.7");
    put(ds, DCM_SliceThickness, "2.5");
    put(ds, DCM_SamplesPerPixel, "1");
    put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
    ds.putAndInsertUint16(DCM_Rows, rows);
    ds.putAndInsertUint16(DCM_Columns, cols);
    ds.putAndInsertUint16(DCM_BitsAllocated, 16);
    ds.putAndInsertUint16(DCM_BitsStored, 16);
    ds.putAndInsertUint16(DCM_HighBit, 15);
    ds.putAndInsertUint16(DCM_PixelRepresentation, 1);
    if (modality == "CT") {
      put(ds, DCM_RescaleIntercept, "0");
      put(ds, DCM_RescaleSlope, "1");
    }
    ds.putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<const Uint16*>(inst.pixels.data()),
                               inst.pixels.size());
    inst.file = dir / (std::to_string(series_number) + "_" + std::to_string(k) + ".dcm");
    ff.saveFile(inst.file.c_str(), EXS_LittleEndianExplicit);
    study.instances.push_back(std::move(inst));
  }
}

inline TestStudy make_study(const TestPatient& patient, const std::string& date, const std::string& accession,
                            const std::string& description) {
  TestStudy s;
  s.patient = patient;
  s.study_uid = pacs::new_dicom_uid();
  s.study_date = date;
  s.study_time = "093000";
  s.accession = accession;
  s.description = description;
  return s;
}

// A Basic Text SR in `study` ("Finding: ..."), written to `file`; returns its
// SOP Instance UID.
inline std::string write_text_sr(const TestStudy& study, const std::filesystem::path& file,
                                 const std::string& text) {
  DSRDocument doc(DSRTypes::DT_BasicTextSR);
  doc.createNewSeriesInStudy(study.study_uid.c_str());
  doc.setPatientName(study.patient.name.c_str());
  doc.setPatientID(study.patient.id.c_str());
  doc.setPatientBirthDate(study.patient.birth_date.c_str());
  doc.setPatientSex(study.patient.sex.c_str());
  doc.setStudyDate(study.study_date.c_str());
  doc.setStudyTime(study.study_time.c_str());
  doc.setAccessionNumber(study.accession.c_str());
  doc.setStudyDescription(study.description.c_str());
  doc.setSeriesDescription("Hilum findings (SR)");
  doc.getTree().addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
  doc.getTree().getCurrentContentItem().setConceptName(
      DSRCodedEntryValue("18748-4", "LN", "Diagnostic imaging report"));
  doc.getTree().addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, DSRTypes::AM_belowCurrent);
  doc.getTree().getCurrentContentItem().setConceptName(DSRCodedEntryValue("121071", "DCM", "Finding"));
  doc.getTree().getCurrentContentItem().setStringValue(text.c_str());
  DcmFileFormat ff;
  doc.write(*ff.getDataset());
  ff.saveFile(file.c_str(), EXS_LittleEndianExplicit);
  OFString uid;
  doc.getSOPInstanceUID(uid);
  return uid.c_str();
}

// A small, valid one-page PDF with a line of text.
inline std::string minimal_pdf(const std::string& text) {
  const std::string stream = "BT /F1 12 Tf 72 720 Td (" + text + ") Tj ET";
  std::vector<std::string> objects = {
      "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R "
      ">> >> >>",
      "<< /Length " + std::to_string(stream.size()) + " >>\nstream\n" + stream + "\nendstream",
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"};
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (size_t off : offsets) {
    char line[32];
    std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
    pdf += line;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
         std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Pixel data and UIDs of a DICOM file, read back with DCMTK.
struct ReadBack {
  bool ok = false;
  std::string sop_instance_uid, study_uid, series_uid, sop_class_uid;
  std::vector<int16_t> pixels;
  std::string document;  // EncapsulatedDocument, if any
};

inline ReadBack read_back(const std::filesystem::path& file) {
  ReadBack r;
  DcmFileFormat ff;
  if (ff.loadFile(file.c_str()).bad()) return r;
  DcmDataset& ds = *ff.getDataset();
  OFString v;
  if (ds.findAndGetOFString(DCM_SOPInstanceUID, v).good()) r.sop_instance_uid = v.c_str();
  if (ds.findAndGetOFString(DCM_SOPClassUID, v).good()) r.sop_class_uid = v.c_str();
  if (ds.findAndGetOFString(DCM_StudyInstanceUID, v).good()) r.study_uid = v.c_str();
  if (ds.findAndGetOFString(DCM_SeriesInstanceUID, v).good()) r.series_uid = v.c_str();
  const Uint16* px = nullptr;
  unsigned long count = 0;
  if (ds.findAndGetUint16Array(DCM_PixelData, px, &count).good() && px) {
    r.pixels.assign(reinterpret_cast<const int16_t*>(px), reinterpret_cast<const int16_t*>(px) + count);
  }
  const Uint8* doc = nullptr;
  if (ds.findAndGetUint8Array(DCM_EncapsulatedDocument, doc, &count).good() && doc) {
    r.document.assign(reinterpret_cast<const char*>(doc), count);
  }
  r.ok = true;
  return r;
}

}  // namespace hilum::test
