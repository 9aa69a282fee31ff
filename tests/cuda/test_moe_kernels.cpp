// Conformance of the text engine's CUDA kernels against their CPU references
// (model/moe/cpu_kernels.h, model/moe/router.h) on awkward sizes. Skipped
// without a CUDA device. Tolerances: fp32 kernels atol + rtol*|ref| with
// 1e-5-ish terms scaled by the reduction length (different summation order);
// bf16 outputs 1e-2 relative (8 mantissa bits).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "cuda/device.h"
#include "model/half.h"
#include "model/moe/cpu_kernels.h"
#include "model/moe/router.h"

#if HILUM_HAVE_CUDA
#include "cuda/moe_kernels.h"
#include "cuda/moe_runtime.h"
#endif

namespace hilum::moe {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda::unavailable_reason()

#if HILUM_HAVE_CUDA

namespace km = hilum::cuda::moe;

// A device copy of a host vector; copies back on demand.
template <typename T>
class Dev {
 public:
  explicit Dev(size_t n) : n_(n) {
    auto p = cuda::malloc_device(sizeof(T) * std::max<size_t>(n, 1));
    EXPECT_TRUE(p.ok());
    ptr_ = static_cast<T*>(p.ok() ? *p : nullptr);
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) {
    EXPECT_TRUE(cuda::copy_to_device(ptr_, v.data(), sizeof(T) * v.size()).ok());
  }
  ~Dev() { cuda::free_device(ptr_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() const { return ptr_; }
  std::vector<T> host() const {
    std::vector<T> v(n_);
    EXPECT_TRUE(cuda::synchronize().ok());
    EXPECT_TRUE(cuda::copy_to_host(v.data(), ptr_, sizeof(T) * n_).ok());
    return v;
  }

 private:
  size_t n_;
  T* ptr_ = nullptr;
};

std::vector<float> randn(size_t n, uint64_t seed, float std = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Rounds to bf16 and returns both the bits and the rounded floats.
std::vector<uint16_t> to_bf16(const std::vector<float>& v, std::vector<float>* rounded = nullptr) {
  std::vector<uint16_t> b(v.size());
  if (rounded) rounded->resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    b[i] = f32_to_bf16(v[i]);
    if (rounded) (*rounded)[i] = bf16_to_f32(b[i]);
  }
  return b;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i])) << what << " at " << i;
  }
}

TEST(MoeKernels, RmsNormWithResidualAddAndBothOutputs) {
  SKIP_WITHOUT_GPU();
  for (int64_t dim : {1, 37, 1000, 2049}) {
    const int64_t T = 3, ldx = dim + 5;
    auto x = randn(T * ldx, 1), delta = randn(T * dim, 2), w = randn(dim, 3);
    Dev<float> dx(x), dd(delta), dw(w), dy(T * dim);
    Dev<uint16_t> dyb(T * dim);
    ASSERT_TRUE(km::rms_norm(dx.get(), ldx, dd.get(), dim, dw.get(), T, dim, 1e-5f, dy.get(), dim, dyb.get(),
                             dim, nullptr)
                    .ok());
    std::vector<float> xr = x, want(T * dim);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < dim; ++i) xr[t * ldx + i] += delta[t * dim + i];
    }
    cpu::rms_norm(xr.data(), T, dim, ldx, w.data(), 1e-5f, want.data(), dim);
    expect_close(dx.host(), xr, 1e-6, 1e-6, "x += delta");
    expect_close(dy.host(), want, 1e-5, 1e-5, "rms_norm f32");
    std::vector<float> yb;
    for (uint16_t b : dyb.host()) yb.push_back(bf16_to_f32(b));
    expect_close(yb, want, 1e-6, 8e-3, "rms_norm bf16");
  }
}

TEST(MoeKernels, RopeMatchesCpuInBothLayouts) {
  SKIP_WITHOUT_GPU();
  for (bool interleaved : {false, true}) {
    RopeConfig rope;
    rope.dim = 10;
    rope.theta = 10000;
    rope.layout = interleaved ? RopeLayout::kInterleaved : RopeLayout::kHalf;
    rope.type = RopeConfig::Type::kYarn;
    rope.factor = 4;
    rope.original_max_position = 32;
    ASSERT_TRUE(compute_rope_tables(rope, 128).ok());
    const int64_t T = 5, heads = 3, stride = 14, offset = 3, ld = heads * stride + 2, pos0 = 97;
    auto x = randn(T * ld, 4);
    std::vector<int32_t> positions(T);
    std::iota(positions.begin(), positions.end(), static_cast<int32_t>(pos0));
    Dev<float> dx(x), dinv(rope.inv_freq);
    Dev<int32_t> dpos(positions);
    ASSERT_TRUE(km::rope(dx.get(), T, heads, ld, stride, offset, rope.dim, dinv.get(), rope.attention_scaling,
                         interleaved, dpos.get(), nullptr)
                    .ok());
    std::vector<float> want = x;
    cpu::rope(rope, want.data(), T, heads, ld, stride, offset, pos0);
    expect_close(dx.host(), want, 2e-5, 2e-5, interleaved ? "rope interleaved" : "rope half");
  }
}

TEST(MoeKernels, GemvMatchesCpuLinearOnAwkwardShapes) {
  SKIP_WITHOUT_GPU();
  struct Shape3 {
    int64_t N, K, T;
  };
  for (Shape3 s :
       {Shape3{37, 1000, 1}, {37, 1000, 3}, {5, 77, 9}, {130, 264, 16}, {1, 8, 2}, {64, 2048, 16}}) {
    const int64_t ldx = s.K + 3, ldy = s.N + 1;
    std::vector<float> wr;
    auto wb = to_bf16(randn(s.N * s.K, 5, 0.1f), &wr);
    auto x = randn(s.T * ldx, 6), bias = randn(s.N, 7), y0 = randn(s.T * ldy, 8);
    for (bool acc : {false, true}) {
      Dev<uint16_t> dw(wb);
      Dev<float> dx(x), db(bias), dy(y0);
      ASSERT_TRUE(
          km::gemv(dw.get(), db.get(), s.N, s.K, dx.get(), ldx, s.T, dy.get(), ldy, acc, nullptr).ok());
      std::vector<float> want = y0, xc(s.T * s.K);
      for (int64_t t = 0; t < s.T; ++t) std::copy_n(&x[t * ldx], s.K, &xc[t * s.K]);
      cpu::linear(xc.data(), s.T, s.K, wr.data(), s.N, bias.data(), want.data(), ldy, acc);
      auto got = dy.host();
      for (int64_t t = 0; t < s.T; ++t) {
        for (int64_t o = s.N; o < ldy; ++o) ASSERT_EQ(got[t * ldy + o], y0[t * ldy + o]) << "wrote past N";
      }
      expect_close(got, want, 2e-5 * std::sqrt(static_cast<double>(s.K)), 1e-5,
                   "gemv " + std::to_string(s.N) + "x" + std::to_string(s.K) + " T=" + std::to_string(s.T));
    }
  }
}

TEST(MoeKernels, RouterMatchesCpuForEveryKind) {
  SKIP_WITHOUT_GPU();
  struct C {
    RouterKind kind;
    int E, K, G, TG;
    bool norm;
    float scale;
  };
  for (C c : {C{RouterKind::kSoftmaxTopK, 64, 8, 1, 1, false, 1.0f},
              C{RouterKind::kSoftmaxTopK, 8, 2, 1, 1, true, 1.0f},
              C{RouterKind::kSoftmaxGreedy, 60, 6, 1, 1, false, 1.5f},
              C{RouterKind::kSoftmaxGroupLimited, 16, 3, 4, 2, false, 1.0f},
              C{RouterKind::kSigmoidNoAuxTc, 32, 4, 8, 3, true, 2.5f},
              C{RouterKind::kSigmoidNoAuxTc, 256, 8, 8, 4, false, 2.5f}}) {
    RouterConfig rc;
    rc.kind = c.kind;
    rc.num_experts = c.E;
    rc.top_k = c.K;
    rc.n_group = c.G;
    rc.topk_group = c.TG;
    rc.norm_topk_prob = c.norm;
    rc.routed_scaling_factor = c.scale;
    const int64_t T = 37;
    auto logits = randn(T * c.E, 9, 3.0f), bias = randn(c.E, 10, 0.1f);
    std::vector<int32_t> want_ids(T * c.K);
    std::vector<float> want_w(T * c.K);
    route_tokens(rc, logits.data(), T, bias.data(), want_ids.data(), want_w.data());
    km::RouterParams p;
    p.kind = static_cast<km::RouterKind>(static_cast<int>(c.kind));
    p.num_experts = c.E;
    p.top_k = c.K;
    p.n_group = c.G;
    p.topk_group = c.TG;
    p.norm_topk_prob = c.norm;
    p.routed_scaling_factor = c.scale;
    Dev<float> dl(logits), db(bias), dw(T * c.K);
    Dev<int32_t> di(T * c.K);
    ASSERT_TRUE(km::route(p, dl.get(), T, db.get(), di.get(), dw.get(), nullptr).ok());
    EXPECT_EQ(di.host(), want_ids) << "E=" << c.E << " K=" << c.K;
    expect_close(dw.host(), want_w, 1e-6, 1e-5, "router weights E=" + std::to_string(c.E));
  }
}

TEST(MoeKernels, GroupingCoversEveryPairOnce) {
  SKIP_WITHOUT_GPU();
  const int E = 13, K = 3;
  const int64_t T = 101, TK = T * K;
  std::mt19937 rng(11);
  std::vector<int32_t> ids(TK);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> e(E);
    std::iota(e.begin(), e.end(), 0);
    std::shuffle(e.begin(), e.end(), rng);
    for (int k = 0; k < K; ++k) ids[t * K + k] = e[k];
  }
  Dev<int32_t> di(ids), doff(E + 1), dsorted(TK), dpos(TK), dmax(1), dact(E);
  ASSERT_TRUE(km::group_by_expert(di.get(), TK, E, doff.get(), dsorted.get(), dpos.get(), dmax.get(),
                                  dact.get(), nullptr)
                  .ok());
  auto off = doff.host(), sorted = dsorted.host(), pos = dpos.host(), act = dact.host();
  std::vector<int32_t> count(E, 0);
  for (int32_t e : ids) ++count[e];
  EXPECT_EQ(dmax.host()[0], *std::max_element(count.begin(), count.end()));
  EXPECT_EQ(off[0], 0);
  for (int e = 0; e < E; ++e) {
    EXPECT_EQ(off[e + 1] - off[e], count[e]);
    for (int32_t p = off[e]; p < off[e + 1]; ++p) EXPECT_EQ(ids[sorted[p]], e);
  }
  for (int64_t i = 0; i < TK; ++i) EXPECT_EQ(sorted[pos[i]], i);
  std::vector<int32_t> want_active;
  for (int e = 0; e < E; ++e) {
    if (count[e] > 0) want_active.push_back(e);
  }
  want_active.resize(E, -1);
  EXPECT_EQ(act, want_active);
}

// CPU reference of the expert FFN for one (token, expert) pair.
void expert_ref(const std::vector<float>& gu, const std::vector<float>& dn, int64_t H, int64_t I, int e,
                const float* x, std::vector<float>& h, std::vector<float>& y) {
  std::vector<float> g(2 * I);
  cpu::linear(x, 1, H, gu.data() + e * 2 * I * H, 2 * I, nullptr, g.data(), 2 * I);
  h.resize(I);
  cpu::glu(Activation::kSilu, g.data(), 1, I, h.data());
  y.resize(H);
  cpu::linear(h.data(), 1, I, dn.data() + e * H * I, H, nullptr, y.data(), H);
}

TEST(MoeKernels, ExpertGemvAndPaddedPathsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (int64_t H : {72, 36}) {  // 16-byte loads, and the scalar path
    const int E = 5, K = 2;
    const int64_t I = 40, T = 7, TK = T * K, ldx = H + 4;
    std::vector<float> gur, dnr;
    auto gub = to_bf16(randn(E * 2 * I * H, 12, 0.2f), &gur);
    auto dnb = to_bf16(randn(E * H * I, 13, 0.2f), &dnr);
    auto x = randn(T * ldx, 14);
    std::vector<int32_t> ids(TK);
    for (int64_t t = 0; t < T; ++t) {
      ids[t * K] = static_cast<int32_t>(t % E);
      ids[t * K + 1] = static_cast<int32_t>((t * 3 + 1) % E == t % E ? (t + 2) % E : (t * 3 + 1) % E);
    }
    auto w = randn(TK, 15), x0 = randn(T * ldx, 16), shared = randn(T * H, 17), gate = randn(T, 18);
    Dev<uint16_t> dgu(gub), ddn(dnb);
    Dev<float> dx(x), dh(TK * I), dy(TK * H), dw(w);
    Dev<int32_t> di(ids), doff(E + 1), dsorted(TK), dpos(TK), dmax(1), dact(E);
    ASSERT_TRUE(km::group_by_expert(di.get(), TK, E, doff.get(), dsorted.get(), dpos.get(), dmax.get(),
                                    dact.get(), nullptr)
                    .ok());
    ASSERT_TRUE(km::expert_gate_up_gemv(km::Act::kSilu, dgu.get(), E, H, I, dx.get(), ldx, doff.get(),
                                        dact.get(), dsorted.get(), K, TK, dh.get(), nullptr)
                    .ok());
    ASSERT_TRUE(
        km::expert_down_gemv(ddn.get(), E, H, I, dh.get(), doff.get(), dact.get(), K, TK, dy.get(), nullptr)
            .ok());
    auto sorted = dsorted.host(), pos = dpos.host();
    auto h = dh.host(), y = dy.host();
    std::vector<float> want_x0 = x0;
    for (int64_t i = 0; i < TK; ++i) {
      std::vector<float> hr, yr;
      expert_ref(gur, dnr, H, I, ids[i], &x[(i / K) * ldx], hr, yr);
      const int32_t p = pos[i];
      expect_close(std::vector<float>(h.begin() + p * I, h.begin() + (p + 1) * I), hr, 3e-5, 1e-4,
                   "expert h");
      expect_close(std::vector<float>(y.begin() + p * H, y.begin() + (p + 1) * H), yr, 3e-5, 1e-4,
                   "expert y");
      for (int64_t o = 0; o < H; ++o) want_x0[(i / K) * ldx + o] += w[i] * yr[o];
    }
    for (int64_t t = 0; t < T; ++t) {
      const float g = 1.0f / (1.0f + std::exp(-gate[t]));
      for (int64_t o = 0; o < H; ++o) want_x0[t * ldx + o] += g * shared[t * H + o];
    }
    // Combine from the grouped rows.
    Dev<float> dx0(x0), dsh(shared), dg(gate);
    ASSERT_TRUE(km::combine_experts(dx0.get(), ldx, T, H, K, di.get(), dw.get(), dpos.get(), doff.get(), 0,
                                    dy.get(), dsh.get(), dg.get(), nullptr)
                    .ok());
    expect_close(dx0.host(), want_x0, 1e-4, 1e-4, "combine grouped");
    // The padded path: gather, batched GEMMs, GLU, combine.
    auto ctx = km::GpuContext::create();
    ASSERT_TRUE(ctx.ok());
    const int64_t M = dmax.host()[0];
    Dev<uint16_t> dxp(E * M * H), dhp(E * M * I);
    Dev<float> dgup(E * M * 2 * I), dyp(E * M * H), dx1(x0);
    ASSERT_TRUE(cuda::synchronize().ok());
    km::Stream st = (*ctx)->stream();
    ASSERT_TRUE(
        km::gather_padded(dx.get(), ldx, H, doff.get(), dsorted.get(), K, E, TK, M, dxp.get(), st).ok());
    ASSERT_TRUE((*ctx)
                    ->gemm_batched(M, 2 * I, H, dxp.get(), H, M * H, dgu.get(), H, 2 * I * H, dgup.get(),
                                   2 * I, M * 2 * I, E, 0.0f)
                    .ok());
    ASSERT_TRUE(km::glu_padded(km::Act::kSilu, dgup.get(), E, TK, M, I, doff.get(), dhp.get(), st).ok());
    ASSERT_TRUE(
        (*ctx)
            ->gemm_batched(M, H, I, dhp.get(), I, M * I, ddn.get(), I, H * I, dyp.get(), H, M * H, E, 0.0f)
            .ok());
    ASSERT_TRUE(km::combine_experts(dx1.get(), ldx, T, H, K, di.get(), dw.get(), dpos.get(), doff.get(), M,
                                    dyp.get(), dsh.get(), dg.get(), st)
                    .ok());
    ASSERT_TRUE((*ctx)->synchronize().ok());
    // bf16 activations in the GEMMs: 1e-2 relative.
    expect_close(dx1.host(), want_x0, 2e-2, 2e-2, "combine padded");
  }
}

// CPU attention of one query (position `pos`) over a slot's cache rows.
std::vector<float> attention_ref(const std::vector<float>& q, int64_t nh, int64_t dk,
                                 const std::vector<float>& kc, const std::vector<float>& vc, int64_t slot,
                                 int64_t cap, int64_t nkv, int64_t dv, int64_t T, int64_t pos0,
                                 int64_t window, float scale) {
  std::vector<float> out(T * nh * dv);
  cpu::attention(q.data(), T, nh, dk, nh * dk, kc.data() + slot * cap * nkv * dk,
                 vc.data() + slot * cap * nkv * dv, nkv, dv, pos0, window, scale, out.data(), nh * dv);
  return out;
}

TEST(MoeKernels, DecodeAttentionMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int nh = 4, nkv = 2, dk = 24, dv = 20, slots = 3;
  const int64_t cap = 600;  // three split-K chunks
  km::KvLayout kv{cap, nkv, dk, dv};
  auto kc = randn(slots * cap * nkv * dk, 19), vc = randn(slots * cap * nkv * dv, 20);
  const std::vector<int32_t> sl = {2, 0, 1, 0}, pos = {0, 255, 599, 300};
  const int64_t T = static_cast<int64_t>(sl.size());
  auto q = randn(T * nh * dk, 21);
  for (int64_t window : {0, 100}) {
    Dev<float> dq(q), dkc(kc), dvc(vc), dout(T * nh * dv), dpart(km::decode_partial_floats(T, nh, kv));
    Dev<int32_t> dsl(sl), dpos(pos);
    ASSERT_TRUE(km::attention_decode(dq.get(), nh * dk, T, nh, dsl.get(), dpos.get(), window, 0.3f, kv,
                                     dkc.get(), dvc.get(), dpart.get(), dout.get(), nh * dv, nullptr)
                    .ok());
    auto got = dout.host();
    for (int64_t t = 0; t < T; ++t) {
      std::vector<float> qt(q.begin() + t * nh * dk, q.begin() + (t + 1) * nh * dk);
      auto want = attention_ref(qt, nh, dk, kc, vc, sl[t], cap, nkv, dv, 1, pos[t], window, 0.3f);
      expect_close(std::vector<float>(got.begin() + t * nh * dv, got.begin() + (t + 1) * nh * dv), want, 2e-5,
                   2e-5, "decode attention row " + std::to_string(t) + " window " + std::to_string(window));
    }
  }
}

TEST(MoeKernels, PrefillAttentionMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    int nh, nkv, dk, dv;
    int64_t T, pos0, window;
  };
  for (C c : {C{4, 2, 24, 20, 37, 5, 0}, C{4, 4, 192, 128, 33, 0, 0}, C{2, 1, 64, 64, 50, 3, 9},
              C{3, 3, 256, 256, 17, 0, 0}}) {
    const int64_t cap = c.pos0 + c.T + 3;
    km::KvLayout kv{cap, c.nkv, c.dk, c.dv};
    auto kc = randn(2 * cap * c.nkv * c.dk, 22), vc = randn(2 * cap * c.nkv * c.dv, 23);
    auto q = randn(c.T * c.nh * c.dk, 24);
    Dev<float> dq(q), dkc(kc), dvc(vc), dout(c.T * c.nh * c.dv);
    ASSERT_TRUE(km::attention_prefill(dq.get(), c.nh * c.dk, c.T, c.nh, 1, c.pos0, c.window, 0.125f, kv,
                                      dkc.get(), dvc.get(), dout.get(), c.nh * c.dv, nullptr)
                    .ok());
    auto want = attention_ref(q, c.nh, c.dk, kc, vc, 1, cap, c.nkv, c.dv, c.T, c.pos0, c.window, 0.125f);
    expect_close(dout.host(), want, 3e-5, 3e-5, "prefill attention dk=" + std::to_string(c.dk));
  }
}

TEST(MoeKernels, CacheAppendsPlaceRows) {
  SKIP_WITHOUT_GPU();
  const int nkv = 3, dk = 10, dv = 6, slots = 2;
  const int64_t cap = 9, T = 4;
  km::KvLayout kv{cap, nkv, dk, dv};
  const std::vector<int32_t> sl = {1, 0, 1, 1}, pos = {0, 8, 3, 4};
  auto k = randn(T * (nkv * dk + 2), 25), v = randn(T * (nkv * dv + 1), 26);
  Dev<float> dk_(k), dv_(v), kc(slots * cap * nkv * dk), vc(slots * cap * nkv * dv);
  Dev<int32_t> dsl(sl), dpos(pos);
  ASSERT_TRUE(km::kv_append(dk_.get(), nkv * dk + 2, dv_.get(), nkv * dv + 1, T, dsl.get(), dpos.get(), kv,
                            kc.get(), vc.get(), nullptr)
                  .ok());
  auto hk = kc.host(), hv = vc.host();
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < nkv; ++h) {
      const int64_t row = (sl[t] * cap + pos[t]) * nkv + h;
      for (int d = 0; d < dk; ++d) ASSERT_EQ(hk[row * dk + d], k[t * (nkv * dk + 2) + h * dk + d]);
      for (int d = 0; d < dv; ++d) ASSERT_EQ(hv[row * dv + d], v[t * (nkv * dv + 1) + h * dv + d]);
    }
  }
  // MLA: key = [nope | rope], value from kv_b's output.
  const int nope = 7, rd = 3;
  auto kvb = randn(T * nkv * (nope + dv), 27), pe = randn(T * 5, 28);
  Dev<float> dkvb(kvb), dpe(pe);
  ASSERT_TRUE(km::mla_append(dkvb.get(), dpe.get(), 5, T, nope, rd, dsl.get(), dpos.get(), kv, kc.get(),
                             vc.get(), nullptr)
                  .ok());
  hk = kc.host();
  hv = vc.host();
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < nkv; ++h) {
      const int64_t row = (sl[t] * cap + pos[t]) * nkv + h;
      const float* src = &kvb[(t * nkv + h) * (nope + dv)];
      for (int d = 0; d < nope; ++d) ASSERT_EQ(hk[row * dk + d], src[d]);
      for (int d = 0; d < rd; ++d) ASSERT_EQ(hk[row * dk + nope + d], pe[t * 5 + d]);
      for (int d = 0; d < dv; ++d) ASSERT_EQ(hv[row * dv + d], src[nope + d]);
    }
  }
}

TEST(MoeKernels, GreedyAdvanceAndElementwise) {
  SKIP_WITHOUT_GPU();
  const int64_t B = 3, V = 1001;
  auto logits = randn(B * V, 29);
  logits[1 * V + 10] = 50.0f;
  logits[1 * V + 500] = 50.0f;  // a tie: the lower index wins
  Dev<float> dl(logits);
  Dev<int32_t> ids(B), pos(std::vector<int32_t>{4, 0, 9}), hist(B);
  ASSERT_TRUE(km::greedy_advance(dl.get(), B, V, ids.get(), pos.get(), hist.get(), nullptr).ok());
  auto got = ids.host();
  for (int64_t b = 0; b < B; ++b) {
    const float* r = &logits[b * V];
    EXPECT_EQ(got[b], static_cast<int32_t>(std::max_element(r, r + V) - r));
  }
  EXPECT_EQ(got[1], 10);
  EXPECT_EQ(hist.host(), got);
  EXPECT_EQ(pos.host(), (std::vector<int32_t>{5, 1, 10}));
  // GLU, bias, clamp, conversion, embedding.
  const int64_t rows = 5, inter = 33;
  auto gu = randn(rows * 2 * inter, 30);
  Dev<float> dgu(gu), dh(rows * inter);
  Dev<uint16_t> dhb(rows * inter);
  ASSERT_TRUE(km::glu(km::Act::kGeluTanh, dgu.get(), rows, inter, dh.get(), dhb.get(), nullptr).ok());
  std::vector<float> want(rows * inter);
  cpu::glu(Activation::kGeluTanh, gu.data(), rows, inter, want.data());
  expect_close(dh.host(), want, 1e-6, 1e-5, "glu");
  auto table = to_bf16(randn(7 * 13, 31));
  Dev<uint16_t> dt(table);
  Dev<int32_t> did(std::vector<int32_t>{6, 0, 3});
  Dev<float> demb(3 * 13);
  ASSERT_TRUE(km::embed(dt.get(), 13, did.get(), 3, demb.get(), nullptr).ok());
  auto emb = demb.host();
  for (int i = 0; i < 13; ++i) ASSERT_EQ(emb[i], bf16_to_f32(table[6 * 13 + i]));
  // Random weights are deterministic with roughly the asked spread.
  Dev<uint16_t> r1(100000), r2(100000);
  ASSERT_TRUE(km::fill_random_bf16(r1.get(), 100000, 0.02f, 0.0f, 5, nullptr).ok());
  ASSERT_TRUE(km::fill_random_bf16(r2.get(), 100000, 0.02f, 0.0f, 5, nullptr).ok());
  auto a = r1.host();
  EXPECT_EQ(a, r2.host());
  double s = 0, ss = 0;
  for (uint16_t v : a) {
    s += bf16_to_f32(v);
    ss += bf16_to_f32(v) * bf16_to_f32(v);
  }
  EXPECT_NEAR(s / a.size(), 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(ss / a.size()), 0.02, 2e-3);
}

TEST(MoeKernels, CublasGemmMatchesCpu) {
  SKIP_WITHOUT_GPU();
  auto ctx = km::GpuContext::create();
  ASSERT_TRUE(ctx.ok()) << ctx.error().message();
  const int64_t M = 45, N = 70, K = 88;
  std::vector<float> ar, wr;
  auto a = to_bf16(randn(M * K, 32), &ar), w = to_bf16(randn(N * K, 33, 0.1f), &wr);
  auto c0 = randn(M * N, 34);
  Dev<uint16_t> da(a), dw(w);
  Dev<float> dc(c0);
  ASSERT_TRUE((*ctx)->gemm(M, N, K, da.get(), K, dw.get(), K, dc.get(), N, 1.0f).ok());
  ASSERT_TRUE((*ctx)->synchronize().ok());
  std::vector<float> want = c0;
  cpu::linear(ar.data(), M, K, wr.data(), N, nullptr, want.data(), N, true);
  expect_close(dc.host(), want, 1e-4, 1e-4, "cublas gemm");
}

// ---- fused decode path -----------------------------------------------------------------

// Prints where two arrays differ most (the conformance tests' failure detail).
std::string worst_difference(const std::vector<float>& got, const std::vector<float>& want) {
  size_t at = 0;
  double most = -1;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (got[i] == want[i]) continue;
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (d > most || std::isnan(d)) {
      most = std::isnan(d) ? INFINITY : d;
      at = i;
    }
  }
  return "largest difference " + std::to_string(most) + " at " + std::to_string(at) +
         (at < got.size() ? " (got " + std::to_string(got[at]) + ", want " + std::to_string(want[at]) + ")"
                          : "");
}

void expect_all_close(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;  // equal infinities (empty splits' -inf maxima) are exact
    ASSERT_TRUE(std::fabs(got[i] - want[i]) <= atol + rtol * std::fabs(want[i]))
        << what << ": " << worst_difference(got, want);
  }
}

TEST(MoeKernels, StagedGemvMatchesCpuOnAwkwardShapes) {
  SKIP_WITHOUT_GPU();
  struct C {
    int64_t N, K, T;
    bool norm, glu, bias, acc;
  };
  // Inner sizes: 16-byte loads (multiples of 8, some longer than one staging
  // chunk) and the scalar path; row counts of every kernel instance.
  for (C c : {C{37, 1000, 1, false, false, true, false}, C{37, 1000, 3, true, false, false, true},
              C{130, 264, 16, false, false, true, true}, C{64, 2048, 16, true, false, false, false},
              C{5, 77, 9, false, false, true, false}, C{33, 9000, 1, true, false, false, true},
              C{19, 1032, 16, false, true, true, false}, C{40, 32, 2, true, true, false, false},
              C{7, 45, 5, true, true, true, false}, C{300, 4096, 8, false, false, false, true},
              C{1, 8, 1, false, false, false, false},
              // one row, more row groups than the persistent grid has warps
              C{9001, 264, 1, true, false, true, true}, C{5003, 96, 1, true, true, true, false}}) {
    const std::string what = "staged gemv N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
                             " T=" + std::to_string(c.T) + (c.norm ? " norm" : "") + (c.glu ? " glu" : "");
    const int64_t rows_w = c.glu ? 2 * c.N : c.N;
    const int64_t ldx = c.K + 3, ldy = c.N + 1;
    std::vector<float> wr;
    auto wb = to_bf16(randn(rows_w * c.K, 40, 0.05f), &wr);
    auto x = randn(c.T * ldx, 41), bias = randn(rows_w, 42), y0 = randn(c.T * ldy, 43);
    auto nw = randn(c.K, 44, 0.2f);
    for (float& v : nw) v += 1.0f;
    Dev<uint16_t> dw(wb);
    Dev<float> dx(x), db(bias), dy(y0), dn(nw);
    km::StagedGemv g;
    g.w = dw.get();
    g.bias = c.bias ? db.get() : nullptr;
    g.n = c.N;
    g.k = c.K;
    g.x = dx.get();
    g.ldx = ldx;
    g.rows = c.T;
    g.norm_w = c.norm ? dn.get() : nullptr;
    g.eps = 1e-5f;
    g.y = dy.get();
    g.ldy = ldy;
    g.accumulate = c.acc;
    g.y_ready = c.acc;  // nothing else writes y: one row reads it before the (PDL) wait
    g.glu = c.glu;
    g.act = km::Act::kSilu;
    ASSERT_TRUE(km::staged_gemv(g, km::Launch{nullptr, c.T == 1}).ok()) << what;
    // CPU: optional RMSNorm, the linear, optional GLU, optional accumulate.
    std::vector<float> xin(c.T * c.K);
    for (int64_t t = 0; t < c.T; ++t) std::copy_n(&x[t * ldx], c.K, &xin[t * c.K]);
    if (c.norm) cpu::rms_norm(xin.data(), c.T, c.K, c.K, nw.data(), 1e-5f, xin.data(), c.K);
    std::vector<float> lin(c.T * rows_w);
    cpu::linear(xin.data(), c.T, c.K, wr.data(), rows_w, c.bias ? bias.data() : nullptr, lin.data(), rows_w);
    std::vector<float> want = y0;
    for (int64_t t = 0; t < c.T; ++t) {
      for (int64_t o = 0; o < c.N; ++o) {
        const float v =
            c.glu ? cpu::activate(Activation::kSilu, lin[t * rows_w + o]) * lin[t * rows_w + c.N + o]
                  : lin[t * rows_w + o];
        want[t * ldy + o] = c.acc ? y0[t * ldy + o] + v : v;
      }
    }
    auto got = dy.host();
    for (int64_t t = 0; t < c.T; ++t) {
      for (int64_t o = c.N; o < ldy; ++o)
        ASSERT_EQ(got[t * ldy + o], y0[t * ldy + o]) << what << ": wrote past N";
    }
    expect_all_close(got, want, 3e-5 * std::sqrt(static_cast<double>(c.K)), 1e-4, what);
  }
}

TEST(MoeKernels, FusedRouterMatchesCpuForEveryKind) {
  SKIP_WITHOUT_GPU();
  struct C {
    RouterKind kind;
    int E, K, G, TG;
    bool norm;
    float scale;
    int64_t H, T;
    bool shared_gate;
  };
  for (C c : {C{RouterKind::kSoftmaxTopK, 64, 8, 1, 1, false, 1.0f, 2048, 1, false},
              C{RouterKind::kSoftmaxTopK, 8, 2, 1, 1, true, 1.0f, 37, 16, true},
              C{RouterKind::kSoftmaxGreedy, 60, 6, 1, 1, false, 1.5f, 264, 5, true},
              C{RouterKind::kSoftmaxGroupLimited, 16, 3, 4, 2, false, 1.0f, 96, 3, false},
              C{RouterKind::kSigmoidNoAuxTc, 256, 8, 8, 4, true, 2.5f, 7168, 2, false},
              // one token (the single-block kernel): more router rows than warps, the
              // scalar loads, a shared-expert gate
              C{RouterKind::kSigmoidNoAuxTc, 256, 8, 8, 4, true, 2.5f, 7168, 1, true},
              C{RouterKind::kSoftmaxGreedy, 60, 6, 1, 1, false, 1.5f, 37, 1, true}}) {
    const std::string what = "route_fused E=" + std::to_string(c.E) + " H=" + std::to_string(c.H);
    RouterConfig rc;
    rc.kind = c.kind;
    rc.num_experts = c.E;
    rc.top_k = c.K;
    rc.n_group = c.G;
    rc.topk_group = c.TG;
    rc.norm_topk_prob = c.norm;
    rc.routed_scaling_factor = c.scale;
    const int64_t ldx = c.H + 2;
    auto x = randn(c.T * ldx, 45), nw = randn(c.H, 46, 0.1f), bias = randn(c.E, 47, 0.1f);
    for (float& v : nw) v += 1.0f;
    std::vector<float> wr, gr;
    // Logits of spread ~3 keep the top-k away from ties that summation order could flip.
    auto wb = to_bf16(randn(c.E * c.H, 48, 3.0f / std::sqrt(static_cast<float>(c.H))), &wr);
    auto gb = to_bf16(randn(c.H, 49, 0.05f), &gr);
    Dev<float> dx(x), dn(nw), db(bias), dhn(c.T * c.H), dwt(c.T * c.K), dsg(c.T);
    Dev<uint16_t> dw(wb), dg(gb);
    Dev<int32_t> dids(c.T * c.K), dcnt(std::vector<int32_t>(km::route_fused_counters(km::kMaxGemvRows), 0));
    Dev<float> dlog(c.T * c.E);
    km::RouterParams p;
    p.kind = static_cast<km::RouterKind>(static_cast<int>(c.kind));
    p.num_experts = c.E;
    p.top_k = c.K;
    p.n_group = c.G;
    p.topk_group = c.TG;
    p.norm_topk_prob = c.norm;
    p.routed_scaling_factor = c.scale;
    for (int rep = 0; rep < 2; ++rep) {  // the second launch relies on the counters left at zero
      ASSERT_TRUE(km::route_fused(p, dx.get(), ldx, c.H, dn.get(), 1e-5f, dw.get(), db.get(),
                                  c.shared_gate ? dg.get() : nullptr, c.T, dhn.get(), dids.get(), dwt.get(),
                                  dsg.get(), dlog.get(), dcnt.get(), km::Launch{})
                      .ok())
          << what;
    }
    for (int32_t v : dcnt.host()) ASSERT_EQ(v, 0) << what << ": counters are left at zero";
    std::vector<float> hn(c.T * c.H), logits(c.T * c.E), sg(c.T);
    cpu::rms_norm(x.data(), c.T, c.H, ldx, nw.data(), 1e-5f, hn.data(), c.H);
    cpu::linear(hn.data(), c.T, c.H, wr.data(), c.E, nullptr, logits.data(), c.E);
    cpu::linear(hn.data(), c.T, c.H, gr.data(), 1, nullptr, sg.data(), 1);
    std::vector<int32_t> want_ids(c.T * c.K);
    std::vector<float> want_w(c.T * c.K);
    route_tokens(rc, logits.data(), c.T, bias.data(), want_ids.data(), want_w.data());
    expect_all_close(dhn.host(), hn, 1e-5, 1e-5, what + " hn");
    EXPECT_EQ(dids.host(), want_ids) << what;
    expect_all_close(dwt.host(), want_w, 1e-5, 1e-4, what + " weights");
    if (c.shared_gate) expect_all_close(dsg.host(), sg, 1e-4, 1e-4, what + " shared gate");
  }
}

TEST(MoeKernels, FusedExpertsMatchCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    int64_t T, H, I, Is;
    int E, K;
    bool shared_gate, shared_bias;
  };
  // Rows staged all at once (few tokens) and expert by expert (many), the
  // 16-byte and the scalar loads, shared experts with gate and bias.
  for (C c : {C{1, 72, 40, 0, 5, 2, false, false}, C{3, 36, 20, 24, 7, 3, true, false},
              C{16, 264, 48, 13, 6, 4, false, true}, C{9, 1024, 1408, 2816, 64, 6, false, false},
              C{16, 2048, 1024, 0, 64, 8, false, false}, C{1, 2048, 1024, 0, 64, 8, false, false},
              C{1, 2048, 1408, 2816, 64, 6, false, false}, C{2, 128, 64, 96, 16, 4, true, false},
              // one row: every expert of K = 16 plus a shared one (more items than warps), 70 output
              // rows (a partial block), and a row length that is no multiple of 8 (the general kernel)
              C{1, 70, 48, 40, 20, 16, true, true}, C{1, 64, 44, 0, 9, 3, false, false},
              // one row: an odd I (items no multiple of the warps), and H past the one-row GLU
              // kernel's 2048 (the general kernel)
              C{1, 136, 37, 0, 11, 5, false, false}, C{1, 2056, 24, 0, 6, 2, false, false}}) {
    const std::string what = "experts T=" + std::to_string(c.T) + " H=" + std::to_string(c.H) +
                             " I=" + std::to_string(c.I) + " Is=" + std::to_string(c.Is);
    const int64_t TK = c.T * c.K, ldx = c.H + 4;
    std::vector<float> gur, dnr, sdr;
    auto gub = to_bf16(randn(c.E * 2 * c.I * c.H, 50, 0.05f), &gur);
    auto dnb = to_bf16(randn(c.E * c.H * c.I, 51, 0.05f), &dnr);
    auto sdb = to_bf16(randn(std::max<int64_t>(c.H * c.Is, 1), 52, 0.05f), &sdr);
    auto x = randn(c.T * ldx, 53), w = randn(TK, 54), hs = randn(std::max<int64_t>(c.T * c.Is, 1), 55);
    auto gate = randn(c.T, 56), sbias = randn(c.H, 57), resid = randn(c.T * ldx, 58);
    std::mt19937 rng(59);
    std::vector<int32_t> ids(TK);
    for (int64_t t = 0; t < c.T; ++t) {
      std::vector<int32_t> e(c.E);
      std::iota(e.begin(), e.end(), 0);
      std::shuffle(e.begin(), e.end(), rng);
      for (int k = 0; k < c.K; ++k) ids[t * c.K + k] = e[k];
    }
    Dev<uint16_t> dgu(gub), ddn(dnb), dsd(sdb);
    Dev<float> dx(x), dw(w), dhs(hs), dgate(gate), dsb(sbias), dres(resid), dh(TK * c.I);
    Dev<int32_t> dids(ids), dgroups(km::expert_group_ints(TK));
    // One row with programmatic dependent launch: the down projection's early
    // loads of weights and residual rows come before its wait for the GLU kernel.
    const km::Launch launch{nullptr, c.T == 1};
    ASSERT_TRUE(km::expert_glu(km::Act::kSilu, dgu.get(), c.H, c.I, dx.get(), ldx, dids.get(), c.K, c.T,
                               dh.get(), dgroups.get(), launch)
                    .ok())
        << what;
    ASSERT_TRUE(km::expert_down_combine(ddn.get(), c.H, c.I, dh.get(), dids.get(), dw.get(), c.K, c.T,
                                        dgroups.get(), c.Is ? dsd.get() : nullptr,
                                        c.shared_bias ? dsb.get() : nullptr, c.Is, dhs.get(),
                                        c.shared_gate ? dgate.get() : nullptr, dres.get(), ldx, launch)
                    .ok())
        << what;
    auto h = dh.host();
    std::vector<float> want = resid;
    for (int64_t p = 0; p < TK; ++p) {
      std::vector<float> hr, yr;
      expert_ref(gur, dnr, c.H, c.I, ids[p], &x[(p / c.K) * ldx], hr, yr);
      expect_all_close(std::vector<float>(h.begin() + p * c.I, h.begin() + (p + 1) * c.I), hr, 3e-5, 1e-4,
                       what + " h of pair " + std::to_string(p));
      for (int64_t o = 0; o < c.H; ++o) want[(p / c.K) * ldx + o] += w[p] * yr[o];
    }
    if (c.Is) {
      std::vector<float> s(c.T * c.H);
      cpu::linear(hs.data(), c.T, c.Is, sdr.data(), c.H, c.shared_bias ? sbias.data() : nullptr, s.data(),
                  c.H);
      for (int64_t t = 0; t < c.T; ++t) {
        const float g = c.shared_gate ? 1.0f / (1.0f + std::exp(-gate[t])) : 1.0f;
        for (int64_t o = 0; o < c.H; ++o) want[t * ldx + o] += g * s[t * c.H + o];
      }
    }
    expect_all_close(dres.host(), want, 1e-4, 1e-4, what + " residual");
  }
}

TEST(MoeKernels, QkvFinishMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    int nh, nkv, hd, rope_dim;
    bool norm, interleaved;
    float clip;
  };
  for (C c : {C{4, 2, 12, 12, true, false, 0.0f}, C{4, 4, 16, 8, false, true, 0.0f},
              C{16, 16, 128, 128, true, false, 2.5f}, C{6, 2, 10, 10, false, false, 0.8f},
              C{3, 1, 200, 64, true, true, 1.5f}}) {
    const std::string what = "qkv_finish hd=" + std::to_string(c.hd);
    RopeConfig rope;
    rope.dim = c.rope_dim;
    rope.theta = 10000;
    rope.layout = c.interleaved ? RopeLayout::kInterleaved : RopeLayout::kHalf;
    ASSERT_TRUE(compute_rope_tables(rope, 4096).ok());
    const int64_t T = 5, cap = 40, slots = 3;
    const int64_t P = (c.nh + 2 * c.nkv) * c.hd, ldp = P + 3;
    const std::vector<int32_t> sl = {2, 0, 2, 1, 0}, pos = {0, 17, 39, 3, 18};
    auto proj = randn(T * ldp, 60, 2.0f), qn = randn(c.nh * c.hd, 61, 0.1f),
         kn = randn(c.nkv * c.hd, 62, 0.1f);
    for (float& v : qn) v += 1.0f;
    for (float& v : kn) v += 1.0f;
    km::KvLayout kv{cap, c.nkv, c.hd, c.hd};
    const int64_t cache_n = slots * cap * c.nkv * c.hd;
    auto kc0 = randn(cache_n, 63), vc0 = randn(cache_n, 64);
    Dev<float> dp(proj), dqn(qn), dkn(kn), dinv(rope.inv_freq), dkc(kc0), dvc(vc0);
    Dev<int32_t> dsl(sl), dpos(pos);
    km::QkvFinish f;
    f.proj = dp.get();
    f.ldp = ldp;
    f.rows = T;
    f.nh = c.nh;
    f.nkv = c.nkv;
    f.hd = c.hd;
    f.q_norm_w = c.norm ? dqn.get() : nullptr;
    f.k_norm_w = c.norm ? dkn.get() : nullptr;
    f.eps = 1e-5f;
    f.clip = c.clip;
    f.rope_dim = c.rope_dim;
    f.inv_freq = dinv.get();
    f.attention_scaling = rope.attention_scaling;
    f.interleaved = c.interleaved;
    f.positions = dpos.get();
    f.slots = dsl.get();
    // q into its own buffer (ldq past the width); without a q norm also back
    // into the projection, which a q norm refuses (other heads' blocks read it).
    const int64_t ldq = c.nh * c.hd + 5;
    Dev<float> dq(std::vector<float>(T * ldq, -7.0f));
    const bool in_place = !c.norm;
    if (!in_place) {
      km::QkvFinish bad = f;
      EXPECT_FALSE(km::qkv_finish(bad, kv, dkc.get(), dvc.get(), km::Launch{}).ok()) << what;
      f.q_out = dq.get();
      f.ldq = ldq;
    }
    ASSERT_TRUE(km::qkv_finish(f, kv, dkc.get(), dvc.get(), km::Launch{}).ok()) << what;
    // CPU, one token at a time (positions are not consecutive).
    std::vector<float> want_p = proj, want_k = kc0, want_v = vc0;
    for (int64_t t = 0; t < T; ++t) {
      float* row = &want_p[t * ldp];
      std::vector<float> k(row + c.nh * c.hd, row + (c.nh + c.nkv) * c.hd);
      std::vector<float> v(row + (c.nh + c.nkv) * c.hd, row + P);
      if (c.norm) {
        cpu::rms_norm(row, 1, c.nh * c.hd, c.nh * c.hd, qn.data(), 1e-5f, row, c.nh * c.hd);
        cpu::rms_norm(k.data(), 1, c.nkv * c.hd, c.nkv * c.hd, kn.data(), 1e-5f, k.data(), c.nkv * c.hd);
      }
      if (c.clip > 0) {
        for (int64_t i = 0; i < c.nh * c.hd; ++i) row[i] = std::clamp(row[i], -c.clip, c.clip);
        for (float& e : k) e = std::clamp(e, -c.clip, c.clip);
        for (float& e : v) e = std::clamp(e, -c.clip, c.clip);
      }
      cpu::rope(rope, row, 1, c.nh, c.nh * c.hd, c.hd, 0, pos[t]);
      cpu::rope(rope, k.data(), 1, c.nkv, c.nkv * c.hd, c.hd, 0, pos[t]);
      for (int h = 0; h < c.nkv; ++h) {
        const int64_t at = ((sl[t] * cap + pos[t]) * c.nkv + h) * c.hd;
        std::copy_n(&k[h * c.hd], c.hd, &want_k[at]);
        std::copy_n(&v[h * c.hd], c.hd, &want_v[at]);
      }
    }
    // k and v stay in the projection (the kernel only rewrites q, in place
    // or into q_out, leaving the projection untouched).
    auto got_p = dp.host();
    auto got_q = dq.host();
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < c.nh * c.hd; ++i) {
        const float got = in_place ? got_p[t * ldp + i] : got_q[t * ldq + i];
        ASSERT_NEAR(got, want_p[t * ldp + i], 2e-5 + 2e-5 * std::fabs(want_p[t * ldp + i]))
            << what << " q of token " << t << " at " << i;
      }
      for (int64_t i = in_place ? c.nh * c.hd : 0; i < ldp; ++i)
        ASSERT_EQ(got_p[t * ldp + i], proj[t * ldp + i]) << what;
      if (!in_place) {
        for (int64_t i = c.nh * c.hd; i < ldq; ++i) ASSERT_EQ(got_q[t * ldq + i], -7.0f) << what;
      }
    }
    expect_all_close(dkc.host(), want_k, 2e-5, 2e-5, what + " k cache");
    expect_all_close(dvc.host(), want_v, 0, 0, what + " v cache");
  }
}

// Heads above 256 values are refused before anything is launched (the CUDA
// engine refuses such models at upload; this is the kernel's own guard), so
// the check needs no device.
TEST(MoeKernels, QkvFinishRefusesHeadsOver256) {
  km::QkvFinish f;
  f.rows = 1;
  f.nh = f.nkv = 1;
  f.hd = 264;
  f.rope_dim = 64;
  km::KvLayout kv;
  kv.capacity = 8;
  kv.kv_heads = 1;
  kv.dk = kv.dv = 264;
  const Status s = km::qkv_finish(f, kv, nullptr, nullptr, km::Launch{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("qkv_finish"), std::string::npos) << s.error().message();
}

TEST(MoeKernels, SplitDecodeAttentionMatchesCpuAndResetsItsCounters) {
  SKIP_WITHOUT_GPU();
  struct C {
    int nh, nkv, dk, dv;
    int64_t cap;
  };
  for (C c :
       {C{4, 2, 24, 20, 600}, C{16, 16, 128, 128, 1024}, C{16, 16, 192, 128, 300}, C{3, 1, 256, 256, 70}}) {
    km::KvLayout kv{c.cap, c.nkv, c.dk, c.dv};
    const int slots = 3;
    auto kc = randn(slots * c.cap * c.nkv * c.dk, 65), vc = randn(slots * c.cap * c.nkv * c.dv, 66);
    const std::vector<int32_t> sl = {2, 0, 1, 0, 1};
    // Positions inside the cache (a decode step never reads past its capacity).
    const std::vector<int32_t> pos = {0, static_cast<int32_t>(std::min<int64_t>(255, c.cap - 1)),
                                      static_cast<int32_t>(c.cap - 1), static_cast<int32_t>(c.cap / 2), 1};
    const int64_t T = static_cast<int64_t>(sl.size());
    auto q = randn(T * c.nh * c.dk, 67);
    Dev<float> dq(q), dkc(kc), dvc(vc), dout(T * c.nh * c.dv),
        dpart(km::flash_decode_partial_floats(km::kMaxGemvRows, c.nh, kv));
    Dev<int32_t> dsl(sl), dpos(pos),
        dcnt(std::vector<int32_t>(km::flash_decode_counters(km::kMaxGemvRows, c.nh), 0));
    for (int64_t window : {int64_t{0}, int64_t{100}}) {
      for (int rep = 0; rep < 2; ++rep) {  // the second launch relies on the counters left at zero
        for (int64_t rows : {int64_t{1}, T}) {
          ASSERT_TRUE(km::attention_decode_split(dq.get(), c.nh * c.dk, rows, c.nh, dsl.get(), dpos.get(),
                                                 window, 0.3f, kv, dkc.get(), dvc.get(), dpart.get(),
                                                 dcnt.get(), dout.get(), c.nh * c.dv, km::Launch{})
                          .ok());
          auto got = dout.host();
          for (int64_t t = 0; t < rows; ++t) {
            std::vector<float> qt(q.begin() + t * c.nh * c.dk, q.begin() + (t + 1) * c.nh * c.dk);
            auto want =
                attention_ref(qt, c.nh, c.dk, kc, vc, sl[t], c.cap, c.nkv, c.dv, 1, pos[t], window, 0.3f);
            expect_all_close(
                std::vector<float>(got.begin() + t * c.nh * c.dv, got.begin() + (t + 1) * c.nh * c.dv), want,
                3e-5, 3e-5,
                "split decode attention dk=" + std::to_string(c.dk) + " row " + std::to_string(t) +
                    " window " + std::to_string(window) + " rows " + std::to_string(rows));
          }
        }
      }
    }
    for (int32_t v : dcnt.host()) ASSERT_EQ(v, 0) << "counters are left at zero";
  }
}

// ---- tensor-core prefill path -----------------------------------------------------------

std::vector<float> round_bf16(std::vector<float> v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

TEST(MoeKernels, TensorCorePrefillAttentionMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    int nh, nkv, dk, dv;
    int64_t T, pos0, window;
  };
  for (C c : {C{4, 2, 64, 64, 100, 5, 0}, C{2, 2, 192, 128, 70, 0, 0}, C{3, 3, 256, 256, 17, 0, 0},
              C{2, 1, 32, 48, 150, 3, 9}, C{4, 4, 128, 128, 64, 64, 0}, C{1, 1, 16, 16, 1, 0, 0}}) {
    const std::string what = "tensor-core prefill attention dk=" + std::to_string(c.dk) +
                             " T=" + std::to_string(c.T) + " window=" + std::to_string(c.window);
    const int64_t cap = c.pos0 + c.T + 3, ldq = c.nh * c.dk + 4;
    km::KvLayout kv{cap, c.nkv, c.dk, c.dv};
    ASSERT_TRUE(km::attention_prefill_tc_supported(kv));
    auto kc = randn(2 * cap * c.nkv * c.dk, 68), vc = randn(2 * cap * c.nkv * c.dv, 69);
    auto q = randn(c.T * ldq, 70);
    Dev<float> dq(q), dkc(kc), dvc(vc), dout(c.T * c.nh * c.dv);
    Dev<uint16_t> doutb(c.T * c.nh * c.dv);
    ASSERT_TRUE(km::attention_prefill_tc(dq.get(), ldq, c.T, c.nh, 1, c.pos0, c.window, 0.125f, kv, dkc.get(),
                                         dvc.get(), dout.get(), doutb.get(), c.nh * c.dv, nullptr)
                    .ok())
        << what;
    // Reference on the bf16-rounded q, k, v (what the tensor cores multiply).
    std::vector<float> qc(c.T * c.nh * c.dk);
    for (int64_t t = 0; t < c.T; ++t) std::copy_n(&q[t * ldq], c.nh * c.dk, &qc[t * c.nh * c.dk]);
    auto want = attention_ref(round_bf16(qc), c.nh, c.dk, round_bf16(kc), round_bf16(vc), 1, cap, c.nkv, c.dv,
                              c.T, c.pos0, c.window, 0.125f);
    // P is rounded to bf16 before P V: a few 1e-3 relative.
    expect_all_close(dout.host(), want, 1e-2, 1e-2, what);
    std::vector<float> outb;
    for (uint16_t b : doutb.host()) outb.push_back(bf16_to_f32(b));
    expect_all_close(outb, want, 1.5e-2, 1.5e-2, what + " (bf16 output)");
  }
}

TEST(MoeKernels, GroupedExpertGemmsMatchCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    int64_t T, H, I;
    int E, K;
    bool skewed;  // most tokens on one expert (several tiles), some experts idle
  };
  for (C c : {C{150, 72, 40, 5, 2, false}, C{300, 264, 136, 9, 3, true}, C{17, 32, 24, 8, 2, false},
              C{128, 2048, 1024, 64, 8, false}}) {
    const std::string what = "grouped GEMMs T=" + std::to_string(c.T) + " H=" + std::to_string(c.H) +
                             " I=" + std::to_string(c.I) + " E=" + std::to_string(c.E);
    const int64_t TK = c.T * c.K;
    std::vector<float> gur, dnr;
    auto gub = to_bf16(randn(c.E * 2 * c.I * c.H, 71, 0.05f), &gur);
    auto dnb = to_bf16(randn(c.E * c.H * c.I, 72, 0.05f), &dnr);
    std::vector<float> xr;
    auto xb = to_bf16(randn(c.T * c.H, 73), &xr);
    std::mt19937 rng(74);
    std::vector<int32_t> ids(TK);
    for (int64_t t = 0; t < c.T; ++t) {
      // Skewed: expert E-1 is never chosen and four tokens in five take expert 1.
      std::vector<int32_t> e(c.skewed ? c.E - 1 : c.E);
      std::iota(e.begin(), e.end(), 0);
      std::shuffle(e.begin(), e.end(), rng);
      if (c.skewed && t % 5 != 0) std::iter_swap(e.begin(), std::find(e.begin(), e.end(), 1));
      for (int k = 0; k < c.K; ++k) ids[t * c.K + k] = e[k];
    }
    Dev<uint16_t> dgu(gub), ddn(dnb), dx(xb), dhs(TK * c.I);
    Dev<float> dys(TK * c.H);
    Dev<int32_t> di(ids), doff(c.E + 1), dsorted(TK), dpos(TK), dmax(1), dact(c.E), dtiles(c.E + 1);
    ASSERT_TRUE(km::group_by_expert(di.get(), TK, c.E, doff.get(), dsorted.get(), dpos.get(), dmax.get(),
                                    dact.get(), nullptr, dtiles.get(), km::kGroupedTileRows)
                    .ok());
    auto off = doff.host(), tiles = dtiles.host();
    for (int e = 0; e < c.E; ++e) {
      ASSERT_EQ(tiles[e + 1] - tiles[e],
                (off[e + 1] - off[e] + km::kGroupedTileRows - 1) / km::kGroupedTileRows);
    }
    ASSERT_TRUE(km::expert_gemm_glu(km::Act::kSilu, dx.get(), c.H, dsorted.get(), c.K, doff.get(),
                                    dtiles.get(), c.E, TK, dgu.get(), c.H, c.I, dhs.get(), nullptr)
                    .ok())
        << what;
    ASSERT_TRUE(km::expert_gemm_down(dhs.get(), doff.get(), dtiles.get(), c.E, TK, ddn.get(), c.H, c.I,
                                     dys.get(), nullptr)
                    .ok())
        << what;
    auto sorted = dsorted.host();
    auto hsb = dhs.host();
    std::vector<float> hs_got(hsb.size());
    for (size_t i = 0; i < hsb.size(); ++i) hs_got[i] = bf16_to_f32(hsb[i]);
    auto ys = dys.host();
    std::vector<float> want_h(TK * c.I), want_y(TK * c.H);
    for (int64_t p = 0; p < TK; ++p) {
      const int64_t pair = sorted[p], t = pair / c.K;
      const int e = ids[pair];
      std::vector<float> g(2 * c.I);
      cpu::linear(&xr[t * c.H], 1, c.H, gur.data() + e * 2 * c.I * c.H, 2 * c.I, nullptr, g.data(), 2 * c.I);
      cpu::glu(Activation::kSilu, g.data(), 1, c.I, &want_h[p * c.I]);
      // The down projection of the GPU's own bf16 GLU rows: checks the second GEMM alone.
      cpu::linear(&hs_got[p * c.I], 1, c.I, dnr.data() + e * c.H * c.I, c.H, nullptr, &want_y[p * c.H], c.H);
    }
    expect_all_close(hs_got, want_h, 2e-3, 1e-2, what + " GLU rows (bf16)");
    expect_all_close(ys, want_y, 1e-4 * std::sqrt(static_cast<double>(c.I)), 1e-3, what + " down rows");
  }
}

#else

TEST(MoeKernels, SkippedWithoutCuda) { GTEST_SKIP() << "built without CUDA"; }

#endif  // HILUM_HAVE_CUDA

}  // namespace
}  // namespace hilum::moe
