// Unicode normalization forms and case mapping for the tokenizer, from ICU (in
// a file of its own: ICU's and Oniguruma's headers do not mix).
#include <algorithm>

#include "model/tokenizer_parts.h"

#if HILUM_HAVE_ICU
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#endif

namespace hilum::tok {

// ---- Normalization forms and lowercase (ICU) --------------------------------

#if HILUM_HAVE_ICU
bool have_unicode_normalization() { return true; }

void normalize_unicode(std::string& s, UnicodeForm form) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) return;
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case UnicodeForm::kNFC: n = icu::Normalizer2::getNFCInstance(status); break;
    case UnicodeForm::kNFD: n = icu::Normalizer2::getNFDInstance(status); break;
    case UnicodeForm::kNFKC: n = icu::Normalizer2::getNFKCInstance(status); break;
    case UnicodeForm::kNFKD: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status) || !n) return;  // ICU data missing: leave the text as it is
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  if (n->isNormalized(in, status) && U_SUCCESS(status)) return;
  status = U_ZERO_ERROR;
  icu::UnicodeString out = n->normalize(in, status);
  if (U_FAILURE(status)) return;
  s.clear();
  out.toUTF8String(s);
}

void lowercase(std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = next_code_point(s, pos);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      continue;
    }
    // Full mapping of the code point alone: no context, as Rust's char::to_lowercase
    // (so a final sigma stays σ).
    UChar src[2];
    int32_t src_len = 0;
    U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
    UChar dst[8];
    UErrorCode status = U_ZERO_ERROR;
    const int32_t dst_len = u_strToLower(dst, 8, src, src_len, "", &status);
    if (U_FAILURE(status)) {
      append_utf8(out, c);
      continue;
    }
    for (int32_t k = 0; k < dst_len;) {
      UChar32 d;
      U16_NEXT(dst, k, dst_len, d);
      append_utf8(out, static_cast<char32_t>(d));
    }
  }
  s.swap(out);
}
#else
bool have_unicode_normalization() { return false; }
void normalize_unicode(std::string&, UnicodeForm) {}
void lowercase(std::string&) {}
#endif

}  // namespace hilum::tok
