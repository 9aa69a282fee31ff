// hilum-workstation: the radiologist's reading workstation (see ui/workstation_app.h).
#include <QApplication>

#include "model/allocator.h"
#include "ui/theme.h"
#include "ui/workstation_app.h"

int main(int argc, char** argv) {
  hilum::keep_large_buffers();
  QApplication app(argc, argv);
  hilum::ui::setApplicationIdentity(app);
  hilum::ui::applyReadingRoomTheme(app);
  // The AI back ends come from the model bundle (ui/app_backends.h).
  return hilum::ui::runWorkstation(app);
}
