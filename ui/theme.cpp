#include "ui/theme.h"

#include <QApplication>
#include <QPalette>
#include <QStyleFactory>

namespace hilum::ui {

void applyReadingRoomTheme(QApplication& app) {
  app.setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
  QPalette p;
  const QColor window(32, 33, 36), base(20, 21, 23), alternate(28, 29, 32), text(210, 212, 215);
  const QColor disabledText(110, 112, 116), highlight(52, 101, 164);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, alternate);
  p.setColor(QPalette::ToolTipBase, QColor(48, 50, 54));
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::PlaceholderText, disabledText);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, QColor(40, 42, 46));
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::BrightText, QColor(255, 90, 90));
  p.setColor(QPalette::Link, QColor(100, 160, 230));
  p.setColor(QPalette::Highlight, highlight);
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Light, QColor(60, 62, 66));
  p.setColor(QPalette::Midlight, QColor(48, 50, 54));
  p.setColor(QPalette::Mid, QColor(36, 37, 40));
  p.setColor(QPalette::Dark, QColor(16, 16, 18));
  p.setColor(QPalette::Shadow, Qt::black);
  for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText}) {
    p.setColor(QPalette::Disabled, role, disabledText);
  }
  p.setColor(QPalette::Disabled, QPalette::Base, QColor(26, 27, 29));
  p.setColor(QPalette::Disabled, QPalette::Highlight, QColor(60, 62, 66));
  app.setPalette(p);
}

}  // namespace hilum::ui
