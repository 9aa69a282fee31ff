// The hilum-workstation program behind its main(): command line, settings
// identity, theme, and the screenshot mode.
//
//   hilum-workstation [STUDY...]
//   hilum-workstation --screenshot OUT.png [--analyze] [--size WxH] [--cursor X,Y,Z] STUDY...
//
// The screenshot mode opens the study, waits until it is loaded (and analysed
// with --analyze), grabs the main window into OUT.png (written atomically),
// prints where each plane and its crosshair lie in the image ("axial X Y W H
// CX CY") and exits:
// 0 ok, 2 bad input (unreadable study, bad arguments, a back end that is not
// built), 1 other failures.
#pragma once

#include "ui/workstation_backends.h"

class QApplication;

namespace hilum::ui {

// Sets the organisation/application names QSettings uses.
void setApplicationIdentity(QApplication& app);

int runWorkstation(QApplication& app, WorkstationBackends backends);

}  // namespace hilum::ui
