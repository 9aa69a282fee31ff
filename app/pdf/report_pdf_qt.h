// The Qt PDF renderer of reports (library hilum_report_pdf, built where Qt 6
// Gui is found): A4 pages drawn with QPainter on a QPdfWriter.
//
// Qt needs a QGuiApplication for fonts. When none exists,
// install_qt_pdf_renderer() creates one on the calling thread (call it from
// main(), before worker threads start), with QT_QPA_PLATFORM=offscreen unless
// a platform is already set, so it runs on servers without a display. Rendering
// itself may then happen on any thread (calls are serialised).
//
// The bytes are deterministic: the PDF's creation date and document ids, which
// Qt takes from the clock and a random UUID, are replaced by values derived
// from the report's content.
#pragma once

#include <string>

#include "app/report_content.h"
#include "model/result.h"

namespace hilum {

Result<std::string> render_report_pdf_qt(const ReportContent& content);

// Ensures the QGuiApplication and installs render_report_pdf_qt with
// set_pdf_renderer(). Safe to call more than once.
Status install_qt_pdf_renderer();

}  // namespace hilum
