#include "fusion/fusion_head.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "fusion/cross_attention.h"
#include "model/gemm.h"
#include "model/safetensors.h"

namespace hilum {
namespace {

constexpr float kLayerNormEps = 1e-5f;

// y[r, o] = sum_i x[r, i] * w[o, i] + b[o]   (torch.nn.Linear)
void linear(const float* x, int64_t rows, int64_t in, const float* w, const float* b, int64_t out, float* y) {
  sgemm(/*trans_b=*/true, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
  if (b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) y[r * out + o] += b[o];
}

void layer_norm(float* x, int64_t rows, int64_t width, const float* gamma, const float* beta) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * width;
    double mean = 0;
    for (int64_t i = 0; i < width; ++i) mean += xr[i];
    mean /= width;
    double var = 0;
    for (int64_t i = 0; i < width; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= width;
    const float inv = static_cast<float>(1.0 / std::sqrt(var + kLayerNormEps));
    for (int64_t i = 0; i < width; ++i) xr[i] = (xr[i] - static_cast<float>(mean)) * inv * gamma[i] + beta[i];
  }
}

float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }
float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

Result<FusionConfig> parse_config(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return bad_input(source + ": metadata \"hilum.fusion\" is not valid JSON (" + e.what() + ")");
  }
  FusionConfig c;
  const std::pair<const char*, int64_t*> fields[] = {{"image_channels", &c.image_channels},
                                                     {"image_tokens", &c.image_tokens},
                                                     {"text_dim", &c.text_dim},
                                                     {"dim", &c.dim},
                                                     {"heads", &c.heads},
                                                     {"hidden", &c.hidden}};
  for (auto [key, dst] : fields) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0) {
      return bad_input(source + ": fusion config needs a positive integer \"" + key + "\"");
    }
    *dst = j[key].get<int64_t>();
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "candidate_features") {
      if (!value.is_array()) return bad_input(source + ": fusion config \"candidate_features\" is not a list");
      for (const auto& name : value) {
        if (!name.is_string() || name.get<std::string>().empty()) {
          return bad_input(source + ": fusion config \"candidate_features\" holds " + name.dump() +
                           ", not a feature name");
        }
        c.candidate_features.push_back(name.get<std::string>());
      }
    } else if (std::none_of(std::begin(fields), std::end(fields), [&](const auto& f) { return key == f.first; })) {
      return bad_input(source + ": unknown fusion config field \"" + key + "\"");
    }
  }
  return c;
}

}  // namespace

std::map<std::string, Shape> FusionHead::expected_shapes(const FusionConfig& c) {
  const auto f = static_cast<int64_t>(c.candidate_features.size());
  std::map<std::string, Shape> shapes = {
      {"image_proj.weight", {c.dim, c.image_channels}},
      {"image_proj.bias", {c.dim}},
      {"image_pos", {c.image_tokens, c.dim}},
      {"image_norm.weight", {c.dim}},
      {"image_norm.bias", {c.dim}},
      {"text_norm.weight", {c.text_dim}},
      {"text_norm.bias", {c.text_dim}},
      {"q_proj.weight", {c.dim, c.dim}},
      {"q_proj.bias", {c.dim}},
      {"k_proj.weight", {c.dim, c.text_dim}},
      {"k_proj.bias", {c.dim}},
      {"v_proj.weight", {c.dim, c.text_dim}},
      {"v_proj.bias", {c.dim}},
      {"o_proj.weight", {c.dim, c.dim}},
      {"o_proj.bias", {c.dim}},
      {"fused_norm.weight", {c.dim}},
      {"fused_norm.bias", {c.dim}},
      {"head.0.weight", {c.hidden, 2 * c.dim + f}},
      {"head.0.bias", {c.hidden}},
      {"head.2.weight", {2, c.hidden}},
      {"head.2.bias", {2}},
  };
  if (f > 0) {
    shapes["feature_mean"] = {f};
    shapes["feature_scale"] = {f};
  }
  return shapes;
}

Result<FusionHead> FusionHead::from_tensors(const FusionConfig& config,
                                            const std::map<std::string, Tensor>& tensors,
                                            const std::string& source) {
  if (config.dim <= 0 || config.heads <= 0 || config.dim % config.heads != 0) {
    return bad_input(source + ": fusion config dim " + std::to_string(config.dim) +
                     " is not divisible by heads " + std::to_string(config.heads));
  }
  FusionHead head;
  head.config_ = config;
  for (const auto& [name, shape] : expected_shapes(config)) {
    auto it = tensors.find(name);
    if (it == tensors.end()) return bad_input(source + ": missing tensor '" + name + "'");
    const Tensor& t = it->second;
    if (t.shape() != shape) {
      return bad_input(source + ": tensor '" + name + "' has shape " + shape_string(t.shape()) +
                       ", expected " + shape_string(shape));
    }
    if (!dtype_is_float(t.dtype())) {
      return bad_input(source + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype())) +
                       ", expected a float type");
    }
    HILUM_ASSIGN_OR_RETURN(Tensor f, t.to_dtype(DType::kF32));
    head.weights_[name] = f.clone();
  }
  return head;
}

Result<FusionHead> FusionHead::load(const std::filesystem::path& path) {
  HILUM_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(path));
  auto meta = file.metadata().find("hilum.fusion");
  if (meta == file.metadata().end()) {
    return bad_input(path.string() + ": metadata has no \"hilum.fusion\" configuration");
  }
  HILUM_ASSIGN_OR_RETURN(FusionConfig config, parse_config(meta->second, path.string()));
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : expected_shapes(config)) {
    if (!file.contains(name)) return bad_input(path.string() + ": missing tensor '" + name + "'");
    HILUM_ASSIGN_OR_RETURN(Tensor t, file.get(name));
    tensors[name] = t;
  }
  return from_tensors(config, tensors, path.string());
}

Result<FusionOutput> FusionHead::forward(const Tensor& image_tokens, const Tensor& text_states,
                                         Device attention_device, const Tensor& features) const {
  const FusionConfig& c = config_;
  if (!image_tokens.defined() || image_tokens.rank() != 3 || image_tokens.dtype() != DType::kF32 ||
      image_tokens.dim(1) != c.image_tokens || image_tokens.dim(2) != c.image_channels) {
    return bad_input("fusion head: image tokens must be f32 [N, " + std::to_string(c.image_tokens) + ", " +
                     std::to_string(c.image_channels) + "], got " +
                     (image_tokens.defined() ? image_tokens.describe() : std::string("nothing")));
  }
  if (!text_states.defined() || text_states.rank() != 2 || text_states.dtype() != DType::kF32 ||
      text_states.dim(1) != c.text_dim) {
    return bad_input("fusion head: text states must be f32 [T, " + std::to_string(c.text_dim) + "], got " +
                     (text_states.defined() ? text_states.describe() : std::string("nothing")));
  }
  auto w = [&](const char* name) { return weights_.at(name).data<float>(); };
  const int64_t n = image_tokens.dim(0), k = c.image_tokens, d = c.dim, rows = n * k;
  const auto f = static_cast<int64_t>(c.candidate_features.size());
  if (f > 0 && (!features.defined() || features.rank() != 2 || features.dtype() != DType::kF32 ||
                features.dim(0) != n || features.dim(1) != f)) {
    return bad_input("fusion head: candidate features must be f32 [" + std::to_string(n) + ", " +
                     std::to_string(f) + "], got " +
                     (features.defined() ? features.describe() : std::string("nothing")));
  }
  const int64_t t_len = text_states.dim(0);

  // x = LN(image_proj(tokens) + pos)
  Tensor x = Tensor::empty({rows, d}, DType::kF32);
  linear(image_tokens.data<float>(), rows, c.image_channels, w("image_proj.weight"), w("image_proj.bias"), d,
         x.data<float>());
  float* xp = x.data<float>();
  const float* pos = w("image_pos");
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < d; ++i) xp[r * d + i] += pos[(r % k) * d + i];
  layer_norm(xp, rows, d, w("image_norm.weight"), w("image_norm.bias"));

  // a = o_proj(attention(q, k, v)); zero without text.
  Tensor y = x.clone();
  if (t_len > 0) {
    Tensor text = text_states.clone();
    layer_norm(text.data<float>(), t_len, c.text_dim, w("text_norm.weight"), w("text_norm.bias"));
    Tensor q = Tensor::empty({rows, d}, DType::kF32);
    Tensor kt = Tensor::empty({t_len, d}, DType::kF32);
    Tensor vt = Tensor::empty({t_len, d}, DType::kF32);
    linear(xp, rows, d, w("q_proj.weight"), w("q_proj.bias"), d, q.data<float>());
    linear(text.data<float>(), t_len, c.text_dim, w("k_proj.weight"), w("k_proj.bias"), d, kt.data<float>());
    linear(text.data<float>(), t_len, c.text_dim, w("v_proj.weight"), w("v_proj.bias"), d, vt.data<float>());
    const float scale = 1.0f / std::sqrt(static_cast<float>(d / c.heads));
    HILUM_ASSIGN_OR_RETURN(Tensor attended,
                           cross_attention(q, kt, vt, static_cast<int>(c.heads), scale, attention_device));
    Tensor a = Tensor::empty({rows, d}, DType::kF32);
    linear(attended.data<float>(), rows, d, w("o_proj.weight"), w("o_proj.bias"), d, a.data<float>());
    float* yp = y.data<float>();
    const float* ap = a.data<float>();
    for (int64_t i = 0; i < rows * d; ++i) yp[i] += ap[i];
  }
  layer_norm(y.data<float>(), rows, d, w("fused_norm.weight"), w("fused_norm.bias"));

  // z = [mean_k x, mean_k y, standardised features] -> MLP -> 2 logits
  const int64_t zw = 2 * d + f;
  Tensor z = Tensor::zeros({n, zw}, DType::kF32);
  float* zp = z.data<float>();
  const float* yp = y.data<float>();
  const float* fmean = f > 0 ? w("feature_mean") : nullptr;
  const float* fscale = f > 0 ? w("feature_scale") : nullptr;
  for (int64_t c0 = 0; c0 < n; ++c0) {
    float* zr = zp + c0 * zw;
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t i = 0; i < d; ++i) {
        zr[i] += xp[(c0 * k + j) * d + i];
        zr[d + i] += yp[(c0 * k + j) * d + i];
      }
    }
    for (int64_t i = 0; i < 2 * d; ++i) zr[i] /= static_cast<float>(k);
    for (int64_t i = 0; i < f; ++i) {
      zr[2 * d + i] = (features.data<float>()[c0 * f + i] - fmean[i]) * fscale[i];
    }
  }
  Tensor hidden = Tensor::empty({n, c.hidden}, DType::kF32);
  linear(zp, n, zw, w("head.0.weight"), w("head.0.bias"), c.hidden, hidden.data<float>());
  for (float& v : hidden.span<float>()) v = gelu(v);
  FusionOutput out;
  out.logits = Tensor::empty({n, 2}, DType::kF32);
  linear(hidden.data<float>(), n, c.hidden, w("head.2.weight"), w("head.2.bias"), 2,
         out.logits.data<float>());
  out.probability = Tensor::empty({n}, DType::kF32);
  out.malignancy = Tensor::empty({n}, DType::kF32);
  for (int64_t i = 0; i < n; ++i) {
    out.probability.data<float>()[i] = sigmoid(out.logits.data<float>()[2 * i]);
    out.malignancy.data<float>()[i] = sigmoid(out.logits.data<float>()[2 * i + 1]);
  }
  return out;
}

Result<Tensor> image_tokens_from_feature_maps(const Tensor& maps) {
  if (!maps.defined() || maps.rank() != 4 || maps.dtype() != DType::kF32 || maps.device() != Device::kCPU) {
    return bad_input("image tokens: feature maps must be an f32 CPU tensor [N, C, h, w]");
  }
  const int64_t n = maps.dim(0), c = maps.dim(1), hw = maps.dim(2) * maps.dim(3);
  Tensor out = Tensor::empty({n, hw, c}, DType::kF32);
  const float* src = maps.data<float>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < hw; ++p) dst[(i * hw + p) * c + ch] = src[(i * c + ch) * hw + p];
  return out;
}

}  // namespace hilum
