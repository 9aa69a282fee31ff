#include <gtest/gtest.h>

#include <cstring>

#include "app/eval_plot.h"
#include "app/eval_png.h"

#if HILUM_HAVE_ZLIB
#include <zlib.h>
#endif

namespace hilum {
namespace {

uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

struct DecodedPng {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Inflates a zlib stream made of stored blocks (what kStore writes).
std::string inflate_stored(const std::string& z) {
  std::string out;
  size_t pos = 2;
  while (true) {
    const uint8_t head = uint8_t(z.at(pos));
    EXPECT_EQ(head & 6, 0) << "not a stored block";
    const size_t len = uint8_t(z[pos + 1]) | (uint8_t(z[pos + 2]) << 8);
    const size_t nlen = uint8_t(z[pos + 3]) | (uint8_t(z[pos + 4]) << 8);
    EXPECT_EQ(len ^ 0xFFFF, nlen);
    out.append(z, pos + 5, len);
    pos += 5 + len;
    if (head & 1) break;
  }
  EXPECT_EQ(be32(z, pos), zlib_adler32(out));
  return out;
}

// A strict reader for the PNGs we write: checks signature, chunk CRCs and the
// header, inflates the data and undoes filter 0.
DecodedPng decode_png(const std::string& png) {
  DecodedPng d;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  size_t pos = 8;
  std::string idat;
  bool end = false;
  while (pos + 12 <= png.size()) {
    const uint32_t len = be32(png, pos);
    const std::string type = png.substr(pos + 4, 4);
    const std::string body = png.substr(pos + 4, 4 + len);
    EXPECT_EQ(be32(png, pos + 8 + len), png_crc32(body)) << type;
#if HILUM_HAVE_ZLIB
    EXPECT_EQ(be32(png, pos + 8 + len),
              uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
#endif
    const std::string data = png.substr(pos + 8, len);
    if (type == "IHDR") {
      d.width = int(be32(data, 0));
      d.height = int(be32(data, 4));
      EXPECT_EQ(data.substr(8), std::string("\x08\x02\x00\x00\x00", 5));
    } else if (type == "IDAT") {
      idat += data;
    } else if (type == "IEND") {
      end = true;
    }
    pos += 12 + len;
  }
  EXPECT_TRUE(end);
  EXPECT_EQ(pos, png.size());
  std::string raw;
  if ((uint8_t(idat[2]) & 6) == 0) {
    raw = inflate_stored(idat);
  } else {
#if HILUM_HAVE_ZLIB
    raw.resize(size_t(d.width * 3 + 1) * d.height);
    uLongf size = raw.size();
    EXPECT_EQ(uncompress(reinterpret_cast<Bytef*>(raw.data()), &size,
                         reinterpret_cast<const Bytef*>(idat.data()), idat.size()),
              Z_OK);
    EXPECT_EQ(size, raw.size());
#else
    ADD_FAILURE() << "compressed PNG in a build without zlib";
#endif
  }
  const size_t stride = size_t(d.width) * 3 + 1;
  EXPECT_EQ(raw.size(), stride * d.height);
  for (int y = 0; y < d.height; ++y) {
    EXPECT_EQ(raw[y * stride], '\0');
    d.rgb.insert(d.rgb.end(), raw.begin() + y * stride + 1, raw.begin() + (y + 1) * stride);
  }
  return d;
}

TEST(EvalPng, ChecksumsMatchTheirStandards) {
  EXPECT_EQ(png_crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(zlib_adler32("Wikipedia"), 0x11E60398u);
  EXPECT_EQ(png_crc32(""), 0u);
  EXPECT_EQ(zlib_adler32(""), 1u);
}

TEST(EvalPng, RoundTripsStoredAndDeflated) {
  // 300 x 200 is larger than one stored block (65535 bytes).
  const int w = 300, h = 200;
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((i * 7919) >> 3);
  for (PngCompression c : {PngCompression::kStore, PngCompression::kDeflate}) {
    const DecodedPng d = decode_png(encode_png(w, h, rgb, c));
    EXPECT_EQ(d.width, w);
    EXPECT_EQ(d.height, h);
    EXPECT_EQ(d.rgb, rgb);
  }
}

TEST(EvalPlotFont, EveryPrintableGlyphIsDrawnAndDescendersGoBelow) {
  for (char c = 33; c < 127; ++c) {
    bool any = false;
    for (int r = 0; r < 9; ++r) {
      for (int col = 0; col < 5; ++col) any = any || font_pixel(c, col, r);
    }
    EXPECT_TRUE(any) << c;
  }
  auto below = [](char c) {
    for (int col = 0; col < 5; ++col) {
      if (font_pixel(c, col, 7) || font_pixel(c, col, 8)) return true;
    }
    return false;
  };
  for (char c : std::string("gjpqy,;_")) EXPECT_TRUE(below(c)) << c;
  for (char c : std::string("aAz09.")) EXPECT_FALSE(below(c)) << c;
  for (int col = 0; col < 5; ++col) EXPECT_FALSE(font_pixel(' ', col, 3));
  // Non-ASCII draws as '?'.
  EXPECT_EQ(font_pixel('\x80', 0, 1), font_pixel('?', 0, 1));
}

Plot test_plot() {
  Plot p;
  p.title = "Test <plot> & co";
  p.width = 400;
  p.height = 360;
  p.x.label = "x axis";
  p.y.label = "y axis";
  p.x.ticks = {0, 0.5, 1};
  p.y.ticks = {0, 0.5, 1};
  PlotBand band;
  band.x = {0, 1};
  band.low = {0.6, 0.6};
  band.high = {0.8, 0.8};
  band.color = {0, 0, 255};
  band.opacity = 0.5;
  p.bands.push_back(band);
  PlotSeries line;
  line.x = {0, 1};
  line.y = {0, 1};
  line.color = {255, 0, 0};
  line.width = 3;
  line.legend = "red line";
  p.series.push_back(line);
  return p;
}

TEST(EvalPlot, RasterShowsLineBandTextAndFrame) {
  const Plot p = test_plot();
  const RasterImage img = rasterize(p);
  const PlotFrame f = plot_frame(p);
  ASSERT_EQ(img.width, 400);
  auto at = [&](double x, double y) { return img.at(int(f.px(p.x, x)), int(f.py(p.y, y))); };
  // On the red line.
  const Rgb on = at(0.3, 0.3);
  EXPECT_GT(on.r, 200);
  EXPECT_LT(on.g, 80);
  // Inside the half-transparent blue band, away from the line and grid.
  const Rgb band = at(0.25, 0.7);
  EXPECT_NEAR(band.r, 128, 3);
  EXPECT_NEAR(band.b, 255, 3);
  // Empty plot area stays white.
  const Rgb empty = at(0.2, 0.4);
  EXPECT_EQ(empty.r, 255);
  EXPECT_EQ(empty.g, 255);
  // The frame is black.
  const Rgb frame = img.at(int(f.left), int((f.top + f.bottom) / 2));
  EXPECT_LT(frame.r, 80);
  // Some dark pixels in the title row and in the vertical y-axis label.
  auto dark_in = [&](int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) n += img.at(x, y).r < 60;
    }
    return n;
  };
  EXPECT_GT(dark_in(0, 10, p.width, 34), 50);
  EXPECT_GT(dark_in(10, int(f.top), 34, int(f.bottom)), 50);
  // The PNG holds exactly this raster.
  const DecodedPng d = decode_png(render_png(p));
  EXPECT_EQ(d.rgb, img.rgb);
}

TEST(EvalPlot, SvgIsWellFormedAndEscaped) {
  const std::string svg = render_svg(test_plot());
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"360\""),
            std::string::npos);
  EXPECT_NE(svg.find("Test &lt;plot&gt; &amp; co"), std::string::npos);
  EXPECT_EQ(svg.find("<plot>"), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#ff0000\""), std::string::npos);
  EXPECT_NE(svg.find("fill=\"#0000ff\" fill-opacity=\"0.50\""), std::string::npos);
  EXPECT_NE(svg.find("rotate(-90"), std::string::npos);
  EXPECT_NE(svg.find(">red line</text>"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  // Every element opened is closed.
  size_t open = 0, close = 0;
  for (size_t i = svg.find("<text"); i != std::string::npos; i = svg.find("<text", i + 1)) ++open;
  for (size_t i = svg.find("</text>"); i != std::string::npos; i = svg.find("</text>", i + 1)) ++close;
  EXPECT_EQ(open, close);
}

TEST(EvalPlot, LogAxisMapsPowersOfTwoEvenly) {
  Plot p;
  p.x.log2 = true;
  p.x.min = 0.125;
  p.x.max = 8;
  const PlotFrame f = plot_frame(p);
  const double step = f.px(p.x, 0.25) - f.px(p.x, 0.125);
  EXPECT_NEAR(f.px(p.x, 8) - f.px(p.x, 4), step, 1e-9);
  EXPECT_NEAR(f.px(p.x, 1), (f.left + f.right) / 2, 1e-9);
  EXPECT_EQ(f.px(p.x, 0), f.left);  // clamped, not -inf
}

}  // namespace
}  // namespace hilum
