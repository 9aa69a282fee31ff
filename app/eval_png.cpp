#include "app/eval_png.h"

#include <array>
#include <cassert>

#if HILUM_HAVE_ZLIB
#include <zlib.h>
#endif

namespace hilum {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

void put_u32_be(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

void put_chunk(std::string& out, const char type[5], std::string_view data) {
  put_u32_be(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body.append(data);
  out += body;
  put_u32_be(out, png_crc32(body));
}

// A zlib stream of stored (uncompressed) deflate blocks.
std::string zlib_store(std::string_view raw) {
  std::string z;
  z += static_cast<char>(0x78);  // deflate, 32 KiB window
  z += static_cast<char>(0x01);  // no preset dictionary; (0x78 << 8 | 0x01) % 31 == 0
  size_t pos = 0;
  do {
    const size_t len = std::min<size_t>(65535, raw.size() - pos);
    const bool last = pos + len == raw.size();
    z += static_cast<char>(last ? 1 : 0);  // BFINAL, BTYPE 00
    z += static_cast<char>(len & 0xFF);
    z += static_cast<char>(len >> 8);
    z += static_cast<char>(~len & 0xFF);
    z += static_cast<char>((~len >> 8) & 0xFF);
    z.append(raw.substr(pos, len));
    pos += len;
  } while (pos < raw.size());
  put_u32_be(z, zlib_adler32(raw));
  return z;
}

}  // namespace

uint32_t png_crc32(std::string_view bytes, uint32_t crc) {
  const auto& t = crc_table();
  uint32_t c = crc ^ 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = t[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t zlib_adler32(std::string_view bytes, uint32_t adler) {
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  for (unsigned char c : bytes) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

std::string encode_png(int width, int height, const std::vector<uint8_t>& rgb, PngCompression compression) {
  assert(width > 0 && height > 0 && rgb.size() == static_cast<size_t>(width) * height * 3);
  // Scanlines, each led by filter type 0 (none).
  std::string raw;
  raw.reserve((static_cast<size_t>(width) * 3 + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(rgb.data()) + static_cast<size_t>(y) * width * 3,
               static_cast<size_t>(width) * 3);
  }

  std::string idat;
#if HILUM_HAVE_ZLIB
  if (compression == PngCompression::kDeflate) {
    uLongf size = compressBound(static_cast<uLong>(raw.size()));
    idat.resize(size);
    if (compress2(reinterpret_cast<Bytef*>(idat.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                  static_cast<uLong>(raw.size()), Z_BEST_COMPRESSION) == Z_OK) {
      idat.resize(size);
    } else {
      idat = zlib_store(raw);
    }
  } else {
    idat = zlib_store(raw);
  }
#else
  (void)compression;
  idat = zlib_store(raw);
#endif

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32_be(ihdr, static_cast<uint32_t>(width));
  put_u32_be(ihdr, static_cast<uint32_t>(height));
  ihdr += static_cast<char>(8);  // bit depth
  ihdr += static_cast<char>(2);  // colour type: RGB
  ihdr += '\0';                  // compression: deflate
  ihdr += '\0';                  // filter method 0
  ihdr += '\0';                  // no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", idat);
  put_chunk(png, "IEND", "");
  return png;
}

}  // namespace hilum
