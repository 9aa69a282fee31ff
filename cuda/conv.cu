// The convolution planner: gathers candidates from the families in
// conv_internal.h, checks each on pseudo-random data against a direct
// computation of sampled outputs (conv_check.h), times the correct ones from
// a CUDA graph and keeps the fastest.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/conv.h"
#include "cuda/conv_check.h"
#include "cuda/conv_internal.h"
#include "cuda/epilogue.h"
#include "model/env.h"

namespace hilum::cuda {
namespace {

using detail::ConvCandidate;
using detail::ConvRunner;
using detail::dnn_check;

// Outputs compared per candidate.
constexpr int kSamples = 768;

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::atoi(v);
}

std::string mib(size_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(bytes < (size_t{10} << 20) ? 1 : 0)
     << static_cast<double>(bytes) / (1 << 20) << " MiB";
  return os.str();
}

std::string fmt_ms(double ms) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(ms < 1 ? 4 : 3) << ms << " ms";
  return os.str();
}

}  // namespace

const char* epilogue_name(ConvEpilogue e) {
  switch (e) {
    case ConvEpilogue::kNone:
      return "none";
    case ConvEpilogue::kBiasRelu:
      return "bias+relu";
    case ConvEpilogue::kBiasResidualRelu:
      return "bias+residual+relu";
  }
  return "?";
}

std::string ConvShape::describe() const {
  std::ostringstream os;
  os << "n" << n << " c" << c << " " << h << "x" << w << " -> k" << k << " " << r << "x" << s << " s"
     << stride << " p" << pad;
  return os.str();
}

ConvSearch ConvSearch::from_env() {
  ConvSearch s;
  if (const char* f = std::getenv("HILUM_CONV_FAMILIES"); f && *f) {
    const std::string v = f;
    s.graph = v.find("graph") != std::string::npos;
    s.legacy = v.find("legacy") != std::string::npos;
    s.gemm = v.find("gemm") != std::string::npos;
  }
  if (!env_switch("HILUM_CUDNN_FUSED", true)) s.fused = false;
  if (env_switch("HILUM_CUDNN_RTC", false)) s.runtime_compiled = true;
  s.per_family = std::max(1, env_int("HILUM_CONV_CANDIDATES", s.per_family));
  s.budget_ms = std::max(0, env_int("HILUM_CONV_BUDGET_MS", static_cast<int>(s.budget_ms)));
  return s;
}

struct ConvPlan {
  ConvShape shape;
  ConvEpilogue epilogue = ConvEpilogue::kNone;
  Precision precision = Precision::kF16;
  std::unique_ptr<ConvRunner> runner;
  float ms = 0;
  bool capturable = true;
  bool verified = true;
  double planning_ms = 0;
  std::vector<std::string> report;  // one line per candidate
};

struct Convolutions::Impl {
  const Stream* stream = nullptr;
  Precision precision = Precision::kF16;
  cudnnHandle_t dnn = nullptr;
  cublasLtHandle_t lt = nullptr;
  ConvSearch search = ConvSearch::from_env();
  std::map<std::pair<decltype(ConvShape{}.key()), ConvEpilogue>, std::unique_ptr<ConvPlan>> plans;
  DeviceBuffer check_indices, check_values;  // kSamples int64; 3 x kSamples f32

  ~Impl() {
    plans.clear();
    if (lt) cublasLtDestroy(lt);
    if (dnn) cudnnDestroy(dnn);
  }

  detail::ConvContext context() const {
    detail::ConvContext c;
    c.dnn = dnn;
    c.lt = lt;
    c.stream = stream;
    c.precision = precision;
    return c;
  }

  // The runner, then the epilogue pass when the runner leaves it out.
  Status enqueue(const ConvRunner& runner, const ConvShape& shape, ConvEpilogue epilogue,
                 const ConvArgs& a) const {
    HILUM_RETURN_IF_ERROR(runner.enqueue(a));
    if (runner.fused() || epilogue == ConvEpilogue::kNone) return Status::Ok();
    return bias_residual_relu_nhwc(*stream, precision, a.y, a.bias_f32,
                                   epilogue == ConvEpilogue::kBiasResidualRelu ? a.z : nullptr,
                                   shape.n * shape.out_h() * shape.out_w(), shape.k, true);
  }

  // Runs `runner` once on the (pseudo-random) trial data and compares the
  // sampled outputs with the direct computation. Ok, or what is wrong.
  Status verify(const ConvRunner& runner, const ConvShape& shape, ConvEpilogue epilogue, const ConvArgs& a,
                int samples) {
    const size_t y_bytes = static_cast<size_t>(shape.n * shape.out_h() * shape.out_w() * shape.k) * 2;
    HILUM_RETURN_IF_ERROR(stream->memset(a.y, 0xff, y_bytes));  // NaN: unwritten outputs show
    HILUM_RETURN_IF_ERROR(enqueue(runner, shape, epilogue, a));
    HILUM_RETURN_IF_ERROR(stream->synchronize());
    float* values = check_values.as<float>();
    HILUM_RETURN_IF_ERROR(conv_reference_samples(*stream, precision, shape, epilogue, a,
                                                 check_indices.as<int64_t>(), samples, values,
                                                 values + kSamples, values + 2 * kSamples));
    std::vector<float> host(3 * kSamples);
    HILUM_RETURN_IF_ERROR(stream->copy_to_host(host.data(), values, host.size() * sizeof(float)));
    HILUM_RETURN_IF_ERROR(stream->synchronize());
    const double u = precision == Precision::kF16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    // Outputs beyond the storage type's range say nothing about the kernel.
    const double largest = precision == Precision::kF16 ? 65504.0 * 0.99 : 3.0e38;
    int bad = 0, worst = -1;
    double worst_ratio = 0;
    for (int i = 0; i < samples; ++i) {
      const double ref = host[i], scale = host[kSamples + i], got = host[2 * kSamples + i];
      if (!(std::fabs(ref) < largest)) continue;
      // One rounding of the result, one of an intermediate (unfused) or of the
      // bias (native-precision bias), the f32 sums: within 4 unit roundoffs.
      const double tol = 4 * u * scale + 1e-6;
      const double err = std::fabs(got - ref);
      const double ratio = std::isfinite(got) ? err / tol : 1e30;
      if (ratio > 1) ++bad;
      if (ratio > worst_ratio) {
        worst_ratio = ratio;
        worst = i;
      }
    }
    if (bad == 0) return Status::Ok();
    std::ostringstream os;
    os << "wrong result: " << bad << " of " << samples << " sampled outputs off; worst got "
       << host[2 * kSamples + worst] << " want " << host[worst] << " (scale " << host[kSamples + worst]
       << ")";
    return internal_error(os.str());
  }

  Result<const ConvPlan*> make_plan(const ConvShape& shape, ConvEpilogue epilogue, const ConvArgs& trial,
                                    size_t workspace_limit) {
    const auto t0 = std::chrono::steady_clock::now();
    auto plan = std::make_unique<ConvPlan>();
    plan->shape = shape;
    plan->epilogue = epilogue;
    plan->precision = precision;
    const size_t limit = std::min(workspace_limit, trial.workspace_bytes);
    const bool residual = epilogue == ConvEpilogue::kBiasResidualRelu;
    if (residual && !trial.z)
      return internal_error("conv " + shape.describe() + ": residual epilogue without z");

    // Test data: x and z pseudo-random, real weights and bias.
    const int64_t outputs = shape.n * shape.out_h() * shape.out_w() * shape.k;
    HILUM_RETURN_IF_ERROR(fill_random(*stream, precision, const_cast<void*>(trial.x),
                                      shape.n * shape.h * shape.w * shape.c, 0x5eed, 1.0f));
    if (residual) {
      HILUM_RETURN_IF_ERROR(
          fill_random(*stream, precision, const_cast<void*>(trial.z), outputs, 0x2e51, 1.0f));
    }
    const std::vector<int64_t> indices = sample_indices(outputs, shape.k, kSamples);
    const int samples = static_cast<int>(indices.size());
    HILUM_RETURN_IF_ERROR(stream->copy_to_device(check_indices.data(), indices.data(), indices.size() * 8));
    HILUM_RETURN_IF_ERROR(stream->synchronize());

    // Candidates, family by family, then tried round-robin so that each
    // family's first choice is tried before anyone's second.
    const detail::ConvContext ctx = context();
    std::vector<std::vector<ConvCandidate>> families;
    std::string note;
    auto add = [&](const char* name, Result<std::vector<ConvCandidate>> found) {
      if (!note.empty()) plan->report.push_back("    (" + note + ")");
      note.clear();
      if (!found.ok()) {
        plan->report.push_back(std::string("    ") + name + ": " + found.error().message());
        return;
      }
      if (!found->empty()) families.push_back(std::move(found).value());
    };
    const bool want_fused = search.fused && epilogue != ConvEpilogue::kNone;
    const bool want_unfused = search.unfused || epilogue == ConvEpilogue::kNone;
    if (search.graph && want_fused)
      add("graph-fused", detail::graph_candidates(ctx, shape, epilogue, true, false, search, limit, &note));
    if (search.gemm && (want_fused || epilogue == ConvEpilogue::kNone))
      add("gemm", detail::gemm_candidates(ctx, shape, epilogue, trial.bias, search, limit));
    if (search.graph && want_unfused)
      add("graph", detail::graph_candidates(ctx, shape, epilogue, false, false, search, limit, &note));
    if (search.legacy && want_fused)
      add("legacy-fused", detail::legacy_candidates(ctx, shape, epilogue, true, search, limit));
    if (search.legacy && want_unfused)
      add("legacy", detail::legacy_candidates(ctx, shape, epilogue, false, search, limit));
    if (search.graph && want_fused)
      add("graph-fused-f32bias",
          detail::graph_candidates(ctx, shape, epilogue, true, true, search, limit, &note));
    std::vector<ConvCandidate*> order;
    for (size_t rank = 0;; ++rank) {
      bool any = false;
      for (auto& f : families) {
        if (rank < f.size()) {
          order.push_back(&f[rank]);
          any = true;
        }
      }
      if (!any) break;
    }

    struct Tried {
      std::unique_ptr<ConvRunner> runner;
      float ms;
      bool capturable;
      size_t line;
    };
    std::vector<Tried> working;
    // Candidates that ran but failed the check, kept in case every one does
    // (then the check itself is suspect, and the engine must still run).
    std::vector<Tried> unverified;
    std::string last_error = order.empty() ? "no candidate from any family" : "";
    for (ConvCandidate* c : order) {
      const std::string name = c->family + " " + c->label;
      if (!working.empty() && elapsed_ms(t0) > search.budget_ms) {
        plan->report.push_back("    " + name + ": not tried (planning budget)");
        continue;
      }
      const auto tb = std::chrono::steady_clock::now();
      auto built = c->build();
      const double build_ms = elapsed_ms(tb);
      if (!built.ok()) {
        last_error = name + ": " + built.error().message();
        plan->report.push_back("    " + name + ": cannot build: " + built.error().message());
        continue;
      }
      std::unique_ptr<ConvRunner> runner = std::move(built).value();
      ConvArgs args = trial;
      args.workspace_bytes = runner->workspace();
      if (runner->workspace() > limit) {
        plan->report.push_back("    " + name + ": needs " + mib(runner->workspace()) + " of workspace");
        continue;
      }
      if (Status ok = verify(*runner, shape, epilogue, args, samples); !ok.ok()) {
        last_error = name + ": " + ok.error().message();
        plan->report.push_back("    " + name + ": rejected: " + ok.error().message());
        HILUM_RETURN_IF_ERROR(stream->synchronize());
        if (ok.error().message().rfind("wrong result", 0) == 0 && unverified.empty()) {
          auto t = time_on_stream(
              *stream, [&] { return enqueue(*runner, shape, epilogue, args); }, 1, 3);
          if (t.ok()) unverified.push_back({std::move(runner), *t, true, plan->report.size() - 1});
        }
        continue;
      }
      auto run = [&] { return enqueue(*runner, shape, epilogue, args); };
      bool capturable = true;
      float ms = 0;
      if (auto in_graph = time_graph_adaptive(*stream, run, 0.15f, 16, 2); in_graph.ok()) {
        ms = *in_graph;
      } else {
        capturable = false;
        auto eager = time_on_stream(*stream, run, 1, 3);
        if (!eager.ok()) {
          last_error = name + ": " + eager.error().message();
          plan->report.push_back("    " + name + ": failed while timed: " + eager.error().message());
          HILUM_RETURN_IF_ERROR(stream->synchronize());
          continue;
        }
        ms = *eager;
      }
      std::ostringstream line;
      line << "    " << name << (runner->fused() || epilogue == ConvEpilogue::kNone ? "" : " + epilogue pass")
           << ": " << fmt_ms(ms) << ", ws " << mib(runner->workspace());
      if (build_ms >= 1) line << ", built in " << static_cast<int>(build_ms) << " ms";
      if (!capturable) line << ", NOT capturable in a CUDA graph";
      plan->report.push_back(line.str());
      working.push_back({std::move(runner), ms, capturable, plan->report.size() - 1});
    }
    // The fastest one a graph can hold (the engines replay graphs), else the fastest.
    Tried* best = nullptr;
    for (Tried& t : working) {
      const bool better = !best || (t.capturable && !best->capturable) ||
                          (t.capturable == best->capturable && t.ms < best->ms);
      if (better) best = &t;
    }
    plan->planning_ms = elapsed_ms(t0);
    if (!best && !unverified.empty()) {
      best = &unverified.front();
      plan->report[best->line] += "  [USED ANYWAY: no candidate passed the check]";
      plan->verified = false;
    }
    if (!best) {
      return internal_error("no working " + std::string(precision_name(precision)) +
                            " implementation for conv " + shape.describe() + " (" + epilogue_name(epilogue) +
                            ") within " + mib(limit) + " of workspace; last failure: " + last_error);
    }
    plan->report[best->line][2] = '*';
    plan->ms = best->ms;
    plan->capturable = best->capturable;
    plan->runner = std::move(best->runner);
    const ConvPlan* result = plan.get();
    plans[{shape.key(), epilogue}] = std::move(plan);
    return result;
  }
};

Convolutions::Convolutions(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Convolutions::~Convolutions() = default;

Result<std::unique_ptr<Convolutions>> Convolutions::create(const Stream& stream, Precision precision) {
  auto impl = std::make_unique<Impl>();
  impl->stream = &stream;
  impl->precision = precision;
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnCreate(&impl->dnn), "cudnnCreate"));
  HILUM_RETURN_IF_ERROR(dnn_check(cudnnSetStream(impl->dnn, as_stream(stream.native())), "cudnnSetStream"));
  if (cublasLtCreate(&impl->lt) != CUBLAS_STATUS_SUCCESS)
    impl->lt = nullptr;  // the GEMM family is then skipped
  HILUM_ASSIGN_OR_RETURN(impl->check_indices, DeviceBuffer::allocate(kSamples * sizeof(int64_t)));
  HILUM_ASSIGN_OR_RETURN(impl->check_values, DeviceBuffer::allocate(3 * kSamples * sizeof(float)));
  return std::unique_ptr<Convolutions>(new Convolutions(std::move(impl)));
}

Precision Convolutions::precision() const { return impl_->precision; }

void Convolutions::set_search(const ConvSearch& search) { impl_->search = search; }

Result<const ConvPlan*> Convolutions::plan(const ConvShape& shape, ConvEpilogue epilogue,
                                           const ConvArgs& trial, size_t workspace_limit) {
  auto it = impl_->plans.find({shape.key(), epilogue});
  if (it != impl_->plans.end()) return static_cast<const ConvPlan*>(it->second.get());
  return impl_->make_plan(shape, epilogue, trial, workspace_limit);
}

Status Convolutions::run(const ConvPlan& plan, const ConvArgs& args) const {
  if (args.workspace_bytes < plan.runner->workspace()) {
    return internal_error("conv " + plan.shape.describe() + ": workspace of " +
                          std::to_string(args.workspace_bytes) + " bytes, needs " +
                          std::to_string(plan.runner->workspace()));
  }
  return impl_->enqueue(*plan.runner, plan.shape, plan.epilogue, args);
}

size_t Convolutions::workspace_bytes(const ConvPlan& plan) { return plan.runner->workspace(); }

bool Convolutions::fused(const ConvPlan& plan) {
  return plan.runner->fused() || plan.epilogue == ConvEpilogue::kNone;
}

float Convolutions::planned_ms(const ConvPlan& plan) { return plan.ms; }

bool Convolutions::checked(const ConvPlan& plan) { return plan.verified; }

std::string Convolutions::describe(const ConvPlan& plan) {
  std::ostringstream os;
  os << plan.shape.describe() << " " << epilogue_name(plan.epilogue) << ": " << plan.runner->describe()
     << (fused(plan) ? "" : " + epilogue pass") << ", ws " << mib(plan.runner->workspace()) << ", "
     << fmt_ms(plan.ms);
  if (!plan.capturable) os << ", not capturable";
  if (!plan.verified) os << ", FAILED THE SAMPLED CHECK";
  return os.str();
}

std::string Convolutions::search_report(const ConvPlan& plan) {
  std::ostringstream os;
  os << plan.shape.describe() << " " << epilogue_name(plan.epilogue) << " (planned in "
     << static_cast<int>(plan.planning_ms) << " ms):\n";
  for (const std::string& line : plan.report) os << line << "\n";
  return os.str();
}

std::string Convolutions::library_versions() {
  std::ostringstream os;
  const size_t v = cudnnGetVersion();
  os << "cuDNN " << v / 10000 << "." << (v % 10000) / 100 << "." << v % 100 << " (built with " << CUDNN_MAJOR
     << "." << CUDNN_MINOR << "." << CUDNN_PATCHLEVEL << "), cuBLASLt " << cublasLtGetVersion();
  return os.str();
}

}  // namespace hilum::cuda
