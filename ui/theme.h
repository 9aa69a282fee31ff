// A dark theme for reading rooms: Fusion style, near-black surfaces, muted
// text, so the images are the brightest thing on the screen.
#pragma once

class QApplication;

namespace hilum::ui {

void applyReadingRoomTheme(QApplication& app);

}  // namespace hilum::ui
