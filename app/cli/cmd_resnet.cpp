// `hilum resnet`: runs the image branch on a batch of images.
//
//   hilum resnet --weights W.safetensors [--config C.json] --input X.npy --out Y.npy
//                [--features | --spatial] [--device cpu|cuda|auto] [--dtype f32|f16|bf16]
//                [--view identity|flip_x|flip_y|transpose]
//
// X is float32 (N, C, H, W), already normalized. Y is float32 logits (N, classes),
// with --features the pooled features (N, C), with --spatial the last stage's
// map (N, C, h, w). --view first takes that view of every image (vision/patches.h
// patch_view: the test-time augmentation of `hilum analyze`, square images
// only). Bad input exits 2 and writes nothing.
#include <optional>
#include <string>

#include "app/cli/cli.h"
#include "app/cli/terminal_progress.h"
#include "model/log.h"
#include "model/npy.h"
#include "model/stopwatch.h"
#include "vision/net/resnet.h"
#include "vision/patches.h"

namespace hilum::cli {
namespace {

struct ResNetArgs {
  std::string weights, config, input, out;
  bool features = false, spatial = false;
  std::string device = "auto";
  std::string dtype;  // default: f32 on the CPU, f16 on CUDA
  std::string cpu_engine = "auto";
  std::string view = "identity";
};

Status run_resnet(const ResNetArgs& a) {
  // Resolve device and dtype first: they decide what is possible at all.
  Device device;
  if (a.device == "cpu") {
    device = Device::kCPU;
  } else if (a.device == "cuda") {
    device = Device::kCUDA;
  } else if (a.dtype == "f32") {
    device = Device::kCPU;  // only the CPU engines run f32
  } else if (a.dtype == "f16" || a.dtype == "bf16") {
    device = Device::kCUDA;  // only the CUDA engine runs half precision
  } else {
    device = resnet_cuda_available() ? Device::kCUDA : Device::kCPU;
  }
  DType dtype = device == Device::kCUDA ? DType::kF16 : DType::kF32;
  if (!a.dtype.empty()) {
    HILUM_ASSIGN_OR_RETURN(dtype, parse_dtype(a.dtype));
  }
  ResNetOptions options;
  options.device = device;
  options.dtype = dtype;
  options.cpu_engine = a.cpu_engine == "reference" ? CpuEngine::kReference
                       : a.cpu_engine == "onednn"  ? CpuEngine::kOneDnn
                                                   : CpuEngine::kAuto;

  std::optional<ResNetConfig> config;
  if (!a.config.empty()) {
    HILUM_ASSIGN_OR_RETURN(config, read_resnet_config(a.config));
  }
  auto& progress = process_progress();
  progress.report(0.0, "loading ResNet weights");
  HILUM_ASSIGN_OR_RETURN(Tensor images, read_npy(a.input));
  if (a.view != "identity") {  // identity leaves any shape as it is (patch_view wants square images)
    auto viewed = patch_view(images, a.view);
    if (!viewed.ok()) return viewed.error().with_context(a.input);
    images = std::move(*viewed);
  }
  HILUM_ASSIGN_OR_RETURN(auto net, ResNet::load(a.weights, config, options));
  log_info("resnet: " + net->config().describe() + " on " + net->engine_name());
  if (progress.cancelled()) return cancelled_error();

  progress.report(0.3, "running ResNet");
  const ResNetOutput what = a.spatial    ? ResNetOutput::kSpatialFeatures
                            : a.features ? ResNetOutput::kFeatures
                                         : ResNetOutput::kLogits;
  const Stopwatch clock;
  auto y = net->forward(images, what);
  if (!y.ok()) {
    // Input-shape problems belong to the input file.
    if (y.error().kind() == ErrorKind::kBadInput) return y.error().with_context(a.input);
    return y.error();
  }
  const double ms = clock.milliseconds();
  log_info("resnet: " + std::to_string(images.dim(0)) + " images in " + std::to_string(ms) + " ms");
  if (progress.cancelled()) return cancelled_error();
  HILUM_RETURN_IF_ERROR(write_npy(a.out, *y));
  progress.report(1.0, "done");
  return Status::Ok();
}

}  // namespace

void register_resnet_command(CommandLine& cl) {
  auto args = std::make_shared<ResNetArgs>();
  CLI::App* cmd =
      cl.add(nullptr, "resnet", "Run the ResNet image branch on a batch of images (NPY in, NPY out)",
             [args] { return run_resnet(*args); });
  cmd->add_option("--weights", args->weights, "torchvision-named ResNet weights (safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--config", args->config, "architecture JSON (default: inferred from the weights)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--input", args->input, "float32 images (N, C, H, W), already normalized (NPY)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", args->out, "output NPY: logits (N, classes), or features")->required();
  auto* features =
      cmd->add_flag("--features", args->features, "write pooled features (N, C) instead of logits");
  auto* spatial = cmd->add_flag("--spatial", args->spatial,
                                "write the last stage's feature map (N, C, h, w) instead of logits");
  features->excludes(spatial);
  cmd->add_option("--device", args->device,
                  "cpu, cuda or auto (the device --dtype needs, else CUDA when a GPU is usable)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_option("--dtype", args->dtype, "f32 (CPU), f16 or bf16 (CUDA); default f32 on CPU, f16 on CUDA")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--cpu-engine", args->cpu_engine, "auto (oneDNN when built with it), reference or onednn")
      ->check(CLI::IsMember({"auto", "reference", "onednn"}));
  cmd->add_option("--view", args->view,
                  "take this view of every (square) image first: identity, flip_x, flip_y or transpose "
                  "(the test-time augmentation views)")
      ->check(CLI::IsMember(patch_view_names()));
}

}  // namespace hilum::cli
