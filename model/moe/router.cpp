#include "model/moe/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "model/parallel.h"

namespace hilum::moe {
namespace {

// Indices of the k largest values of s[0:n] (ties: the lower index first), in
// descending order of value.
void top_k(const float* s, int n, int k, int* out) {
  std::vector<int> idx(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) idx[i] = i;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    if (s[a] != s[b]) return s[a] > s[b];
    return a < b;
  });
  for (int i = 0; i < k; ++i) out[i] = idx[i];
}

void softmax(const float* x, int n, float* y) {
  float mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) y[i] *= inv;
}

// Keeps the topk_group best groups (by `group_score`) and masks the rest of
// `choice` to -inf.
template <typename GroupScore>
void mask_groups(const RouterConfig& rc, float* choice, GroupScore group_score) {
  const int E = rc.num_experts, G = rc.n_group, per = E / G;
  std::vector<float> gs(static_cast<size_t>(G));
  for (int g = 0; g < G; ++g) gs[g] = group_score(choice + g * per, per);
  std::vector<int> keep(static_cast<size_t>(rc.topk_group));
  top_k(gs.data(), G, rc.topk_group, keep.data());
  std::vector<char> kept(static_cast<size_t>(G), 0);
  for (int g : keep) kept[g] = 1;
  for (int g = 0; g < G; ++g) {
    if (!kept[g])
      std::fill(choice + g * per, choice + (g + 1) * per, -std::numeric_limits<float>::infinity());
  }
}

}  // namespace

void route_tokens(const RouterConfig& rc, const float* logits, int64_t T, const float* score_bias,
                  int32_t* expert_ids, float* expert_weights) {
  const int E = rc.num_experts, K = rc.top_k;
  parallel_for(T, 64, [&](int64_t t0, int64_t t1) {
    std::vector<float> score(static_cast<size_t>(E)), choice(static_cast<size_t>(E));
    std::vector<int> idx(static_cast<size_t>(K));
    for (int64_t t = t0; t < t1; ++t) {
      const float* lg = logits + t * E;
      int32_t* ids = expert_ids + t * K;
      float* w = expert_weights + t * K;
      switch (rc.kind) {
        case RouterKind::kSoftmaxTopK:
        case RouterKind::kSoftmaxGreedy:
        case RouterKind::kSoftmaxGroupLimited: {
          softmax(lg, E, score.data());
          choice = score;
          if (rc.kind == RouterKind::kSoftmaxGroupLimited) {
            mask_groups(rc, choice.data(), [](const float* s, int n) { return *std::max_element(s, s + n); });
          }
          top_k(choice.data(), E, K, idx.data());
          double sum = 0;
          for (int i = 0; i < K; ++i) sum += score[idx[i]];
          for (int i = 0; i < K; ++i) {
            ids[i] = idx[i];
            float v = score[idx[i]];
            if (rc.kind == RouterKind::kSoftmaxTopK) {
              if (rc.norm_topk_prob) v = static_cast<float>(v / sum);
            } else {
              v *= rc.routed_scaling_factor;
            }
            w[i] = v;
          }
          break;
        }
        case RouterKind::kSigmoidNoAuxTc: {
          for (int e = 0; e < E; ++e) {
            score[e] = 1.0f / (1.0f + std::exp(-lg[e]));
            choice[e] = score[e] + (score_bias ? score_bias[e] : 0.0f);
          }
          mask_groups(rc, choice.data(), [](const float* s, int n) {
            float a = -INFINITY, b = -INFINITY;  // the two largest
            for (int i = 0; i < n; ++i) {
              if (s[i] > a) {
                b = a;
                a = s[i];
              } else if (s[i] > b) {
                b = s[i];
              }
            }
            return a + b;
          });
          top_k(choice.data(), E, K, idx.data());
          double sum = 0;
          for (int i = 0; i < K; ++i) sum += score[idx[i]];
          const double denom = rc.norm_topk_prob ? sum + 1e-20 : 1.0;
          for (int i = 0; i < K; ++i) {
            ids[i] = idx[i];
            w[i] = static_cast<float>(score[idx[i]] / denom) * rc.routed_scaling_factor;
          }
          break;
        }
      }
    }
  });
}

}  // namespace hilum::moe
