// Writing a report's PDF. The renderer needs Qt (QPdfWriter), which hilum_app
// does not link (it builds on machines without Qt): a build with Qt installs
// its renderer here once (app/pdf/report_pdf_qt.h, library hilum_report_pdf),
// and everything in hilum_app writes PDFs through write_report_pdf().
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "app/report_content.h"
#include "model/result.h"

namespace hilum {

// Produces the PDF file's bytes for a report (deterministic: the same content
// gives the same bytes).
using PdfRenderer = std::function<Result<std::string>(const ReportContent& content)>;

// Installs the process-wide renderer (call once, before worker threads start).
void set_pdf_renderer(PdfRenderer renderer);
bool have_pdf_renderer();

// Renders and writes `path` atomically. kUnsupported when no renderer is
// installed (a build without Qt); nothing is written on an error.
Status write_report_pdf(const ReportContent& content, const std::filesystem::path& path);

}  // namespace hilum
