#include "app/analyze.h"

#if HILUM_HAVE_IMAGING

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "app/build_info.h"
#include "app/report_content.h"
#include "app/report_pdf.h"
#include "app/report_sr.h"
#include "fusion/fusion_head.h"
#include "model/env.h"
#include "model/file_io.h"
#include "model/log.h"
#include "model/moe/lora.h"
#include "model/moe/text_model.h"
#include "model/safetensors.h"
#include "model/stopwatch.h"
#include "model/tokenizer.h"
#include "vision/io/candidates.h"
#include "vision/io/dicom.h"
#include "vision/io/lung_mask.h"
#include "vision/net/resnet.h"
#include "vision/net/resnet_config.h"
#include "vision/patches.h"

namespace hilum {

namespace fs = std::filesystem;

// Patches per image-branch forward: on the CPU 32 (bounded memory); on CUDA
// 128, one shape for every batch (the last one padded), so a study of 300
// candidates takes three forwards instead of ten. HILUM_IMAGE_BATCH sets the
// CUDA batch (1-4096), for timing other sizes side by side.
namespace {
int64_t image_batch(Device d) { return d == Device::kCUDA ? env_count("HILUM_IMAGE_BATCH", 128, 4096) : 32; }
}  // namespace

class ModelBundle {
 public:
  std::string label;
  fs::path dir;
  std::unique_ptr<ResNet> resnet;
  Device device = Device::kCPU;
  std::shared_ptr<const moe::TextModel> text;
  std::shared_ptr<const moe::LoraAdapter> medical;  // may be null
  std::optional<Tokenizer> tokenizer;
  std::optional<FusionHead> fusion;
  std::shared_ptr<const ImpressionDrafter> drafter;
  std::shared_ptr<const CaseAssistant> assistant;
  FindingsOptions findings;
  std::vector<std::string> patch_views{"identity"};  // test-time augmentation (parse_view_spec names)
  PatchOptions patches;  // the patches the image branch takes (inference.patch_slab_mm: nine channels,
                         // inference.patch_zoom_spacing_mm: six)
  // The networks run for one study at a time (the engines keep buffers per
  // batch shape); `hilum batch --jobs J` overlaps the other studies' CPU stages.
  mutable std::mutex networks;
};

namespace {

// "a, b, c"
std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The one *.safetensors file in `dir`.
Result<fs::path> single_safetensors(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return bad_input(dir.string() + ": missing (model bundle part)");
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors") found.push_back(e.path());
  }
  if (found.size() != 1) {
    return bad_input(dir.string() + ": expected one .safetensors file, found " +
                     std::to_string(found.size()));
  }
  return found.front();
}

Result<Device> parse_device(const std::string& d) {
  if (d == "cpu") return Device::kCPU;
  if (d == "cuda") return Device::kCUDA;
  if (d == "auto") return resnet_cuda_available() ? Device::kCUDA : Device::kCPU;
  return bad_input("--device must be cpu, cuda or auto (got '" + d + "')");
}

// Text hidden states of the note, [T, d] (T = 0 for an empty note).
Result<Tensor> note_states(const ModelBundle& b, const std::string& note) {
  const int64_t d = b.text->config().hidden_size;
  if (note.find_first_not_of(" \t\r\n") == std::string::npos) return Tensor::zeros({0, d}, DType::kF32);
  const std::vector<int32_t> ids = b.tokenizer->encode("<|note|>\n" + note + "<|endoftext|>", true);
  if (ids.empty()) return Tensor::zeros({0, d}, DType::kF32);
  moe::ForwardOptions opt;
  opt.logits = moe::ForwardOptions::Logits::kNone;
  opt.hidden_states = true;
  HILUM_ASSIGN_OR_RETURN(moe::ForwardOutput out, b.text->forward(ids, b.medical.get(), opt));
  return out.hidden_states;
}

}  // namespace

Result<std::shared_ptr<const ModelBundle>> load_model_bundle(const fs::path& dir,
                                                             const BundleOptions& options) {
  auto b = std::make_shared<ModelBundle>();
  b->dir = dir;
  b->findings = options.findings;
  HILUM_ASSIGN_OR_RETURN(b->device, parse_device(options.device));
  HILUM_ASSIGN_OR_RETURN(std::string manifest_text, read_file(dir / "manifest.json"));
  try {
    const auto m = nlohmann::json::parse(manifest_text);
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string()) {
      return bad_input((dir / "manifest.json").string() + ": no \"name\" string");
    }
    b->label = m["name"].get<std::string>();
    if (m.contains("version")) {
      b->label += " " + (m["version"].is_string() ? m["version"].get<std::string>() : m["version"].dump());
    }
    // "inference": {"patch_views": [...]}: the views of each patch whose fusion
    // logits are averaged (test-time augmentation); default: the patch alone.
    if (m.contains("inference") && m["inference"].contains("patch_views")) {
      const auto& views = m["inference"]["patch_views"];
      b->patch_views.clear();
      for (const auto& v : views.is_array() ? views : nlohmann::json::array({views})) {
        if (!v.is_string() || !parse_view_spec(v.get<std::string>()).ok()) {
          return bad_input((dir / "manifest.json").string() + ": inference.patch_views holds " + v.dump() +
                           ", not a patch view (" + view_spec_names() + ")");
        }
        b->patch_views.push_back(v.get<std::string>());
      }
      if (b->patch_views.empty()) {
        return bad_input((dir / "manifest.json").string() + ": inference.patch_views is empty");
      }
    }
    // "inference": {"patch_slab_mm": D}: nine-channel patches, each plane with its
    // neighbours D mm along its normal; {"patch_zoom_spacing_mm": D}: six-channel
    // patches, each plane again at D mm per pixel (vision/patches.h). Default 0:
    // three planes at one spacing. Each a number of mm within its limit.
    const auto read_mm = [&](const char* key, double max, double* value) -> Status {
      if (!m.contains("inference") || !m["inference"].contains(key)) return Status::Ok();
      const auto& v = m["inference"][key];
      if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() <= max)) {
        return bad_input((dir / "manifest.json").string() + ": inference." + key + " is " + v.dump() +
                         ", not a number of mm from 0 to " + std::to_string(static_cast<int>(max)));
      }
      *value = v.get<double>();
      return Status::Ok();
    };
    HILUM_RETURN_IF_ERROR(read_mm("patch_slab_mm", PatchOptions::kMaxSlabMm, &b->patches.slab_mm));
    HILUM_RETURN_IF_ERROR(
        read_mm("patch_zoom_spacing_mm", PatchOptions::kMaxZoomSpacingMm, &b->patches.zoom_spacing_mm));
    if (b->patches.slab_mm > 0 && b->patches.zoom_spacing_mm > 0) {
      return bad_input((dir / "manifest.json").string() +
                       ": inference.patch_slab_mm and inference.patch_zoom_spacing_mm do not combine");
    }
  } catch (const nlohmann::json::exception& e) {
    return bad_input((dir / "manifest.json").string() + ": not valid JSON (" + e.what() + ")");
  }
  HILUM_ASSIGN_OR_RETURN(fs::path vision, single_safetensors(dir / "vision"));
  ResNetOptions ro;
  ro.device = b->device;
  ro.dtype = b->device == Device::kCUDA ? DType::kF16 : DType::kF32;
  HILUM_ASSIGN_OR_RETURN(SafetensorsFile vision_file, SafetensorsFile::open(vision));
  HILUM_ASSIGN_OR_RETURN(ResNetConfig vision_config, infer_resnet_config(vision_file));
  // oneDNN pays a primitive set-up per layer and input shape (~3 s for the 155
  // layers of a ResNet-152) that only wide nets earn back; for a narrow one the
  // built-in engine is several times faster end to end (bench/RESULTS.md).
  if (b->device == Device::kCPU && vision_config.width <= 16) ro.cpu_engine = CpuEngine::kReference;
  if (vision_config.in_channels != b->patches.channels()) {
    return bad_input(vision.string() + ": the ResNet takes " + std::to_string(vision_config.in_channels) +
                     " input channels, but the bundle's patches have " + std::to_string(b->patches.channels()) +
                     (b->patches.slab_mm > 0           ? " (manifest.json inference.patch_slab_mm)"
                      : b->patches.zoom_spacing_mm > 0 ? " (manifest.json inference.patch_zoom_spacing_mm)"
                                                       : " (nine need manifest.json inference.patch_slab_mm, six "
                                                         "inference.patch_zoom_spacing_mm)"));
  }
  HILUM_ASSIGN_OR_RETURN(b->resnet, ResNet::load(vision_file, vision_config, ro));
  HILUM_ASSIGN_OR_RETURN(fs::path fusion, single_safetensors(dir / "fusion"));
  HILUM_ASSIGN_OR_RETURN(FusionHead head, FusionHead::load(fusion));
  b->fusion.emplace(std::move(head));
  HILUM_ASSIGN_OR_RETURN(b->text, moe::TextModel::load(dir / "text"));
  HILUM_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_file(dir / "text" / "tokenizer.json"));
  b->tokenizer.emplace(std::move(tok));
  std::error_code ec;
  if (fs::is_directory(dir / "text" / "adapters" / "medical", ec)) {
    HILUM_ASSIGN_OR_RETURN(b->medical,
                           moe::LoraAdapter::load(dir / "text" / "adapters" / "medical", *b->text));
  }
  HILUM_ASSIGN_OR_RETURN(b->drafter, ImpressionDrafter::load(dir / "text", b->device));
  b->assistant = CaseAssistant::create(b->text, *b->tokenizer, "text");

  const FusionConfig& fc = b->fusion->config();
  if (fc.image_channels != b->resnet->config().feature_channels()) {
    return bad_input(fusion.string() + ": image_channels " + std::to_string(fc.image_channels) +
                     " but the ResNet in " + vision.string() + " gives " +
                     std::to_string(b->resnet->config().feature_channels()));
  }
  if (fc.text_dim != b->text->config().hidden_size) {
    return bad_input(fusion.string() + ": text_dim " + std::to_string(fc.text_dim) +
                     " but the text model's width is " + std::to_string(b->text->config().hidden_size));
  }
  for (const std::string& v : options.patch_views) {
    if (!parse_view_spec(v).ok()) return bad_input("unknown patch view '" + v + "' (known: " + view_spec_names() + ")");
  }
  if (!options.patch_views.empty()) b->patch_views = options.patch_views;
  for (const std::string& name : fc.candidate_features) {
    if (!candidate_feature(Candidate{}, name)) {
      return bad_input(fusion.string() + ": unknown candidate feature '" + name + "' (known: " +
                       joined(candidate_feature_names()) + ")");
    }
  }
  const PatchOptions& po = b->patches;
  HILUM_ASSIGN_OR_RETURN(Shape maps, b->resnet->output_shape({1, po.channels(), po.size, po.size},
                                                             ResNetOutput::kSpatialFeatures));
  if (fc.image_tokens != maps[2] * maps[3]) {
    return bad_input(fusion.string() + ": image_tokens " + std::to_string(fc.image_tokens) +
                     " but the ResNet's map is " + std::to_string(maps[2]) + "x" + std::to_string(maps[3]) +
                     " on 64x64 patches");
  }
  return std::shared_ptr<const ModelBundle>(std::move(b));
}

Result<bool> built_in_bundles_allowed() {
  const char* env = std::getenv("HILUM_DEFAULT_BUNDLE");
  if (env == nullptr || *env == '\0') return true;
  if (std::string_view(env) == "none") return false;
  return bad_input(std::string("HILUM_DEFAULT_BUNDLE is '") + env +
                   "': the one value it takes is 'none' (no built-in model bundle; unset it to allow them)");
}

Result<fs::path> default_model_bundle_dir() {
  if (const char* env = std::getenv("HILUM_MODEL_BUNDLE"); env && *env) return fs::path(env);
  HILUM_ASSIGN_OR_RETURN(const bool allowed, built_in_bundles_allowed());
  if (!allowed) return fs::path();
#ifdef HILUM_DEFAULT_BUNDLE_DIR
  std::error_code ec;
  const fs::path demo = HILUM_DEFAULT_BUNDLE_DIR;
  if (fs::is_regular_file(demo / "manifest.json", ec)) return demo;
#endif
  return fs::path();
}

std::string model_bundle_label(const ModelBundle& bundle) { return bundle.label; }
Device model_bundle_device(const ModelBundle& bundle) { return bundle.device; }
PatchOptions model_bundle_patch_options(const ModelBundle& bundle) { return bundle.patches; }
std::shared_ptr<const ImpressionDrafter> model_bundle_drafter(const ModelBundle& bundle) {
  return bundle.drafter;
}
std::shared_ptr<const CaseAssistant> model_bundle_assistant(const ModelBundle& bundle) {
  return bundle.assistant;
}

namespace {

// On CUDA, the image branch's first forward plans its convolutions for the
// batch shape; cuDNN's first use alone takes seconds. One forward of zeros
// does it ahead (analyze_volume runs it beside the CPU stages); after that it
// costs one batch's forward.
Status warm_up_image_branch(const ModelBundle& b) {
  if (b.device != Device::kCUDA || !b.resnet) return Status::Ok();
  const PatchOptions& po = b.patches;
  const std::lock_guard<std::mutex> lock(b.networks);
  const Tensor zeros = Tensor::zeros({image_batch(b.device), po.channels(), po.size, po.size}, DType::kF32);
  auto maps = b.resnet->forward(zeros, ResNetOutput::kSpatialFeatures);
  if (!maps.ok()) return maps.error().with_context("image branch on CUDA");
  return Status::Ok();
}

}  // namespace

Result<Tensor> candidate_features(const ModelBundle& b, const std::vector<Candidate>& candidates) {
  const std::vector<std::string>& names = b.fusion->config().candidate_features;
  if (names.empty()) return Tensor();
  const auto f = static_cast<int64_t>(names.size());
  Tensor out = Tensor::empty({static_cast<int64_t>(candidates.size()), f}, DType::kF32);
  for (size_t i = 0; i < candidates.size(); ++i) {
    for (int64_t j = 0; j < f; ++j) {
      const std::optional<double> v = candidate_feature(candidates[i], names[j]);
      if (!v) return bad_input("fusion head: unknown candidate feature '" + names[j] + "'");
      out.data<float>()[static_cast<int64_t>(i) * f + j] = static_cast<float>(*v);
    }
  }
  return out;
}

static Result<CandidateScores> score_frames(const ModelBundle& b, const std::map<std::string, Tensor>& by_frame,
                                            const Tensor& features, const std::string& clinical_text,
                                            Progress& progress);

Result<CandidateScores> score_candidates(const ModelBundle& b, const Volume& volume,
                                         const std::vector<Candidate>& candidates,
                                         const std::string& clinical_text, Progress& progress) {
  if (candidates.empty()) return CandidateScores{};
  std::vector<Vec3> centres;
  for (const Candidate& c : candidates) centres.push_back(c.center_mm);
  // The patches of every frame the bundle's views take, each cut once.
  std::vector<std::string> frames;
  for (const std::string& name : b.patch_views) {
    HILUM_ASSIGN_OR_RETURN(ViewSpec spec, parse_view_spec(name));
    if (std::find(frames.begin(), frames.end(), spec.frame) == frames.end()) frames.push_back(spec.frame);
  }
  std::map<std::string, Tensor> by_frame;
  const Stopwatch clock;
  for (size_t f = 0; f < frames.size(); ++f) {
    PatchOptions po = b.patches;
    HILUM_ASSIGN_OR_RETURN(po.frame, patch_frame(frames[f]));
    ProgressRange p(progress, 0.2 * f / frames.size(), 0.2 * (f + 1) / frames.size());
    HILUM_ASSIGN_OR_RETURN(by_frame[frames[f]], extract_patches(volume, centres, po, p));
  }
  const double patches_s = clock.seconds();
  HILUM_ASSIGN_OR_RETURN(Tensor features, candidate_features(b, candidates));
  ProgressRange p(progress, 0.2, 1.0);
  HILUM_ASSIGN_OR_RETURN(CandidateScores scores, score_frames(b, by_frame, features, clinical_text, p));
  scores.patches_s = patches_s;
  return scores;
}

// The image branch's tokens of f32 patches [N, C, S, S]: f32 [N, k, c].
static Result<Tensor> image_tokens_of(const ModelBundle& b, const Tensor& patches, Progress& progress) {
  const PatchOptions& po = b.patches;
  const int64_t n = patches.dim(0);
  // Image tokens, in batches (bounded memory).
  const int64_t batch = image_batch(b.device);
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < n; s += batch) {
    if (progress.cancelled()) return cancelled_error();
    progress.report(static_cast<double>(s) / n, "image branch");
    const int64_t m = std::min(batch, n - s);
    // On CUDA every batch has the same shape (the last one padded with zeros):
    // the engine plans its convolutions once per batch shape, which costs far
    // more than the padded rows.
    const int64_t rows = b.device == Device::kCUDA ? batch : m;
    Tensor slice = Tensor::empty({rows, po.channels(), po.size, po.size}, DType::kF32);
    const size_t per = static_cast<size_t>(po.channels() * po.size * po.size);
    std::copy_n(patches.data<float>() + s * per, m * per, slice.data<float>());
    std::fill_n(slice.data<float>() + m * per, (rows - m) * per, 0.0f);  // the padding rows
    // f32 on both engines: the CUDA engine converts to its precision on the GPU. An f16
    // tensor from here would only be widened back to f32 on the host first (what
    // HILUM_IMAGE_HOST_F16=1 still does, to time it side by side: the same f16 values).
    Tensor in = slice;
    if (b.device == Device::kCUDA && env_switch("HILUM_IMAGE_HOST_F16", false)) {
      HILUM_ASSIGN_OR_RETURN(in, slice.to_dtype(DType::kF16));
    }
    HILUM_ASSIGN_OR_RETURN(Tensor maps, b.resnet->forward(in, ResNetOutput::kSpatialFeatures));
    if (maps.device() != Device::kCPU) {
      HILUM_ASSIGN_OR_RETURN(maps, maps.to(Device::kCPU));
    }
    HILUM_ASSIGN_OR_RETURN(Tensor part, image_tokens_from_feature_maps(maps));
    if (part.dim(0) != m) {
      Tensor used = Tensor::empty({m, part.dim(1), part.dim(2)}, DType::kF32);
      std::copy_n(part.data<float>(), used.numel(), used.data<float>());
      part = std::move(used);
    }
    parts.push_back(std::move(part));
  }
  const int64_t k = parts.front().dim(1), c = parts.front().dim(2);
  Tensor tokens = Tensor::empty({n, k, c}, DType::kF32);
  int64_t row = 0;
  for (const Tensor& t : parts) {
    std::copy_n(t.data<float>(), t.numel(), tokens.data<float>() + row * k * c);
    row += t.dim(0);
  }
  return tokens;
}

Result<CandidateScores> score_patches(const ModelBundle& b, const Tensor& patches, const Tensor& features,
                                      const std::string& clinical_text, Progress& progress) {
  return score_frames(b, {{"axes", patches}}, features, clinical_text, progress);
}

static Result<CandidateScores> score_frames(const ModelBundle& b, const std::map<std::string, Tensor>& by_frame,
                                            const Tensor& features, const std::string& clinical_text,
                                            Progress& progress) {
  CandidateScores out;
  const PatchOptions& po = b.patches;
  int64_t n = -1;
  for (const auto& [frame, patches] : by_frame) {
    if (!patches.defined() || patches.rank() != 4 || patches.dtype() != DType::kF32 ||
        patches.dim(1) != po.channels() || patches.dim(2) != po.size || patches.dim(3) != po.size ||
        (n >= 0 && patches.dim(0) != n)) {
      return bad_input("patches must be f32 [N, " + std::to_string(po.channels()) + ", " + std::to_string(po.size) +
                       ", " + std::to_string(po.size) + "], as many in every frame");
    }
    n = patches.dim(0);
  }
  // Every view's frame must be there (score_patches has the scanner's axes only).
  for (const std::string& name : b.patch_views) {
    HILUM_ASSIGN_OR_RETURN(ViewSpec spec, parse_view_spec(name));
    if (!by_frame.count(spec.frame))
      return bad_input("the bundle's view '" + name + "' needs the patches cut in frame " + spec.frame +
                       ": score the candidates (score_candidates) instead");
  }
  if (n <= 0) return out;
  const std::lock_guard<std::mutex> lock(b.networks);
  Stopwatch clock;
  HILUM_ASSIGN_OR_RETURN(Tensor text, note_states(b, clinical_text));
  out.text_s = clock.lap();
  // Test-time augmentation: the head's logits averaged over the bundle's views
  // of each patch (one view, "identity", unless the manifest names more).
  const std::vector<std::string>& views = b.patch_views;
  std::vector<double> logits(static_cast<size_t>(2 * n), 0.0);
  for (size_t v = 0; v < views.size(); ++v) {
    ProgressRange step(progress, 0.05 + 0.9 * v / views.size(), 0.05 + 0.9 * (v + 1) / views.size());
    HILUM_ASSIGN_OR_RETURN(ViewSpec spec, parse_view_spec(views[v]));
    HILUM_ASSIGN_OR_RETURN(Tensor view, patch_view(by_frame.at(spec.frame), spec.view));
    HILUM_ASSIGN_OR_RETURN(Tensor tokens, image_tokens_of(b, view, step));
    out.image_s += clock.lap();
    HILUM_ASSIGN_OR_RETURN(FusionOutput fused, b.fusion->forward(tokens, text, b.device, features));
    for (int64_t i = 0; i < 2 * n; ++i) logits[i] += fused.logits.data<float>()[i];
    out.fusion_s += clock.lap();
  }
  const auto sigmoid = [](double x) { return static_cast<float>(1.0 / (1.0 + std::exp(-x))); };
  out.probability.resize(n);
  out.malignancy.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    out.probability[i] = sigmoid(logits[2 * i] / static_cast<double>(views.size()));
    out.malignancy[i] = sigmoid(logits[2 * i + 1] / static_cast<double>(views.size()));
  }
  progress.report(1.0, "fusion");
  return out;
}

Result<VolumeAnalysis> analyze_volume(const Volume& volume, const StudyInfo& study,
                                      const std::string& clinical_text, const ModelBundle& b,
                                      Progress& progress) {
  if (study.modality != "CT") {
    return bad_input("the series is " +
                     (study.modality.empty() ? std::string("of unknown modality") : study.modality) +
                     ", not CT");
  }
  VolumeAnalysis a;
  Stopwatch clock;
  auto lap = [&](const char* stage) { a.stage_seconds.emplace_back(stage, clock.lap()); };
  // Joined before the image branch runs (and, on an early return, by the future's destructor).
  std::future<Status> warm_up;
  if (b.device == Device::kCUDA)
    warm_up = std::async(std::launch::async, [&b]() -> Status {
      HILUM_RETURN_IF_ERROR(warm_up_image_branch(b));
      // The narrative model's warm-up is only an optimisation: a failure here
      // shows again (and falls back to the template) when the draft is made.
      if (b.drafter) {
        if (const Status s = b.drafter->warm_up(); !s.ok())
          log_warning("narrative model on CUDA: warm-up failed (" + s.error().message() + ")");
      }
      return Status::Ok();
    });
  LungMask mask;
  {
    ProgressRange p(progress, 0.0, 0.27);
    LungMaskOptions mask_options;
    // HILUM_LUNG_MASS_PASS=0 leaves the mask's mass pass out (its cost side by side; docs/findings.md).
    if (!env_switch("HILUM_LUNG_MASS_PASS", true)) mask_options.mass_closing_radius_mm = 0;
    // The closings' distance maps run where the networks do (HILUM_LUNG_MASK_ON_CPU=1 keeps
    // them on the CPU, for side-by-side timing).
    mask_options.device = env_switch("HILUM_LUNG_MASK_ON_CPU", false) ? Device::kCPU : b.device;
    HILUM_ASSIGN_OR_RETURN(mask, segment_lungs(volume, mask_options, p));
  }
  for (const std::string& w : mask.warnings) a.findings.notes.push_back(w);
  lap("lung mask");
  std::vector<Candidate> candidates;
  {
    ProgressRange p(progress, 0.27, 0.53);
    // The detector runs where the networks do (HILUM_CANDIDATES_ON_CPU=1 keeps it
    // on the CPU, for side-by-side timing).
    // HILUM_PLEURAL_CAPS, HILUM_BULGE_EXTRAS: side-by-side runs (docs/findings.md).
    CandidateOptions options = with_environment_switches(CandidateOptions{});
    options.device = env_switch("HILUM_CANDIDATES_ON_CPU", false) ? Device::kCPU : b.device;
    HILUM_ASSIGN_OR_RETURN(candidates, detect_candidates(volume, mask, options, p));
  }
  lap("candidates");
  if (warm_up.valid()) HILUM_RETURN_IF_ERROR(warm_up.get());
  CandidateScores scores;
  {
    ProgressRange p(progress, 0.53, 0.84);
    HILUM_ASSIGN_OR_RETURN(scores, score_candidates(b, volume, candidates, clinical_text, p));
  }
  a.stage_seconds.emplace_back("patches", scores.patches_s);
  a.stage_seconds.emplace_back("image branch (ResNet)", scores.image_s);
  a.stage_seconds.emplace_back("text branch (MoE + LoRA)", scores.text_s);
  a.stage_seconds.emplace_back("fusion head", scores.fusion_s);
  clock.restart();
  FindingsResult fr;
  {
    ProgressRange p(progress, 0.84, 1.0);
    HILUM_ASSIGN_OR_RETURN(
        fr, build_findings(volume, mask, candidates, scores.probability, scores.malignancy, b.findings, p));
  }
  a.findings.series_uid = study.series_instance_uid;
  a.findings.generator = "hilum " + hilum_version();
  a.findings.clinical_text_used = clinical_text.find_first_not_of(" \t\r\n") != std::string::npos;
  a.findings.model_bundle = b.label;
  a.findings.device = std::string(device_name(b.device));
  a.findings.reporting = ReportingRule{b.findings.min_probability, b.findings.min_long_axis_mm,
                                       b.findings.max_findings, b.findings.nms_distance_mm};
  a.findings.findings = std::move(fr.findings);
  a.findings.lung_rads_study = study_lung_rads(a.findings.findings);
  for (std::string& n : fr.notes) a.findings.notes.push_back(std::move(n));
  a.candidates = std::move(fr.scored);
  lap("findings (sizing, Lung-RADS)");
  progress.report(1.0, "findings");
  return a;
}

Result<StudyAnalysis> analyze_study(const AnalyzeRequest& request, const ModelBundle& b, Progress& progress) {
  StudyAnalysis a;
  Stopwatch clock;
  auto lap = [&](const char* stage) { a.stage_seconds.emplace_back(stage, clock.lap()); };
  LoadOptions lo;
  if (!request.series.empty()) lo.series_uid = request.series;
  lo.threads = request.threads;
  std::vector<std::string> warnings;
  {
    ProgressRange p(progress, 0.0, 0.25);
    HILUM_ASSIGN_OR_RETURN(LoadedStudy loaded, load_dicom_volume(request.inputs, lo, p));
    a.volume = std::move(loaded.volume);
    a.study = std::move(loaded.info);
    warnings = std::move(loaded.warnings);
  }
  lap("load DICOM");
  ProgressRange p(progress, 0.25, 1.0);
  HILUM_ASSIGN_OR_RETURN(VolumeAnalysis va, analyze_volume(a.volume, a.study, request.clinical_text, b, p));
  a.findings = std::move(va.findings);
  a.findings.notes.insert(a.findings.notes.begin(), warnings.begin(), warnings.end());
  a.candidates = std::move(va.candidates);
  a.stage_seconds.insert(a.stage_seconds.end(), va.stage_seconds.begin(), va.stage_seconds.end());
  return a;
}

StudyAnalyzer bundle_analyzer(std::shared_ptr<const ModelBundle> bundle) {
  return [bundle](const AnalyzeRequest& r, Progress& p) { return analyze_study(r, *bundle, p); };
}

Result<StudyReportFiles> write_study_reports(const StudyAnalysis& a, const Narrative& narrative,
                                             const fs::path& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return bad_input(out_dir.string() + ": cannot create the output folder (" + ec.message() + ")");
  StudyReportFiles files;
  HILUM_RETURN_IF_ERROR(write_findings_json(out_dir / "findings.json", a.findings));
  HILUM_RETURN_IF_ERROR(
      write_candidates_csv(out_dir / "candidates.csv", a.findings.series_uid, a.candidates));
  SrOptions sr;
  sr.impression = narrative.text;
  sr.impression_note = narrative.note;
  sr.software_version = a.findings.generator;
  HILUM_RETURN_IF_ERROR(write_report_sr(out_dir / "report-sr.dcm", a.findings, a.study, sr));
  if (have_pdf_renderer()) {
    HILUM_ASSIGN_OR_RETURN(ReportContent content,
                           build_report_content(a.findings, a.volume, a.study, narrative));
    HILUM_RETURN_IF_ERROR(write_report_pdf(content, out_dir / "report.pdf"));
    files.pdf_written = true;
  } else {
    files.notes.push_back("report.pdf not written: this build has no PDF renderer (Qt)");
  }
  return files;
}

}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
