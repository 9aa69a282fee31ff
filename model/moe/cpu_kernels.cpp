#include "model/moe/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "model/gemm.h"
#include "model/parallel.h"

// The v8 helpers pass 32-byte vectors by value; in the non-AVX clone GCC warns
// that the ABI differs, which does not matter for these internal functions.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace hilum::moe::cpu {
namespace {

using v8 = float __attribute__((vector_size(32)));

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float hsum(v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) float dot(const float* a,
                                                                                        const float* b,
                                                                                        int64_t n) {
  v8 s0{}, s1{}, s2{}, s3{};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 += load8(a + i) * load8(b + i);
    s1 += load8(a + i + 8) * load8(b + i + 8);
    s2 += load8(a + i + 16) * load8(b + i + 16);
    s3 += load8(a + i + 24) * load8(b + i + 24);
  }
  for (; i + 8 <= n; i += 8) s0 += load8(a + i) * load8(b + i);
  float s = hsum((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y[t] (+)= sum_j p[j] * v[j * ldv + 0:d] for j < n.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void weighted_rows(
    const float* p, const float* v, int64_t n, int64_t ldv, int64_t d, float* y) {
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) {
    v8 acc{};
    for (int64_t j = 0; j < n; ++j) acc += v8{} + p[j] * load8(v + j * ldv + c);
    std::memcpy(y + c, &acc, sizeof acc);
  }
  for (; c < d; ++c) {
    float acc = 0;
    for (int64_t j = 0; j < n; ++j) acc += p[j] * v[j * ldv + c];
    y[c] = acc;
  }
}

constexpr int64_t kGemvMaxRows = 4;

}  // namespace

void linear(const float* x, int64_t T, int64_t in, const float* w, int64_t out, const float* bias, float* y,
            int64_t ldy, bool accumulate) {
  if (T <= 0 || out <= 0) return;
  if (T <= kGemvMaxRows) {
    // Small products run on the calling thread: waking the pool costs more.
    // Larger ones go in chunks of at least 2^17 multiply-adds (tens of
    // microseconds), so a many-core pool does not wake a thread per few rows.
    const int64_t grain = T * out * in < (int64_t{1} << 17)
                              ? out
                              : std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(T * in, 1));
    parallel_for(out, grain, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* wr = w + o * in;
        const float b = bias ? bias[o] : 0.0f;
        for (int64_t t = 0; t < T; ++t) {
          const float r = dot(wr, x + t * in, in) + b;
          float& dst = y[t * ldy + o];
          dst = accumulate ? dst + r : r;
        }
      }
    });
    return;
  }
  sgemm(true, T, out, in, 1.0f, x, in, w, in, accumulate ? 1.0f : 0.0f, y, ldy);
  if (bias) {
    parallel_for(T, std::max<int64_t>(1, 8192 / out), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* row = y + t * ldy;
        for (int64_t o = 0; o < out; ++o) row[o] += bias[o];
      }
    });
  }
}

void rms_norm(const float* x, int64_t T, int64_t dim, int64_t ldx, const float* w, float eps, float* y,
              int64_t ldy) {
  parallel_for(T, std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xr = x + t * ldx;
      float* yr = y + t * ldy;
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float r = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(dim)) + eps);
      for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * r);
    }
  });
}

float activate(Activation act, float x) {
  switch (act) {
    case Activation::kSilu:
      return x / (1.0f + std::exp(-x));
    case Activation::kGelu:
      return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Activation::kGeluTanh: {
      const float k = 0.79788456080286536f;  // sqrt(2/pi)
      return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
    }
    case Activation::kRelu:
      return x > 0 ? x : 0.0f;
  }
  return x;
}

void glu(Activation act, const float* gu, int64_t T, int64_t inter, float* h) {
  parallel_for(T, std::max<int64_t>(1, 8192 / std::max<int64_t>(inter, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* g = gu + t * 2 * inter;
      const float* u = g + inter;
      float* o = h + t * inter;
      for (int64_t i = 0; i < inter; ++i) o[i] = activate(act, g[i]) * u[i];
    }
  });
}

void rope_angles(const RopeConfig& rope, int64_t position, float* cos_out, float* sin_out) {
  const int64_t half = rope.dim / 2;
  const float p = static_cast<float>(position);
  for (int64_t i = 0; i < half; ++i) {
    const float angle = rope.inv_freq[i] * p;  // float32, as transformers computes it
    cos_out[i] = std::cos(angle) * rope.attention_scaling;
    sin_out[i] = std::sin(angle) * rope.attention_scaling;
  }
}

void rope(const RopeConfig& rope, float* x, int64_t T, int64_t heads, int64_t ld, int64_t head_stride,
          int64_t offset, int64_t pos0) {
  const int64_t half = rope.dim / 2;
  parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
    std::vector<float> c(half), s(half);
    for (int64_t t = t0; t < t1; ++t) {
      rope_angles(rope, pos0 + t, c.data(), s.data());
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + t * ld + h * head_stride + offset;
        if (rope.layout == RopeLayout::kHalf) {
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
          }
        } else {
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * c[i] - b * s[i];
            v[2 * i + 1] = b * c[i] + a * s[i];
          }
        }
      }
    }
  });
}

void attention(const float* q, int64_t T, int64_t nh, int64_t dk, int64_t ldq, const float* k, const float* v,
               int64_t nkv, int64_t dv, int64_t pos0, int64_t window, float scale, float* out, int64_t ldo) {
  const int64_t group = nh / nkv;
  const int64_t ldk = nkv * dk, ldv = nkv * dv;
  // Short contexts run on the calling thread (waking the pool costs more).
  const int64_t work = T * nh * (pos0 + T) * (dk + dv);
  parallel_for(T * nh, work < (int64_t{1} << 16) ? T * nh : 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> p;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / nh, h = i % nh, kh = h / group;
      const int64_t pos = pos0 + t;
      const int64_t lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
      const int64_t n = pos - lo + 1;
      p.resize(static_cast<size_t>(n));
      const float* qv = q + t * ldq + h * dk;
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        p[j] = dot(qv, k + (lo + j) * ldk + kh * dk, dk) * scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        p[j] = std::exp(p[j] - mx);
        sum += p[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < n; ++j) p[j] *= inv;
      weighted_rows(p.data(), v + lo * ldv + kh * dv, n, ldv, dv, out + t * ldo + h * dv);
    }
  });
}

}  // namespace hilum::moe::cpu
