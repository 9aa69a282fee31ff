// Streams, device buffers, CUDA graphs and event timing.
#include "tests/cuda/gpu_test_util.h"

#if HILUM_HAVE_CUDA
#include "cuda/epilogue.h"

namespace hilum::testing {
namespace {

TEST(CudaStream, GraphReplaysWhatWasCaptured) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  const int64_t rows = 19, c = 8;
  auto bias = random_floats(c, 1);
  auto db = upload(bias);
  auto dy = cuda::DeviceBuffer::allocate(rows * c * 2);
  ASSERT_TRUE(dy.ok());
  ASSERT_TRUE(stream->memset(dy->data(), 0, dy->size()).ok());
  // Captured: y += bias twice (no ReLU). Capturing runs nothing.
  auto graph = cuda::Graph::capture(*stream, [&]() -> Status {
    HILUM_RETURN_IF_ERROR(cuda::bias_residual_relu_nhwc(*stream, Precision::kF16, dy->data(), db.as<float>(),
                                                        nullptr, rows, c, false));
    return cuda::bias_residual_relu_nhwc(*stream, Precision::kF16, dy->data(), db.as<float>(), nullptr, rows,
                                         c, false);
  });
  ASSERT_TRUE(graph.ok()) << graph.error().message();
  ASSERT_TRUE(graph->valid());
  ASSERT_TRUE(stream->synchronize().ok());
  EXPECT_EQ(from_bits(download<uint16_t>(*dy, rows * c), Precision::kF16)[3], 0.0f);
  ASSERT_TRUE(graph->launch(*stream).ok());
  ASSERT_TRUE(graph->launch(*stream).ok());
  ASSERT_TRUE(stream->synchronize().ok());
  auto got = from_bits(download<uint16_t>(*dy, rows * c), Precision::kF16);
  for (int64_t i = 0; i < rows * c; ++i) {
    float want = 0;
    for (int k = 0; k < 4; ++k) want = round_to(want + bias[i % c], Precision::kF16);
    ASSERT_EQ(got[i], want) << i;
  }
}

TEST(CudaStream, FailedRecordLeavesTheStreamUsable) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  auto graph = cuda::Graph::capture(*stream, [] { return Status(internal_error("planted failure")); });
  ASSERT_FALSE(graph.ok());
  EXPECT_NE(graph.error().message().find("planted failure"), std::string::npos);
  auto buf = cuda::DeviceBuffer::allocate(256);
  ASSERT_TRUE(buf.ok());
  auto ms = cuda::time_on_stream(
      *stream, [&] { return stream->memset(buf->data(), 0, 256); }, 1, 3);
  ASSERT_TRUE(ms.ok()) << ms.error().message();
  EXPECT_GE(*ms, 0.0f);
  EXPECT_TRUE(stream->synchronize().ok());
}

TEST(CudaStream, GraphTimingReplaysTheCapturedWork) {
  HILUM_REQUIRE_GPU();
  auto stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok());
  const size_t bytes = size_t{64} << 20;
  auto buf = cuda::DeviceBuffer::allocate(bytes);
  ASSERT_TRUE(buf.ok());
  int calls = 0;
  auto fill = [&] {
    ++calls;
    return stream->memset(buf->data(), 0x3c, bytes);
  };
  auto one = cuda::time_graph(*stream, fill, 1, 2);
  ASSERT_TRUE(one.ok()) << one.error().message();
  EXPECT_EQ(calls, 1);  // captured once, replayed from the graph
  auto four = cuda::time_graph(*stream, fill, 4, 2);
  ASSERT_TRUE(four.ok()) << four.error().message();
  EXPECT_EQ(calls, 5);
  // 64 MiB written at well under 10 TB/s, per copy whatever the copies per graph.
  EXPECT_GT(*one, 0.005f);
  EXPECT_GT(*four, 0.005f);
  EXPECT_LT(*four, 3 * *one);
  auto adaptive = cuda::time_graph_adaptive(*stream, fill, 0.5f, 8, 2);
  ASSERT_TRUE(adaptive.ok());
  EXPECT_GT(*adaptive, 0.005f);
  ASSERT_TRUE(stream->synchronize().ok());
  EXPECT_EQ(download<uint8_t>(*buf, 16)[7], 0x3c);

  // Something that fails while captured is an error; the stream goes on working.
  auto failed = cuda::time_graph(
      *stream, [] { return Status(internal_error("planted")); }, 2, 1);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(stream->memset(buf->data(), 0, 256).ok());
  EXPECT_TRUE(stream->synchronize().ok());
}

TEST(CudaStream, DeviceBufferMovesAndCopies) {
  HILUM_REQUIRE_GPU();
  auto a = cuda::DeviceBuffer::allocate(64);
  ASSERT_TRUE(a.ok());
  void* p = a->data();
  cuda::DeviceBuffer b = std::move(a).value();
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 64u);
  std::vector<float> host(16, 2.5f);
  ASSERT_TRUE(cuda::copy_to_device(b.data(), host.data(), 64).ok());
  EXPECT_EQ(download<float>(b, 16)[15], 2.5f);
}

}  // namespace
}  // namespace hilum::testing
#else
TEST(CudaStream, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
