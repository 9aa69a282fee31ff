// Streams, owned device buffers, CUDA graphs and event timing: the execution
// plumbing the engines build on. No CUDA headers here; handles are opaque.
//
// In a build without CUDA every factory returns an error (kUnsupported) and
// nothing else can be reached. Objects are move-only; none is thread-safe
// (use one per thread or guard it).
#pragma once

#include <cstddef>
#include <functional>

#include "model/result.h"

namespace hilum::cuda {

// Storage type of activations and weights on the GPU (accumulation is fp32).
enum class Precision : unsigned char { kF16, kBF16 };
const char* precision_name(Precision p);  // "f16" / "bf16"

// An owned non-blocking CUDA stream on the current device.
class Stream {
 public:
  static Result<Stream> create();
  Stream() = default;
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void* native() const { return handle_; }  // cudaStream_t
  // Waits for everything enqueued so far; reports any asynchronous error.
  Status synchronize() const;
  // Asynchronous copies enqueued on this stream (host memory may be pageable).
  Status copy_to_device(void* dst, const void* src, size_t bytes) const;
  Status copy_to_host(void* dst, const void* src, size_t bytes) const;
  Status copy_device_to_device(void* dst, const void* src, size_t bytes) const;
  Status memset(void* dst, int value, size_t bytes) const;

 private:
  void* handle_ = nullptr;
};

// Owned device memory (freed on destruction).
class DeviceBuffer {
 public:
  static Result<DeviceBuffer> allocate(size_t bytes);
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// An instantiated CUDA graph: everything `record` enqueued on the stream
// while capturing, replayed with launch(). Pointers and shapes are baked in:
// replay reads and writes the same buffers.
class Graph {
 public:
  // Fails (nothing captured, the stream usable again) when `record` fails or
  // enqueues something a graph cannot hold.
  static Result<Graph> capture(const Stream& stream, const std::function<Status()>& record);
  Graph() = default;
  ~Graph();
  Graph(Graph&& other) noexcept;
  Graph& operator=(Graph&& other) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  bool valid() const { return exec_ != nullptr; }
  Status launch(const Stream& stream) const;

 private:
  void* exec_ = nullptr;  // cudaGraphExec_t
};

// Mean milliseconds of `enqueue` (which enqueues work on `stream`) over
// `reps` runs after `warmup` runs, measured with CUDA events.
Result<float> time_on_stream(const Stream& stream, const std::function<Status()>& enqueue, int warmup,
                             int reps);

// GPU milliseconds of one `enqueue` as a CUDA graph replays it (no host
// launch gaps): `reps` copies are captured into one graph, which is launched
// once to warm up and then `launches` times; the fastest launch divided by
// `reps`. An error (the stream usable again) when `enqueue` cannot be captured.
Result<float> time_graph(const Stream& stream, const std::function<Status()>& enqueue, int reps,
                         int launches);

// The same with `reps` chosen so that a launch lasts about `target_ms` (at most
// `max_reps` copies): for timing anything from a 3 us kernel to a 30 ms layer.
Result<float> time_graph_adaptive(const Stream& stream, const std::function<Status()>& enqueue,
                                  float target_ms = 0.2f, int max_reps = 32, int launches = 3);

}  // namespace hilum::cuda
