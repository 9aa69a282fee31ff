#include "app/pdf/report_pdf_qt.h"

#include <QBuffer>
#include <QByteArray>
#include <QColor>
#include <QCryptographicHash>
#include <QFont>
#include <QFontMetricsF>
#include <QGuiApplication>
#include <QHashFunctions>
#include <QImage>
#include <QPageLayout>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QPen>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "app/report_pdf.h"
#include "model/log.h"

namespace hilum {
namespace {

std::mutex& qt_mutex() {
  static std::mutex mu;
  return mu;
}

constexpr double kPageW = 595.0, kPageH = 842.0;  // A4 in points
constexpr double kMargin = 40.0;
constexpr double kFooterH = 46.0;
constexpr double kContentW = kPageW - 2 * kMargin;
constexpr double kBottom = kPageH - kMargin - kFooterH;

QString q(const std::string& s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }

QFont font(double points, bool bold = false, bool italic = false) {
  QFont f("DejaVu Sans");
  f.setPointSizeF(points);
  f.setBold(bold);
  f.setItalic(italic);
  return f;
}

// Draws page by page, keeping a cursor; a block that does not fit starts a new page.
class Layout {
 public:
  Layout(QPdfWriter& writer, QPainter& painter, const ReportContent& content)
      : writer_(writer), p_(painter), c_(content) {
    y_ = kMargin;
  }

  double y() const { return y_; }
  void skip(double dy) { y_ += dy; }
  void ensure(double height) {
    if (y_ + height > kBottom) new_page();
  }
  void new_page() {
    footer();
    writer_.newPage();
    ++page_;
    y_ = kMargin;
  }
  void finish() { footer(); }

  double text_height(const QString& text, const QFont& f, double width) const {
    QFontMetricsF fm(f);
    return fm.boundingRect(QRectF(0, 0, width, 1e6), Qt::TextWordWrap, text).height();
  }
  // A wrapped paragraph at the cursor.
  void paragraph(const QString& text, const QFont& f, const QColor& color = Qt::black, double indent = 0) {
    const double w = kContentW - indent;
    const double h = text_height(text, f, w);
    ensure(h);
    p_.setFont(f);
    p_.setPen(color);
    p_.drawText(QRectF(kMargin + indent, y_, w, h + 2), Qt::TextWordWrap, text);
    y_ += h + 3;
  }
  void rule() {
    p_.setPen(QPen(QColor(150, 150, 150), 0.5));
    p_.drawLine(QPointF(kMargin, y_), QPointF(kMargin + kContentW, y_));
    y_ += 6;
  }
  QPainter& painter() { return p_; }

 private:
  void footer() {
    p_.save();
    const double top = kPageH - kMargin - kFooterH + 8;
    p_.setPen(QPen(QColor(150, 150, 150), 0.5));
    p_.drawLine(QPointF(kMargin, top - 4), QPointF(kMargin + kContentW, top - 4));
    p_.setFont(font(8, true));
    p_.setPen(QColor(160, 20, 20));
    p_.drawText(QRectF(kMargin, top, kContentW, 14), Qt::TextWordWrap, q(c_.disclaimer));
    p_.setFont(font(6.5));
    p_.setPen(QColor(90, 90, 90));
    p_.drawText(QRectF(kMargin, top + 14, kContentW - 50, 22), Qt::TextWordWrap, q(c_.footer));
    p_.drawText(QRectF(kMargin + kContentW - 50, top + 14, 50, 10), Qt::AlignRight,
                QString("Page %1").arg(page_));
    p_.restore();
  }

  QPdfWriter& writer_;
  QPainter& p_;
  const ReportContent& c_;
  double y_ = 0;
  int page_ = 1;
};

void draw_header(Layout& l, const ReportContent& c) {
  QPainter& p = l.painter();
  p.setFont(font(15, true));
  p.setPen(Qt::black);
  p.drawText(QRectF(kMargin, l.y(), kContentW, 22), Qt::AlignLeft | Qt::AlignVCenter, q(c.title));
  p.setFont(font(8, true));
  p.setPen(QColor(160, 20, 20));
  p.drawText(QRectF(kMargin, l.y(), kContentW, 22), Qt::AlignRight | Qt::AlignVCenter, "AI-GENERATED DRAFT");
  l.skip(26);
  // Two columns of label: value.
  const double col_w = kContentW / 2;
  const double line_h = 12;
  for (size_t i = 0; i < c.header.size(); ++i) {
    const double x = kMargin + (i % 2) * col_w;
    const double yy = l.y() + static_cast<double>(i / 2) * line_h;
    p.setFont(font(8, true));
    p.setPen(QColor(70, 70, 70));
    p.drawText(QRectF(x, yy, 70, line_h), Qt::AlignLeft | Qt::AlignVCenter, q(c.header[i].first));
    p.setFont(font(8));
    p.setPen(Qt::black);
    QFontMetricsF fm(font(8));
    p.drawText(QRectF(x + 72, yy, col_w - 76, line_h), Qt::AlignLeft | Qt::AlignVCenter,
               fm.elidedText(q(c.header[i].second), Qt::ElideRight, col_w - 76));
  }
  l.skip(static_cast<double>((c.header.size() + 1) / 2) * line_h + 6);
  l.rule();
}

void draw_table(Layout& l, const ReportContent& c) {
  l.ensure(40);
  l.paragraph("Findings", font(11, true));
  if (c.rows.empty()) {
    l.paragraph("No pulmonary nodule found.", font(9));
    return;
  }
  struct Col {
    const char* title;
    double width;
    std::string ReportTableRow::*field;
  };
  const Col cols[] = {
      {"#", 18, &ReportTableRow::id},
      {"Location", 104, &ReportTableRow::location},
      {"Long\n(mm)", 34, &ReportTableRow::long_axis},
      {"Short\n(mm)", 34, &ReportTableRow::short_axis},
      {"Mean\n(mm)", 34, &ReportTableRow::mean_diameter},
      {"Volume\n(mm\u00b3)", 44, &ReportTableRow::volume},
      {"Type", 131, &ReportTableRow::type},
      {"Nodule\nprob.", 38, &ReportTableRow::probability},
      {"Malig-\nnancy", 38, &ReportTableRow::malignancy},
      {"Lung-\nRADS", 40, &ReportTableRow::lung_rads},
  };
  QPainter& p = l.painter();
  auto header_row = [&] {
    const double h = 22;
    l.ensure(h + 14);
    p.fillRect(QRectF(kMargin, l.y(), kContentW, h), QColor(225, 230, 238));
    double x = kMargin;
    p.setFont(font(7, true));
    p.setPen(Qt::black);
    for (const Col& col : cols) {
      p.drawText(QRectF(x + 2, l.y(), col.width - 4, h), Qt::AlignLeft | Qt::AlignVCenter,
                 QString::fromUtf8(col.title));
      x += col.width;
    }
    l.skip(h);
  };
  header_row();
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const ReportTableRow& row = c.rows[i];
    double h = 14;
    for (const Col& col : cols)
      h = std::max(h, l.text_height(q(row.*col.field), font(7.5), col.width - 4) + 4);
    if (l.y() + h > kBottom) {
      l.new_page();
      header_row();
    }
    if (i % 2 == 1) p.fillRect(QRectF(kMargin, l.y(), kContentW, h), QColor(246, 246, 246));
    double x = kMargin;
    p.setFont(font(7.5));
    p.setPen(Qt::black);
    for (const Col& col : cols) {
      p.drawText(QRectF(x + 2, l.y() + 2, col.width - 4, h - 2), Qt::TextWordWrap, q(row.*col.field));
      x += col.width;
    }
    l.skip(h);
  }
  l.skip(6);
}

void draw_image(QPainter& p, const KeyImage& k, const QRectF& box) {
  QImage img(k.gray.data(), k.width, k.height, k.width, QImage::Format_Grayscale8);
  p.drawImage(box, img);
  const double s = box.width() / k.width;  // points per pixel
  p.save();
  p.setRenderHint(QPainter::Antialiasing, true);
  p.setPen(QPen(QColor(255, 200, 0), 1.2));
  p.setBrush(Qt::NoBrush);
  p.drawEllipse(QPointF(box.left() + k.center_x * s, box.top() + k.center_y * s), k.radius_px * s,
                k.radius_px * s);
  // Scale bar: 10 mm (20 mm for wide fields).
  const double bar_mm = k.mm_per_pixel * k.width > 120 ? 20 : 10;
  const double bar_pt = bar_mm / k.mm_per_pixel * s;
  const QPointF a(box.left() + 8, box.bottom() - 10), b(a.x() + bar_pt, a.y());
  p.setPen(QPen(Qt::white, 2));
  p.drawLine(a, b);
  p.setFont(font(7, true));
  p.drawText(QRectF(a.x(), a.y() - 14, bar_pt + 30, 12), Qt::AlignLeft, QString("%1 mm").arg(bar_mm));
  // Radiological orientation: the patient's right on the image's left.
  p.drawText(QRectF(box.left() + 3, box.center().y() - 6, 12, 12), Qt::AlignLeft, "R");
  p.drawText(QRectF(box.right() - 15, box.center().y() - 6, 12, 12), Qt::AlignRight, "L");
  p.drawText(QRectF(box.center().x() - 6, box.top() + 2, 12, 12), Qt::AlignHCenter, "A");
  p.drawText(QRectF(box.center().x() - 6, box.bottom() - 26, 12, 12), Qt::AlignHCenter, "P");
  p.restore();
}

void draw_images(Layout& l, const ReportContent& c) {
  if (c.images.empty()) return;
  l.ensure(40);
  l.paragraph("Key images", font(11, true));
  const double gap = 15, side = (kContentW - gap) / 2, caption_h = 28;
  for (size_t i = 0; i < c.images.size(); i += 2) {
    l.ensure(side + caption_h);
    for (size_t j = i; j < std::min(i + 2, c.images.size()); ++j) {
      const double x = kMargin + static_cast<double>(j - i) * (side + gap);
      draw_image(l.painter(), c.images[j], QRectF(x, l.y(), side, side));
      l.painter().setFont(font(7));
      l.painter().setPen(Qt::black);
      l.painter().drawText(QRectF(x, l.y() + side + 2, side, caption_h - 2), Qt::TextWordWrap,
                           q(c.images[j].caption));
    }
    l.skip(side + caption_h + 4);
  }
}

void draw_body(Layout& l, const ReportContent& c) {
  draw_header(l, c);
  draw_table(l, c);
  l.ensure(50);
  l.paragraph("Lung-RADS v2022 (baseline): " + q(c.study_lung_rads), font(10, true));
  l.paragraph("Management: " + q(c.management), font(9));
  for (const std::string& n : c.finding_notes) l.paragraph(q(n), font(8), QColor(60, 60, 60), 8);
  l.skip(6);
  // The impression, in a box, marked as a draft.
  const QString label = q(c.impression_label);
  const double inner = kContentW - 12;
  const double h = l.text_height(label, font(9, true), inner) +
                   l.text_height(q(c.impression), font(9), inner) +
                   l.text_height(q(c.impression_note), font(7, false, true), inner) + 22;
  l.ensure(h);
  QPainter& p = l.painter();
  p.setPen(QPen(QColor(160, 20, 20), 0.8));
  p.setBrush(QColor(253, 248, 240));
  p.drawRect(QRectF(kMargin, l.y(), kContentW, h));
  p.setBrush(Qt::NoBrush);
  double y = l.y() + 6;
  auto put = [&](const QString& text, const QFont& f, const QColor& color) {
    const double th = l.text_height(text, f, inner);
    p.setFont(f);
    p.setPen(color);
    p.drawText(QRectF(kMargin + 6, y, inner, th + 2), Qt::TextWordWrap, text);
    y += th + 4;
  };
  put(label, font(9, true), QColor(160, 20, 20));
  put(q(c.impression), font(9), Qt::black);
  put(q(c.impression_note), font(7, false, true), QColor(80, 80, 80));
  l.skip(h + 8);
  if (!c.notes.empty()) {
    l.paragraph("Notes", font(9, true));
    for (const std::string& n : c.notes)
      l.paragraph(QString::fromUtf8("\u2022 ") + q(n), font(7.5), QColor(60, 60, 60), 6);
  }
  draw_images(l, c);
  l.finish();
}

// Replaces `count` bytes at every occurrence of `prefix` (after it) with `value`
// (same length), so the cross-reference offsets stay valid.
void overwrite_after(QByteArray& pdf, const QByteArray& prefix, const QByteArray& value) {
  qsizetype at = 0;
  while ((at = pdf.indexOf(prefix, at)) >= 0) {
    const qsizetype start = at + prefix.size();
    for (qsizetype i = 0; i < value.size() && start + i < pdf.size(); ++i) pdf[start + i] = value[i];
    at = start;
  }
}

// A digest of everything the report shows (the ids derive from it).
QByteArray content_digest(const ReportContent& c) {
  QCryptographicHash h(QCryptographicHash::Sha256);
  auto add = [&](const std::string& s) {
    h.addData(QByteArrayView(s.data(), static_cast<qsizetype>(s.size())));
    h.addData(QByteArrayView("\0", 1));
  };
  add(c.title);
  for (const auto& [k, v] : c.header) add(k + "=" + v);
  for (const ReportTableRow& r : c.rows) {
    for (const std::string* f : {&r.id, &r.location, &r.long_axis, &r.short_axis, &r.mean_diameter, &r.volume,
                                 &r.type, &r.probability, &r.malignancy, &r.lung_rads}) {
      add(*f);
    }
  }
  for (const std::string* f : {&c.study_lung_rads, &c.management, &c.impression, &c.impression_label,
                               &c.impression_note, &c.disclaimer, &c.footer, &c.document_time}) {
    add(*f);
  }
  for (const std::string& n : c.finding_notes) add(n);
  for (const std::string& n : c.notes) add(n);
  for (const KeyImage& k : c.images) {
    add(k.caption);
    h.addData(
        QByteArrayView(reinterpret_cast<const char*>(k.gray.data()), static_cast<qsizetype>(k.gray.size())));
  }
  return h.result().toHex();
}

// Qt stamps the clock and random UUIDs into the PDF; these are replaced by
// the study time and content hashes (same lengths).
void make_deterministic(QByteArray& pdf, const ReportContent& c) {
  const QByteArray time = QByteArray::fromStdString(c.document_time.substr(0, 14));
  overwrite_after(pdf, "/CreationDate (D:", time);
  overwrite_after(pdf, "/ModDate (D:", time);
  const QByteArray hash = content_digest(c);
  // XMP metadata: xmp:CreateDate etc. use ISO format YYYY-MM-DDTHH:MM:SS.
  const std::string& t = c.document_time;
  const QByteArray iso =
      QByteArray::fromStdString(t.substr(0, 4) + "-" + t.substr(4, 2) + "-" + t.substr(6, 2) + "T" +
                                t.substr(8, 2) + ":" + t.substr(10, 2) + ":" + t.substr(12, 2));
  for (const char* key : {"<xmp:CreateDate>", "<xmp:ModifyDate>", "<xmp:MetadataDate>"})
    overwrite_after(pdf, key, iso);
  // UUIDs: "uuid:xxxxxxxx-xxxx-..." (36 characters) in the XMP packet.
  qsizetype at = 0, n = 0;
  while ((at = pdf.indexOf("uuid:", at)) >= 0) {
    QByteArray id = QCryptographicHash::hash(hash + QByteArray::number(n++), QCryptographicHash::Md5).toHex();
    const qsizetype start = at + 5;
    qsizetype k = 0;
    for (qsizetype i = 0; i < 36 && start + i < pdf.size(); ++i) {
      if (pdf[start + i] == '-') continue;
      if (!std::isxdigit(static_cast<unsigned char>(pdf[start + i]))) break;
      pdf[start + i] = id[k++ % id.size()];
    }
    at = start;
  }
  // The trailer's /ID [<hex> <hex>].
  at = pdf.indexOf("/ID [<");
  if (at >= 0) {
    QByteArray id = QCryptographicHash::hash(hash, QCryptographicHash::Md5).toHex();
    for (qsizetype i = at + 6, k = 0; i < pdf.size() && pdf[i] != ']'; ++i) {
      if (std::isxdigit(static_cast<unsigned char>(pdf[i]))) pdf[i] = id[k++ % id.size()];
    }
  }
}

}  // namespace

Result<std::string> render_report_pdf_qt(const ReportContent& content) {
  if (!QGuiApplication::instance()) {
    return internal_error("PDF report: no QGuiApplication (call install_qt_pdf_renderer() first)");
  }
  std::lock_guard<std::mutex> lock(qt_mutex());
  QByteArray bytes;
  {
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    QPdfWriter writer(&buffer);
    writer.setResolution(72);
    writer.setPageSize(QPageSize(QPageSize::A4));
    writer.setPageMargins(QMarginsF(0, 0, 0, 0), QPageLayout::Point);
    writer.setTitle(q(content.title));
    writer.setCreator("hilum");
    QPainter painter;
    if (!painter.begin(&writer))
      return internal_error("PDF report: QPainter could not start on the PDF writer");
    painter.setRenderHint(QPainter::Antialiasing, true);
    Layout layout(writer, painter, content);
    draw_body(layout, content);
    if (!painter.end()) return internal_error("PDF report: QPainter failed to finish the PDF");
  }
  if (bytes.size() < 8 || !bytes.startsWith("%PDF-")) return internal_error("PDF report: Qt produced no PDF");
  make_deterministic(bytes, content);
  return std::string(bytes.constData(), static_cast<size_t>(bytes.size()));
}

namespace {

// Qt's own messages (font and platform notes) go to the log at debug level.
void qt_message(QtMsgType type, const QMessageLogContext&, const QString& message) {
  const std::string text = "Qt: " + message.toStdString();
  if (type == QtCriticalMsg || type == QtFatalMsg) {
    log_error(text);
  } else {
    log_debug(text);
  }
}

}  // namespace

Status install_qt_pdf_renderer() {
  {
    std::lock_guard<std::mutex> lock(qt_mutex());
    if (!QGuiApplication::instance()) {
      if (std::getenv("QT_QPA_PLATFORM") == nullptr) setenv("QT_QPA_PLATFORM", "offscreen", 1);
      static int argc = 1;
      static char name[] = "hilum";
      static char* argv[] = {name, nullptr};
      qInstallMessageHandler(qt_message);
      // Qt writes the PDF's fonts in QHash order: a fixed seed makes it (and the bytes) reproducible.
      QHashSeed::setDeterministicGlobalSeed();
      static QGuiApplication* app = new QGuiApplication(argc, argv);  // lives until exit
      (void)app;
    }
  }
  set_pdf_renderer(render_report_pdf_qt);
  return Status::Ok();
}

}  // namespace hilum
