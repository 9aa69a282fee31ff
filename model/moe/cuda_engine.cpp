#include "model/moe/cuda_engine.h"

#if HILUM_HAVE_CUDA

#include <algorithm>
#include <cstring>
#include <functional>

#include "cuda/moe_kernels.h"
#include "cuda/moe_runtime.h"
#include "model/half.h"
#include "model/log.h"
#include "model/moe/lora.h"
#include "model/moe/text_model.h"

namespace hilum::moe {

namespace km = hilum::cuda::moe;
using km::bf16;
using km::DeviceBuffer;

namespace {

struct GLinear {
  const bf16* w = nullptr;
  const float* bias = nullptr;
  int64_t out = 0, in = 0;
};

struct GLayer {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  float attn_norm_eps = 1e-6f, ffn_norm_eps = 1e-6f;
  // GQA (q | k | v fused)
  GLinear qkv;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  // MLA
  GLinear q, q_a, q_b, kv_a, kv_b;
  const float* q_a_norm = nullptr;
  const float* kv_a_norm = nullptr;
  GLinear o;
  // FFN
  bool is_moe = false;
  GLinear gate_up, down;  // dense (gate | up fused)
  GLinear router;
  const float* router_f32 = nullptr;  // [E, H]: prefill routes on fp32 activations, like the CPU
  const float* score_bias = nullptr;
  const bf16* experts_gate_up = nullptr;  // [E, 2I, H]
  const bf16* experts_down = nullptr;     // [E, H, I]
  bool has_shared = false;
  GLinear shared_gate_up, shared_down, shared_gate;
  int64_t window = 0;
  float* k_cache = nullptr;
  float* v_cache = nullptr;
};

km::Act act_of(Activation a) {
  switch (a) {
    case Activation::kSilu:
      return km::Act::kSilu;
    case Activation::kGelu:
      return km::Act::kGelu;
    case Activation::kGeluTanh:
      return km::Act::kGeluTanh;
    case Activation::kRelu:
      return km::Act::kRelu;
  }
  return km::Act::kSilu;
}

km::RouterKind router_of(RouterKind k) {
  switch (k) {
    case RouterKind::kSoftmaxTopK:
      return km::RouterKind::kSoftmaxTopK;
    case RouterKind::kSoftmaxGreedy:
      return km::RouterKind::kSoftmaxGreedy;
    case RouterKind::kSoftmaxGroupLimited:
      return km::RouterKind::kSoftmaxGroupLimited;
    case RouterKind::kSigmoidNoAuxTc:
      return km::RouterKind::kSigmoidNoAuxTc;
  }
  return km::RouterKind::kSoftmaxTopK;
}

km::RouterParams router_params(const TextConfig& c) {
  km::RouterParams rp;
  rp.kind = router_of(c.router.kind);
  rp.num_experts = c.router.num_experts;
  rp.top_k = c.router.top_k;
  rp.norm_topk_prob = c.router.norm_topk_prob;
  rp.routed_scaling_factor = c.router.routed_scaling_factor;
  rp.n_group = c.router.n_group;
  rp.topk_group = c.router.topk_group;
  return rp;
}

}  // namespace

struct CudaTextModel::Impl {
  TextConfig cfg;
  CudaEngineOptions opt;
  std::unique_ptr<km::GpuContext> ctx;
  std::vector<DeviceBuffer> owned;  // every device allocation
  const bf16* embed = nullptr;
  const float* final_norm = nullptr;
  GLinear lm_head;
  const float* inv_freq = nullptr;
  std::vector<GLayer> layers;
  km::KvLayout kv;
  std::vector<int64_t> lengths;  // per slot
  int64_t R = 0;                 // workspace rows

  // Which paths this model's shapes allow (set at upload).
  bool fused_router_ok = false;  // hidden size fits route_fused's shared memory
  bool grouped_ok = false;       // grouped expert GEMMs: hidden and expert sizes multiples of 8

  // Workspace.
  int32_t *d_ids = nullptr, *d_slots = nullptr, *d_pos = nullptr, *d_history = nullptr;
  float *x = nullptr, *hn_f = nullptr, *proj = nullptr, *q = nullptr, *qa_f = nullptr, *ckv = nullptr;
  float *lat_f = nullptr, *kvb = nullptr, *attn = nullptr, *gu = nullptr, *h_f = nullptr, *logits = nullptr;
  float *rlogits = nullptr, *wts = nullptr, *eh = nullptr, *ey = nullptr, *gup = nullptr, *yp = nullptr;
  float *sh = nullptr, *sg = nullptr, *partial = nullptr;
  bf16 *hn_b = nullptr, *qa_b = nullptr, *lat_b = nullptr, *attn_b = nullptr, *h_b = nullptr, *xp = nullptr,
       *hp = nullptr;
  int32_t *ids = nullptr, *offsets = nullptr, *sorted = nullptr, *pair_pos = nullptr, *max_count = nullptr,
          *active = nullptr;
  // Fused decode: split-K attention partials and counters, expert groups.
  float* split_partial = nullptr;
  int32_t *counters = nullptr, *route_counters = nullptr, *groups = nullptr;
  // Tensor-core prefill: grouped GEMM tiles, GLU rows and expert outputs by sorted pair.
  int32_t* tile_offsets = nullptr;
  bf16* hs_sorted = nullptr;
  float* ys_sorted = nullptr;
  bool padded_ready = false;  // the padded-batch buffers of the first-generation prefill exist

  template <typename T>
  Result<T*> alloc(int64_t count) {
    HILUM_ASSIGN_OR_RETURN(
        DeviceBuffer b, DeviceBuffer::allocate(sizeof(T) * static_cast<size_t>(std::max<int64_t>(count, 1))));
    T* p = b.as<T>();
    owned.push_back(std::move(b));
    return p;
  }

  // Uploads f32 host values as bf16.
  Result<const bf16*> upload_bf16(const float* src, int64_t n) {
    std::vector<uint16_t> tmp(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tmp[i] = f32_to_bf16(src[i]);
    HILUM_ASSIGN_OR_RETURN(bf16 * d, alloc<bf16>(n));
    HILUM_RETURN_IF_ERROR(ctx->copy_to_device(d, tmp.data(), sizeof(bf16) * n));
    HILUM_RETURN_IF_ERROR(ctx->synchronize());
    return static_cast<const bf16*>(d);
  }
  Result<const float*> upload_f32(const float* src, int64_t n) {
    HILUM_ASSIGN_OR_RETURN(float* d, alloc<float>(n));
    HILUM_RETURN_IF_ERROR(ctx->copy_to_device(d, src, sizeof(float) * n));
    HILUM_RETURN_IF_ERROR(ctx->synchronize());
    return static_cast<const float*>(d);
  }
  // Concatenates the rows of several linears (same input size) into one.
  Result<GLinear> upload_linear(std::initializer_list<const Linear*> parts) {
    GLinear g;
    std::vector<float> w, b;
    bool any_bias = false;
    for (const Linear* l : parts) any_bias |= l->bias.defined();
    for (const Linear* l : parts) {
      g.in = l->in();
      g.out += l->out();
      w.insert(w.end(), l->weight.data<float>(), l->weight.data<float>() + l->weight.numel());
      if (any_bias) {
        if (l->bias.defined()) {
          b.insert(b.end(), l->bias.data<float>(), l->bias.data<float>() + l->out());
        } else {
          b.insert(b.end(), static_cast<size_t>(l->out()), 0.0f);
        }
      }
    }
    HILUM_ASSIGN_OR_RETURN(g.w, upload_bf16(w.data(), static_cast<int64_t>(w.size())));
    if (any_bias) {
      HILUM_ASSIGN_OR_RETURN(g.bias, upload_f32(b.data(), static_cast<int64_t>(b.size())));
    }
    return g;
  }
  // A random linear (benchmarks).
  Result<GLinear> random_linear(int64_t out, int64_t in, uint64_t& seed, bool bias = false) {
    GLinear g;
    g.out = out;
    g.in = in;
    HILUM_ASSIGN_OR_RETURN(bf16 * w, alloc<bf16>(out * in));
    HILUM_RETURN_IF_ERROR(km::fill_random_bf16(w, out * in, 0.02f, 0.0f, seed++, ctx->stream()));
    g.w = w;
    if (bias) {
      HILUM_ASSIGN_OR_RETURN(float* b, alloc<float>(out));
      HILUM_RETURN_IF_ERROR(ctx->memset(b, 0, sizeof(float) * out));
      g.bias = b;
    }
    return g;
  }
  Result<const float*> ones(int64_t n) {
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    return upload_f32(v.data(), n);
  }

  Status allocate_workspace();
  Status ensure_padded_buffers();
  km::Launch launch() const { return km::Launch{ctx->stream(), opt.kernels.programmatic_launch}; }
  Status linear(const GLinear& l, const float* in_f, const bf16* in_b, int64_t ld_in, int64_t T, float* out,
                int64_t ldo, bool accumulate);
  // Staged GEMV (<= 16 rows) with an optional fused RMSNorm of the input; glu:
  // l holds [gate; up] and out gets act(gate) * up.
  Status gemv(const GLinear& l, const float* in, int64_t ld_in, int64_t T, float* out, int64_t ldo,
              bool accumulate, const float* norm_w = nullptr, float eps = 0.0f, bool glu = false,
              bool out_ready = false);
  Status run(int64_t T, bool single_seq, int slot, int64_t pos0, int logits_mode);
  Status layer(GLayer& L, int64_t T, bool single_seq, int slot, int64_t pos0);
  Status layer_fused(GLayer& L, int64_t T);
  Status layer_prefill(GLayer& L, int64_t T, int slot, int64_t pos0);
  Status layer_legacy(GLayer& L, int64_t T, bool single_seq, int slot, int64_t pos0);
  Status mla_projections(GLayer& L, int64_t T, bool big);
  // What km::qkv_finish needs to finish `proj` (T rows of fused q/k/v) for
  // layer L: k and v into the cache, the finished q into `q` (rows of nh * hd).
  km::QkvFinish qkv_finish_of(const GLayer& L, int64_t T) const;
  Status moe_legacy(GLayer& L, int64_t T, bool big);
  // Runs `step` and, when programmatic launch fails on this device, turns it off and runs it again.
  Status with_launch_fallback(const std::function<Status()>& step);
};

// ---- set-up -------------------------------------------------------------------------------

Status CudaTextModel::Impl::allocate_workspace() {
  const TextConfig& c = cfg;
  R = std::max<int64_t>(opt.prefill_chunk, opt.max_slots);
  const int64_t H = c.hidden_size, nh = c.num_heads, dk = c.q_head_dim(), dv = c.v_dim();
  const int64_t E = c.router.num_experts, K = std::max(c.router.top_k, 1);
  const int64_t Ie = c.moe_intermediate_size;
  const int64_t Id = std::max(c.intermediate_size, c.shared_intermediate_size);
  HILUM_ASSIGN_OR_RETURN(d_ids, alloc<int32_t>(R));
  HILUM_ASSIGN_OR_RETURN(d_slots, alloc<int32_t>(R));
  HILUM_ASSIGN_OR_RETURN(d_pos, alloc<int32_t>(R));
  HILUM_ASSIGN_OR_RETURN(d_history, alloc<int32_t>(opt.max_slots));
  HILUM_ASSIGN_OR_RETURN(x, alloc<float>(R * H));
  HILUM_ASSIGN_OR_RETURN(hn_f, alloc<float>(R * H));
  HILUM_ASSIGN_OR_RETURN(hn_b, alloc<bf16>(R * H));
  if (!c.mla) {
    HILUM_ASSIGN_OR_RETURN(proj, alloc<float>(R * (nh + 2 * c.num_kv_heads) * c.head_dim));
    HILUM_ASSIGN_OR_RETURN(q, alloc<float>(R * nh * c.head_dim));  // qkv_finish's q
  } else {
    HILUM_ASSIGN_OR_RETURN(q, alloc<float>(R * nh * dk));
    HILUM_ASSIGN_OR_RETURN(qa_f, alloc<float>(R * std::max<int64_t>(c.q_lora_rank, 1)));
    HILUM_ASSIGN_OR_RETURN(qa_b, alloc<bf16>(R * std::max<int64_t>(c.q_lora_rank, 1)));
    HILUM_ASSIGN_OR_RETURN(ckv, alloc<float>(R * (c.kv_lora_rank + c.qk_rope_head_dim)));
    HILUM_ASSIGN_OR_RETURN(lat_f, alloc<float>(R * c.kv_lora_rank));
    HILUM_ASSIGN_OR_RETURN(lat_b, alloc<bf16>(R * c.kv_lora_rank));
    HILUM_ASSIGN_OR_RETURN(kvb, alloc<float>(R * nh * (c.qk_nope_head_dim + dv)));
  }
  HILUM_ASSIGN_OR_RETURN(attn, alloc<float>(R * nh * dv));
  HILUM_ASSIGN_OR_RETURN(attn_b, alloc<bf16>(R * nh * dv));
  HILUM_ASSIGN_OR_RETURN(gu, alloc<float>(R * 2 * std::max<int64_t>(Id, 1)));
  HILUM_ASSIGN_OR_RETURN(h_f, alloc<float>(R * std::max<int64_t>(Id, 1)));
  HILUM_ASSIGN_OR_RETURN(h_b, alloc<bf16>(R * std::max<int64_t>(Id, 1)));
  HILUM_ASSIGN_OR_RETURN(logits, alloc<float>(R * c.vocab_size));
  if (c.any_moe()) {
    HILUM_ASSIGN_OR_RETURN(rlogits, alloc<float>(R * E));
    HILUM_ASSIGN_OR_RETURN(ids, alloc<int32_t>(R * K));
    HILUM_ASSIGN_OR_RETURN(wts, alloc<float>(R * K));
    HILUM_ASSIGN_OR_RETURN(offsets, alloc<int32_t>(E + 1));
    HILUM_ASSIGN_OR_RETURN(sorted, alloc<int32_t>(R * K));
    HILUM_ASSIGN_OR_RETURN(pair_pos, alloc<int32_t>(R * K));
    HILUM_ASSIGN_OR_RETURN(max_count, alloc<int32_t>(1));
    HILUM_ASSIGN_OR_RETURN(active, alloc<int32_t>(E));
    HILUM_ASSIGN_OR_RETURN(eh, alloc<float>(km::kMaxGemvRows * K * Ie));
    HILUM_ASSIGN_OR_RETURN(ey, alloc<float>(km::kMaxGemvRows * K * H));
    HILUM_ASSIGN_OR_RETURN(groups, alloc<int32_t>(km::expert_group_ints(km::kMaxGemvRows * K)));
    {
      const int64_t n = km::route_fused_counters(km::kMaxGemvRows);
      HILUM_ASSIGN_OR_RETURN(route_counters, alloc<int32_t>(n));
      HILUM_RETURN_IF_ERROR(ctx->memset(route_counters, 0, sizeof(int32_t) * n));
    }
    HILUM_ASSIGN_OR_RETURN(tile_offsets, alloc<int32_t>(E + 1));
    if (R > km::kMaxGemvRows && grouped_ok) {
      HILUM_ASSIGN_OR_RETURN(hs_sorted, alloc<bf16>(R * K * Ie));
      HILUM_ASSIGN_OR_RETURN(ys_sorted, alloc<float>(R * K * H));
    }
    if (R > km::kMaxGemvRows &&
        (!grouped_ok || !opt.kernels.tensor_core_prefill || !opt.kernels.grouped_experts)) {
      HILUM_RETURN_IF_ERROR(ensure_padded_buffers());
    }
    if (c.shared_intermediate_size > 0) {
      HILUM_ASSIGN_OR_RETURN(sh, alloc<float>(R * H));
      HILUM_ASSIGN_OR_RETURN(sg, alloc<float>(R));
    }
  }
  HILUM_ASSIGN_OR_RETURN(partial,
                         alloc<float>(km::decode_partial_floats(km::kMaxGemvRows, static_cast<int>(nh), kv)));
  HILUM_ASSIGN_OR_RETURN(split_partial, alloc<float>(km::flash_decode_partial_floats(
                                            km::kMaxGemvRows, static_cast<int>(nh), kv)));
  {
    const int64_t n = km::flash_decode_counters(km::kMaxGemvRows, static_cast<int>(nh));
    HILUM_ASSIGN_OR_RETURN(counters, alloc<int32_t>(n));
    HILUM_RETURN_IF_ERROR(ctx->memset(counters, 0, sizeof(int32_t) * n));
  }
  HILUM_ASSIGN_OR_RETURN(inv_freq,
                         upload_f32(c.rope.inv_freq.data(), static_cast<int64_t>(c.rope.inv_freq.size())));
  for (GLayer& L : layers) {
    const int64_t n = static_cast<int64_t>(opt.max_slots) * kv.capacity * kv.kv_heads;
    HILUM_ASSIGN_OR_RETURN(L.k_cache, alloc<float>(n * kv.dk));
    HILUM_ASSIGN_OR_RETURN(L.v_cache, alloc<float>(n * kv.dv));
  }
  lengths.assign(static_cast<size_t>(opt.max_slots), 0);
  return ctx->synchronize();
}

Status CudaTextModel::Impl::ensure_padded_buffers() {
  if (padded_ready || !cfg.any_moe() || R <= km::kMaxGemvRows) return Status::Ok();
  // Padded batches: at most R rows per expert (a token visits an expert once).
  const int64_t H = cfg.hidden_size, E = cfg.router.num_experts, Ie = cfg.moe_intermediate_size;
  HILUM_ASSIGN_OR_RETURN(xp, alloc<bf16>(E * R * H));
  HILUM_ASSIGN_OR_RETURN(gup, alloc<float>(E * R * 2 * Ie));
  HILUM_ASSIGN_OR_RETURN(hp, alloc<bf16>(E * R * Ie));
  HILUM_ASSIGN_OR_RETURN(yp, alloc<float>(E * R * H));
  padded_ready = true;
  return Status::Ok();
}

namespace {

Status check_supported(const TextConfig& c, const CudaEngineOptions& o) {
  if (o.max_slots < 1 || o.max_slots > km::kMaxGemvRows)
    return bad_input("CUDA engine: max_slots must be 1..16");
  if (o.max_seq < 1 || o.prefill_chunk < 1)
    return bad_input("CUDA engine: max_seq and prefill_chunk must be positive");
  if (c.q_head_dim() > 256 || c.v_dim() > 256) {
    return unsupported("CUDA engine: attention heads above 256 dimensions are not supported");
  }
  if (c.any_moe() && (c.router.num_experts > 1024 || c.router.top_k > 16 || c.router.n_group > 32)) {
    return unsupported("CUDA engine: more than 1024 experts, top-k above 16 or more than 32 groups");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<CudaTextModel>> CudaTextModel::upload(const TextModel& model,
                                                             const CudaEngineOptions& options,
                                                             const LoraAdapter* merge) {
  std::shared_ptr<const TextModel> merged;
  const TextModel* src = &model;
  if (merge) {
    HILUM_ASSIGN_OR_RETURN(merged, model.merged(*merge));
    src = merged.get();
  }
  const TextConfig& c = src->config();
  HILUM_RETURN_IF_ERROR(check_supported(c, options));
  std::unique_ptr<CudaTextModel> m(new CudaTextModel());
  m->impl_ = std::make_unique<Impl>();
  Impl& I = *m->impl_;
  I.cfg = c;
  I.opt = options;
  HILUM_ASSIGN_OR_RETURN(I.ctx, km::GpuContext::create());
  I.kv = km::KvLayout{options.max_seq, static_cast<int>(c.kv_heads()), static_cast<int>(c.q_head_dim()),
                      static_cast<int>(c.v_dim())};
  const Weights& w = src->weights();
  HILUM_ASSIGN_OR_RETURN(I.embed, I.upload_bf16(w.embed.data<float>(), w.embed.numel()));
  HILUM_ASSIGN_OR_RETURN(I.final_norm, I.upload_f32(w.final_norm.weight.data<float>(), c.hidden_size));
  HILUM_ASSIGN_OR_RETURN(I.lm_head, I.upload_linear({&w.lm_head}));
  I.layers.resize(w.layers.size());
  for (size_t li = 0; li < w.layers.size(); ++li) {
    const Layer& L = w.layers[li];
    GLayer& G = I.layers[li];
    G.window = L.sliding_window;
    G.attn_norm_eps = L.attn_norm.eps;
    G.ffn_norm_eps = L.ffn_norm.eps;
    HILUM_ASSIGN_OR_RETURN(G.attn_norm, I.upload_f32(L.attn_norm.weight.data<float>(), c.hidden_size));
    HILUM_ASSIGN_OR_RETURN(G.ffn_norm, I.upload_f32(L.ffn_norm.weight.data<float>(), c.hidden_size));
    const Attention& A = L.attn;
    if (!c.mla) {
      HILUM_ASSIGN_OR_RETURN(G.qkv, I.upload_linear({&A.q, &A.k, &A.v}));
      if (A.q_norm.defined()) {
        HILUM_ASSIGN_OR_RETURN(G.q_norm,
                               I.upload_f32(A.q_norm.weight.data<float>(), A.q_norm.weight.numel()));
        HILUM_ASSIGN_OR_RETURN(G.k_norm,
                               I.upload_f32(A.k_norm.weight.data<float>(), A.k_norm.weight.numel()));
      }
    } else {
      if (c.q_lora_rank > 0) {
        HILUM_ASSIGN_OR_RETURN(G.q_a, I.upload_linear({&A.q_a}));
        HILUM_ASSIGN_OR_RETURN(G.q_a_norm, I.upload_f32(A.q_a_norm.weight.data<float>(), c.q_lora_rank));
        HILUM_ASSIGN_OR_RETURN(G.q_b, I.upload_linear({&A.q_b}));
      } else {
        HILUM_ASSIGN_OR_RETURN(G.q, I.upload_linear({&A.q}));
      }
      HILUM_ASSIGN_OR_RETURN(G.kv_a, I.upload_linear({&A.kv_a}));
      HILUM_ASSIGN_OR_RETURN(G.kv_a_norm, I.upload_f32(A.kv_a_norm.weight.data<float>(), c.kv_lora_rank));
      HILUM_ASSIGN_OR_RETURN(G.kv_b, I.upload_linear({&A.kv_b}));
    }
    HILUM_ASSIGN_OR_RETURN(G.o, I.upload_linear({&A.o}));
    G.is_moe = L.is_moe;
    if (!L.is_moe) {
      HILUM_ASSIGN_OR_RETURN(G.gate_up, I.upload_linear({&L.mlp.gate, &L.mlp.up}));
      HILUM_ASSIGN_OR_RETURN(G.down, I.upload_linear({&L.mlp.down}));
    } else {
      const Moe& M = L.moe;
      HILUM_ASSIGN_OR_RETURN(G.router, I.upload_linear({&M.router}));
      {
        // The bf16 values as fp32 (the GEMV path sees the same numbers).
        std::vector<float> r(M.router.weight.data<float>(),
                             M.router.weight.data<float>() + M.router.weight.numel());
        for (float& v : r) v = bf16_to_f32(f32_to_bf16(v));
        HILUM_ASSIGN_OR_RETURN(G.router_f32, I.upload_f32(r.data(), static_cast<int64_t>(r.size())));
      }
      if (M.score_bias.defined()) {
        HILUM_ASSIGN_OR_RETURN(G.score_bias, I.upload_f32(M.score_bias.data<float>(), M.score_bias.numel()));
      }
      HILUM_ASSIGN_OR_RETURN(G.experts_gate_up,
                             I.upload_bf16(M.experts.gate_up.data<float>(), M.experts.gate_up.numel()));
      HILUM_ASSIGN_OR_RETURN(G.experts_down,
                             I.upload_bf16(M.experts.down.data<float>(), M.experts.down.numel()));
      G.has_shared = M.has_shared;
      if (M.has_shared) {
        HILUM_ASSIGN_OR_RETURN(G.shared_gate_up, I.upload_linear({&M.shared.gate, &M.shared.up}));
        HILUM_ASSIGN_OR_RETURN(G.shared_down, I.upload_linear({&M.shared.down}));
        if (M.shared_gate.defined()) {
          HILUM_ASSIGN_OR_RETURN(G.shared_gate, I.upload_linear({&M.shared_gate}));
        }
      }
    }
  }
  I.fused_router_ok = c.hidden_size <= km::kMaxFusedRouterHidden;
  I.grouped_ok = c.any_moe() && c.hidden_size % 8 == 0 && c.moe_intermediate_size % 8 == 0;
  HILUM_RETURN_IF_ERROR(I.allocate_workspace());
  return m;
}

Result<std::unique_ptr<CudaTextModel>> CudaTextModel::random(const TextConfig& c,
                                                             const CudaEngineOptions& options,
                                                             uint64_t seed) {
  HILUM_RETURN_IF_ERROR(check_supported(c, options));
  std::unique_ptr<CudaTextModel> m(new CudaTextModel());
  m->impl_ = std::make_unique<Impl>();
  Impl& I = *m->impl_;
  I.cfg = c;
  I.opt = options;
  HILUM_ASSIGN_OR_RETURN(I.ctx, km::GpuContext::create());
  I.kv = km::KvLayout{options.max_seq, static_cast<int>(c.kv_heads()), static_cast<int>(c.q_head_dim()),
                      static_cast<int>(c.v_dim())};
  const int64_t H = c.hidden_size, nh = c.num_heads;
  HILUM_ASSIGN_OR_RETURN(bf16 * embed, I.alloc<bf16>(c.vocab_size * H));
  HILUM_RETURN_IF_ERROR(km::fill_random_bf16(embed, c.vocab_size * H, 1.0f, 0.0f, seed++, I.ctx->stream()));
  I.embed = embed;
  HILUM_ASSIGN_OR_RETURN(I.final_norm, I.ones(H));
  HILUM_ASSIGN_OR_RETURN(I.lm_head, I.random_linear(c.vocab_size, H, seed));
  I.layers.resize(static_cast<size_t>(c.num_layers));
  for (int64_t li = 0; li < c.num_layers; ++li) {
    GLayer& G = I.layers[li];
    G.window = c.sliding_window[li];
    G.attn_norm_eps = G.ffn_norm_eps = c.rms_norm_eps;
    HILUM_ASSIGN_OR_RETURN(G.attn_norm, I.ones(H));
    HILUM_ASSIGN_OR_RETURN(G.ffn_norm, I.ones(H));
    if (!c.mla) {
      HILUM_ASSIGN_OR_RETURN(G.qkv,
                             I.random_linear((nh + 2 * c.num_kv_heads) * c.head_dim, H, seed, c.qkv_bias));
      if (c.qk_norm) {
        HILUM_ASSIGN_OR_RETURN(G.q_norm, I.ones(nh * c.head_dim));
        HILUM_ASSIGN_OR_RETURN(G.k_norm, I.ones(c.num_kv_heads * c.head_dim));
      }
      HILUM_ASSIGN_OR_RETURN(G.o, I.random_linear(H, nh * c.head_dim, seed));
    } else {
      const int64_t qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
      if (c.q_lora_rank > 0) {
        HILUM_ASSIGN_OR_RETURN(G.q_a, I.random_linear(c.q_lora_rank, H, seed));
        HILUM_ASSIGN_OR_RETURN(G.q_a_norm, I.ones(c.q_lora_rank));
        HILUM_ASSIGN_OR_RETURN(G.q_b, I.random_linear(nh * qk, c.q_lora_rank, seed));
      } else {
        HILUM_ASSIGN_OR_RETURN(G.q, I.random_linear(nh * qk, H, seed));
      }
      HILUM_ASSIGN_OR_RETURN(G.kv_a, I.random_linear(c.kv_lora_rank + c.qk_rope_head_dim, H, seed));
      HILUM_ASSIGN_OR_RETURN(G.kv_a_norm, I.ones(c.kv_lora_rank));
      HILUM_ASSIGN_OR_RETURN(G.kv_b,
                             I.random_linear(nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank, seed));
      HILUM_ASSIGN_OR_RETURN(G.o, I.random_linear(H, nh * c.v_head_dim, seed));
    }
    G.is_moe = c.layer_is_moe[li];
    if (!G.is_moe) {
      HILUM_ASSIGN_OR_RETURN(G.gate_up, I.random_linear(2 * c.intermediate_size, H, seed));
      HILUM_ASSIGN_OR_RETURN(G.down, I.random_linear(H, c.intermediate_size, seed));
    } else {
      const int64_t E = c.router.num_experts, Ie = c.moe_intermediate_size;
      HILUM_ASSIGN_OR_RETURN(G.router, I.random_linear(E, H, seed));
      if (c.router.kind == RouterKind::kSigmoidNoAuxTc) {
        HILUM_ASSIGN_OR_RETURN(float* b, I.alloc<float>(E));
        HILUM_RETURN_IF_ERROR(I.ctx->memset(b, 0, sizeof(float) * E));
        G.score_bias = b;
      }
      HILUM_ASSIGN_OR_RETURN(bf16 * gu, I.alloc<bf16>(E * 2 * Ie * H));
      HILUM_RETURN_IF_ERROR(km::fill_random_bf16(gu, E * 2 * Ie * H, 0.02f, 0.0f, seed++, I.ctx->stream()));
      HILUM_ASSIGN_OR_RETURN(bf16 * dn, I.alloc<bf16>(E * H * Ie));
      HILUM_RETURN_IF_ERROR(km::fill_random_bf16(dn, E * H * Ie, 0.02f, 0.0f, seed++, I.ctx->stream()));
      G.experts_gate_up = gu;
      G.experts_down = dn;
      if (c.shared_intermediate_size > 0) {
        G.has_shared = true;
        HILUM_ASSIGN_OR_RETURN(G.shared_gate_up, I.random_linear(2 * c.shared_intermediate_size, H, seed));
        HILUM_ASSIGN_OR_RETURN(G.shared_down, I.random_linear(H, c.shared_intermediate_size, seed));
        if (c.shared_expert_gate) {
          HILUM_ASSIGN_OR_RETURN(G.shared_gate, I.random_linear(1, H, seed));
        }
      }
    }
  }
  I.fused_router_ok = c.hidden_size <= km::kMaxFusedRouterHidden;
  I.grouped_ok = c.any_moe() && c.hidden_size % 8 == 0 && c.moe_intermediate_size % 8 == 0;
  HILUM_RETURN_IF_ERROR(I.allocate_workspace());
  return m;
}

CudaTextModel::~CudaTextModel() {
  if (impl_ && impl_->ctx) (void)impl_->ctx->synchronize();
}

const TextConfig& CudaTextModel::config() const { return impl_->cfg; }
int64_t CudaTextModel::length(int slot) const { return impl_->lengths.at(static_cast<size_t>(slot)); }
void CudaTextModel::reset(int slot) { impl_->lengths.at(static_cast<size_t>(slot)) = 0; }

// ---- forward ---------------------------------------------------------------------------

Status CudaTextModel::Impl::linear(const GLinear& l, const float* in_f, const bf16* in_b, int64_t ld_in,
                                   int64_t T, float* out, int64_t ldo, bool accumulate) {
  if (T <= km::kMaxGemvRows) {
    if (opt.kernels.fused_decode) return gemv(l, in_f, ld_in, T, out, ldo, accumulate);
    return km::gemv(l.w, l.bias, l.out, l.in, in_f, ld_in, T, out, ldo, accumulate, ctx->stream());
  }
  HILUM_RETURN_IF_ERROR(
      ctx->gemm(T, l.out, l.in, in_b, ld_in, l.w, l.in, out, ldo, accumulate ? 1.0f : 0.0f));
  if (l.bias) return km::add_bias(out, ldo, l.bias, T, l.out, ctx->stream());
  return Status::Ok();
}

Status CudaTextModel::Impl::gemv(const GLinear& l, const float* in, int64_t ld_in, int64_t T, float* out,
                                 int64_t ldo, bool accumulate, const float* norm_w, float eps, bool glu,
                                 bool out_ready) {
  km::StagedGemv g;
  g.w = l.w;
  g.bias = l.bias;
  g.n = glu ? l.out / 2 : l.out;
  g.k = l.in;
  g.x = in;
  g.ldx = ld_in;
  g.rows = T;
  g.norm_w = norm_w;
  g.eps = eps;
  g.y = out;
  g.ldy = ldo;
  g.accumulate = accumulate;
  g.y_ready = out_ready;
  g.glu = glu;
  g.act = act_of(cfg.hidden_act);
  return km::staged_gemv(g, launch());
}

Status CudaTextModel::Impl::layer(GLayer& L, int64_t T, bool single_seq, int slot, int64_t pos0) {
  if (T <= km::kMaxGemvRows) {
    if (opt.kernels.fused_decode) return layer_fused(L, T);
  } else if (single_seq && opt.kernels.tensor_core_prefill) {
    return layer_prefill(L, T, slot, pos0);
  }
  return layer_legacy(L, T, single_seq, slot, pos0);
}

// Multi-head latent attention: q and the compressed kv from the normalised
// input (hn_f, or hn_b when big), RoPE, and the per-head keys and values
// appended to the caches.
Status CudaTextModel::Impl::mla_projections(GLayer& L, int64_t T, bool big) {
  const TextConfig& c = cfg;
  km::Stream st = ctx->stream();
  const int64_t H = c.hidden_size, nh = c.num_heads, dk = c.q_head_dim(), dv = c.v_dim();
  const bool interleaved = c.rope.layout == RopeLayout::kInterleaved;
  const int64_t nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim, kvr = c.kv_lora_rank;
  if (c.q_lora_rank > 0) {
    const int64_t qr = c.q_lora_rank;
    HILUM_RETURN_IF_ERROR(linear(L.q_a, hn_f, hn_b, H, T, qa_f, qr, false));
    HILUM_RETURN_IF_ERROR(km::rms_norm(qa_f, qr, nullptr, 0, L.q_a_norm, T, qr, c.mla_norm_eps, qa_f, qr,
                                       big ? qa_b : nullptr, qr, st));
    HILUM_RETURN_IF_ERROR(linear(L.q_b, qa_f, qa_b, qr, T, q, nh * dk, false));
  } else {
    HILUM_RETURN_IF_ERROR(linear(L.q, hn_f, hn_b, H, T, q, nh * dk, false));
  }
  HILUM_RETURN_IF_ERROR(linear(L.kv_a, hn_f, hn_b, H, T, ckv, kvr + rd, false));
  HILUM_RETURN_IF_ERROR(km::rms_norm(ckv, kvr + rd, nullptr, 0, L.kv_a_norm, T, kvr, c.mla_norm_eps, lat_f,
                                     kvr, big ? lat_b : nullptr, kvr, st));
  HILUM_RETURN_IF_ERROR(linear(L.kv_b, lat_f, lat_b, kvr, T, kvb, nh * (nope + dv), false));
  HILUM_RETURN_IF_ERROR(
      km::rope(q, T, nh, nh * dk, dk, nope, rd, inv_freq, c.rope.attention_scaling, interleaved, d_pos, st));
  HILUM_RETURN_IF_ERROR(
      km::rope(ckv, T, 1, kvr + rd, 0, kvr, rd, inv_freq, c.rope.attention_scaling, interleaved, d_pos, st));
  return km::mla_append(kvb, ckv + kvr, kvr + rd, T, static_cast<int>(nope), static_cast<int>(rd), d_slots,
                        d_pos, kv, L.k_cache, L.v_cache, st);
}

// The first-generation MoE block on hn_f / hn_b: router, routing, grouping,
// expert GEMVs (<= 16 rows) or padded batched GEMMs, shared expert, combine.
Status CudaTextModel::Impl::moe_legacy(GLayer& L, int64_t T, bool big) {
  const TextConfig& c = cfg;
  km::Stream st = ctx->stream();
  const int64_t H = c.hidden_size;
  const km::Act act = act_of(c.hidden_act);
  const int E = c.router.num_experts, K = c.router.top_k;
  const int64_t Ie = c.moe_intermediate_size, TK = T * K;
  if (big && L.router_f32) {
    HILUM_RETURN_IF_ERROR(ctx->gemm_f32(T, E, H, hn_f, H, L.router_f32, H, rlogits, E, 0.0f));
  } else {
    HILUM_RETURN_IF_ERROR(linear(L.router, hn_f, hn_b, H, T, rlogits, E, false));
  }
  HILUM_RETURN_IF_ERROR(km::route(router_params(c), rlogits, T, L.score_bias, ids, wts, st));
  HILUM_RETURN_IF_ERROR(km::group_by_expert(ids, TK, E, offsets, sorted, pair_pos, max_count, active, st));
  int64_t padded = 0;
  const float* y = nullptr;
  if (!big) {
    HILUM_RETURN_IF_ERROR(km::expert_gate_up_gemv(act, L.experts_gate_up, E, H, Ie, hn_f, H, offsets, active,
                                                  sorted, K, TK, eh, st));
    HILUM_RETURN_IF_ERROR(km::expert_down_gemv(L.experts_down, E, H, Ie, eh, offsets, active, K, TK, ey, st));
    y = ey;
  } else {
    HILUM_RETURN_IF_ERROR(ensure_padded_buffers());
    int32_t mc = 0;
    HILUM_RETURN_IF_ERROR(ctx->copy_to_host(&mc, max_count, sizeof mc));
    HILUM_RETURN_IF_ERROR(ctx->synchronize());
    padded = std::max<int64_t>(mc, 1);
    HILUM_RETURN_IF_ERROR(km::gather_padded(hn_f, H, H, offsets, sorted, K, E, TK, padded, xp, st));
    HILUM_RETURN_IF_ERROR(ctx->gemm_batched(padded, 2 * Ie, H, xp, H, padded * H, L.experts_gate_up, H,
                                            2 * Ie * H, gup, 2 * Ie, padded * 2 * Ie, E, 0.0f));
    HILUM_RETURN_IF_ERROR(km::glu_padded(act, gup, E, TK, padded, Ie, offsets, hp, st));
    HILUM_RETURN_IF_ERROR(ctx->gemm_batched(padded, H, Ie, hp, Ie, padded * Ie, L.experts_down, Ie, H * Ie,
                                            yp, H, padded * H, E, 0.0f));
    y = yp;
  }
  const float* shared = nullptr;
  const float* shared_gate = nullptr;
  if (L.has_shared) {
    const int64_t Is = L.shared_down.in;
    HILUM_RETURN_IF_ERROR(linear(L.shared_gate_up, hn_f, hn_b, H, T, gu, 2 * Is, false));
    HILUM_RETURN_IF_ERROR(km::glu(act, gu, T, Is, big ? nullptr : h_f, big ? h_b : nullptr, st));
    HILUM_RETURN_IF_ERROR(linear(L.shared_down, h_f, h_b, Is, T, sh, H, false));
    shared = sh;
    if (L.shared_gate.w) {
      HILUM_RETURN_IF_ERROR(linear(L.shared_gate, hn_f, hn_b, H, T, sg, 1, false));
      shared_gate = sg;
    }
  }
  return km::combine_experts(x, H, T, H, K, ids, wts, pair_pos, offsets, padded, y, shared, shared_gate, st);
}

Status CudaTextModel::Impl::layer_legacy(GLayer& L, int64_t T, bool single_seq, int slot, int64_t pos0) {
  const TextConfig& c = cfg;
  km::Stream st = ctx->stream();
  const int64_t H = c.hidden_size, nh = c.num_heads, dk = c.q_head_dim(), dv = c.v_dim();
  const bool big = T > km::kMaxGemvRows;
  HILUM_RETURN_IF_ERROR(km::rms_norm(x, H, nullptr, 0, L.attn_norm, T, H, L.attn_norm_eps, hn_f, H,
                                     big ? hn_b : nullptr, H, st));
  const float* qptr = nullptr;
  int64_t ldq = 0;
  const bool interleaved = c.rope.layout == RopeLayout::kInterleaved;
  if (!c.mla) {
    const int64_t hd = c.head_dim, nkv = c.num_kv_heads, P = (nh + 2 * nkv) * hd;
    HILUM_RETURN_IF_ERROR(linear(L.qkv, hn_f, hn_b, H, T, proj, P, false));
    if (L.q_norm) {
      HILUM_RETURN_IF_ERROR(
          km::rms_norm(proj, P, nullptr, 0, L.q_norm, T, nh * hd, c.rms_norm_eps, proj, P, nullptr, 0, st));
      HILUM_RETURN_IF_ERROR(km::rms_norm(proj + nh * hd, P, nullptr, 0, L.k_norm, T, nkv * hd, c.rms_norm_eps,
                                         proj + nh * hd, P, nullptr, 0, st));
    }
    if (c.clip_qkv) HILUM_RETURN_IF_ERROR(km::clamp(proj, P, T, P, *c.clip_qkv, st));
    // q and k heads sit side by side in the fused projection: one launch rotates both.
    HILUM_RETURN_IF_ERROR(km::rope(proj, T, nh + nkv, P, hd, 0, c.rope.dim, inv_freq,
                                   c.rope.attention_scaling, interleaved, d_pos, st));
    HILUM_RETURN_IF_ERROR(km::kv_append(proj + nh * hd, P, proj + (nh + nkv) * hd, P, T, d_slots, d_pos, kv,
                                        L.k_cache, L.v_cache, st));
    qptr = proj;
    ldq = P;
  } else {
    HILUM_RETURN_IF_ERROR(mla_projections(L, T, big));
    qptr = q;
    ldq = nh * dk;
  }
  if (!big || !single_seq) {
    HILUM_RETURN_IF_ERROR(km::attention_decode(qptr, ldq, T, static_cast<int>(nh), d_slots, d_pos, L.window,
                                               c.attn_scale, kv, L.k_cache, L.v_cache, partial, attn, nh * dv,
                                               st));
  } else {
    HILUM_RETURN_IF_ERROR(km::attention_prefill(qptr, ldq, T, static_cast<int>(nh), slot, pos0, L.window,
                                                c.attn_scale, kv, L.k_cache, L.v_cache, attn, nh * dv, st));
    HILUM_RETURN_IF_ERROR(km::to_bf16(attn, nh * dv, T, nh * dv, attn_b, nh * dv, st));
  }
  HILUM_RETURN_IF_ERROR(linear(L.o, attn, attn_b, nh * dv, T, x, H, true));

  HILUM_RETURN_IF_ERROR(
      km::rms_norm(x, H, nullptr, 0, L.ffn_norm, T, H, L.ffn_norm_eps, hn_f, H, big ? hn_b : nullptr, H, st));
  const km::Act act = act_of(c.hidden_act);
  if (!L.is_moe) {
    const int64_t Id = L.down.in;
    HILUM_RETURN_IF_ERROR(linear(L.gate_up, hn_f, hn_b, H, T, gu, 2 * Id, false));
    HILUM_RETURN_IF_ERROR(km::glu(act, gu, T, Id, big ? nullptr : h_f, big ? h_b : nullptr, st));
    return linear(L.down, h_f, h_b, Id, T, x, H, true);
  }
  return moe_legacy(L, T, big);
}

km::QkvFinish CudaTextModel::Impl::qkv_finish_of(const GLayer& L, int64_t T) const {
  const TextConfig& c = cfg;
  km::QkvFinish f;
  f.proj = proj;
  f.ldp = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
  f.rows = T;
  f.nh = static_cast<int>(c.num_heads);
  f.nkv = static_cast<int>(c.num_kv_heads);
  f.hd = static_cast<int>(c.head_dim);
  f.q_norm_w = L.q_norm;
  f.k_norm_w = L.k_norm;
  f.eps = c.rms_norm_eps;
  f.clip = c.clip_qkv ? *c.clip_qkv : 0.0f;
  f.rope_dim = static_cast<int>(c.rope.dim);
  f.inv_freq = inv_freq;
  f.attention_scaling = c.rope.attention_scaling;
  f.interleaved = c.rope.layout == RopeLayout::kInterleaved;
  f.positions = d_pos;
  f.slots = d_slots;
  f.q_out = q;
  f.ldq = c.num_heads * c.head_dim;
  return f;
}

// Up to 16 rows: every stage one launch, norms fused into the GEMVs that
// consume them (up to 4 rows; beyond that one RMSNorm launch is cheaper than
// every block normalising every row).
Status CudaTextModel::Impl::layer_fused(GLayer& L, int64_t T) {
  const TextConfig& c = cfg;
  km::Stream st = ctx->stream();
  const km::Launch ln = launch();
  const int64_t H = c.hidden_size, nh = c.num_heads, dk = c.q_head_dim(), dv = c.v_dim();
  const bool fuse_norm = T <= 4;
  const float* qptr = nullptr;
  int64_t ldq = 0;
  if (!c.mla) {
    const int64_t hd = c.head_dim, nkv = c.num_kv_heads, P = (nh + 2 * nkv) * hd;
    if (fuse_norm) {
      HILUM_RETURN_IF_ERROR(gemv(L.qkv, x, H, T, proj, P, false, L.attn_norm, L.attn_norm_eps));
    } else {
      HILUM_RETURN_IF_ERROR(
          km::rms_norm(x, H, nullptr, 0, L.attn_norm, T, H, L.attn_norm_eps, hn_f, H, nullptr, 0, st));
      HILUM_RETURN_IF_ERROR(gemv(L.qkv, hn_f, H, T, proj, P, false));
    }
    HILUM_RETURN_IF_ERROR(km::qkv_finish(qkv_finish_of(L, T), kv, L.k_cache, L.v_cache, ln));
    qptr = q;
    ldq = nh * hd;
  } else {
    HILUM_RETURN_IF_ERROR(
        km::rms_norm(x, H, nullptr, 0, L.attn_norm, T, H, L.attn_norm_eps, hn_f, H, nullptr, 0, st));
    HILUM_RETURN_IF_ERROR(mla_projections(L, T, false));
    qptr = q;
    ldq = nh * dk;
  }
  HILUM_RETURN_IF_ERROR(km::attention_decode_split(qptr, ldq, T, static_cast<int>(nh), d_slots, d_pos,
                                                   L.window, c.attn_scale, kv, L.k_cache, L.v_cache,
                                                   split_partial, counters, attn, nh * dv, ln));
  // The attention kernel before it does not write x: the residual rows are read early.
  HILUM_RETURN_IF_ERROR(gemv(L.o, attn, nh * dv, T, x, H, true, nullptr, 0.0f, false, true));

  if (!L.is_moe) {
    const int64_t Id = L.down.in;
    if (fuse_norm) {
      HILUM_RETURN_IF_ERROR(gemv(L.gate_up, x, H, T, h_f, Id, false, L.ffn_norm, L.ffn_norm_eps, true));
    } else {
      HILUM_RETURN_IF_ERROR(
          km::rms_norm(x, H, nullptr, 0, L.ffn_norm, T, H, L.ffn_norm_eps, hn_f, H, nullptr, 0, st));
      HILUM_RETURN_IF_ERROR(gemv(L.gate_up, hn_f, H, T, h_f, Id, false, nullptr, 0.0f, true));
    }
    return gemv(L.down, h_f, Id, T, x, H, true);
  }
  const int K = c.router.top_k;
  const int64_t Ie = c.moe_intermediate_size;
  const bf16* shared_gate_w = L.has_shared ? L.shared_gate.w : nullptr;
  if (fused_router_ok) {
    // hn_f = RMSNorm(x), routing, and the shared expert's gate logit in one launch.
    HILUM_RETURN_IF_ERROR(km::route_fused(router_params(c), x, H, H, L.ffn_norm, L.ffn_norm_eps, L.router.w,
                                          L.score_bias, shared_gate_w, T, hn_f, ids, wts, sg, rlogits,
                                          route_counters, ln));
  } else {
    HILUM_RETURN_IF_ERROR(
        km::rms_norm(x, H, nullptr, 0, L.ffn_norm, T, H, L.ffn_norm_eps, hn_f, H, nullptr, 0, st));
    HILUM_RETURN_IF_ERROR(gemv(L.router, hn_f, H, T, rlogits, c.router.num_experts, false));
    HILUM_RETURN_IF_ERROR(km::route(router_params(c), rlogits, T, L.score_bias, ids, wts, st));
    if (shared_gate_w) HILUM_RETURN_IF_ERROR(gemv(L.shared_gate, hn_f, H, T, sg, 1, false));
  }
  int64_t Is = 0;
  if (L.has_shared) {
    Is = L.shared_down.in;
    HILUM_RETURN_IF_ERROR(gemv(L.shared_gate_up, hn_f, H, T, h_f, Is, false, nullptr, 0.0f, true));
  }
  HILUM_RETURN_IF_ERROR(
      km::expert_glu(act_of(c.hidden_act), L.experts_gate_up, H, Ie, hn_f, H, ids, K, T, eh, groups, ln));
  return km::expert_down_combine(
      L.experts_down, H, Ie, eh, ids, wts, K, T, groups, L.has_shared ? L.shared_down.w : nullptr,
      L.has_shared ? L.shared_down.bias : nullptr, Is, h_f, shared_gate_w ? sg : nullptr, x, H, ln);
}

// More than 16 rows of one sequence: cuBLAS for the dense projections,
// tensor-core attention and grouped expert GEMMs, no host synchronisation.
Status CudaTextModel::Impl::layer_prefill(GLayer& L, int64_t T, int slot, int64_t pos0) {
  const TextConfig& c = cfg;
  km::Stream st = ctx->stream();
  const int64_t H = c.hidden_size, nh = c.num_heads, dk = c.q_head_dim(), dv = c.v_dim();
  HILUM_RETURN_IF_ERROR(
      km::rms_norm(x, H, nullptr, 0, L.attn_norm, T, H, L.attn_norm_eps, nullptr, 0, hn_b, H, st));
  const float* qptr = nullptr;
  int64_t ldq = 0;
  if (!c.mla) {
    const int64_t hd = c.head_dim, nkv = c.num_kv_heads, P = (nh + 2 * nkv) * hd;
    HILUM_RETURN_IF_ERROR(linear(L.qkv, hn_f, hn_b, H, T, proj, P, false));
    HILUM_RETURN_IF_ERROR(
        km::qkv_finish(qkv_finish_of(L, T), kv, L.k_cache, L.v_cache, km::Launch{st, false}));
    qptr = q;
    ldq = nh * hd;
  } else {
    HILUM_RETURN_IF_ERROR(mla_projections(L, T, true));
    qptr = q;
    ldq = nh * dk;
  }
  if (km::attention_prefill_tc_supported(kv) && ldq % 4 == 0) {
    HILUM_RETURN_IF_ERROR(km::attention_prefill_tc(qptr, ldq, T, static_cast<int>(nh), slot, pos0, L.window,
                                                   c.attn_scale, kv, L.k_cache, L.v_cache, nullptr, attn_b,
                                                   nh * dv, st));
  } else {
    HILUM_RETURN_IF_ERROR(km::attention_prefill(qptr, ldq, T, static_cast<int>(nh), slot, pos0, L.window,
                                                c.attn_scale, kv, L.k_cache, L.v_cache, attn, nh * dv, st));
    HILUM_RETURN_IF_ERROR(km::to_bf16(attn, nh * dv, T, nh * dv, attn_b, nh * dv, st));
  }
  HILUM_RETURN_IF_ERROR(linear(L.o, attn, attn_b, nh * dv, T, x, H, true));

  HILUM_RETURN_IF_ERROR(
      km::rms_norm(x, H, nullptr, 0, L.ffn_norm, T, H, L.ffn_norm_eps, hn_f, H, hn_b, H, st));
  const km::Act act = act_of(c.hidden_act);
  if (!L.is_moe) {
    const int64_t Id = L.down.in;
    HILUM_RETURN_IF_ERROR(linear(L.gate_up, hn_f, hn_b, H, T, gu, 2 * Id, false));
    HILUM_RETURN_IF_ERROR(km::glu(act, gu, T, Id, nullptr, h_b, st));
    return linear(L.down, h_f, h_b, Id, T, x, H, true);
  }
  if (!grouped_ok || !opt.kernels.grouped_experts) return moe_legacy(L, T, true);
  const int E = c.router.num_experts, K = c.router.top_k;
  const int64_t Ie = c.moe_intermediate_size, TK = T * K;
  if (L.router_f32) {
    HILUM_RETURN_IF_ERROR(ctx->gemm_f32(T, E, H, hn_f, H, L.router_f32, H, rlogits, E, 0.0f));
  } else {
    HILUM_RETURN_IF_ERROR(linear(L.router, hn_f, hn_b, H, T, rlogits, E, false));
  }
  HILUM_RETURN_IF_ERROR(km::route(router_params(c), rlogits, T, L.score_bias, ids, wts, st));
  HILUM_RETURN_IF_ERROR(km::group_by_expert(ids, TK, E, offsets, sorted, pair_pos, max_count, active, st,
                                            tile_offsets, km::kGroupedTileRows));
  HILUM_RETURN_IF_ERROR(km::expert_gemm_glu(act, hn_b, H, sorted, K, offsets, tile_offsets, E, TK,
                                            L.experts_gate_up, H, Ie, hs_sorted, st));
  HILUM_RETURN_IF_ERROR(
      km::expert_gemm_down(hs_sorted, offsets, tile_offsets, E, TK, L.experts_down, H, Ie, ys_sorted, st));
  const float* shared = nullptr;
  const float* shared_gate = nullptr;
  if (L.has_shared) {
    const int64_t Is = L.shared_down.in;
    HILUM_RETURN_IF_ERROR(linear(L.shared_gate_up, hn_f, hn_b, H, T, gu, 2 * Is, false));
    HILUM_RETURN_IF_ERROR(km::glu(act, gu, T, Is, nullptr, h_b, st));
    HILUM_RETURN_IF_ERROR(linear(L.shared_down, h_f, h_b, Is, T, sh, H, false));
    shared = sh;
    if (L.shared_gate.w) {
      HILUM_RETURN_IF_ERROR(linear(L.shared_gate, hn_f, hn_b, H, T, sg, 1, false));
      shared_gate = sg;
    }
  }
  return km::combine_experts(x, H, T, H, K, ids, wts, pair_pos, offsets, 0, ys_sorted, shared, shared_gate,
                             st);
}

// logits_mode: 0 none, 1 last row, 2 every row.
Status CudaTextModel::Impl::run(int64_t T, bool single_seq, int slot, int64_t pos0, int logits_mode) {
  km::Stream st = ctx->stream();
  const int64_t H = cfg.hidden_size, V = cfg.vocab_size;
  HILUM_RETURN_IF_ERROR(km::embed(embed, H, d_ids, T, x, st));
  for (GLayer& L : layers) HILUM_RETURN_IF_ERROR(layer(L, T, single_seq, slot, pos0));
  if (logits_mode == 0) return Status::Ok();
  const bool all = logits_mode == 2;
  const int64_t rows = all ? T : 1;
  float* src = all ? x : x + (T - 1) * H;
  const bool big = rows > km::kMaxGemvRows;
  if (!big && opt.kernels.fused_decode && rows <= 4) {
    return gemv(lm_head, src, H, rows, logits, V, false, final_norm, cfg.rms_norm_eps);
  }
  HILUM_RETURN_IF_ERROR(km::rms_norm(src, H, nullptr, 0, final_norm, rows, H, cfg.rms_norm_eps, hn_f, H,
                                     big ? hn_b : nullptr, H, st));
  return linear(lm_head, hn_f, hn_b, H, rows, logits, V, false);
}

Status CudaTextModel::Impl::with_launch_fallback(const std::function<Status()>& step) {
  Status s = step();
  if (s.ok() || !opt.kernels.programmatic_launch) return s;
  // Programmatic dependent launch refused (driver, device or graph capture):
  // the same kernels with plain launches.
  HILUM_RETURN_IF_ERROR(ctx->synchronize());
  log_warning("CUDA text engine: programmatic dependent launch failed (" + s.error().message() +
              "); using plain launches");
  opt.kernels.programmatic_launch = false;
  ctx->drop_graphs();
  return step();
}

Result<Tensor> CudaTextModel::prefill(int slot, std::span<const int32_t> ids_in, bool all_logits) {
  Impl& I = *impl_;
  const TextConfig& c = I.cfg;
  if (slot < 0 || slot >= I.opt.max_slots) return bad_input("CUDA engine: slot out of range");
  if (ids_in.empty()) return bad_input("no token ids to run");
  for (size_t i = 0; i < ids_in.size(); ++i) {
    if (ids_in[i] < 0 || ids_in[i] >= c.vocab_size) {
      return bad_input("token id " + std::to_string(ids_in[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
    }
  }
  const int64_t T = static_cast<int64_t>(ids_in.size()), V = c.vocab_size;
  int64_t& len = I.lengths[slot];
  if (len + T > I.opt.max_seq) {
    return bad_input("sequence of " + std::to_string(len + T) +
                     " tokens exceeds the CUDA engine's capacity (" + std::to_string(I.opt.max_seq) + ")");
  }
  Tensor out = Tensor::empty({all_logits ? T : 1, V}, DType::kF32);
  std::vector<int32_t> slots(static_cast<size_t>(I.R), slot), pos(static_cast<size_t>(I.R));
  for (int64_t b = 0; b < T; b += I.opt.prefill_chunk) {
    const int64_t n = std::min(I.opt.prefill_chunk, T - b);
    for (int64_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>(len + i);
    HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_ids, ids_in.data() + b, sizeof(int32_t) * n));
    HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_slots, slots.data(), sizeof(int32_t) * n));
    HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_pos, pos.data(), sizeof(int32_t) * n));
    const bool last = b + n == T;
    const int mode = all_logits ? 2 : (last ? 1 : 0);
    HILUM_RETURN_IF_ERROR(I.run(n, true, slot, len, mode));
    if (mode == 2) {
      HILUM_RETURN_IF_ERROR(I.ctx->copy_to_host(out.data<float>() + b * V, I.logits, sizeof(float) * n * V));
    } else if (mode == 1) {
      HILUM_RETURN_IF_ERROR(I.ctx->copy_to_host(out.data<float>(), I.logits, sizeof(float) * V));
    }
    HILUM_RETURN_IF_ERROR(I.ctx->synchronize());
    len += n;
  }
  return out;
}

Result<Tensor> CudaTextModel::decode(std::span<const int> slots, std::span<const int32_t> ids_in) {
  Impl& I = *impl_;
  const TextConfig& c = I.cfg;
  const int64_t B = static_cast<int64_t>(slots.size());
  if (B == 0 || B != static_cast<int64_t>(ids_in.size()) || B > I.opt.max_slots) {
    return bad_input("CUDA engine: decode needs one id per slot, at most max_slots");
  }
  std::vector<int32_t> sl(static_cast<size_t>(B)), pos(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    if (slots[b] < 0 || slots[b] >= I.opt.max_slots) return bad_input("CUDA engine: slot out of range");
    for (int64_t j = 0; j < b; ++j) {
      if (slots[j] == slots[b]) return bad_input("CUDA engine: a slot appears twice in one decode step");
    }
    if (ids_in[b] < 0 || ids_in[b] >= c.vocab_size) return bad_input("token id outside the vocabulary");
    if (I.lengths[slots[b]] + 1 > I.opt.max_seq)
      return bad_input("sequence exceeds the CUDA engine's capacity");
    sl[b] = slots[b];
    pos[b] = static_cast<int32_t>(I.lengths[slots[b]]);
  }
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_ids, ids_in.data(), sizeof(int32_t) * B));
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_slots, sl.data(), sizeof(int32_t) * B));
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_pos, pos.data(), sizeof(int32_t) * B));
  HILUM_RETURN_IF_ERROR(I.with_launch_fallback([&] { return I.run(B, false, 0, 0, 2); }));
  Tensor out = Tensor::empty({B, c.vocab_size}, DType::kF32);
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_host(out.data<float>(), I.logits, sizeof(float) * B * c.vocab_size));
  HILUM_RETURN_IF_ERROR(I.ctx->synchronize());
  for (int64_t b = 0; b < B; ++b) ++I.lengths[slots[b]];
  return out;
}

Result<std::vector<std::vector<int32_t>>> CudaTextModel::decode_greedy(std::span<const int> slots,
                                                                       std::span<const int32_t> first,
                                                                       int64_t steps) {
  Impl& I = *impl_;
  const int64_t B = static_cast<int64_t>(slots.size());
  if (B == 0 || B != static_cast<int64_t>(first.size()) || B > I.opt.max_slots || steps < 0) {
    return bad_input("CUDA engine: decode_greedy needs one first token per slot");
  }
  std::vector<int32_t> sl(static_cast<size_t>(B)), pos(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    if (slots[b] < 0 || slots[b] >= I.opt.max_slots) return bad_input("CUDA engine: slot out of range");
    if (I.lengths[slots[b]] + steps > I.opt.max_seq)
      return bad_input("sequence exceeds the CUDA engine's capacity");
    sl[b] = slots[b];
    pos[b] = static_cast<int32_t>(I.lengths[slots[b]]);
  }
  HILUM_ASSIGN_OR_RETURN(DeviceBuffer hist,
                         DeviceBuffer::allocate(sizeof(int32_t) * std::max<int64_t>(steps * B, 1)));
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_ids, first.data(), sizeof(int32_t) * B));
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_slots, sl.data(), sizeof(int32_t) * B));
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_device(I.d_pos, pos.data(), sizeof(int32_t) * B));
  // One step: run the batch, pick the argmax, advance positions; the history
  // row is copied out by a device-to-device copy after the graph.
  auto step = [&]() -> Status {
    HILUM_RETURN_IF_ERROR(I.run(B, false, 0, 0, 2));
    return km::greedy_advance(I.logits, B, I.cfg.vocab_size, I.d_ids, I.d_pos, I.d_history, I.ctx->stream(),
                              I.opt.kernels.fused_decode && I.opt.kernels.programmatic_launch);
  };
  const int key = static_cast<int>(B);
  if (I.opt.graphs && !I.ctx->has_graph(key) && steps > 0) {
    HILUM_RETURN_IF_ERROR(I.with_launch_fallback([&]() -> Status {
      HILUM_RETURN_IF_ERROR(I.ctx->begin_capture());
      Status captured = step();
      Status ended = I.ctx->end_capture(key);
      HILUM_RETURN_IF_ERROR(captured);
      return ended;
    }));
  }
  for (int64_t s = 0; s < steps; ++s) {
    if (I.opt.graphs) {
      HILUM_RETURN_IF_ERROR(I.ctx->launch_graph(key));
    } else if (s == 0) {
      // A failed first step has not advanced anything: safe to repeat without PDL.
      HILUM_RETURN_IF_ERROR(I.with_launch_fallback(step));
    } else {
      HILUM_RETURN_IF_ERROR(step());
    }
    HILUM_RETURN_IF_ERROR(I.ctx->copy_device(hist.as<int32_t>() + s * B, I.d_history, sizeof(int32_t) * B));
  }
  std::vector<int32_t> flat(static_cast<size_t>(steps * B));
  HILUM_RETURN_IF_ERROR(I.ctx->copy_to_host(flat.data(), hist.as<int32_t>(), sizeof(int32_t) * steps * B));
  HILUM_RETURN_IF_ERROR(I.ctx->synchronize());
  for (int64_t b = 0; b < B; ++b) I.lengths[slots[b]] += steps;
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(steps),
                                        std::vector<int32_t>(static_cast<size_t>(B)));
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t b = 0; b < B; ++b) out[s][b] = flat[s * B + b];
  }
  return out;
}

Result<double> CudaTextModel::time_ms(const std::function<Status()>& body) {
  HILUM_RETURN_IF_ERROR(impl_->ctx->synchronize());
  HILUM_ASSIGN_OR_RETURN(float ms, impl_->ctx->time_ms(body));
  return static_cast<double>(ms);
}

Status CudaTextModel::set_kernels(const CudaKernels& kernels) {
  Impl& I = *impl_;
  HILUM_RETURN_IF_ERROR(I.ctx->synchronize());
  I.opt.kernels = kernels;
  I.ctx->drop_graphs();
  if (!kernels.tensor_core_prefill || !kernels.grouped_experts) HILUM_RETURN_IF_ERROR(I.ensure_padded_buffers());
  return I.ctx->synchronize();
}

const CudaKernels& CudaTextModel::kernels() const { return impl_->opt.kernels; }

}  // namespace hilum::moe

#else  // HILUM_HAVE_CUDA

namespace hilum::moe {

struct CudaTextModel::Impl {
  TextConfig cfg;
};

namespace {
Error no_cuda() { return unsupported("this Hilum build has no CUDA support (HILUM_WITH_CUDA=OFF)"); }
}  // namespace

Result<std::unique_ptr<CudaTextModel>> CudaTextModel::upload(const TextModel&, const CudaEngineOptions&,
                                                             const LoraAdapter*) {
  return no_cuda();
}
Result<std::unique_ptr<CudaTextModel>> CudaTextModel::random(const TextConfig&, const CudaEngineOptions&,
                                                             uint64_t) {
  return no_cuda();
}
CudaTextModel::~CudaTextModel() = default;
const TextConfig& CudaTextModel::config() const { return impl_->cfg; }
int64_t CudaTextModel::length(int) const { return 0; }
void CudaTextModel::reset(int) {}
Result<Tensor> CudaTextModel::prefill(int, std::span<const int32_t>, bool) { return no_cuda(); }
Result<Tensor> CudaTextModel::decode(std::span<const int>, std::span<const int32_t>) { return no_cuda(); }
Result<std::vector<std::vector<int32_t>>> CudaTextModel::decode_greedy(std::span<const int>,
                                                                       std::span<const int32_t>, int64_t) {
  return no_cuda();
}
Result<double> CudaTextModel::time_ms(const std::function<Status()>&) { return no_cuda(); }
Status CudaTextModel::set_kernels(const CudaKernels&) { return no_cuda(); }
const CudaKernels& CudaTextModel::kernels() const {
  static const CudaKernels none;
  return none;
}

}  // namespace hilum::moe

#endif  // HILUM_HAVE_CUDA
