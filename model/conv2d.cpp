#include "model/conv2d.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "model/gemm.h"
#include "model/parallel.h"

namespace hilum {
namespace {

// Upper bound on one im2col block (floats); larger problems are split into
// column blocks, so memory stays bounded for any batch.
constexpr int64_t kMaxColumnFloats = int64_t{1} << 23;
// Output planes at least this large are multiplied image by image, straight
// into the NCHW output; smaller ones are batched across images (one wide GEMM
// instead of many thin ones) and scattered back in the epilogue.
constexpr int64_t kPerImagePlane = 512;

float* scratch(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

thread_local std::vector<float> t_col;
thread_local std::vector<float> t_acc;

// Fills col[k][t] for the output positions j = j0 + t, t in [0, j1 - j0), where
// j runs over the whole batch (image-major) and k over (in_channel, ky, kx).
// Input pixel (n, ci, y, x) is at x[n * image_stride + ci * channel_stride + y * W + x]
// (NCHW: image_stride = C*H*W, channel_stride = H*W; CNHW: H*W and N*H*W).
void im2col(const Conv2dGeometry& g, const float* x, int64_t image_stride, int64_t channel_stride, int64_t j0,
            int64_t j1, float* col) {
  const int64_t kh = g.kernel_h, kw = g.kernel_w;
  const int64_t K = g.in_channels * kh * kw;
  const int64_t ho = g.out_h(), wo = g.out_w(), plane = ho * wo;
  const int64_t width = j1 - j0;
  const int64_t s = g.stride, pad = g.pad, H = g.in_h, W = g.in_w;
  parallel_for(K, std::max<int64_t>(1, 16384 / std::max<int64_t>(width, 1)), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t ci = k / (kh * kw);
      const int64_t ky = (k / kw) % kh;
      const int64_t kx = k % kw;
      // Output columns ox whose input column ix = ox*s - pad + kx lies inside [0, W).
      const int64_t ox_lo = std::clamp<int64_t>(-floor_div(kx - pad, s), 0, wo);
      const int64_t ox_hi = std::clamp<int64_t>(floor_div(W - 1 + pad - kx, s) + 1, ox_lo, wo);
      float* dst = col + k * width;
      // Walk output rows (n, oy) from j0; only the first and last may be partial.
      int64_t n = j0 / plane, oy = (j0 % plane) / wo, ox_begin = j0 % wo;
      int64_t j = j0;
      while (j < j1) {
        const int64_t ox_end = std::min(wo, ox_begin + (j1 - j));
        float* out = dst + (j - j0) - ox_begin;  // indexed by ox
        const int64_t iy = oy * s - pad + ky;
        if (iy < 0 || iy >= H) {
          std::fill(out + ox_begin, out + ox_end, 0.0f);
        } else {
          const float* row =
              x + n * image_stride + ci * channel_stride + iy * W - pad + kx;  // indexed by ox*s
          const int64_t lo = std::clamp(ox_lo, ox_begin, ox_end), hi = std::clamp(ox_hi, lo, ox_end);
          std::fill(out + ox_begin, out + lo, 0.0f);
          if (s == 1) {
            std::copy(row + lo, row + hi, out + lo);
          } else {
            for (int64_t ox = lo; ox < hi; ++ox) out[ox] = row[ox * s];
          }
          std::fill(out + hi, out + ox_end, 0.0f);
        }
        j += ox_end - ox_begin;
        ox_begin = 0;
        if (++oy == ho) {
          oy = 0;
          ++n;
        }
      }
    }
  });
}

inline float finish(float v, float bias, const float* residual, int64_t i, bool relu) {
  v += bias;
  if (residual) v += residual[i];
  return relu ? std::max(v, 0.0f) : v;
}

}  // namespace

void conv2d_nchw(const Conv2dGeometry& g, const float* x, const float* w, const Conv2dEpilogue& e, float* y) {
  const int64_t ho = g.out_h(), wo = g.out_w(), plane = ho * wo;
  const int64_t K = g.in_channels * g.kernel_h * g.kernel_w;
  const int64_t M = g.out_channels;
  if (g.batch <= 0 || M <= 0 || plane <= 0) return;
  const bool pointwise = g.kernel_h == 1 && g.kernel_w == 1 && g.stride == 1 && g.pad == 0;
  const int64_t block = std::max<int64_t>(16, std::min<int64_t>(kMaxColumnFloats / std::max<int64_t>(K, 1),
                                                                kMaxColumnFloats / std::max<int64_t>(M, 1)));

  if (plane >= kPerImagePlane) {
    for (int64_t n = 0; n < g.batch; ++n) {
      float* yn = y + n * M * plane;
      const float* rn = e.residual ? e.residual + n * M * plane : nullptr;
      for (int64_t p0 = 0; p0 < plane; p0 += block) {
        const int64_t p1 = std::min(plane, p0 + block);
        const float* B;
        int64_t ldb;
        if (pointwise) {
          B = x + n * g.in_channels * plane + p0;
          ldb = plane;
        } else {
          float* col = scratch(t_col, K * (p1 - p0));
          im2col(g, x, g.in_channels * g.in_h * g.in_w, g.in_h * g.in_w, n * plane + p0, n * plane + p1, col);
          B = col;
          ldb = p1 - p0;
        }
        sgemm(false, M, p1 - p0, K, 1.0f, w, K, B, ldb, 0.0f, yn + p0, plane);
        if (e.bias || rn || e.relu) {
          parallel_for(M, std::max<int64_t>(1, 8192 / (p1 - p0)), [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
              const float b = e.bias ? e.bias[c] : 0.0f;
              float* row = yn + c * plane;
              const float* res = rn ? rn + c * plane : nullptr;
              for (int64_t p = p0; p < p1; ++p) row[p] = finish(row[p], b, res, p, e.relu);
            }
          });
        }
      }
    }
    return;
  }

  // Small planes: one GEMM over a block of columns that spans several images,
  // then scatter [M, columns] back to NCHW while applying the epilogue.
  const int64_t total = g.batch * plane;
  for (int64_t j0 = 0; j0 < total; j0 += block) {
    const int64_t j1 = std::min(total, j0 + block);
    const int64_t width = j1 - j0;
    float* col = scratch(t_col, K * width);
    im2col(g, x, g.in_channels * g.in_h * g.in_w, g.in_h * g.in_w, j0, j1, col);
    float* acc = scratch(t_acc, M * width);
    sgemm(false, M, width, K, 1.0f, w, K, col, width, 0.0f, acc, width);
    parallel_for(M, std::max<int64_t>(1, 8192 / width), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const float b = e.bias ? e.bias[c] : 0.0f;
        const float* src = acc + c * width;
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t n = j / plane, p = j % plane;
          const int64_t i = (n * M + c) * plane + p;
          y[i] = finish(src[j - j0], b, e.residual, i, e.relu);
        }
      }
    });
  }
}

void conv2d_cnhw(const Conv2dGeometry& g, const float* x, const float* w, const Conv2dEpilogue& e, float* y) {
  const int64_t total = g.batch * g.out_h() * g.out_w();
  const int64_t K = g.in_channels * g.kernel_h * g.kernel_w;
  const int64_t M = g.out_channels;
  if (total <= 0 || M <= 0) return;
  const bool pointwise = g.kernel_h == 1 && g.kernel_w == 1 && g.stride == 1 && g.pad == 0;
  const int64_t block = pointwise ? total : std::max<int64_t>(16, kMaxColumnFloats / std::max<int64_t>(K, 1));
  for (int64_t j0 = 0; j0 < total; j0 += block) {
    const int64_t j1 = std::min(total, j0 + block);
    const float* B = x + j0;
    int64_t ldb = total;
    if (!pointwise) {
      float* col = scratch(t_col, K * (j1 - j0));
      im2col(g, x, g.in_h * g.in_w, g.batch * g.in_h * g.in_w, j0, j1, col);
      B = col;
      ldb = j1 - j0;
    }
    sgemm(false, M, j1 - j0, K, 1.0f, w, K, B, ldb, 0.0f, y + j0, total);
    if (e.bias || e.residual || e.relu) {
      parallel_for(M, std::max<int64_t>(1, 8192 / (j1 - j0)), [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          const float b = e.bias ? e.bias[c] : 0.0f;
          float* row = y + c * total;
          const float* res = e.residual ? e.residual + c * total : nullptr;
          for (int64_t j = j0; j < j1; ++j) row[j] = finish(row[j], b, res, j, e.relu);
        }
      });
    }
  }
}

void conv2d_nchw_reference(const Conv2dGeometry& g, const float* x, const float* w, const Conv2dEpilogue& e,
                           float* y) {
  const int64_t ho = g.out_h(), wo = g.out_w();
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t co = 0; co < g.out_channels; ++co) {
      for (int64_t oy = 0; oy < ho; ++oy) {
        for (int64_t ox = 0; ox < wo; ++ox) {
          double s = 0;
          for (int64_t ci = 0; ci < g.in_channels; ++ci) {
            for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
              const int64_t iy = oy * g.stride - g.pad + ky;
              if (iy < 0 || iy >= g.in_h) continue;
              for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
                const int64_t ix = ox * g.stride - g.pad + kx;
                if (ix < 0 || ix >= g.in_w) continue;
                s += static_cast<double>(x[((n * g.in_channels + ci) * g.in_h + iy) * g.in_w + ix]) *
                     w[((co * g.in_channels + ci) * g.kernel_h + ky) * g.kernel_w + kx];
              }
            }
          }
          const int64_t i = ((n * g.out_channels + co) * ho + oy) * wo + ox;
          if (e.bias) s += e.bias[co];
          if (e.residual) s += e.residual[i];
          if (e.relu && s < 0) s = 0;
          y[i] = static_cast<float>(s);
        }
      }
    }
  }
}

void max_pool2d_nchw(int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t kernel, int64_t stride,
                     int64_t pad, const float* x, float* y) {
  const int64_t ho = (h + 2 * pad - kernel) / stride + 1;
  const int64_t wo = (w + 2 * pad - kernel) / stride + 1;
  if (ho <= 0 || wo <= 0) return;
  parallel_for(batch * channels, std::max<int64_t>(1, 4096 / (ho * wo)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* src = x + p * h * w;
      float* dst = y + p * ho * wo;
      for (int64_t oy = 0; oy < ho; ++oy) {
        const int64_t y0 = std::max<int64_t>(0, oy * stride - pad);
        const int64_t y1 = std::min(h, oy * stride - pad + kernel);
        for (int64_t ox = 0; ox < wo; ++ox) {
          const int64_t x0 = std::max<int64_t>(0, ox * stride - pad);
          const int64_t x1 = std::min(w, ox * stride - pad + kernel);
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t iy = y0; iy < y1; ++iy) {
            for (int64_t ix = x0; ix < x1; ++ix) m = std::max(m, src[iy * w + ix]);
          }
          dst[oy * wo + ox] = m;
        }
      }
    }
  });
}

void global_avg_pool_nchw(int64_t batch, int64_t channels, int64_t h, int64_t w, const float* x, float* y) {
  const int64_t plane = h * w;
  parallel_for(batch * channels, std::max<int64_t>(1, 4096 / std::max<int64_t>(plane, 1)),
               [&](int64_t p0, int64_t p1) {
                 for (int64_t p = p0; p < p1; ++p) {
                   const float* src = x + p * plane;
                   double s = 0;
                   for (int64_t i = 0; i < plane; ++i) s += src[i];
                   y[p] = static_cast<float>(s / static_cast<double>(plane));
                 }
               });
}

void linear_f32(int64_t rows, int64_t in_features, int64_t out_features, const float* x, const float* weight,
                const float* bias, float* y) {
  sgemm(true, rows, out_features, in_features, 1.0f, x, in_features, weight, in_features, 0.0f, y,
        out_features);
  if (!bias) return;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out_features; ++o) y[r * out_features + o] += bias[o];
  }
}

}  // namespace hilum
