// Clinical text from a study's DICOM SR (app/clinical_text.h), shared by batch
// processing and the workstation: real SR files written with DCMTK's dcmsr.
#include <gtest/gtest.h>

#if HILUM_HAVE_IMAGING

#include <fstream>
#include <optional>
#include <utility>

#include "app/clinical_text.h"
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmsr/dsrdoc.h"
#include "tests/support/test_support.h"

namespace hilum {
namespace {

namespace fs = std::filesystem;

// A Basic Text SR with one TEXT item per entry of `texts`.
void write_sr(const fs::path& file, const std::vector<std::string>& texts,
              const std::string& manufacturer = "", bool latin1 = false) {
  DSRDocument doc(DSRTypes::DT_BasicTextSR);
  doc.createNewDocument(DSRTypes::DT_BasicTextSR);
  if (latin1) doc.setSpecificCharacterSetType(DSRTypes::CS_Latin1);
  if (!manufacturer.empty()) doc.setManufacturer(manufacturer.c_str());
  DSRDocumentTree& tree = doc.getTree();
  tree.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
  tree.getCurrentContentItem().setConceptName(
      DSRCodedEntryValue("18748-4", "LN", "Diagnostic imaging report"));
  bool first = true;
  for (const std::string& t : texts) {
    tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text,
                        first ? DSRTypes::AM_belowCurrent : DSRTypes::AM_afterCurrent);
    tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue("121060", "DCM", "History"));
    tree.getCurrentContentItem().setStringValue(t.c_str(), false);
    first = false;
  }
  DcmFileFormat ff;
  ASSERT_TRUE(doc.write(*ff.getDataset()).good());
  fs::create_directories(file.parent_path());
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good());
}

TEST(ClinicalText, TextItemsOfAnSrInDocumentOrder) {
  test::ScratchDir d;
  write_sr(d / "a.dcm", {"Reason for request: cough.", "   ", "Clinical history: 30 pack-years."});
  // (An empty TEXT value is invalid DICOM; read leniently, it is skipped.)
  ASSERT_TRUE(read_sr_text(d / "a.dcm").has_value());
  EXPECT_EQ(*read_sr_text(d / "a.dcm"), "Reason for request: cough.\nClinical history: 30 pack-years.");
  // Latin-1 becomes UTF-8.
  write_sr(d / "l.dcm", {"Dr M\xfcller"}, "", true);
  ASSERT_TRUE(read_sr_text(d / "l.dcm").has_value());
  EXPECT_EQ(*read_sr_text(d / "l.dcm"), "Dr M\xc3\xbcller");
}

TEST(ClinicalText, NotClinicalTextIsSkipped) {
  test::ScratchDir d;
  write_sr(d / "hilum.dcm", {"Impression: 2 nodules."}, "Hilum");  // Hilum's own report
  EXPECT_FALSE(read_sr_text(d / "hilum.dcm").has_value());
  write_sr(d / "empty.dcm", {});
  EXPECT_FALSE(read_sr_text(d / "empty.dcm").has_value());
  std::ofstream(d / "note.txt") << "not DICOM";
  EXPECT_FALSE(read_sr_text(d / "note.txt").has_value());
  EXPECT_FALSE(read_sr_text(d / "missing.dcm").has_value());
  // An image is not an SR.
  DcmFileFormat ct;
  ct.getDataset()->putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage);
  ct.getDataset()->putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4");
  ASSERT_TRUE(ct.saveFile((d / "ct.dcm").c_str(), EXS_LittleEndianExplicit).good());
  EXPECT_FALSE(read_sr_text(d / "ct.dcm").has_value());
}

// DcmSCP (a C-MOVE's storage SCP) switches dcmdata's input correction off for
// the whole process while it listens; files read then keep their padding, and
// DSRDocument::read refuses an SR whose UIDs have odd length. The text must
// still be found (docs/pacs.md).
TEST(ClinicalText, ReadWithDcmdataInputCorrectionOff) {
  test::ScratchDir d;
  write_sr(d / "note.dcm", {"Haemoptysis."});
  {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile((d / "note.dcm").c_str()).good());
    DcmDataset* ds = ff.getDataset();
    for (const auto& [tag, uid] :
         {std::pair{DCM_StudyInstanceUID, "2.25.12345671"}, std::pair{DCM_SeriesInstanceUID, "2.25.23456781"},
          std::pair{DCM_SOPInstanceUID, "2.25.34567891"}}) {
      ASSERT_EQ(std::string(uid).size() % 2, 1u);
      ASSERT_TRUE(ds->putAndInsertString(tag, uid).good());
    }
    ASSERT_TRUE(ff.getMetaInfo()->putAndInsertString(DCM_MediaStorageSOPInstanceUID, "2.25.34567891").good());
    ASSERT_TRUE(ff.saveFile((d / "note.dcm").c_str(), EXS_LittleEndianExplicit).good());
  }
  const OFBool before = dcmEnableAutomaticInputDataCorrection.get();
  dcmEnableAutomaticInputDataCorrection.set(OFFalse);
  DcmFileFormat ff;
  const bool loaded = ff.loadFile((d / "note.dcm").c_str()).good();
  DSRDocument doc;
  const bool dsr_read = loaded && doc.read(*ff.getDataset()).good();
  const std::optional<std::string> text = read_sr_text(d / "note.dcm");
  const std::string all = find_sr_clinical_text({d.path()}).text;
  dcmEnableAutomaticInputDataCorrection.set(before);
  ASSERT_TRUE(loaded);
  EXPECT_FALSE(dsr_read) << "DCMTK now reads this SR with input correction off: the case is not exercised";
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "Haemoptysis.");
  EXPECT_EQ(all, "Haemoptysis.");
}

TEST(ClinicalText, StudyFoldersFilesAndDicomdirs) {
  test::ScratchDir d;
  write_sr(d / "study" / "b" / "2.dcm", {"Second."});
  write_sr(d / "study" / "a" / "1.dcm", {"First."});
  write_sr(d / "study" / "a" / "hilum.dcm", {"Ours."}, "Hilum");
  const SrClinicalText all = find_sr_clinical_text({d / "study"});
  EXPECT_EQ(all.text, "First.\nSecond.");
  EXPECT_EQ(all.files, 2);
  EXPECT_EQ(all.first_file, d / "study" / "a" / "1.dcm");
  EXPECT_EQ(find_sr_clinical_text({d / "study" / "b" / "2.dcm"}).text, "Second.");
  std::ofstream(d / "study" / "DICOMDIR") << "x";
  EXPECT_EQ(find_sr_clinical_text({d / "study" / "DICOMDIR"}).text, "First.\nSecond.");
  EXPECT_EQ(find_sr_clinical_text({d / "nowhere"}).text, "");
}

}  // namespace
}  // namespace hilum

#endif
