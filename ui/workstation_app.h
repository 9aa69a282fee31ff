// The hilum-workstation program behind its main(): command line, settings
// identity, theme, and the screenshot mode.
//
//   hilum-workstation [--model-bundle DIR] [--device D] [--min-probability P] [--max-findings N] [STUDY...]
//   hilum-workstation --screenshot OUT.png [--analyze] [--size WxH] [--cursor X,Y,Z] STUDY...
//
// The AI back ends come from the model bundle (ui/app_backends.h):
// --model-bundle, else $HILUM_MODEL_BUNDLE, else resources/models/ beside the
// program (not with HILUM_DEFAULT_BUNDLE=none); without one Analyze, the report
// and the assistant are disabled and say why.
//
// The screenshot mode opens the study, waits until it is loaded (and, with
// --analyze, analysed, with the first finding selected and the impression
// drafted), grabs the main window into OUT.png (written atomically), prints
// where each plane and its crosshair lie in the image ("axial X Y W H CX CY")
// and, with --analyze, "findings N" and for the selected finding
// "overlay axial CX CY R" (its outline's centre and radius in image pixels,
// per plane that shows it), and exits: 0 ok, 2 bad input (unreadable study,
// bad arguments, --analyze without a model bundle), 1 other failures.
#pragma once

#include "ui/workstation_backends.h"

class QApplication;

namespace hilum::ui {

// Sets the organisation/application names QSettings uses.
void setApplicationIdentity(QApplication& app);

// Parses the command line, builds the back ends from the model bundle and runs
// the window (or the screenshot mode). Returns the exit code.
int runWorkstation(QApplication& app);

// The same with back ends given by the caller (no bundle lookup).
int runWorkstation(QApplication& app, WorkstationBackends backends);

}  // namespace hilum::ui
