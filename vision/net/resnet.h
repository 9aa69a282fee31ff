// The image branch: a ResNet (18/34/50/101/152 or a custom width/topology)
// loaded from torchvision-named safetensors weights, for inference.
//
// Batch norm is folded into the convolutions at load (eps 1e-5), so the
// engines run convolution + bias (+ residual) (+ ReLU) only:
//   - CPU, fp32: oneDNN where the build has it (HILUM_HAVE_ONEDNN), else, or
//     when asked, the plain C++ reference path (im2col + sgemm);
//   - CUDA, fp16 or bf16: cuDNN on NHWC tensors with fused epilogues, one
//     CUDA graph per batch shape, no allocation once a shape has been seen.
//
// Input: float32 images (N, in_channels, H, W), already normalized, on the
// CPU (any engine) or on the GPU (CUDA engine). Output (float32, on the
// input's device): logits (N, classes), pooled features (N, C) or the last
// stage's map (N, C, h, w), the image tokens of the fusion stage.
//
// Thread safety: forward() serializes callers on an internal mutex (the
// engines keep per-shape plans), so one ResNet may be shared; load one per
// thread for parallel inference.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "model/result.h"
#include "model/tensor.h"
#include "vision/net/resnet_config.h"

namespace hilum {

enum class ResNetOutput {
  kLogits,           // (N, num_classes)
  kFeatures,         // (N, C): the global average pool of the last stage
  kSpatialFeatures,  // (N, C, h, w): the last stage before pooling
};

enum class CpuEngine { kAuto, kReference, kOneDnn };

struct ResNetOptions {
  Device device = Device::kCPU;
  DType dtype = DType::kF32;                // f32 on the CPU; f16 or bf16 on CUDA
  CpuEngine cpu_engine = CpuEngine::kAuto;  // kAuto: oneDNN when built with it
};

class ResNetEngine;  // vision/net/resnet_engine.h
struct FoldedResNet;

class ResNet {
 public:
  // Reads `weights` (torchvision state_dict names). With a config, every
  // tensor is checked against it; without, the architecture is inferred from
  // the tensor names and shapes. Errors (kBadInput) name the file and the
  // tensor; an unsupported device/dtype pairing or a missing GPU is
  // kUnsupported.
  static Result<std::unique_ptr<ResNet>> load(const std::filesystem::path& weights,
                                              const std::optional<ResNetConfig>& config,
                                              const ResNetOptions& options = {});
  // The same from an open file.
  static Result<std::unique_ptr<ResNet>> load(const SafetensorsFile& weights,
                                              const std::optional<ResNetConfig>& config,
                                              const ResNetOptions& options = {});
  ~ResNet();
  ResNet(const ResNet&) = delete;
  ResNet& operator=(const ResNet&) = delete;

  const ResNetConfig& config() const;
  // "cpu-reference", "cpu-onednn", "cuda-f16", "cuda-bf16".
  std::string engine_name() const;

  // Runs the network; the result is a new tensor on the images' device.
  // Wrong rank, channel count or dtype is kBadInput; kLogits on a network
  // without fc is kBadInput too.
  Result<Tensor> forward(const Tensor& images, ResNetOutput output = ResNetOutput::kLogits);

  // The same into a caller-owned float32 tensor of output_shape() (CPU engines:
  // CPU memory; CUDA engine: either device). With device-resident images and
  // output, a batch shape seen before runs without any allocation.
  Status forward_into(const Tensor& images, ResNetOutput output, Tensor& out);

  // Diagnosis (the CUDA engine only; kUnsupported elsewhere): plans the batch
  // shape of `images` if needed, then times the whole forward and every layer
  // on its own and returns a text report: per layer the time, TFLOP/s, GB/s
  // and the implementation the planner chose, per distinct convolution every
  // candidate it tried. Slow (seconds); results in the buffers are undefined.
  Result<std::string> profile(const Tensor& images, ResNetOutput output = ResNetOutput::kLogits);

  // The shape forward() returns for images of shape (N, C, H, W).
  Result<Shape> output_shape(const Shape& images, ResNetOutput output) const;

 private:
  ResNet() = default;
  Result<Tensor> checked_images(const Tensor& images, ResNetOutput output) const;
  std::shared_ptr<const FoldedResNet> net_;
  std::unique_ptr<ResNetEngine> engine_;
  std::mutex mu_;
};

// Whether a CUDA device is usable by this build (for --device auto).
bool resnet_cuda_available();

}  // namespace hilum
