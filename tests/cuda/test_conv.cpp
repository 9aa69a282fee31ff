// cuDNN / cuBLASLt convolutions (every family the planner chooses among, every
// epilogue, both precisions) against the direct CPU convolution of
// model/conv2d.h, on awkward shapes.
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include <functional>

#include "cuda/conv.h"
#include "model/conv2d.h"

namespace hilum::testing {
namespace {

using cuda::ConvEpilogue;

struct ConvCase {
  int64_t n, c, h, w, k, r, stride, pad;
};

const ConvCase kCases[] = {
    {2, 8, 15, 13, 24, 7, 2, 3},  // stem-like, odd sizes
    {1, 8, 7, 9, 16, 3, 1, 1},    // 3x3, batch 1
    {3, 16, 10, 10, 8, 1, 2, 0},  // strided 1x1 (downsample)
    {2, 32, 5, 5, 32, 3, 2, 1},   // strided 3x3 on a tiny map
    {2, 8, 6, 5, 40, 3, 1, 1},    // widening 3x3 (the engine pads channels to multiples of 8)
    {1, 24, 9, 11, 8, 1, 1, 0},   // narrowing 1x1, odd map (a GEMM of 99 rows)
    {3, 64, 7, 5, 136, 1, 1, 0},  // widening 1x1, rows not a multiple of 8
};

bool is_gemm_shape(const ConvCase& c) { return c.r == 1 && c.stride == 1 && c.pad == 0; }

// Plans `cc` with `search`, runs it on random data and compares with the CPU
// reference. Returns false (after recording why) when planning found nothing.
bool check_case(cuda::Convolutions& convs, cuda::Stream& stream, Precision p, const ConvCase& cc,
                ConvEpilogue e, bool require_plan) {
  cuda::ConvShape s;
  s.n = cc.n, s.c = cc.c, s.h = cc.h, s.w = cc.w, s.k = cc.k, s.r = s.s = cc.r, s.stride = cc.stride,
  s.pad = cc.pad;
  const int64_t ho = s.out_h(), wo = s.out_w();
  auto x = random_floats(cc.n * cc.c * cc.h * cc.w, 11);
  auto w = random_floats(cc.k * cc.c * cc.r * cc.r, 12, -0.3f, 0.3f);
  auto bias = random_floats(cc.k, 13);
  auto z = random_floats(cc.n * cc.k * ho * wo, 14);
  for (auto& v : x) v = round_to(v, p);
  for (auto& v : w) v = round_to(v, p);
  for (auto& v : z) v = round_to(v, p);
  for (auto& v : bias) v = round_to(v, p);

  Conv2dGeometry g;
  g.batch = cc.n, g.in_channels = cc.c, g.in_h = cc.h, g.in_w = cc.w, g.out_channels = cc.k;
  g.kernel_h = g.kernel_w = cc.r, g.stride = cc.stride, g.pad = cc.pad;
  std::vector<float> conv(cc.n * cc.k * ho * wo);
  conv2d_nchw_reference(g, x.data(), w.data(), {}, conv.data());

  // Weights [k, c, r, s] -> [k, r, s, c].
  std::vector<float> w_krsc(w.size());
  for (int64_t o = 0; o < cc.k; ++o)
    for (int64_t i = 0; i < cc.c; ++i)
      for (int64_t q = 0; q < cc.r * cc.r; ++q)
        w_krsc[(o * cc.r * cc.r + q) * cc.c + i] = w[(o * cc.c + i) * cc.r * cc.r + q];
  const auto x_bits = to_bits(nchw_to_nhwc(x, cc.n, cc.c, cc.h, cc.w), p);
  const auto z_bits = to_bits(nchw_to_nhwc(z, cc.n, cc.k, ho, wo), p);
  auto dx = upload(x_bits);
  auto dw = upload(to_bits(w_krsc, p));
  auto db = upload(to_bits(bias, p));
  auto db32 = upload(bias);
  auto dz = upload(z_bits);
  auto dy = cuda::DeviceBuffer::allocate(conv.size() * 2);
  auto ws = cuda::DeviceBuffer::allocate(size_t{64} << 20);
  EXPECT_TRUE(dy.ok() && ws.ok());
  if (!dy.ok() || !ws.ok()) return false;
  cuda::ConvArgs args;
  args.x = dx.data(), args.w = dw.data(), args.bias = db.data(), args.bias_f32 = db32.as<float>();
  args.z = e == ConvEpilogue::kBiasResidualRelu ? dz.data() : nullptr;
  args.y = dy->data(), args.workspace = ws->data(), args.workspace_bytes = ws->size();
  auto plan = convs.plan(s, e, args, ws->size());
  if (!plan.ok()) {
    EXPECT_FALSE(require_plan) << plan.error().message();
    std::cout << "  (no plan: " << plan.error().message() << ")\n";
    return false;
  }
  // Cached: the same plan comes back without planning again.
  auto again = convs.plan(s, e, args, ws->size());
  EXPECT_TRUE(again.ok());
  if (again.ok()) {
    EXPECT_EQ(*again, *plan);
  }
  const std::string report = cuda::Convolutions::search_report(**plan);
  EXPECT_NE(report.find(" * "), std::string::npos) << report;

  // Planning overwrote x and z with its own test data: the real inputs now.
  EXPECT_TRUE(cuda::copy_to_device(dx.data(), x_bits.data(), x_bits.size() * 2).ok());
  EXPECT_TRUE(cuda::copy_to_device(dz.data(), z_bits.data(), z_bits.size() * 2).ok());
  EXPECT_TRUE(stream.memset(dy->data(), 0xff, dy->size()).ok());  // NaNs: every output must be written
  EXPECT_TRUE(convs.run(**plan, args).ok());
  EXPECT_TRUE(stream.synchronize().ok());
  auto got = nhwc_to_nchw(from_bits(download<uint16_t>(*dy, conv.size()), p), cc.n, cc.k, ho, wo);

  // fp32 accumulation of exactly representable products; the output is
  // rounded to the storage type once (fused) or twice (conv, then the
  // epilogue pass), the bias possibly once more (native-precision bias):
  // allow 3 roundings of the largest term involved plus the f32 accumulation error.
  const double u = unit_roundoff(p);
  const int64_t plane = ho * wo;
  int bad = 0;
  for (size_t i = 0; i < conv.size() && bad < 5; ++i) {
    const int64_t ch = (static_cast<int64_t>(i) / plane) % cc.k;
    double want = conv[i];
    double scale = std::fabs(conv[i]);
    if (e != ConvEpilogue::kNone) {
      want += bias[ch];
      scale += std::fabs(bias[ch]);
      if (e == ConvEpilogue::kBiasResidualRelu) {
        want += z[i];
        scale += std::fabs(z[i]);
      }
      want = std::max(want, 0.0);
    }
    const double tol = 3 * u * scale + 1e-5 * cc.c * cc.r * cc.r;
    if (!(std::fabs(got[i] - want) <= tol)) {
      ++bad;
      ADD_FAILURE() << "at " << i << ": got " << got[i] << " want " << want << " tol " << tol << "\n"
                    << cuda::Convolutions::describe(**plan);
    }
  }
  std::cout << "  " << cuda::Convolutions::describe(**plan) << "\n";
  return bad == 0;
}

struct Family {
  const char* name;
  std::function<void(cuda::ConvSearch&)> narrow;
  bool (*applies)(const ConvCase&, ConvEpilogue);
  bool required;  // must find a plan wherever it applies
};

void run_families(const std::vector<Family>& families) {
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    for (const Family& f : families) {
      // A fresh object per family: plans are cached by shape.
      auto convs = cuda::Convolutions::create(*stream, p);
      ASSERT_TRUE(convs.ok()) << convs.error().message();
      cuda::ConvSearch search;
      f.narrow(search);
      (*convs)->set_search(search);
      for (const ConvCase& cc : kCases) {
        for (ConvEpilogue e :
             {ConvEpilogue::kNone, ConvEpilogue::kBiasRelu, ConvEpilogue::kBiasResidualRelu}) {
          if (!f.applies(cc, e)) continue;
          SCOPED_TRACE(::testing::Message()
                       << f.name << " " << cuda::precision_name(p) << " n" << cc.n << " c" << cc.c << " "
                       << cc.h << "x" << cc.w << " k" << cc.k << " r" << cc.r << " s" << cc.stride << " "
                       << cuda::epilogue_name(e));
          check_case(**convs, *stream, p, cc, e, f.required);
        }
      }
    }
  }
}

bool always(const ConvCase&, ConvEpilogue) { return true; }
// Runtime compilation costs up to seconds per plan: two shapes only (a 3x3 and a 1x1).
bool few_with_epilogue(const ConvCase& c, ConvEpilogue e) {
  return e != ConvEpilogue::kNone && (&c == &kCases[1] || &c == &kCases[5]);
}
bool with_epilogue(const ConvCase&, ConvEpilogue e) { return e != ConvEpilogue::kNone; }
bool gemm_shape(const ConvCase& c, ConvEpilogue) { return is_gemm_shape(c); }

TEST(CudaConv, PlannerMatchesCpuReferenceForEveryEpilogue) {
  HILUM_REQUIRE_GPU();
  run_families({{"all families", [](cuda::ConvSearch&) {}, always, true}});
}

TEST(CudaConv, CudnnGraphApiMatchesCpuReference) {
  HILUM_REQUIRE_GPU();
  run_families({
      {"graph, unfused",
       [](cuda::ConvSearch& s) {
         s.legacy = s.gemm = false;
         s.fused = false;
       },
       always, true},
      // Fused graphs may need runtime-compiled engines; where cuDNN has none
      // for a shape, planning reports it (not a failure).
      {"graph, fused (runtime compilation allowed)",
       [](cuda::ConvSearch& s) {
         s.legacy = s.gemm = false;
         s.unfused = false;
         s.runtime_compiled = true;
         s.per_family = 1;
       },
       few_with_epilogue, false},
  });
}

TEST(CudaConv, CudnnLegacyApiMatchesCpuReference) {
  HILUM_REQUIRE_GPU();
  run_families({
      {"legacy, unfused",
       [](cuda::ConvSearch& s) {
         s.graph = s.gemm = false;
         s.fused = false;
       },
       always, true},
      {"legacy, fused",
       [](cuda::ConvSearch& s) {
         s.graph = s.gemm = false;
         s.unfused = false;
       },
       with_epilogue, false},
  });
}

TEST(CudaConv, CublasLtGemmMatchesCpuReferenceFor1x1) {
  HILUM_REQUIRE_GPU();
  run_families({{"gemm", [](cuda::ConvSearch& s) { s.graph = s.legacy = false; }, gemm_shape, true}});
}

TEST(CudaConv, NoFamilyIsAnErrorNamingTheShape) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  auto convs = cuda::Convolutions::create(*stream, Precision::kF16);
  ASSERT_TRUE(convs.ok());
  cuda::ConvSearch search;
  search.graph = search.legacy = false;  // GEMM only, and a 3x3 is not a GEMM
  (*convs)->set_search(search);
  cuda::ConvShape s;
  s.n = 1, s.c = 8, s.h = 5, s.w = 5, s.k = 8, s.r = s.s = 3, s.pad = 1;
  auto buf = cuda::DeviceBuffer::allocate(4096);
  ASSERT_TRUE(buf.ok());
  cuda::ConvArgs args;
  args.x = args.w = args.bias = args.y = buf->data();
  args.bias_f32 = buf->as<float>();
  args.workspace = buf->data();
  args.workspace_bytes = 0;
  auto plan = (*convs)->plan(s, ConvEpilogue::kBiasRelu, args, 0);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message().find(s.describe()), std::string::npos) << plan.error().message();
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(CudaConv, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
