// Pixel data -> modality values. DCMTK decodes the native, deflated, JPEG,
// JPEG-LS and RLE syntaxes into a little-endian buffer; JPEG 2000 (which DCMTK
// 3.6.7 does not decode) goes through OpenJPEG. The stored values are then
// masked to BitsStored, sign-extended, checked against PixelPaddingValue and
// rescaled here, so every syntax follows exactly the same arithmetic.
// ITK ships an old openjpeg.h of its own on the include path; name the system one.
#include <openjpeg-2.5/openjpeg.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "dcmtk/config/osconfig.h"  // must come first
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfcache.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "vision/io/dicom_internal.h"

namespace hilum::dicom {

namespace {

// How to turn one container value into a stored value.
struct BitLayout {
  int shift = 0;  // HighBit + 1 - BitsStored (0 for codec output)
  uint32_t mask = 0xffff;
  int32_t sign = 0;  // 1 << (BitsStored - 1) for signed data, else 0
  bool has_padding = false;
  int32_t pad_lo = 0, pad_hi = -1;
  bool pad_in_container = false;  // padding value lies outside the BitsStored range
  bool container_signed = false;
  int container_bits = 16;
  bool invert = false;
  int32_t invert_max = 0;
};

BitLayout make_layout(const InstanceHeader& h, bool codec_output, const ValueMapping& m) {
  BitLayout b;
  const int bits = std::clamp(h.bits_stored, 1, 16);
  b.shift = codec_output ? 0 : std::max(0, h.high_bit + 1 - bits);
  b.mask = bits >= 32 ? 0xffffffffu : ((1u << bits) - 1u);
  b.sign = h.pixel_representation == 1 ? (1 << (bits - 1)) : 0;
  b.container_signed = h.pixel_representation == 1;
  b.container_bits = h.bits_allocated;
  if (h.padding_value) {
    b.has_padding = true;
    int32_t pv = *h.padding_value;
    int32_t lim = h.padding_limit ? *h.padding_limit : pv;
    b.pad_lo = std::min(pv, lim);
    b.pad_hi = std::max(pv, lim);
    const int32_t lo = b.sign ? -b.sign : 0;
    const int32_t hi = b.sign ? b.sign - 1 : static_cast<int32_t>(b.mask);
    b.pad_in_container = pv < lo || pv > hi;
  }
  b.invert = m.invert;
  b.invert_max = b.sign ? -1 : static_cast<int32_t>(b.mask);
  return b;
}

// Written branch-free so that the compiler vectorises it: this loop touches
// every voxel of the volume. Float arithmetic is exact for the usual integer
// slopes/intercepts and within one float ulp of double arithmetic otherwise.
template <typename T, bool kPadding, bool kPadInContainer, bool kInvert>
void convert_loop(const T* src, size_t n, const BitLayout& b, float slope, float intercept, float fill,
                  float* dst) {
  const int shift = b.shift;
  const uint32_t mask = b.mask;
  const int32_t sign = b.sign;
  const int32_t pad_lo = b.pad_lo, pad_hi = b.pad_hi;
  const uint32_t cmask = b.container_bits >= 16 ? 0xffffu : 0xffu;
  const int32_t csign = b.container_signed ? (b.container_bits >= 16 ? 0x8000 : 0x80) : 0;
  const int32_t invert_base = b.invert_max;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t raw = static_cast<uint32_t>(src[i]);
    int32_t v = static_cast<int32_t>((raw >> shift) & mask);
    v = (v ^ sign) - sign;
    int32_t pad_mask = 0;  // all ones for padding pixels
    if constexpr (kPadding) {
      int32_t probe = v;
      if constexpr (kPadInContainer) probe = (static_cast<int32_t>(raw & cmask) ^ csign) - csign;
      pad_mask = -static_cast<int32_t>((probe >= pad_lo) & (probe <= pad_hi));
    }
    if constexpr (kInvert) v = invert_base - v;
    const float value = static_cast<float>(v) * slope + intercept;
    if constexpr (kPadding) {
      // A bitwise select: GCC does not vectorise `pad ? fill : value` on floats.
      const int32_t bits =
          (std::bit_cast<int32_t>(fill) & pad_mask) | (std::bit_cast<int32_t>(value) & ~pad_mask);
      dst[i] = std::bit_cast<float>(bits);
    } else {
      dst[i] = value;
    }
  }
}

template <typename T>
void convert_frame(const T* src, size_t n, const BitLayout& b, const FrameInfo& fi, const ValueMapping& m,
                   float* dst) {
  const float slope = static_cast<float>(fi.slope), intercept = static_cast<float>(fi.intercept);
  const float fill = m.padding_fill;
  if (!b.has_padding) {
    if (b.invert) {
      convert_loop<T, false, false, true>(src, n, b, slope, intercept, fill, dst);
    } else {
      convert_loop<T, false, false, false>(src, n, b, slope, intercept, fill, dst);
    }
  } else if (b.pad_in_container) {
    if (b.invert) {
      convert_loop<T, true, true, true>(src, n, b, slope, intercept, fill, dst);
    } else {
      convert_loop<T, true, true, false>(src, n, b, slope, intercept, fill, dst);
    }
  } else if (b.invert) {
    convert_loop<T, true, false, true>(src, n, b, slope, intercept, fill, dst);
  } else {
    convert_loop<T, true, false, false>(src, n, b, slope, intercept, fill, dst);
  }
}

// ---- JPEG 2000 through OpenJPEG ------------------------------------------

struct MemoryStream {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

OPJ_SIZE_T stream_read(void* buffer, OPJ_SIZE_T bytes, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  if (s->pos >= s->size) return static_cast<OPJ_SIZE_T>(-1);
  const size_t n = std::min<size_t>(bytes, s->size - s->pos);
  std::memcpy(buffer, s->data + s->pos, n);
  s->pos += n;
  return n;
}

OPJ_OFF_T stream_skip(OPJ_OFF_T bytes, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  if (bytes < 0) {
    const OPJ_OFF_T back = std::min<OPJ_OFF_T>(-bytes, static_cast<OPJ_OFF_T>(s->pos));
    s->pos -= static_cast<size_t>(back);
    return -back;
  }
  const OPJ_OFF_T fwd = std::min<OPJ_OFF_T>(bytes, static_cast<OPJ_OFF_T>(s->size - s->pos));
  s->pos += static_cast<size_t>(fwd);
  return fwd;
}

OPJ_BOOL stream_seek(OPJ_OFF_T offset, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  if (offset < 0 || static_cast<size_t>(offset) > s->size) return OPJ_FALSE;
  s->pos = static_cast<size_t>(offset);
  return OPJ_TRUE;
}

void keep_opj_message(const char* msg, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->empty() && msg) {
    *out = msg;
    while (!out->empty() && (out->back() == '\n' || out->back() == ' ')) out->pop_back();
  }
}
void drop_opj_message(const char*, void*) {}

// Decodes one JPEG 2000 codestream (or JP2 file) holding a single component.
Status decode_j2k(const std::vector<uint8_t>& bytes, const InstanceHeader& h, std::vector<int32_t>& out) {
  static const uint8_t kJp2Signature[] = {0, 0, 0, 0x0c, 'j', 'P', ' ', ' '};
  const bool jp2 = bytes.size() >= 8 && std::memcmp(bytes.data(), kJp2Signature, 8) == 0;
  opj_codec_t* codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
  if (!codec) return internal_error(h.path.string() + ": OpenJPEG could not create a decoder");
  std::string error;
  opj_set_error_handler(codec, keep_opj_message, &error);
  opj_set_warning_handler(codec, drop_opj_message, nullptr);
  opj_set_info_handler(codec, drop_opj_message, nullptr);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  MemoryStream mem{bytes.data(), bytes.size(), 0};
  opj_stream_t* stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
  opj_stream_set_user_data(stream, &mem, nullptr);
  opj_stream_set_user_data_length(stream, bytes.size());
  opj_stream_set_read_function(stream, stream_read);
  opj_stream_set_skip_function(stream, stream_skip);
  opj_stream_set_seek_function(stream, stream_seek);
  opj_image_t* image = nullptr;
  bool ok = opj_setup_decoder(codec, &params) && opj_read_header(stream, codec, &image) &&
            opj_decode(codec, stream, image) && opj_end_decompress(codec, stream);
  Status status;
  if (!ok || !image) {
    status = bad_input(h.path.string() + ": JPEG 2000 decoding failed" +
                       (error.empty() ? "" : " (" + error + ")"));
  } else if (image->numcomps != 1) {
    status = unsupported(h.path.string() + ": JPEG 2000 image has " + std::to_string(image->numcomps) +
                         " components; only grayscale is supported");
  } else if (static_cast<int>(image->comps[0].w) != h.columns ||
             static_cast<int>(image->comps[0].h) != h.rows || !image->comps[0].data) {
    status = bad_input(h.path.string() + ": JPEG 2000 image is " + std::to_string(image->comps[0].w) + "x" +
                       std::to_string(image->comps[0].h) + " but the header says " +
                       std::to_string(h.columns) + "x" + std::to_string(h.rows));
  } else {
    const size_t n = static_cast<size_t>(h.rows) * h.columns;
    out.assign(image->comps[0].data, image->comps[0].data + n);
  }
  if (image) opj_image_destroy(image);
  opj_stream_destroy(stream);
  opj_destroy_codec(codec);
  return status;
}

bool is_jpeg2000(E_TransferSyntax x) {
  return x == EXS_JPEG2000LosslessOnly || x == EXS_JPEG2000 || x == EXS_JPEG2000MulticomponentLosslessOnly ||
         x == EXS_JPEG2000Multicomponent;
}

bool starts_codestream(const std::vector<uint8_t>& f) {
  return (f.size() >= 4 && f[0] == 0xff && f[1] == 0x4f && f[2] == 0xff && f[3] == 0x51) ||
         (f.size() >= 8 && f[0] == 0 && f[1] == 0 && f[2] == 0 && f[3] == 0x0c && f[4] == 'j' && f[5] == 'P');
}

// Splits encapsulated pixel data into one byte stream per frame (Basic Offset
// Table when present, else one fragment per frame, else codestream starts).
Status encapsulated_frames(DcmDataset* ds, const InstanceHeader& h,
                           std::vector<std::vector<uint8_t>>& frames) {
  const std::string where = h.path.string() + ": ";
  DcmElement* elem = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, elem).bad() || !elem) return bad_input(where + "no PixelData");
  auto* pixel = static_cast<DcmPixelData*>(elem);
  DcmPixelSequence* seq = nullptr;
  if (pixel->getEncapsulatedRepresentation(ds->getOriginalXfer(), nullptr, seq).bad() || !seq) {
    return bad_input(where + "PixelData is not encapsulated although the transfer syntax says so");
  }
  const unsigned long items = seq->card();
  if (items < 2) return bad_input(where + "encapsulated PixelData holds no fragments");
  std::vector<std::vector<uint8_t>> fragments;
  std::vector<uint64_t> offsets;  // of each fragment's item tag, relative to the first fragment
  uint64_t offset = 0;
  for (unsigned long i = 1; i < items; ++i) {
    DcmPixelItem* item = nullptr;
    if (seq->getItem(item, i).bad() || !item) return bad_input(where + "cannot read a PixelData fragment");
    Uint8* data = nullptr;
    const Uint32 len = item->getLength();
    if (len > 0 && (item->getUint8Array(data).bad() || !data)) {
      return bad_input(where + "cannot read PixelData fragment " + std::to_string(i));
    }
    fragments.emplace_back(data, data + len);
    offsets.push_back(offset);
    offset += 8 + len;
  }
  const size_t nframes = static_cast<size_t>(h.frames);
  frames.clear();
  if (nframes == 1) {
    std::vector<uint8_t> all;
    for (auto& f : fragments) all.insert(all.end(), f.begin(), f.end());
    frames.push_back(std::move(all));
    return Status::Ok();
  }
  std::vector<uint32_t> bot;
  DcmPixelItem* table = nullptr;
  if (seq->getItem(table, 0).good() && table && table->getLength() >= 4 * nframes) {
    Uint8* t = nullptr;
    if (table->getUint8Array(t).good() && t) {
      for (size_t f = 0; f < nframes; ++f) {
        bot.push_back(static_cast<uint32_t>(t[4 * f]) | (static_cast<uint32_t>(t[4 * f + 1]) << 8) |
                      (static_cast<uint32_t>(t[4 * f + 2]) << 16) |
                      (static_cast<uint32_t>(t[4 * f + 3]) << 24));
      }
    }
  }
  if (!bot.empty()) {
    frames.resize(nframes);
    for (size_t i = 0; i < fragments.size(); ++i) {
      size_t f = static_cast<size_t>(std::upper_bound(bot.begin(), bot.end(), offsets[i]) - bot.begin());
      if (f == 0) return bad_input(where + "Basic Offset Table does not start at the first fragment");
      frames[f - 1].insert(frames[f - 1].end(), fragments[i].begin(), fragments[i].end());
    }
  } else if (fragments.size() == nframes) {
    frames = std::move(fragments);
  } else {
    for (auto& f : fragments) {
      if (frames.empty() || starts_codestream(f)) frames.emplace_back();
      frames.back().insert(frames.back().end(), f.begin(), f.end());
    }
  }
  if (frames.size() != nframes) {
    return bad_input(where + "cannot split " + std::to_string(fragments.size()) +
                     " PixelData fragments into " + std::to_string(nframes) + " frames");
  }
  return Status::Ok();
}

}  // namespace

std::string pixel_format_problem(const InstanceHeader& h) {
  if (h.float_pixel_data) return "float pixel data (FloatPixelData) is not supported";
  if (h.samples_per_pixel != 1) {
    return "SamplesPerPixel " + std::to_string(h.samples_per_pixel) + " (" + h.photometric +
           "): colour images cannot become a CT volume";
  }
  if (!h.photometric.empty() && h.photometric != "MONOCHROME1" && h.photometric != "MONOCHROME2") {
    return "PhotometricInterpretation " + h.photometric + " is not supported (grayscale only)";
  }
  if (h.rows <= 0 || h.columns <= 0) return "Rows/Columns missing or zero";
  if (h.bits_allocated != 8 && h.bits_allocated != 16) {
    return "BitsAllocated " + std::to_string(h.bits_allocated) + " is not supported (8 or 16)";
  }
  if (h.bits_stored < 1 || h.bits_stored > h.bits_allocated) {
    return "BitsStored " + std::to_string(h.bits_stored) + " does not fit BitsAllocated " +
           std::to_string(h.bits_allocated);
  }
  if (h.high_bit < h.bits_stored - 1 || h.high_bit >= h.bits_allocated) {
    return "HighBit " + std::to_string(h.high_bit) + " does not fit BitsStored " +
           std::to_string(h.bits_stored);
  }
  return "";
}

namespace {

bool is_native_unpacked(E_TransferSyntax x) {
  return x == EXS_LittleEndianExplicit || x == EXS_LittleEndianImplicit || x == EXS_BigEndianExplicit ||
         x == EXS_BigEndianImplicit;
}

Status check_native_length(const InstanceHeader& h, uint64_t have) {
  const size_t pixels = static_cast<size_t>(h.rows) * static_cast<size_t>(h.columns);
  const uint64_t need = static_cast<uint64_t>(pixels) * static_cast<uint64_t>(h.bits_allocated / 8) *
                        static_cast<uint64_t>(h.frames);
  if (have < need) {
    return bad_input(h.path.string() + ": PixelData holds " + std::to_string(have) + " bytes but " +
                     std::to_string(h.rows) + "x" + std::to_string(h.columns) + "x" +
                     std::to_string(h.frames) + " pixels at " + std::to_string(h.bits_allocated) +
                     " bits need " + std::to_string(need) + " (truncated file?)");
  }
  return Status::Ok();
}

// Native pixel data read straight from the file, frame by frame, into a
// per-thread buffer (DCMTK's partial value access swaps to host byte order);
// avoids loading and copying the whole value per file.
Status decode_native(const InstanceHeader& h, const std::vector<int>& frames, const std::vector<float*>& dest,
                     const ValueMapping& mapping) {
  const std::string where = h.path.string() + ": ";
  DcmFileFormat ff;
  OFCondition cond = ff.loadFile(OFFilename(h.path.c_str()), EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
  if (cond.bad()) return bad_input(where + "cannot read DICOM (" + std::string(cond.text()) + ")");
  DcmElement* elem = nullptr;
  if (ff.getDataset()->findAndGetElement(DCM_PixelData, elem).bad() || !elem) {
    return bad_input(where + "no PixelData");
  }
  HILUM_RETURN_IF_ERROR(check_native_length(h, elem->getLengthField()));
  const size_t pixels = static_cast<size_t>(h.rows) * static_cast<size_t>(h.columns);
  const size_t frame_bytes = pixels * static_cast<size_t>(h.bits_allocated / 8);
  thread_local std::vector<uint16_t> buffer;
  buffer.resize((frame_bytes + 1) / 2);
  const BitLayout layout = make_layout(h, /*codec_output=*/false, mapping);
  DcmFileCache cache;
  for (size_t i = 0; i < frames.size(); ++i) {
    const size_t f = static_cast<size_t>(frames[i]);
    cond = elem->getPartialValue(buffer.data(), static_cast<Uint32>(f * frame_bytes),
                                 static_cast<Uint32>(frame_bytes), &cache);
    if (cond.bad()) return bad_input(where + "cannot read PixelData (" + std::string(cond.text()) + ")");
    if (h.bits_allocated == 16) {
      convert_frame(buffer.data(), pixels, layout, h.frame_info[f], mapping, dest[i]);
    } else {
      convert_frame(reinterpret_cast<const uint8_t*>(buffer.data()), pixels, layout, h.frame_info[f], mapping,
                    dest[i]);
    }
  }
  return Status::Ok();
}

}  // namespace

Status decode_frames(const InstanceHeader& h, const std::vector<int>& frames, const std::vector<float*>& dest,
                     const ValueMapping& mapping) {
  ensure_dcmtk_ready();
  const std::string where = h.path.string() + ": ";
  if (std::string p = pixel_format_problem(h); !p.empty()) return unsupported(where + p);
  {
    DcmXfer original(h.transfer_syntax_uid.c_str());
    if (is_native_unpacked(original.getXfer())) return decode_native(h, frames, dest, mapping);
  }
  DcmFileFormat ff;
  OFCondition cond = ff.loadFile(OFFilename(h.path.c_str()));
  if (cond.bad()) return bad_input(where + "cannot read DICOM (" + std::string(cond.text()) + ")");
  DcmDataset* ds = ff.getDataset();
  const size_t pixels = static_cast<size_t>(h.rows) * static_cast<size_t>(h.columns);
  const E_TransferSyntax xfer = ds->getOriginalXfer();
  const DcmXfer xf(xfer);

  if (is_jpeg2000(xfer)) {
    std::vector<std::vector<uint8_t>> streams;
    HILUM_RETURN_IF_ERROR(encapsulated_frames(ds, h, streams));
    const BitLayout layout = make_layout(h, /*codec_output=*/true, mapping);
    std::vector<int32_t> values;
    std::vector<uint16_t> container(pixels);
    for (size_t i = 0; i < frames.size(); ++i) {
      HILUM_RETURN_IF_ERROR(decode_j2k(streams[static_cast<size_t>(frames[i])], h, values));
      // The codestream's own signedness may disagree with PixelRepresentation
      // (a known encoder bug): keep the bit pattern, BitsStored decides.
      for (size_t p = 0; p < pixels; ++p) container[p] = static_cast<uint16_t>(values[p]);
      convert_frame(container.data(), pixels, layout, h.frame_info[static_cast<size_t>(frames[i])], mapping,
                    dest[i]);
    }
    return Status::Ok();
  }

  if (xf.isEncapsulated()) {
    cond = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (cond.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
      return unsupported(where + "cannot decode " + h.transfer_syntax_name +
                         (cond.bad() ? " (" + std::string(cond.text()) + ")" : ""));
    }
  }
  DcmElement* elem = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, elem).bad() || !elem) return bad_input(where + "no PixelData");
  HILUM_RETURN_IF_ERROR(check_native_length(h, elem->getLength()));
  const BitLayout layout = make_layout(h, /*codec_output=*/xf.isEncapsulated(), mapping);
  if (h.bits_allocated == 16) {
    Uint16* data = nullptr;
    if (elem->getUint16Array(data).bad() || !data) return bad_input(where + "cannot read 16-bit PixelData");
    for (size_t i = 0; i < frames.size(); ++i) {
      const size_t f = static_cast<size_t>(frames[i]);
      convert_frame(data + f * pixels, pixels, layout, h.frame_info[f], mapping, dest[i]);
    }
  } else {
    Uint8* data = nullptr;
    if (elem->getUint8Array(data).bad() || !data) return bad_input(where + "cannot read 8-bit PixelData");
    for (size_t i = 0; i < frames.size(); ++i) {
      const size_t f = static_cast<size_t>(frames[i]);
      convert_frame(data + f * pixels, pixels, layout, h.frame_info[f], mapping, dest[i]);
    }
  }
  return Status::Ok();
}

}  // namespace hilum::dicom
