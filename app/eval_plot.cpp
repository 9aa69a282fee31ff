#include "app/eval_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace hilum {
namespace {

struct Pt {
  double x, y;
};

enum class Anchor { kStart, kMiddle, kEnd };

// Text metrics of the bitmap font at scale s: advance 6s, cap height 7s. The
// SVG uses a monospace font of size 10s, whose metrics are close to these.
constexpr int kTextScale = 2;
double text_width(const std::string& s, int scale) { return 6.0 * scale * static_cast<double>(s.size()); }

// The drawing operations both renderers implement.
class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void polyline(const std::vector<Pt>& pts, Rgb color, double width, LineStyle style) = 0;
  virtual void polygon(const std::vector<Pt>& pts, Rgb color, double opacity) = 0;
  // (x, y) is the start, centre or end of the baseline; vertical text reads upwards.
  virtual void text(double x, double y, const std::string& s, Rgb color, Anchor anchor, bool vertical) = 0;
  virtual void dot(Pt c, double radius, Rgb color) = 0;
};

constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kLegendBorder{160, 160, 160};
constexpr Rgb kWhite{255, 255, 255};

std::string tick_text(const PlotAxis& a, size_t i) {
  if (i < a.tick_labels.size()) return a.tick_labels[i];
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", a.ticks[i]);
  return buf;
}

void draw(const Plot& plot, Canvas& c) {
  const PlotFrame f = plot_frame(plot);
  auto P = [&](double x, double y) { return Pt{f.px(plot.x, x), f.py(plot.y, y)}; };

  // Grid and tick labels.
  for (size_t i = 0; i < plot.x.ticks.size(); ++i) {
    const double x = f.px(plot.x, plot.x.ticks[i]);
    c.polyline({{x, f.top}, {x, f.bottom}}, kGrid, 1.0, LineStyle::kSolid);
    c.text(x, f.bottom + 24, tick_text(plot.x, i), kBlack, Anchor::kMiddle, false);
  }
  for (size_t i = 0; i < plot.y.ticks.size(); ++i) {
    const double y = f.py(plot.y, plot.y.ticks[i]);
    c.polyline({{f.left, y}, {f.right, y}}, kGrid, 1.0, LineStyle::kSolid);
    c.text(f.left - 8, y + 3.5 * kTextScale, tick_text(plot.y, i), kBlack, Anchor::kEnd, false);
  }

  // The frame goes under the data, so curves along an edge stay visible.
  c.polyline({{f.left, f.top}, {f.right, f.top}, {f.right, f.bottom}, {f.left, f.bottom}, {f.left, f.top}},
             kBlack, 1.5, LineStyle::kSolid);
  for (const PlotBand& band : plot.bands) {
    std::vector<Pt> poly;
    for (size_t i = 0; i < band.x.size(); ++i) poly.push_back(P(band.x[i], band.high[i]));
    for (size_t i = band.x.size(); i-- > 0;) poly.push_back(P(band.x[i], band.low[i]));
    if (poly.size() >= 3) c.polygon(poly, band.color, band.opacity);
  }
  for (const PlotSeries& s : plot.series) {
    std::vector<Pt> pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) pts.push_back(P(s.x[i], s.y[i]));
    if (s.line && pts.size() >= 2) c.polyline(pts, s.color, s.width, s.style);
    if (s.markers) {
      for (const Pt& p : pts) c.dot(p, s.width + 1.5, s.color);
    }
  }

  // Labels and title.
  c.text((f.left + f.right) / 2, f.bottom + 54, plot.x.label, kBlack, Anchor::kMiddle, false);
  c.text(26, (f.top + f.bottom) / 2, plot.y.label, kBlack, Anchor::kMiddle, true);
  c.text(plot.width / 2.0, 30, plot.title, kBlack, Anchor::kMiddle, false);

  // Legend, lower right inside the frame.
  std::vector<const PlotSeries*> entries;
  for (const PlotSeries& s : plot.series) {
    if (!s.legend.empty()) entries.push_back(&s);
  }
  if (!entries.empty()) {
    double text_w = 0;
    for (const PlotSeries* s : entries) text_w = std::max(text_w, text_width(s->legend, kTextScale));
    const double row_h = 24, swatch = 30, pad = 10;
    const double w = pad + swatch + 8 + text_w + pad, h = pad + row_h * entries.size() + pad - 6;
    const double x0 = f.right - 12 - w, y0 = f.bottom - 12 - h;
    c.polygon({{x0, y0}, {x0 + w, y0}, {x0 + w, y0 + h}, {x0, y0 + h}}, kWhite, 0.92);
    c.polyline({{x0, y0}, {x0 + w, y0}, {x0 + w, y0 + h}, {x0, y0 + h}, {x0, y0}}, kLegendBorder, 1.0,
               LineStyle::kSolid);
    for (size_t i = 0; i < entries.size(); ++i) {
      const double cy = y0 + pad + row_h * i + 7;
      if (!entries[i]->x.empty()) {
        c.polyline({{x0 + pad, cy}, {x0 + pad + swatch, cy}}, entries[i]->color, entries[i]->width,
                   entries[i]->style);
      }
      c.text(x0 + pad + swatch + 8, cy + 3.5 * kTextScale, entries[i]->legend, kBlack, Anchor::kStart, false);
    }
  }
}

// ---- SVG -------------------------------------------------------------------

std::string svg_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        // Control characters are not allowed in XML 1.0.
        out += (static_cast<unsigned char>(ch) < 0x20 && ch != '\t') ? '?' : ch;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string rgb_text(Rgb c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

class SvgCanvas final : public Canvas {
 public:
  explicit SvgCanvas(std::string& out) : out_(out) {}
  void polyline(const std::vector<Pt>& pts, Rgb color, double width, LineStyle style) override {
    out_ += "<polyline fill=\"none\" stroke=\"" + rgb_text(color) + "\" stroke-width=\"" + num(width) +
            "\" stroke-linejoin=\"round\" stroke-linecap=\"round\"";
    if (style == LineStyle::kDashed)
      out_ += " stroke-dasharray=\"" + num(3 * width) + " " + num(2.5 * width) + "\"";
    if (style == LineStyle::kDotted) out_ += " stroke-dasharray=\"0.1 " + num(2.2 * width) + "\"";
    out_ += " points=\"";
    append_points(pts);
    out_ += "\"/>\n";
  }
  void polygon(const std::vector<Pt>& pts, Rgb color, double opacity) override {
    out_ += "<polygon stroke=\"none\" fill=\"" + rgb_text(color) + "\" fill-opacity=\"" + num(opacity) +
            "\" points=\"";
    append_points(pts);
    out_ += "\"/>\n";
  }
  void text(double x, double y, const std::string& s, Rgb color, Anchor anchor, bool vertical) override {
    if (s.empty()) return;
    const char* a = anchor == Anchor::kStart ? "start" : anchor == Anchor::kMiddle ? "middle" : "end";
    out_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" fill=\"" + rgb_text(color) +
            "\" text-anchor=\"" + a + "\"";
    if (vertical) out_ += " transform=\"rotate(-90 " + num(x) + " " + num(y) + ")\"";
    out_ += ">";
    out_ += svg_escape(s);
    out_ += "</text>\n";
  }
  void dot(Pt c, double radius, Rgb color) override {
    out_ += "<circle cx=\"" + num(c.x) + "\" cy=\"" + num(c.y) + "\" r=\"" + num(radius) + "\" fill=\"" +
            rgb_text(color) + "\"/>\n";
  }

 private:
  void append_points(const std::vector<Pt>& pts) {
    for (size_t i = 0; i < pts.size(); ++i) {
      if (i) out_ += ' ';
      out_ += num(pts[i].x);
      out_ += ',';
      out_ += num(pts[i].y);
    }
  }
  std::string& out_;
};

// ---- Raster ----------------------------------------------------------------

class RasterCanvas final : public Canvas {
 public:
  explicit RasterCanvas(RasterImage& img)
      : img_(img), coverage_(static_cast<size_t>(img.width) * img.height, 0.0f) {}

  void polyline(const std::vector<Pt>& pts, Rgb color, double width, LineStyle style) override {
    for (const auto& piece : dash(pts, width, style)) {
      for (size_t i = 0; i + 1 < piece.size(); ++i) stroke_segment(piece[i], piece[i + 1], width);
      if (piece.size() == 1) stroke_segment(piece[0], piece[0], width);
    }
    flush(color, 1.0);
  }

  void polygon(const std::vector<Pt>& pts, Rgb color, double opacity) override {
    // Even-odd fill sampled 4 x 4 per pixel.
    double ymin = pts[0].y, ymax = pts[0].y;
    for (const Pt& p : pts) {
      ymin = std::min(ymin, p.y);
      ymax = std::max(ymax, p.y);
    }
    const int y0 = std::max(0, static_cast<int>(std::floor(ymin)));
    const int y1 = std::min(img_.height - 1, static_cast<int>(std::ceil(ymax)));
    std::vector<double> xs;
    for (int py = y0; py <= y1; ++py) {
      for (int sy = 0; sy < 4; ++sy) {
        const double y = py + (sy + 0.5) / 4.0;
        xs.clear();
        for (size_t i = 0; i < pts.size(); ++i) {
          const Pt& a = pts[i];
          const Pt& b = pts[(i + 1) % pts.size()];
          if ((a.y <= y) != (b.y <= y)) xs.push_back(a.x + (y - a.y) / (b.y - a.y) * (b.x - a.x));
        }
        std::sort(xs.begin(), xs.end());
        for (size_t k = 0; k + 1 < xs.size(); k += 2) {
          // Subsamples at x = px + (sx + 0.5) / 4 inside [xs[k], xs[k+1]).
          const long s0 = static_cast<long>(std::ceil(xs[k] * 4 - 0.5));
          const long s1 = static_cast<long>(std::ceil(xs[k + 1] * 4 - 0.5)) - 1;
          for (long s = std::max(0L, s0); s <= std::min(s1, 4L * img_.width - 1); ++s) {
            mark(static_cast<int>(s / 4), py, 1.0f / 16.0f, /*accumulate=*/true);
          }
        }
      }
    }
    flush(color, opacity);
  }

  void text(double x, double y, const std::string& s, Rgb color, Anchor anchor, bool vertical) override {
    const int scale = kTextScale;
    const double w = text_width(s, scale) - scale;  // no spacing after the last glyph
    double offset = anchor == Anchor::kStart ? 0 : anchor == Anchor::kMiddle ? -w / 2 : -w;
    const int bx = static_cast<int>(std::lround(x)), by = static_cast<int>(std::lround(y));
    const int off = static_cast<int>(std::lround(offset));
    for (size_t g = 0; g < s.size(); ++g) {
      for (int row = 0; row < 9; ++row) {
        for (int col = 0; col < 5; ++col) {
          if (!font_pixel(s[g], col, row)) continue;
          const int along = off + static_cast<int>(g) * 6 * scale + col * scale;  // along the baseline
          const int across = (row - 7) * scale;  // from the baseline, downwards
          for (int dy = 0; dy < scale; ++dy) {
            for (int dx = 0; dx < scale; ++dx) {
              if (vertical) {
                mark(bx + across + dy, by - along - dx - 1, 1.0f, false);
              } else {
                mark(bx + along + dx, by + across + dy, 1.0f, false);
              }
            }
          }
        }
      }
    }
    flush(color, 1.0);
  }

  void dot(Pt c, double radius, Rgb color) override {
    stroke_segment(c, c, 2 * radius);
    flush(color, 1.0);
  }

 private:
  // Splits a path into the drawn pieces of its dash pattern.
  static std::vector<std::vector<Pt>> dash(const std::vector<Pt>& pts, double width, LineStyle style) {
    if (style == LineStyle::kSolid) return {pts};
    const double on = style == LineStyle::kDashed ? 3 * width : 0.01;
    const double off = style == LineStyle::kDashed ? 2.5 * width : 2.2 * width;
    std::vector<std::vector<Pt>> pieces;
    std::vector<Pt> cur{pts[0]};
    bool drawing = true;
    double left = on;  // length left in the current on/off run
    for (size_t i = 0; i + 1 < pts.size(); ++i) {
      Pt a = pts[i];
      const Pt b = pts[i + 1];
      double seg = std::hypot(b.x - a.x, b.y - a.y);
      while (seg > left) {
        const double t = left / seg;
        const Pt m{a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t};
        if (drawing) {
          cur.push_back(m);
          pieces.push_back(std::move(cur));
          cur.clear();
        } else {
          cur = {m};
        }
        drawing = !drawing;
        seg -= left;
        a = m;
        left = drawing ? on : off;
      }
      left -= seg;
      if (drawing) cur.push_back(b);
    }
    if (drawing && !cur.empty()) pieces.push_back(std::move(cur));
    return pieces;
  }

  // Anti-aliased coverage of a round-capped segment of the given width.
  void stroke_segment(Pt a, Pt b, double width) {
    const double r = width / 2;
    const int x0 = std::max(0, static_cast<int>(std::floor(std::min(a.x, b.x) - r - 1)));
    const int x1 = std::min(img_.width - 1, static_cast<int>(std::ceil(std::max(a.x, b.x) + r + 1)));
    const int y0 = std::max(0, static_cast<int>(std::floor(std::min(a.y, b.y) - r - 1)));
    const int y1 = std::min(img_.height - 1, static_cast<int>(std::ceil(std::max(a.y, b.y) + r + 1)));
    const double dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
    for (int py = y0; py <= y1; ++py) {
      for (int px = x0; px <= x1; ++px) {
        const double cx = px + 0.5, cy = py + 0.5;
        double t = len2 > 0 ? ((cx - a.x) * dx + (cy - a.y) * dy) / len2 : 0.0;
        t = std::clamp(t, 0.0, 1.0);
        const double d = std::hypot(cx - (a.x + t * dx), cy - (a.y + t * dy));
        const double cov = std::clamp(r + 0.5 - d, 0.0, 1.0);
        if (cov > 0) mark(px, py, static_cast<float>(cov), false);
      }
    }
  }

  // Coverage of the shape being drawn: the maximum over its parts (so joints
  // are not drawn twice), or a sum for the fill's subsamples.
  void mark(int x, int y, float cov, bool accumulate) {
    if (x < 0 || y < 0 || x >= img_.width || y >= img_.height) return;
    float& c = coverage_[static_cast<size_t>(y) * img_.width + x];
    if (c == 0) touched_.push_back(static_cast<size_t>(y) * img_.width + x);
    c = accumulate ? std::min(1.0f, c + cov) : std::max(c, cov);
  }

  // Blends the shape onto the image and clears its coverage.
  void flush(Rgb color, double opacity) {
    for (size_t i : touched_) {
      const double a = std::clamp(static_cast<double>(coverage_[i]), 0.0, 1.0) * opacity;
      coverage_[i] = 0;
      uint8_t* p = &img_.rgb[i * 3];
      const uint8_t src[3] = {color.r, color.g, color.b};
      for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(std::lround(p[k] * (1 - a) + src[k] * a));
    }
    touched_.clear();
  }

  RasterImage& img_;
  std::vector<float> coverage_;
  std::vector<size_t> touched_;
};

// Where v lies along the axis, 0 (min) to 1 (max), clamped; 0 for what has no
// place on it (NaN, a degenerate axis).
double axis_fraction(const PlotAxis& a, double v) {
  double t;
  if (a.log2) {
    v = std::max(v, a.min);
    t = (std::log2(v) - std::log2(a.min)) / (std::log2(a.max) - std::log2(a.min));
  } else {
    t = (v - a.min) / (a.max - a.min);
  }
  if (!std::isfinite(t)) t = 0;
  return std::clamp(t, 0.0, 1.0);
}

}  // namespace

double PlotFrame::px(const PlotAxis& a, double v) const {
  return left + axis_fraction(a, v) * (right - left);
}

double PlotFrame::py(const PlotAxis& a, double v) const {
  return bottom - axis_fraction(a, v) * (bottom - top);
}

PlotFrame plot_frame(const Plot& plot) {
  PlotFrame f;
  f.left = 84;
  f.top = 52;
  f.right = plot.width - 28;
  f.bottom = plot.height - 76;
  return f;
}

std::string render_svg(const Plot& plot) {
  std::string out;
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(plot.width) + "\" height=\"" +
         std::to_string(plot.height) + "\" viewBox=\"0 0 " + std::to_string(plot.width) + " " +
         std::to_string(plot.height) + "\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"" +
         std::to_string(10 * kTextScale) + "\">\n";
  out += "<title>" + svg_escape(plot.title) + "</title>\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  SvgCanvas canvas(out);
  draw(plot, canvas);
  out += "</svg>\n";
  return out;
}

RasterImage rasterize(const Plot& plot) {
  RasterImage img;
  img.width = plot.width;
  img.height = plot.height;
  img.rgb.assign(static_cast<size_t>(plot.width) * plot.height * 3, 255);
  RasterCanvas canvas(img);
  draw(plot, canvas);
  return img;
}

std::string render_png(const Plot& plot, PngCompression compression) {
  const RasterImage img = rasterize(plot);
  return encode_png(img.width, img.height, img.rgb, compression);
}

}  // namespace hilum
