// A minimal PNG writer for the evaluation plots (8-bit RGB, no interlace), so
// hilum_app draws images without an imaging library. The image data is
// deflated with zlib when the build has it, otherwise stored uncompressed
// (a valid, larger PNG).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hilum {

enum class PngCompression { kDeflate, kStore };

// Encodes `rgb` (width * height * 3 bytes, rows top to bottom) as a PNG file.
// kDeflate falls back to kStore in builds without zlib.
std::string encode_png(int width, int height, const std::vector<uint8_t>& rgb,
                       PngCompression compression = PngCompression::kDeflate);

// CRC-32 as PNG and zlib define it (polynomial 0xEDB88320, reflected).
uint32_t png_crc32(std::string_view bytes, uint32_t crc = 0);
// Adler-32 as zlib defines it.
uint32_t zlib_adler32(std::string_view bytes, uint32_t adler = 1);

}  // namespace hilum
