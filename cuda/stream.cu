#include <algorithm>
#include <cmath>
#include <utility>

#include "cuda/common.cuh"
#include "cuda/stream.h"

namespace hilum::cuda {

const char* precision_name(Precision p) { return p == Precision::kF16 ? "f16" : "bf16"; }

// ---- Stream ------------------------------------------------------------------

Result<Stream> Stream::create() {
  cudaStream_t s = nullptr;
  HILUM_RETURN_IF_ERROR(cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"));
  Stream out;
  out.handle_ = s;
  return std::move(out);
}

Stream::~Stream() {
  if (handle_) cudaStreamDestroy(as_stream(handle_));
}

Stream::Stream(Stream&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (handle_) cudaStreamDestroy(as_stream(handle_));
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

Status Stream::synchronize() const {
  return cuda_check(cudaStreamSynchronize(as_stream(handle_)), "cudaStreamSynchronize");
}

Status Stream::copy_to_device(void* dst, const void* src, size_t bytes) const {
  return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(handle_)),
                    "cudaMemcpyAsync H2D");
}

Status Stream::copy_to_host(void* dst, const void* src, size_t bytes) const {
  return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(handle_)),
                    "cudaMemcpyAsync D2H");
}

Status Stream::copy_device_to_device(void* dst, const void* src, size_t bytes) const {
  return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(handle_)),
                    "cudaMemcpyAsync D2D");
}

Status Stream::memset(void* dst, int value, size_t bytes) const {
  return cuda_check(cudaMemsetAsync(dst, value, bytes, as_stream(handle_)), "cudaMemsetAsync");
}

// ---- DeviceBuffer --------------------------------------------------------------

Result<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return internal_error("cudaMalloc of " + std::to_string(bytes) + " bytes: " + cudaGetErrorString(err));
  }
  DeviceBuffer b;
  b.data_ = p;
  b.size_ = bytes;
  return std::move(b);
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

// ---- Graph ---------------------------------------------------------------------

Result<Graph> Graph::capture(const Stream& stream, const std::function<Status()>& record) {
  cudaStream_t s = as_stream(stream.native());
  HILUM_RETURN_IF_ERROR(
      cuda_check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture"));
  Status recorded = record();
  cudaGraph_t graph = nullptr;
  // End the capture in every case, so the stream leaves capture mode.
  cudaError_t end = cudaStreamEndCapture(s, &graph);
  if (!recorded.ok()) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    return recorded.error().with_context("while capturing a CUDA graph");
  }
  if (end != cudaSuccess || graph == nullptr) {
    if (graph) cudaGraphDestroy(graph);
    return cuda_check(end != cudaSuccess ? end : cudaErrorUnknown, "cudaStreamEndCapture").error();
  }
  cudaGraphExec_t exec = nullptr;
  cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  HILUM_RETURN_IF_ERROR(cuda_check(inst, "cudaGraphInstantiate"));
  Graph g;
  g.exec_ = exec;
  return std::move(g);
}

Graph::~Graph() {
  if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
}

Graph::Graph(Graph&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}

Graph& Graph::operator=(Graph&& other) noexcept {
  if (this != &other) {
    if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

Status Graph::launch(const Stream& stream) const {
  if (!exec_) return internal_error("launching an empty CUDA graph");
  return cuda_check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), as_stream(stream.native())),
                    "cudaGraphLaunch");
}

// ---- Timing --------------------------------------------------------------------

Result<float> time_on_stream(const Stream& stream, const std::function<Status()>& enqueue, int warmup,
                             int reps) {
  cudaStream_t s = as_stream(stream.native());
  cudaEvent_t start = nullptr, stop = nullptr;
  HILUM_RETURN_IF_ERROR(cuda_check(cudaEventCreate(&start), "cudaEventCreate"));
  if (auto st = cuda_check(cudaEventCreate(&stop), "cudaEventCreate"); !st.ok()) {
    cudaEventDestroy(start);
    return st.error();
  }
  auto run = [&]() -> Result<float> {
    for (int i = 0; i < warmup; ++i) HILUM_RETURN_IF_ERROR(enqueue());
    HILUM_RETURN_IF_ERROR(cuda_check(cudaEventRecord(start, s), "cudaEventRecord"));
    for (int i = 0; i < reps; ++i) HILUM_RETURN_IF_ERROR(enqueue());
    HILUM_RETURN_IF_ERROR(cuda_check(cudaEventRecord(stop, s), "cudaEventRecord"));
    HILUM_RETURN_IF_ERROR(cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize"));
    float ms = 0;
    HILUM_RETURN_IF_ERROR(cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime"));
    return ms / static_cast<float>(reps > 0 ? reps : 1);
  };
  Result<float> r = run();
  if (!r.ok()) cudaStreamSynchronize(s);  // drain what was enqueued before the failure
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return r;
}

Result<float> time_graph(const Stream& stream, const std::function<Status()>& enqueue, int reps,
                         int launches) {
  reps = std::max(reps, 1);
  launches = std::max(launches, 1);
  auto record = [&]() -> Status {
    for (int i = 0; i < reps; ++i) HILUM_RETURN_IF_ERROR(enqueue());
    return Status::Ok();
  };
  HILUM_ASSIGN_OR_RETURN(Graph graph, Graph::capture(stream, record));
  float best = -1.0f;
  HILUM_RETURN_IF_ERROR(graph.launch(stream));  // warm-up (first-launch upload)
  for (int i = 0; i < launches; ++i) {
    HILUM_ASSIGN_OR_RETURN(float ms, time_on_stream(
                                         stream, [&] { return graph.launch(stream); }, 0, 1));
    if (best < 0 || ms < best) best = ms;
  }
  return best / static_cast<float>(reps);
}

Result<float> time_graph_adaptive(const Stream& stream, const std::function<Status()>& enqueue,
                                  float target_ms, int max_reps, int launches) {
  HILUM_ASSIGN_OR_RETURN(float once, time_graph(stream, enqueue, 1, 2));
  if (once >= target_ms || max_reps <= 1) return once;
  const int reps = std::clamp(static_cast<int>(std::ceil(target_ms / std::max(once, 1e-4f))), 2, max_reps);
  HILUM_ASSIGN_OR_RETURN(float many, time_graph(stream, enqueue, reps, launches));
  return many;
}

}  // namespace hilum::cuda
