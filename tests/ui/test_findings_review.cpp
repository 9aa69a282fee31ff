// The findings view-model and the undoable review commands: accept, reject,
// edit, undo, redo, and the AI's original output kept apart from the edits.
#include <gtest/gtest.h>

#include <QFont>
#include <QSignalSpy>

#include "tests/ui/ui_test_support.h"
#include "ui/finding_commands.h"
#include "ui/findings_model.h"
#include "ui/study_document.h"

namespace hilum::ui {
namespace {

class FindingsReview : public ::testing::Test {
 protected:
  void SetUp() override {
    volume = test::makeChest();
    document.setStudy(volume, {});
    a = test::makeFinding(1, volume->world_from_voxel(test::noduleVoxel(*volume)), 7.2, "3");
    b = test::makeFinding(2, volume->world_from_voxel({60, 40, 10}), 11.0, "4A");
    b.type = NoduleType::kPartSolid;
    document.setFindings({a, b});
  }
  FindingsModel& model() { return *document.findings(); }
  QUndoStack& undo() { return *document.undoStack(); }
  QString cell(int row, int column, int role = Qt::DisplayRole) {
    return model().data(model().index(row, column), role).toString();
  }

  std::shared_ptr<Volume> volume;
  StudyDocument document;
  Finding a, b;
};

TEST_F(FindingsReview, TableShowsEveryColumn) {
  ASSERT_EQ(model().rowCount(), 2);
  ASSERT_EQ(model().columnCount(), FindingsModel::ColumnCount);
  EXPECT_EQ(cell(0, FindingsModel::Id), "1");
  EXPECT_EQ(cell(0, FindingsModel::Location), "right lower lobe");
  EXPECT_EQ(cell(0, FindingsModel::LongAxis), "7.2");
  EXPECT_EQ(cell(0, FindingsModel::ShortAxis), "5.8");
  EXPECT_EQ(cell(0, FindingsModel::Volume), "195");
  EXPECT_EQ(cell(1, FindingsModel::Type), "part-solid");
  EXPECT_EQ(cell(0, FindingsModel::Probability), "93 %");
  EXPECT_EQ(cell(0, FindingsModel::Malignancy), "12 %");
  EXPECT_EQ(cell(1, FindingsModel::LungRads), "4A");
  EXPECT_EQ(cell(0, FindingsModel::Review), "pending");
  EXPECT_EQ(model().headerData(FindingsModel::LungRads, Qt::Horizontal).toString(), "Lung-RADS");
  EXPECT_EQ(model().data(model().index(1, 0), FindingsModel::FindingIdRole).toInt(), 2);
  EXPECT_EQ(model().rowForId(2), 1);
  EXPECT_EQ(model().rowForId(99), -1);
  EXPECT_FALSE(model().data(model().index(5, 0)).isValid());
}

TEST_F(FindingsReview, AcceptUndoRedo) {
  document.acceptFinding(1);
  EXPECT_EQ(model().at(0).state, ReviewState::Accepted);
  EXPECT_EQ(cell(0, FindingsModel::Review), "accepted");
  ASSERT_EQ(undo().count(), 1);
  EXPECT_EQ(undo().undoText(), "Accept finding 1");
  // Accepting again changes nothing and records nothing.
  document.acceptFinding(1);
  EXPECT_EQ(undo().count(), 1);
  undo().undo();
  EXPECT_EQ(model().at(0).state, ReviewState::Pending);
  undo().redo();
  EXPECT_EQ(model().at(0).state, ReviewState::Accepted);
  EXPECT_EQ(model().at(1).state, ReviewState::Pending);
}

TEST_F(FindingsReview, RejectLeavesTheFindingOutOfTheReport) {
  QSignalSpy changed(&model(), &FindingsModel::findingChanged);
  document.rejectFinding(2);
  EXPECT_EQ(changed.count(), 1);
  EXPECT_EQ(model().at(1).state, ReviewState::Rejected);
  EXPECT_TRUE(
      model().data(model().index(1, FindingsModel::LongAxis), Qt::FontRole).value<QFont>().strikeOut());
  auto reported = model().reportedFindings();
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].id, 1);
  undo().undo();
  EXPECT_EQ(model().reportedFindings().size(), 2u);
  // Reject after accept, then step back through both.
  document.acceptFinding(2);
  document.rejectFinding(2);
  EXPECT_EQ(model().at(1).state, ReviewState::Rejected);
  undo().undo();
  EXPECT_EQ(model().at(1).state, ReviewState::Accepted);
  undo().undo();
  EXPECT_EQ(model().at(1).state, ReviewState::Pending);
}

TEST_F(FindingsReview, EditKeepsTheAiOriginal) {
  Finding edited = model().at(0).current;
  edited.longAxisMm = 9.0;
  edited.type = NoduleType::kGroundGlass;
  edited.lungRads = "4A";
  edited.id = 77;  // ids cannot be edited
  document.editFinding(1, edited);

  const ReviewedFinding& r = model().at(0);
  EXPECT_TRUE(r.isEdited());
  EXPECT_EQ(r.original, a);  // what the AI said, untouched
  EXPECT_EQ(r.current.id, 1);
  EXPECT_DOUBLE_EQ(r.current.longAxisMm, 9.0);
  EXPECT_EQ(r.current.type, NoduleType::kGroundGlass);
  EXPECT_EQ(r.current.lungRads, "4A");
  EXPECT_EQ(r.state, ReviewState::Pending);
  EXPECT_EQ(cell(0, FindingsModel::LongAxis), "9.0");
  EXPECT_EQ(cell(0, FindingsModel::Review), "pending (edited)");
  EXPECT_TRUE(cell(0, FindingsModel::LongAxis, Qt::ToolTipRole).contains("7.2"));
  EXPECT_TRUE(model().data(model().index(0, FindingsModel::LongAxis), Qt::FontRole).value<QFont>().italic());
  EXPECT_TRUE(cell(0, FindingsModel::Probability, Qt::ToolTipRole).isEmpty());  // unchanged cell

  // The report follows the edited values.
  EXPECT_DOUBLE_EQ(model().reportedFindings()[0].longAxisMm, 9.0);

  // An edit that changes nothing records nothing.
  document.editFinding(1, model().at(0).current);
  EXPECT_EQ(undo().count(), 1);

  undo().undo();
  EXPECT_FALSE(model().at(0).isEdited());
  EXPECT_EQ(model().at(0).current, a);
  undo().redo();
  EXPECT_DOUBLE_EQ(model().at(0).current.longAxisMm, 9.0);
  EXPECT_EQ(model().at(0).original, a);
}

TEST_F(FindingsReview, ModelNeverOverwritesTheOriginal) {
  ReviewedFinding forged = model().at(0);
  forged.original.longAxisMm = 1.0;
  forged.current.longAxisMm = 2.0;
  model().replace(1, forged);
  EXPECT_DOUBLE_EQ(model().at(0).original.longAxisMm, 7.2);
  EXPECT_DOUBLE_EQ(model().at(0).current.longAxisMm, 2.0);
}

TEST_F(FindingsReview, NewAnalysisStartsAFreshReview) {
  document.acceptFinding(1);
  document.rejectFinding(2);
  EXPECT_EQ(undo().count(), 2);
  document.setFindings({b});
  EXPECT_EQ(undo().count(), 0);
  ASSERT_EQ(model().rowCount(), 1);
  EXPECT_EQ(model().at(0).state, ReviewState::Pending);
}

TEST_F(FindingsReview, SelectingAFindingMovesTheCursorToIt) {
  QSignalSpy centre(&document, &StudyDocument::centreRequested);
  QSignalSpy selected(&document, &StudyDocument::selectedFindingChanged);
  document.selectFinding(1);
  EXPECT_EQ(document.selectedFindingId(), 1);
  EXPECT_EQ(selected.count(), 1);
  EXPECT_EQ(centre.count(), 1);
  const Vec3 expected = test::noduleVoxel(*volume);
  for (int axis = 0; axis < 3; ++axis) EXPECT_NEAR(document.cursor()[axis], expected[axis], 1e-6);
  EXPECT_EQ(document.slice(Plane::Axial), int(expected[2]));
  EXPECT_EQ(document.slice(Plane::Coronal), int(expected[1]));
  EXPECT_EQ(document.slice(Plane::Sagittal), int(expected[0]));
  document.selectFinding(42);  // unknown: nothing selected
  EXPECT_EQ(document.selectedFindingId(), -1);
}

TEST_F(FindingsReview, MeasurementsAreUndoable) {
  // 10 voxels along i (0.8 mm) and 3 slices along k (2 mm): sqrt(8^2 + 6^2) = 10 mm.
  const int id = document.addMeasurement(Plane::Coronal, {10, 20, 5}, {20, 20, 8});
  ASSERT_EQ(document.measurements().size(), 1u);
  EXPECT_EQ(document.selectedMeasurementId(), id);
  EXPECT_NEAR(measurementLengthMm(*volume, document.measurements()[0]), 10.0, 1e-9);
  document.deleteMeasurement(id);
  EXPECT_TRUE(document.measurements().empty());
  EXPECT_EQ(undo().undoText(), "Delete measurement");
  undo().undo();
  ASSERT_EQ(document.measurements().size(), 1u);
  EXPECT_EQ(document.measurements()[0].id, id);
  undo().undo();
  EXPECT_TRUE(document.measurements().empty());
  undo().redo();
  EXPECT_EQ(document.measurements().size(), 1u);
}

TEST_F(FindingsReview, CommandsWorkOnTheirOwnStack) {
  // The commands are plain QUndoCommands: any stack can hold them.
  QUndoStack stack;
  stack.push(new AcceptFindingCommand(&model(), 2));
  Finding edited = model().at(1).current;
  edited.shortAxisMm = 3.3;
  stack.push(new EditFindingCommand(&model(), 2, edited));
  EXPECT_EQ(model().at(1).state, ReviewState::Accepted);
  EXPECT_DOUBLE_EQ(model().at(1).current.shortAxisMm, 3.3);
  stack.undo();
  stack.undo();
  EXPECT_EQ(model().at(1), ReviewedFinding(b));
}

TEST(StudyDocument, CursorStaysInsideAndSlicesClamp) {
  StudyDocument document;
  auto volume = test::makeChest(32, 24, 10);
  document.setStudy(volume, {});
  EXPECT_EQ(document.slice(Plane::Axial), 5);
  document.setCursor({-5, 100, 3.6});
  EXPECT_EQ(document.cursor(), (Vec3{0, 23, 3.6}));
  EXPECT_EQ(document.slice(Plane::Axial), 4);
  document.stepSlice(Plane::Axial, 100);
  EXPECT_EQ(document.slice(Plane::Axial), 9);
  document.setSlice(Plane::Sagittal, -3);
  EXPECT_EQ(document.slice(Plane::Sagittal), 0);
  document.setWindowLevel({0, 99999});
  EXPECT_EQ(document.windowLevel().width, 1);
  document.setSlabMm(100);
  EXPECT_EQ(document.slabMm(), 50);
  EXPECT_EQ(document.effectiveSlabMm(), 0);
  document.setMipEnabled(true);
  EXPECT_EQ(document.effectiveSlabMm(), 50);
}

}  // namespace
}  // namespace hilum::ui
