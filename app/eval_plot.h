// Line charts for the evaluation reports (ROC and FROC curves), drawn twice
// from one description: as SVG text and as a PNG raster (our own anti-aliased
// rasteriser and a built-in 5x7 bitmap font, so no imaging or GUI library is
// needed). Coordinates outside an axis range are clamped onto the frame.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/eval_png.h"

namespace hilum {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

enum class LineStyle { kSolid, kDashed, kDotted };

struct PlotSeries {
  std::vector<double> x, y;
  Rgb color;
  double width = 2.5;  // pixels
  LineStyle style = LineStyle::kSolid;
  std::string legend;    // empty: not in the legend
  bool markers = false;  // a dot on every point
  bool line = true;      // false: markers only
};

// A shaded region between two curves over the same x values.
struct PlotBand {
  std::vector<double> x, low, high;
  Rgb color;
  double opacity = 0.15;
};

struct PlotAxis {
  std::string label;
  double min = 0, max = 1;
  bool log2 = false;  // logarithmic (base 2) scale; min must be > 0
  std::vector<double> ticks;
  std::vector<std::string> tick_labels;  // empty: the ticks formatted with %g
};

struct Plot {
  std::string title;
  int width = 760, height = 720;
  PlotAxis x, y;
  std::vector<PlotBand> bands;
  std::vector<PlotSeries> series;
};

// Where the axes' frame lies in pixels (y grows downwards), and the mapping of
// data coordinates into it. Shared by both renderers, and by tests.
struct PlotFrame {
  double left = 0, top = 0, right = 0, bottom = 0;
  double px(const PlotAxis& axis, double v) const;  // x data -> pixel column
  double py(const PlotAxis& axis, double v) const;  // y data -> pixel row
};
PlotFrame plot_frame(const Plot& plot);

std::string render_svg(const Plot& plot);

struct RasterImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3, rows top to bottom
  Rgb at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};
RasterImage rasterize(const Plot& plot);
std::string render_png(const Plot& plot, PngCompression compression = PngCompression::kDeflate);

// The bitmap font: a glyph is 5 columns by 9 rows (7 above the baseline, 2 for
// descenders); characters outside printable ASCII draw as '?'. Returns whether
// font pixel (col, row) of `c` is set.
bool font_pixel(char c, int col, int row);

}  // namespace hilum
