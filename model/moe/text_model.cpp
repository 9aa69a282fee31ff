#include "model/moe/text_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/gemm.h"
#include "model/log.h"
#include "model/moe/checkpoint.h"
#include "model/moe/cpu_kernels.h"
#include "model/moe/family.h"
#include "model/moe/lora.h"
#include "model/moe/router.h"
#include "model/parallel.h"

namespace hilum::moe {

namespace fs = std::filesystem;

// ---- loading -------------------------------------------------------------------

namespace {

// Tensors transformers keeps in some checkpoints that carry no weights.
bool ignorable_tensor(const std::string& name, const TextConfig& c) {
  if (name.find("rotary_emb.inv_freq") != std::string::npos) return true;
  // deepseek_v3's multi-token-prediction layers sit after the last decoder layer.
  const std::string layers = "model.layers.";
  if (name.rfind(layers, 0) == 0) {
    size_t end = name.find('.', layers.size());
    if (end != std::string::npos) {
      const std::string idx = name.substr(layers.size(), end - layers.size());
      if (!idx.empty() && std::all_of(idx.begin(), idx.end(), ::isdigit) && std::stoll(idx) >= c.num_layers) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

Result<std::shared_ptr<const TextModel>> TextModel::load(const fs::path& dir, Progress* progress) {
  NullProgress null_progress;
  Progress& prog = progress ? *progress : null_progress;
  HILUM_ASSIGN_OR_RETURN(TextConfig cfg, read_text_config(dir));
  HILUM_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::open(dir));
  const FamilyDef* family = find_family(cfg.model_type);
  Weights w;
  LoadContext ctx(ck, cfg, w);
  HILUM_ASSIGN_OR_RETURN(w.embed, ck.f32("model.embed_tokens.weight", {cfg.vocab_size, cfg.hidden_size}));
  w.layers.resize(static_cast<size_t>(cfg.num_layers));
  for (int i = 0; i < cfg.num_layers; ++i) {
    if (prog.cancelled()) return cancelled_error();
    prog.report(static_cast<double>(i) / static_cast<double>(cfg.num_layers), "loading text model");
    HILUM_RETURN_IF_ERROR(family->load_layer(ctx, i, w.layers[i]));
    w.layers[i].sliding_window = cfg.sliding_window[i];
  }
  HILUM_ASSIGN_OR_RETURN(w.final_norm, ctx.norm("model.norm", cfg.hidden_size, cfg.rms_norm_eps));
  if (cfg.tie_word_embeddings) {
    if (ck.contains("lm_head.weight")) ck.skip("lm_head.weight");
    w.lm_head.weight = w.embed;
    w.slots.push_back(LoraSlot{"lm_head", cfg.hidden_size, cfg.vocab_size});
    w.lm_head.slot = static_cast<int>(w.slots.size()) - 1;
    w.slot_by_path["lm_head"] = w.lm_head.slot;
  } else {
    HILUM_ASSIGN_OR_RETURN(w.lm_head, ctx.linear("lm_head", cfg.vocab_size, cfg.hidden_size, Bias::kNone));
  }
  for (const std::string& name : ck.unused()) {
    if (ignorable_tensor(name, cfg)) continue;
    return bad_input(ck.file_of(name) + ": tensor '" + name + "' is not part of a " + cfg.model_type +
                     " model with this config.json (wrong model_type or an unsupported feature?)");
  }
  prog.report(1.0, "loading text model");
  auto model = std::shared_ptr<TextModel>(new TextModel());
  model->config_ = std::move(cfg);
  model->weights_ = std::move(w);
  model->dir_ = dir;
  return std::shared_ptr<const TextModel>(std::move(model));
}

std::shared_ptr<const TextModel> TextModel::from_weights(TextConfig config, Weights weights, fs::path dir) {
  auto model = std::shared_ptr<TextModel>(new TextModel());
  model->config_ = std::move(config);
  model->weights_ = std::move(weights);
  model->dir_ = std::move(dir);
  return model;
}

// ---- blocks ----------------------------------------------------------------------

namespace {

using Buf = std::vector<float>;

void apply_lora(const LoraAdapter* ad, int slot, const float* x, int64_t T, int64_t in, float* y,
                int64_t ldy) {
  if (!ad || slot < 0) return;
  for (const LoraTerm& term : ad->terms(slot)) {
    const int64_t r = term.a.dim(0), rows = term.b.dim(0);
    Buf tmp(static_cast<size_t>(T * r));
    cpu::linear(x, T, in, term.a.data<float>(), r, nullptr, tmp.data(), r);
    for (float& v : tmp) v *= term.scale;
    cpu::linear(tmp.data(), T, r, term.b.data<float>(), rows, nullptr, y + term.row_offset, ldy, true);
  }
}

void apply_linear(const Linear& l, const float* x, int64_t T, float* y, int64_t ldy, const LoraAdapter* ad) {
  cpu::linear(x, T, l.in(), l.weight.data<float>(), l.out(),
              l.bias.defined() ? l.bias.data<float>() : nullptr, y, ldy);
  apply_lora(ad, l.slot, x, T, l.in(), y, ldy);
}

void mlp_block(const TextConfig& c, const Mlp& m, const float* x, int64_t T, float* out,
               const LoraAdapter* ad) {
  const int64_t I = m.gate.out();
  Buf gu(static_cast<size_t>(T * 2 * I)), h(static_cast<size_t>(T * I));
  apply_linear(m.gate, x, T, gu.data(), 2 * I, ad);
  apply_linear(m.up, x, T, gu.data() + I, 2 * I, ad);
  cpu::glu(c.hidden_act, gu.data(), T, I, h.data());
  apply_linear(m.down, h.data(), T, out, c.hidden_size, ad);
}

void moe_block(const TextConfig& c, const Moe& m, const float* x, int64_t T, float* out,
               const LoraAdapter* ad) {
  const int64_t E = m.experts.num, H = c.hidden_size, I = m.experts.inter;
  const int K = c.router.top_k;
  Buf logits(static_cast<size_t>(T * E));
  apply_linear(m.router, x, T, logits.data(), E, ad);
  std::vector<int32_t> ids(static_cast<size_t>(T * K));
  Buf wts(static_cast<size_t>(T * K));
  route_tokens(c.router, logits.data(), T, m.score_bias.defined() ? m.score_bias.data<float>() : nullptr,
               ids.data(), wts.data());
  // Group the (token, slot) pairs by expert.
  std::vector<int64_t> count(static_cast<size_t>(E + 1), 0);
  for (int32_t e : ids) ++count[e + 1];
  for (int64_t e = 0; e < E; ++e) count[e + 1] += count[e];
  std::vector<int64_t> order(static_cast<size_t>(T * K));
  {
    std::vector<int64_t> fill(count.begin(), count.end() - 1);
    for (int64_t i = 0; i < T * K; ++i) order[fill[ids[i]]++] = i;
  }
  // Each active expert runs its tokens as one batch; experts run in parallel
  // (their inner products then run serially), and the weighted sum below is
  // taken in a fixed order, so results do not depend on the thread count.
  std::vector<int64_t> active;
  for (int64_t e = 0; e < E; ++e) {
    if (count[e + 1] > count[e]) active.push_back(e);
  }
  Buf d(static_cast<size_t>(T * K * H));  // expert outputs by sorted pair
  const float* gate_up = m.experts.gate_up.data<float>();
  const float* down = m.experts.down.data<float>();
  // A small step (a tiny model's decode) runs on the calling thread: waking the
  // pool costs more than its few multiply-adds.
  const int64_t work = T * K * H * I * 3;  // multiply-adds of gate, up and down
  const int64_t grain = work < (int64_t{1} << 18) ? static_cast<int64_t>(active.size()) : 1;
  parallel_for(static_cast<int64_t>(active.size()), grain, [&](int64_t a0, int64_t a1) {
    Buf xe, gu, h;
    for (int64_t a = a0; a < a1; ++a) {
      const int64_t e = active[a];
      const int64_t n = count[e + 1] - count[e];
      const int64_t* rows = order.data() + count[e];
      xe.resize(static_cast<size_t>(n * H));
      for (int64_t r = 0; r < n; ++r) std::memcpy(&xe[r * H], x + (rows[r] / K) * H, sizeof(float) * H);
      gu.resize(static_cast<size_t>(n * 2 * I));
      h.resize(static_cast<size_t>(n * I));
      float* dout = d.data() + count[e] * H;
      cpu::linear(xe.data(), n, H, gate_up + e * 2 * I * H, 2 * I, nullptr, gu.data(), 2 * I);
      apply_lora(ad, m.experts.gate_up_slot0 + static_cast<int>(e), xe.data(), n, H, gu.data(), 2 * I);
      cpu::glu(c.hidden_act, gu.data(), n, I, h.data());
      cpu::linear(h.data(), n, I, down + e * H * I, H, nullptr, dout, H);
      apply_lora(ad, m.experts.down_slot0 + static_cast<int>(e), h.data(), n, I, dout, H);
    }
  });
  std::fill(out, out + T * H, 0.0f);
  for (int64_t p = 0; p < T * K; ++p) {
    const int64_t pair = order[p];
    const float wt = wts[pair];
    float* o = out + (pair / K) * H;
    const float* dr = d.data() + p * H;
    for (int64_t j = 0; j < H; ++j) o[j] += wt * dr[j];
  }
  if (m.has_shared) {
    Buf s(static_cast<size_t>(T * H));
    mlp_block(c, m.shared, x, T, s.data(), ad);
    if (m.shared_gate.defined()) {
      Buf g(static_cast<size_t>(T));
      apply_linear(m.shared_gate, x, T, g.data(), 1, ad);
      for (int64_t t = 0; t < T; ++t) {
        const float sg = 1.0f / (1.0f + std::exp(-g[t]));
        for (int64_t j = 0; j < H; ++j) out[t * H + j] += sg * s[t * H + j];
      }
    } else {
      for (int64_t i = 0; i < T * H; ++i) out[i] += s[i];
    }
  }
}

}  // namespace

// ---- forward -----------------------------------------------------------------------

Status TextModel::run_chunk(std::span<const int32_t> ids, KvCache& cache, const LoraAdapter* ad,
                            float* x) const {
  const TextConfig& c = config_;
  const Weights& w = weights_;
  const int64_t T = static_cast<int64_t>(ids.size()), H = c.hidden_size;
  const int64_t pos0 = cache.length_;
  const int64_t dk = c.q_head_dim(), dv = c.v_dim(), nkv = c.kv_heads(), nh = c.num_heads;

  // Grow the cache.
  if (pos0 + T > cache.capacity_) {
    const int64_t cap = std::max({pos0 + T, cache.capacity_ * 2, int64_t{64}});
    for (KvCache::LayerKv& l : cache.layers_) {
      l.k.resize(static_cast<size_t>(cap * nkv * dk));
      l.v.resize(static_cast<size_t>(cap * nkv * dv));
    }
    cache.capacity_ = cap;
  }

  const float* embed = w.embed.data<float>();
  for (int64_t t = 0; t < T; ++t)
    std::memcpy(x + t * H, embed + static_cast<int64_t>(ids[t]) * H, sizeof(float) * H);

  Buf h(static_cast<size_t>(T * H)), o(static_cast<size_t>(T * H));
  Buf q(static_cast<size_t>(T * nh * dk)), attn(static_cast<size_t>(T * nh * dv));
  for (size_t li = 0; li < w.layers.size(); ++li) {
    const Layer& L = w.layers[li];
    KvCache::LayerKv& kv = cache.layers_[li];
    float* kc = kv.k.data();
    float* vc = kv.v.data();
    cpu::rms_norm(x, T, H, H, L.attn_norm.weight.data<float>(), L.attn_norm.eps, h.data(), H);
    const Attention& A = L.attn;
    if (!c.mla) {
      const int64_t hd = c.head_dim;
      Buf kn(static_cast<size_t>(T * nkv * hd)), vn(static_cast<size_t>(T * nkv * hd));
      apply_linear(A.q, h.data(), T, q.data(), nh * hd, ad);
      apply_linear(A.k, h.data(), T, kn.data(), nkv * hd, ad);
      apply_linear(A.v, h.data(), T, vn.data(), nkv * hd, ad);
      if (A.q_norm.defined()) {
        cpu::rms_norm(q.data(), T, nh * hd, nh * hd, A.q_norm.weight.data<float>(), A.q_norm.eps, q.data(),
                      nh * hd);
        cpu::rms_norm(kn.data(), T, nkv * hd, nkv * hd, A.k_norm.weight.data<float>(), A.k_norm.eps,
                      kn.data(), nkv * hd);
      }
      if (c.clip_qkv) {
        const float lim = *c.clip_qkv;
        for (float* b : {q.data(), kn.data(), vn.data()}) {
          const int64_t n = b == q.data() ? T * nh * hd : T * nkv * hd;
          for (int64_t i = 0; i < n; ++i) b[i] = std::clamp(b[i], -lim, lim);
        }
      }
      cpu::rope(c.rope, q.data(), T, nh, nh * hd, hd, 0, pos0);
      cpu::rope(c.rope, kn.data(), T, nkv, nkv * hd, hd, 0, pos0);
      std::memcpy(kc + pos0 * nkv * hd, kn.data(), sizeof(float) * T * nkv * hd);
      std::memcpy(vc + pos0 * nkv * hd, vn.data(), sizeof(float) * T * nkv * hd);
    } else {
      const int64_t nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim, kvr = c.kv_lora_rank;
      if (c.q_lora_rank > 0) {
        const int64_t qr = c.q_lora_rank;
        Buf qa(static_cast<size_t>(T * qr));
        apply_linear(A.q_a, h.data(), T, qa.data(), qr, ad);
        cpu::rms_norm(qa.data(), T, qr, qr, A.q_a_norm.weight.data<float>(), A.q_a_norm.eps, qa.data(), qr);
        apply_linear(A.q_b, qa.data(), T, q.data(), nh * dk, ad);
      } else {
        apply_linear(A.q, h.data(), T, q.data(), nh * dk, ad);
      }
      Buf ckv(static_cast<size_t>(T * (kvr + rd))), lat(static_cast<size_t>(T * kvr));
      Buf kvb(static_cast<size_t>(T * nh * (nope + dv)));
      apply_linear(A.kv_a, h.data(), T, ckv.data(), kvr + rd, ad);
      cpu::rms_norm(ckv.data(), T, kvr, kvr + rd, A.kv_a_norm.weight.data<float>(), A.kv_a_norm.eps,
                    lat.data(), kvr);
      apply_linear(A.kv_b, lat.data(), T, kvb.data(), nh * (nope + dv), ad);
      cpu::rope(c.rope, q.data(), T, nh, nh * dk, dk, nope, pos0);
      cpu::rope(c.rope, ckv.data(), T, 1, kvr + rd, 0, kvr, pos0);
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t hh = 0; hh < nh; ++hh) {
          float* kd = kc + ((pos0 + t) * nh + hh) * dk;
          float* vd = vc + ((pos0 + t) * nh + hh) * dv;
          const float* src = kvb.data() + (t * nh + hh) * (nope + dv);
          std::memcpy(kd, src, sizeof(float) * nope);
          std::memcpy(kd + nope, ckv.data() + t * (kvr + rd) + kvr, sizeof(float) * rd);
          std::memcpy(vd, src + nope, sizeof(float) * dv);
        }
      }
    }
    cpu::attention(q.data(), T, nh, dk, nh * dk, kc, vc, nkv, dv, pos0, L.sliding_window, c.attn_scale,
                   attn.data(), nh * dv);
    apply_linear(A.o, attn.data(), T, o.data(), H, ad);
    for (int64_t i = 0; i < T * H; ++i) x[i] += o[i];

    cpu::rms_norm(x, T, H, H, L.ffn_norm.weight.data<float>(), L.ffn_norm.eps, h.data(), H);
    if (L.is_moe) {
      moe_block(c, L.moe, h.data(), T, o.data(), ad);
    } else {
      mlp_block(c, L.mlp, h.data(), T, o.data(), ad);
    }
    for (int64_t i = 0; i < T * H; ++i) x[i] += o[i];
  }
  cache.length_ = pos0 + T;
  return Status::Ok();
}

Result<ForwardOutput> TextModel::forward(std::span<const int32_t> ids, KvCache& cache,
                                         const LoraAdapter* adapter, const ForwardOptions& options) const {
  const TextConfig& c = config_;
  if (ids.empty()) return bad_input("no token ids to run");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= c.vocab_size) {
      return bad_input("token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
    }
  }
  if (adapter && adapter->base() != this) {
    return bad_input("LoRA adapter " + adapter->source() + " was loaded for another model");
  }
  if (cache.owner_ != this || cache.layers_.size() != static_cast<size_t>(c.num_layers)) {
    if (cache.length_ != 0 && cache.owner_ != nullptr && cache.owner_ != this) {
      return bad_input("KV cache holds a sequence of another model");
    }
    cache.layers_.assign(static_cast<size_t>(c.num_layers), {});
    cache.capacity_ = 0;
    cache.length_ = 0;
    cache.owner_ = this;
  }
  const int64_t T = static_cast<int64_t>(ids.size()), H = c.hidden_size, V = c.vocab_size;
  const int64_t chunk = std::max<int64_t>(1, options.chunk_size);
  ForwardOutput out;
  if (options.logits == ForwardOptions::Logits::kAll) out.logits = Tensor::empty({T, V}, DType::kF32);
  if (options.logits == ForwardOptions::Logits::kLast) out.logits = Tensor::empty({1, V}, DType::kF32);
  if (options.hidden_states) out.hidden_states = Tensor::empty({T, H}, DType::kF32);
  Buf x, hn;
  for (int64_t b = 0; b < T; b += chunk) {
    const int64_t n = std::min(chunk, T - b);
    x.resize(static_cast<size_t>(n * H));
    HILUM_RETURN_IF_ERROR(run_chunk(ids.subspan(b, n), cache, adapter, x.data()));
    const bool last_chunk = b + n == T;
    const bool want_all = options.logits == ForwardOptions::Logits::kAll;
    const bool want_last = options.logits == ForwardOptions::Logits::kLast && last_chunk;
    if (!want_all && !want_last && !options.hidden_states) continue;
    hn.resize(static_cast<size_t>(n * H));
    cpu::rms_norm(x.data(), n, H, H, weights_.final_norm.weight.data<float>(), weights_.final_norm.eps,
                  hn.data(), H);
    if (options.hidden_states)
      std::memcpy(out.hidden_states.data<float>() + b * H, hn.data(), sizeof(float) * n * H);
    if (want_all) {
      apply_linear(weights_.lm_head, hn.data(), n, out.logits.data<float>() + b * V, V, adapter);
    } else if (want_last) {
      apply_linear(weights_.lm_head, hn.data() + (n - 1) * H, 1, out.logits.data<float>(), V, adapter);
    }
  }
  return out;
}

Result<ForwardOutput> TextModel::forward(std::span<const int32_t> ids, const LoraAdapter* adapter,
                                         const ForwardOptions& options) const {
  KvCache cache;
  return forward(ids, cache, adapter, options);
}

// ---- merging -------------------------------------------------------------------------

namespace {

// W[row_offset + i, :] += scale * B[i, :] A for one term; W is [rows_total, in].
void fold_term(float* w, int64_t in, const LoraTerm& t) {
  const int64_t r = t.a.dim(0), rows = t.b.dim(0);
  sgemm(false, rows, in, r, t.scale, t.b.data<float>(), r, t.a.data<float>(), in, 1.0f, w + t.row_offset * in,
        in);
}

void fold_linear(Linear& l, const LoraAdapter& ad) {
  if (l.slot < 0 || ad.terms(l.slot).empty()) return;
  l.weight = l.weight.clone();
  for (const LoraTerm& t : ad.terms(l.slot)) fold_term(l.weight.data<float>(), l.in(), t);
}

void fold_experts(Experts& e, const LoraAdapter& ad) {
  bool gu = false, dn = false;
  for (int64_t x = 0; x < e.num; ++x) {
    gu |= !ad.terms(e.gate_up_slot0 + static_cast<int>(x)).empty();
    dn |= !ad.terms(e.down_slot0 + static_cast<int>(x)).empty();
  }
  if (gu) e.gate_up = e.gate_up.clone();
  if (dn) e.down = e.down.clone();
  for (int64_t x = 0; x < e.num; ++x) {
    for (const LoraTerm& t : ad.terms(e.gate_up_slot0 + static_cast<int>(x))) {
      fold_term(e.gate_up.data<float>() + x * 2 * e.inter * e.hidden, e.hidden, t);
    }
    for (const LoraTerm& t : ad.terms(e.down_slot0 + static_cast<int>(x))) {
      fold_term(e.down.data<float>() + x * e.hidden * e.inter, e.inter, t);
    }
  }
}

}  // namespace

Result<std::shared_ptr<const TextModel>> TextModel::merged(const LoraAdapter& adapter) const {
  if (adapter.base() != this)
    return bad_input("LoRA adapter " + adapter.source() + " was loaded for another model");
  Weights w = weights_;
  const bool tied_adapted =
      config_.tie_word_embeddings && w.lm_head.slot >= 0 && !adapter.terms(w.lm_head.slot).empty();
  for (Layer& L : w.layers) {
    Attention& a = L.attn;
    for (Linear* l : {&a.q, &a.k, &a.v, &a.o, &a.q_a, &a.q_b, &a.kv_a, &a.kv_b}) {
      if (l->defined()) fold_linear(*l, adapter);
    }
    for (Linear* l : {&L.mlp.gate, &L.mlp.up, &L.mlp.down, &L.moe.router, &L.moe.shared.gate,
                      &L.moe.shared.up, &L.moe.shared.down, &L.moe.shared_gate}) {
      if (l->defined()) fold_linear(*l, adapter);
    }
    if (L.is_moe) fold_experts(L.moe.experts, adapter);
  }
  // A tied lm_head gets its own copy so the input embedding stays unadapted.
  if (tied_adapted) w.lm_head.weight = w.lm_head.weight.clone();
  fold_linear(w.lm_head, adapter);
  auto model = std::shared_ptr<TextModel>(new TextModel());
  model->config_ = config_;
  model->weights_ = std::move(w);
  model->dir_ = dir_;
  return std::shared_ptr<const TextModel>(std::move(model));
}

}  // namespace hilum::moe
