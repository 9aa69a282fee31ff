// hilum-workstation: the radiologist's reading workstation (see ui/workstation_app.h).
#include <QApplication>

#include "ui/theme.h"
#include "ui/workstation_app.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  hilum::ui::setApplicationIdentity(app);
  hilum::ui::applyReadingRoomTheme(app);
  // The AI back ends are wired here once the app layer provides them
  // (analysis: issue 5; reports: issue 6; assistant: issue 4).
  hilum::ui::WorkstationBackends backends;
  return hilum::ui::runWorkstation(app, std::move(backends));
}
