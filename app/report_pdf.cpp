#include "app/report_pdf.h"

#include <mutex>

#include "model/file_io.h"

namespace hilum {
namespace {

std::mutex& renderer_mutex() {
  static std::mutex mu;
  return mu;
}
PdfRenderer& renderer_slot() {
  static PdfRenderer r;
  return r;
}

}  // namespace

void set_pdf_renderer(PdfRenderer renderer) {
  std::lock_guard<std::mutex> lock(renderer_mutex());
  renderer_slot() = std::move(renderer);
}

bool have_pdf_renderer() {
  std::lock_guard<std::mutex> lock(renderer_mutex());
  return static_cast<bool>(renderer_slot());
}

Status write_report_pdf(const ReportContent& content, const std::filesystem::path& path) {
  PdfRenderer renderer;
  {
    std::lock_guard<std::mutex> lock(renderer_mutex());
    renderer = renderer_slot();
  }
  if (!renderer)
    return unsupported(path.string() + ": this build has no PDF renderer (Qt 6 Gui was not found)");
  HILUM_ASSIGN_OR_RETURN(std::string bytes, renderer(content));
  return write_file_atomic(path, bytes);
}

}  // namespace hilum
