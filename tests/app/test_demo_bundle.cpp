// The demo model bundle in resources/models/: what its manifest promises, that
// Hilum's C++ engines compute what PyTorch computed for it at training time
// (tests/golden/bundle, written by scripts/train/train_fusion.py), and that it
// finds the nodules of a held-out phantom end to end through `hilum analyze`.
#include <gtest/gtest.h>

#if HILUM_HAVE_IMAGING && defined(HILUM_CLI)

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/analyze.h"
#include "model/npy.h"
#include "model/progress.h"
#include "model/safetensors.h"
#include "vision/patches.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
using namespace hilum;

namespace {

const fs::path kBundle = fs::path(HILUM_SOURCE_DIR) / "resources" / "models";
const fs::path kGolden = fs::path(HILUM_SOURCE_DIR) / "tests" / "golden" / "bundle";

// `hilum analyze` with the bundle `dir` (on an empty study under `scratch`)
// stops at the bundle: exit status 2, `message` in stderr, no output folder.
void expect_analyze_refuses_bundle(const fs::path& scratch, const fs::path& dir, const std::string& message) {
  fs::create_directories(scratch / "study");
  auto cli = test::run_hilum({"-q", "analyze", (scratch / "study").string(), "--model-bundle", dir.string(),
                              "--out", (scratch / "out").string()});
  EXPECT_EQ(cli.exit_code, 2) << cli.err;
  EXPECT_NE(cli.err.find(message), std::string::npos) << cli.err;
  EXPECT_FALSE(fs::exists(scratch / "out"));
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Expects `both` to hold the sigmoid of the mean logit of `a` and `b` (two views'
// scores of the same candidates), nodule and malignancy alike; returns how far
// apart the two views' nodule logits lie in all.
// The demo bundle on the CPU with these views.
std::shared_ptr<const ModelBundle> bundle_with_views(std::vector<std::string> views) {
  BundleOptions o;
  o.device = "cpu";
  o.patch_views = std::move(views);
  auto b = load_model_bundle(kBundle, o);
  EXPECT_TRUE(b.ok()) << b.error().message();
  return b.ok() ? *b : nullptr;
}

double expect_mean_of_two_views(const CandidateScores& both, const CandidateScores& a, const CandidateScores& b) {
  const auto logit = [](float p) { return std::log(static_cast<double>(p) / (1.0 - p)); };
  double apart = 0;
  for (size_t i = 0; i < both.probability.size(); ++i) {
    const double want = 0.5 * (logit(a.probability[i]) + logit(b.probability[i]));
    EXPECT_NEAR(both.probability[i], sigmoid(static_cast<float>(want)), 2e-5) << i;
    const double want_m = 0.5 * (logit(a.malignancy[i]) + logit(b.malignancy[i]));
    EXPECT_NEAR(both.malignancy[i], sigmoid(static_cast<float>(want_m)), 2e-5) << i;
    apart += std::abs(logit(a.probability[i]) - logit(b.probability[i]));
  }
  return apart;
}

// A 6 mm ball at (3, 0, 0) and a rod of 2.4 mm (`rod` gives a point's distance
// from its axis) at +30 HU in parenchyma of -860 HU, 0.7 mm voxels.
template <class Rod>
Volume ball_beside_rod(Rod rod) {
  Volume v = Volume::allocate(72, 72, 72, {0.7, 0.7, 0.7}, {-25, -25, -25});
  for (int64_t z = 0; z < v.nz(); ++z)
    for (int64_t y = 0; y < v.ny(); ++y)
      for (int64_t x = 0; x < v.nx(); ++x) {
        const Vec3 w = v.world_from_voxel({double(x), double(y), double(z)});
        const bool ball = std::hypot(w[0] - 3, w[1], w[2]) <= 3.0;
        v.data()[(z * v.ny() + y) * v.nx() + x] = ball || rod(w) <= 1.2 ? 30.f : -860.f;
      }
  return v;
}

// Candidates at these centres, with alike detector measurements.
std::vector<Candidate> candidates_at(const std::vector<Vec3>& centres) {
  std::vector<Candidate> cands(centres.size());
  for (size_t i = 0; i < centres.size(); ++i) {
    Candidate& c = cands[i];
    c.center_mm = centres[i];
    c.sigma_mm = 1.3, c.response = 20, c.contrast_hu = 300, c.blobness = 0.5, c.isolation = 0.9, c.score = 100;
  }
  return cands;
}

}  // namespace

TEST(DemoBundle, ManifestSaysHowItWasTrainedAndTheBundleIsSmall) {
  ASSERT_TRUE(fs::is_regular_file(kBundle / "manifest.json"));
  const auto m = nlohmann::json::parse(slurp(kBundle / "manifest.json"));
  EXPECT_EQ(m.at("name"), "hilum-demo");
  EXPECT_NE(m.at("training").at("data").get<std::string>().find("phantom"), std::string::npos);
  // Every script the manifest names is committed.
  for (const auto& s : m.at("training").at("scripts")) {
    EXPECT_TRUE(fs::is_regular_file(fs::path(HILUM_SOURCE_DIR) / s.get<std::string>())) << s;
  }
  uintmax_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(kBundle)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  EXPECT_LT(total, 40u * 1000 * 1000) << "the demo bundle must stay under 40 MB";
  // The files the manifest lists are the files there, with their sizes.
  for (const auto& [name, f] : m.at("files").items()) {
    ASSERT_TRUE(fs::is_regular_file(kBundle / name)) << name;
    EXPECT_EQ(fs::file_size(kBundle / name), f.at("bytes").get<uintmax_t>()) << name;
  }
}

TEST(DemoBundle, CppEnginesMatchPyTorchOnTheTrainingGolden) {
  BundleOptions bo;
  bo.device = "cpu";
  bo.patch_views = {"identity"};  // the golden is of the patches as they are
  auto bundle = load_model_bundle(kBundle, bo);
  ASSERT_TRUE(bundle.ok()) << bundle.error().message();
  auto u8 = read_npy(kGolden / "patches.npy");
  ASSERT_TRUE(u8.ok()) << u8.error().message();
  ASSERT_EQ(u8->dtype(), DType::kU8);
  Tensor x = Tensor::empty(u8->shape(), DType::kF32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = (u8->data<uint8_t>()[i] / 255.0f - 0.5f) / 0.25f;
  const std::string note = slurp(kGolden / "note.txt");
  ASSERT_FALSE(note.empty());
  // The candidates' detector measurements, when the bundle's fusion head takes them.
  Tensor features;
  if (fs::is_regular_file(kGolden / "features.npy")) {
    auto f = read_npy(kGolden / "features.npy");
    ASSERT_TRUE(f.ok()) << f.error().message();
    features = *f;
  }
  NullProgress progress;
  for (const bool with_note : {true, false}) {
    auto want = read_npy(kGolden / (with_note ? "logits_with_note.npy" : "logits_no_note.npy"));
    ASSERT_TRUE(want.ok()) << want.error().message();
    auto got = score_patches(**bundle, x, features, with_note ? note : std::string(), progress);
    ASSERT_TRUE(got.ok()) << got.error().message();
    ASSERT_EQ(static_cast<int64_t>(got->probability.size()), x.dim(0));
    double worst = 0;
    for (int64_t i = 0; i < x.dim(0); ++i) {
      worst = std::max<double>(worst, std::abs(got->probability[i] - sigmoid(want->data<float>()[2 * i])));
      worst = std::max<double>(worst, std::abs(got->malignancy[i] - sigmoid(want->data<float>()[2 * i + 1])));
    }
    EXPECT_LT(worst, 1e-4) << (with_note ? "with" : "without") << " the note";
  }
  // The note changes the malignancy estimate (the text branch is wired in).
  auto a = score_patches(**bundle, x, features, note, progress);
  auto b = score_patches(**bundle, x, features, "", progress);
  ASSERT_TRUE(a.ok() && b.ok());
  double diff = 0;
  for (size_t i = 0; i < a->malignancy.size(); ++i) diff += std::abs(a->malignancy[i] - b->malignancy[i]);
  EXPECT_GT(diff, 1e-3);
}

TEST(DemoBundle, AFusionHeadNamingAnUnknownCandidateFeatureIsRefused) {
  // The demo bundle with its fusion head's first candidate feature renamed.
  test::ScratchDir d;
  const fs::path dir = d.path() / "bundle";
  fs::create_directories(dir / "fusion");
  fs::copy_file(kBundle / "manifest.json", dir / "manifest.json");
  fs::create_directory_symlink(kBundle / "vision", dir / "vision");
  fs::create_directory_symlink(kBundle / "text", dir / "text");
  fs::path head;
  for (const auto& e : fs::directory_iterator(kBundle / "fusion"))
    if (e.path().extension() == ".safetensors") head = e.path();
  auto file = SafetensorsFile::open(head);
  ASSERT_TRUE(file.ok()) << file.error().message();
  auto meta = file->metadata();
  auto config = nlohmann::json::parse(meta.at("hilum.fusion"));
  ASSERT_TRUE(config.contains("candidate_features") && !config["candidate_features"].empty())
      << "the demo bundle's head takes candidate features";
  config["candidate_features"][0] = "roundness";
  meta["hilum.fusion"] = config.dump();
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& name : file->names()) tensors.emplace_back(name, file->get(name)->clone());
  const fs::path renamed = dir / "fusion" / head.filename();
  ASSERT_TRUE(write_safetensors(renamed, tensors, meta).ok());
  BundleOptions bo;
  bo.device = "cpu";
  auto bundle = load_model_bundle(dir, bo);
  ASSERT_FALSE(bundle.ok());
  EXPECT_EQ(bundle.error().kind(), ErrorKind::kBadInput);
  const std::string msg = bundle.error().message();
  EXPECT_NE(msg.find(renamed.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown candidate feature 'roundness'"), std::string::npos) << msg;
  expect_analyze_refuses_bundle(d.path(), dir, "unknown candidate feature 'roundness'");
  // The unchanged head loads.
  EXPECT_TRUE(load_model_bundle(kBundle, bo).ok());
}

TEST(DemoBundle, TestTimeAugmentationAveragesTheLogitsOfTheViews) {
  const auto b1 = bundle_with_views({"identity"});
  const auto b2 = bundle_with_views({"identity", "flip_x"});
  ASSERT_TRUE(b1 && b2);
  auto u8 = read_npy(kGolden / "patches.npy");
  auto f = read_npy(kGolden / "features.npy");
  ASSERT_TRUE(u8.ok() && f.ok());
  Tensor x = Tensor::empty(u8->shape(), DType::kF32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = (u8->data<uint8_t>()[i] / 255.0f - 0.5f) / 0.25f;
  auto flipped = patch_view(x, "flip_x");
  ASSERT_TRUE(flipped.ok());
  NullProgress progress;
  auto a = score_patches(*b1, x, *f, "", progress);
  auto b = score_patches(*b1, *flipped, *f, "", progress);
  auto both = score_patches(*b2, x, *f, "", progress);
  ASSERT_TRUE(a.ok() && b.ok() && both.ok());
  ASSERT_EQ(both->probability.size(), static_cast<size_t>(x.dim(0)));
  EXPECT_GT(expect_mean_of_two_views(*both, *a, *b), 1e-3);  // the flip is a different input
  // The demo bundle's manifest names its views; an unknown one is refused.
  const auto m = nlohmann::json::parse(slurp(kBundle / "manifest.json"));
  EXPECT_EQ(m.at("inference").at("patch_views").size(), 4u);
  BundleOptions bad;
  bad.patch_views = {"rotate"};
  auto r = load_model_bundle(kBundle, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("unknown patch view 'rotate'"), std::string::npos);
}

// A frame view ("rz45") scores the patches cut in that frame: score_candidates
// cuts them from the volume and averages their logits with the other views'.
TEST(DemoBundle, FrameViewsScoreThePatchesCutInTheirFrame) {
  const auto b1 = bundle_with_views({"identity"});
  const auto b2 = bundle_with_views({"identity", "rz45"});
  ASSERT_TRUE(b1 && b2);
  // A ball beside an oblique rod, in parenchyma; three candidates on and near them.
  const Volume v = ball_beside_rod([](const Vec3& w) { return std::hypot(w[0] + 6 - w[1] * 0.5, w[2] - w[1] * 0.5); });
  const std::vector<Candidate> cands = candidates_at({{3, 0, 0}, {-6, 0, 0}, {0, 8, -5}});
  NullProgress progress;
  auto both = score_candidates(*b2, v, cands, "", progress);
  ASSERT_TRUE(both.ok()) << both.error().message();
  // The same by hand: the axes' patches and the rz45 patches, each scored alone.
  std::vector<Vec3> centres;
  for (const Candidate& c : cands) centres.push_back(c.center_mm);
  PatchOptions po = model_bundle_patch_options(*b1);  // the demo net's: two spacings
  auto axes = extract_patches(v, centres, po, progress);
  po.frame = *patch_frame("rz45");
  auto turned = extract_patches(v, centres, po, progress);
  auto f = candidate_features(*b1, cands);
  ASSERT_TRUE(axes.ok() && turned.ok() && f.ok());
  auto a = score_patches(*b1, *axes, *f, "", progress);
  auto b = score_patches(*b1, *turned, *f, "", progress);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(both->probability.size(), cands.size());
  EXPECT_GT(expect_mean_of_two_views(*both, *a, *b), 1e-3);  // the rotated planes are another input
  // Patches already cut hold the scanner's axes only: a bundle with a frame view refuses them.
  auto refused = score_patches(*b2, *axes, *f, "", progress);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("the bundle's view 'rz45' needs the patches cut in frame rz45"),
            std::string::npos)
      << refused.error().message();
}

TEST(DemoBundle, AManifestNamingAnUnknownPatchViewIsRefused) {
  test::ScratchDir d;
  const fs::path dir = d.path() / "bundle";
  fs::create_directories(dir);
  for (const char* part : {"vision", "text", "fusion"}) fs::create_directory_symlink(kBundle / part, dir / part);
  auto m = nlohmann::json::parse(slurp(kBundle / "manifest.json"));
  m["inference"]["patch_views"] = nlohmann::json::array({"identity", "rot90"});
  std::ofstream(dir / "manifest.json") << m.dump();
  auto r = load_model_bundle(dir, BundleOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find((dir / "manifest.json").string()), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("\"rot90\", not a patch view"), std::string::npos) << r.error().message();
  // Through the command line: one line naming the manifest, exit status 2, nothing written.
  expect_analyze_refuses_bundle(d.path(), dir, "inference.patch_views holds \"rot90\"");
}

namespace {

// A scratch bundle: the demo bundle's text and fusion parts; its vision part the
// demo ResNet taking `channels` input channels: 3, its stem weights per plane
// (a zoomed demo net's two scales summed, so a patch whose zoomed planes repeat
// the base ones gives the demo net's answer); 9, the same spread evenly over a
// slab's three offsets; 6, over a zoom's two spacings. The manifest with
// inference.patch_slab_mm = `slab` and inference.patch_zoom_spacing_mm = `zoom`
// (JSON values) unless null, and neither otherwise.
fs::path part_bundle(const fs::path& dir, int channels, const nlohmann::json& slab,
                     const nlohmann::json& zoom = nullptr) {
  fs::create_directories(dir / "vision");
  for (const char* part : {"text", "fusion"}) fs::create_directory_symlink(kBundle / part, dir / part);
  auto demo = SafetensorsFile::open(kBundle / "vision" / "resnet.safetensors");
  EXPECT_TRUE(demo.ok());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : demo->names()) {
    Tensor t = *demo->get(name);
    if (name == "conv1.weight") {
      const int64_t out = t.dim(0), k = t.dim(2) * t.dim(3), in = t.dim(1), per_in = in / 3;
      Tensor w3 = Tensor::zeros({out, 3, t.dim(2), t.dim(3)}, DType::kF32);  // per plane
      for (int64_t o = 0; o < out; ++o)
        for (int64_t c = 0; c < in; ++c)
          for (int64_t i = 0; i < k; ++i)
            w3.data<float>()[(o * 3 + c / per_in) * k + i] += t.data<float>()[(o * in + c) * k + i];
      const int64_t per = channels / 3;
      Tensor w = Tensor::empty({out, channels, t.dim(2), t.dim(3)}, DType::kF32);
      for (int64_t o = 0; o < out; ++o)
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t i = 0; i < k; ++i)
            w.data<float>()[(o * channels + c) * k + i] = w3.data<float>()[(o * 3 + c / per) * k + i] / per;
      t = w;
    }
    tensors.emplace_back(name, t);
  }
  EXPECT_TRUE(write_safetensors(dir / "vision" / "resnet.safetensors", tensors, {{"format", "pt"}}).ok());
  auto m = nlohmann::json::parse(slurp(kBundle / "manifest.json"));
  m["inference"]["patch_views"] = nlohmann::json::array({"identity"});
  m["inference"].erase("patch_slab_mm");
  m["inference"].erase("patch_zoom_spacing_mm");
  if (!slab.is_null()) m["inference"]["patch_slab_mm"] = slab;
  if (!zoom.is_null()) m["inference"]["patch_zoom_spacing_mm"] = zoom;
  std::ofstream(dir / "manifest.json") << m.dump();
  return dir;
}

// The three planes at the base spacing of patches [N, 3 or 6, S, S] (a zoom's
// channels 0, 2, 4).
Tensor base_planes(const Tensor& x) {
  if (x.dim(1) == 3) return x;
  const int64_t n = x.dim(0), plane = x.dim(2) * x.dim(3);
  Tensor out = Tensor::empty({n, 3, x.dim(2), x.dim(3)}, DType::kF32);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      std::copy_n(x.data<float>() + (i * x.dim(1) + c * (x.dim(1) / 3)) * plane, plane,
                  out.data<float>() + (i * 3 + c) * plane);
  return out;
}

// Nine channels of three: each plane repeated as its own neighbours.
Tensor repeat_planes(const Tensor& x) {
  const int64_t n = x.dim(0), plane = x.dim(2) * x.dim(3);
  Tensor out = Tensor::empty({n, 9, x.dim(2), x.dim(3)}, DType::kF32);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 9; ++c)
      std::copy_n(x.data<float>() + (i * 3 + c / 3) * plane, plane, out.data<float>() + (i * 9 + c) * plane);
  return out;
}

}  // namespace

// inference.patch_slab_mm: the image branch takes nine-channel patches (each
// plane with its neighbours along its normal), cut so by score_candidates.
TEST(DemoBundle, ASlabBundleTakesNineChannelPatches) {
  test::ScratchDir d;
  BundleOptions bo;
  bo.device = "cpu";
  auto b9 = load_model_bundle(part_bundle(d.path() / "b9", 9, 2.0), bo);
  ASSERT_TRUE(b9.ok()) << b9.error().message();
  auto b3 = load_model_bundle(part_bundle(d.path() / "b3", 3, nullptr), bo);
  ASSERT_TRUE(b3.ok()) << b3.error().message();
  // Neighbours that repeat the middle plane: the three-plane net's scores.
  auto u8 = read_npy(kGolden / "patches.npy");
  auto f = read_npy(kGolden / "features.npy");
  ASSERT_TRUE(u8.ok() && f.ok());
  Tensor all = Tensor::empty(u8->shape(), DType::kF32);
  for (int64_t i = 0; i < all.numel(); ++i)
    all.data<float>()[i] = (u8->data<uint8_t>()[i] / 255.0f - 0.5f) / 0.25f;
  const Tensor x = base_planes(all);
  NullProgress progress;
  auto s3 = score_patches(**b3, x, *f, "", progress);
  auto s9 = score_patches(**b9, repeat_planes(x), *f, "", progress);
  ASSERT_TRUE(s3.ok() && s9.ok()) << (s9.ok() ? s3.error().message() : s9.error().message());
  for (size_t i = 0; i < s3->probability.size(); ++i) {
    EXPECT_NEAR(s9->probability[i], s3->probability[i], 1e-4) << i;
    EXPECT_NEAR(s9->malignancy[i], s3->malignancy[i], 1e-4) << i;
  }
  // Three-channel patches are refused by the nine-channel bundle.
  auto wrong = score_patches(**b9, x, *f, "", progress);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("[N, 9, 64, 64]"), std::string::npos) << wrong.error().message();
  // From a volume, the neighbours are the planes 2 mm away: a rod crossing the
  // axial plane obliquely moves between them, a ball centred there shrinks.
  const Volume v = ball_beside_rod([](const Vec3& w) { return std::hypot(w[0] + 6 - w[2] * 0.5, w[1] - w[2] * 0.5); });
  const std::vector<Candidate> cands = candidates_at({{3, 0, 0}, {-6, 0, 0}});
  auto fc = candidate_features(**b9, cands);
  ASSERT_TRUE(fc.ok());
  auto cut = score_candidates(**b9, v, cands, "", progress);
  ASSERT_TRUE(cut.ok()) << cut.error().message();
  std::vector<Vec3> centres = {cands[0].center_mm, cands[1].center_mm};
  auto planes = extract_patches(v, centres, PatchOptions{}, progress);
  ASSERT_TRUE(planes.ok());
  auto flat = score_patches(**b9, repeat_planes(*planes), *fc, "", progress);
  PatchOptions slab;
  slab.slab_mm = 2;
  auto by_hand = extract_patches(v, centres, slab, progress);
  ASSERT_TRUE(flat.ok() && by_hand.ok());
  auto hand = score_patches(**b9, *by_hand, *fc, "", progress);
  ASSERT_TRUE(hand.ok());
  double apart = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    EXPECT_FLOAT_EQ(cut->probability[i], hand->probability[i]) << i;
    apart += std::abs(cut->probability[i] - flat->probability[i]) + std::abs(cut->malignancy[i] - flat->malignancy[i]);
  }
  EXPECT_GT(apart, 1e-4);
  // A slab and a net that disagree, or a slab that is no number of mm, are refused.
  struct Bad {
    const char* name;
    bool nine;
    nlohmann::json slab;
    const char* message;
  } bad[] = {{"slab-3ch", false, 2.0, "takes 3 input channels, but the bundle's patches have 9"},
             {"plain-9ch", true, nullptr, "takes 9 input channels, but the bundle's patches have 3"},
             {"text", true, "2", "inference.patch_slab_mm is \"2\", not a number of mm from 0 to 20"},
             {"big", true, 30, "inference.patch_slab_mm is 30, not a number of mm from 0 to 20"}};
  for (const Bad& k : bad) {
    const fs::path dir = part_bundle(d.path() / k.name, k.nine ? 9 : 3, k.slab);
    auto r = load_model_bundle(dir, bo);
    ASSERT_FALSE(r.ok()) << k.name;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(k.message), std::string::npos) << r.error().message();
  }
  expect_analyze_refuses_bundle(d.path() / "cli", d.path() / "slab-3ch", "inference.patch_slab_mm");
}

// inference.patch_zoom_spacing_mm: the image branch takes six-channel patches
// (each plane at 0.7 mm and again at the zoom's spacing), cut so by
// score_candidates; bundles whose net and manifest disagree are refused.
TEST(DemoBundle, AZoomBundleTakesSixChannelPatches) {
  test::ScratchDir d;
  BundleOptions bo;
  bo.device = "cpu";
  auto b6 = load_model_bundle(part_bundle(d.path() / "b6", 6, nullptr, 0.35), bo);
  ASSERT_TRUE(b6.ok()) << b6.error().message();
  const Volume v = ball_beside_rod([](const Vec3& w) { return std::hypot(w[0] + 6 - w[2] * 0.5, w[1] - w[2] * 0.5); });
  const std::vector<Candidate> cands = candidates_at({{3, 0, 0}, {-6, 0, 0}});
  auto fc = candidate_features(**b6, cands);
  ASSERT_TRUE(fc.ok());
  NullProgress progress;
  auto cut = score_candidates(**b6, v, cands, "", progress);
  ASSERT_TRUE(cut.ok()) << cut.error().message();
  std::vector<Vec3> centres = {cands[0].center_mm, cands[1].center_mm};
  PatchOptions zoom;
  zoom.zoom_spacing_mm = 0.35;
  auto by_hand = extract_patches(v, centres, zoom, progress);
  ASSERT_TRUE(by_hand.ok());
  auto hand = score_patches(**b6, *by_hand, *fc, "", progress);
  ASSERT_TRUE(hand.ok()) << hand.error().message();
  // The same net fed the plain planes twice (no zoom) answers otherwise.
  auto planes = extract_patches(v, centres, PatchOptions{}, progress);
  ASSERT_TRUE(planes.ok());
  Tensor twice = Tensor::empty({planes->dim(0), 6, 64, 64}, DType::kF32);
  const int64_t plane = 64 * 64;
  for (int64_t i = 0; i < planes->dim(0); ++i)
    for (int64_t c = 0; c < 6; ++c)
      std::copy_n(planes->data<float>() + (i * 3 + c / 2) * plane, plane, twice.data<float>() + (i * 6 + c) * plane);
  auto flat = score_patches(**b6, twice, *fc, "", progress);
  ASSERT_TRUE(flat.ok());
  double apart = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    EXPECT_FLOAT_EQ(cut->probability[i], hand->probability[i]) << i;
    apart += std::abs(cut->probability[i] - flat->probability[i]) + std::abs(cut->malignancy[i] - flat->malignancy[i]);
  }
  EXPECT_GT(apart, 1e-4);
  // Three-channel patches are refused by the six-channel bundle.
  auto wrong = score_patches(**b6, *planes, *fc, "", progress);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("[N, 6, 64, 64]"), std::string::npos) << wrong.error().message();
  struct Bad {
    const char* name;
    bool six;
    nlohmann::json slab, zoom;
    const char* message;
  } bad[] = {{"zoom-3ch", false, nullptr, 0.35, "takes 3 input channels, but the bundle's patches have 6"},
             {"plain-6ch", true, nullptr, nullptr, "six inference.patch_zoom_spacing_mm"},
             {"text", true, nullptr, "0.35", "inference.patch_zoom_spacing_mm is \"0.35\", not a number of mm from 0 to 5"},
             {"big", true, nullptr, 6, "inference.patch_zoom_spacing_mm is 6, not a number of mm from 0 to 5"},
             {"both", true, 2.0, 0.35, "inference.patch_slab_mm and inference.patch_zoom_spacing_mm do not combine"}};
  for (const Bad& k : bad) {
    const fs::path dir = part_bundle(d.path() / k.name, k.six ? 6 : 3, k.slab, k.zoom);
    auto r = load_model_bundle(dir, bo);
    ASSERT_FALSE(r.ok()) << k.name;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(k.message), std::string::npos) << r.error().message();
  }
  expect_analyze_refuses_bundle(d.path() / "cli", d.path() / "zoom-3ch", "inference.patch_zoom_spacing_mm");
}

TEST(DemoBundle, PatchesOfTheWrongShapeAreRefused) {
  BundleOptions bo;
  bo.device = "cpu";
  auto bundle = load_model_bundle(kBundle, bo);
  ASSERT_TRUE(bundle.ok()) << bundle.error().message();
  NullProgress progress;
  const int channels = model_bundle_patch_options(**bundle).channels();
  auto r = score_patches(**bundle, Tensor::zeros({2, channels, 32, 32}, DType::kF32), Tensor(), "", progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("[N, " + std::to_string(channels) + ", 64, 64]"), std::string::npos)
      << r.error().message();
}

TEST(DemoBundle, NoClinicalTextExcludesAClinicalTextFile) {
  test::ScratchDir d;
  auto r = test::run_hilum({"-q", "analyze", d.path().string(), "--out", (d.path() / "out").string(),
                            "--no-clinical-text", "--clinical-text", (d.path() / "note.txt").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d.path() / "out"));
}

TEST(DemoBundle, AnalyzeFindsTheNodulesOfAHeldOutPhantom) {
  test::ScratchDir d;
  // Seed 900003 is in the held-out range (never trained on); 3 nodules, 100 slices.
  auto r = test::run_hilum({"-q", "phantom", "--out", (d.path() / "study").string(), "--seed", "900003",
                            "--nodules", "3", "--slices", "100"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // No --model-bundle: the demo bundle is the default.
  r = test::run_hilum({"-q", "analyze", (d.path() / "study" / "dicom").string(), "--out", (d.path() / "out").string(),
                       "--clinical-text", (d.path() / "study" / "clinical.txt").string(), "--timings"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* stage : {"timing: load DICOM", "timing: candidates", "timing: image branch", "timing: text branch",
                            "timing: fusion head", "timing: total"}) {
    EXPECT_NE(r.err.find(stage), std::string::npos) << stage << " missing in\n" << r.err;
  }
  const auto doc = nlohmann::json::parse(slurp(d.path() / "out" / "findings.json"));
  EXPECT_EQ(doc.at("model_bundle").get<std::string>().rfind("hilum-demo", 0), 0u);
  EXPECT_TRUE(doc.at("clinical_text_used").get<bool>());
  EXPECT_EQ(doc.at("device").get<std::string>(), "cpu");  // the default --device
  // truth.csv: seriesuid,coordX,coordY,coordZ,diameter_mm,...
  std::ifstream truth(d.path() / "study" / "truth.csv");
  std::string line;
  std::getline(truth, line);
  int nodules = 0, found = 0;
  while (std::getline(truth, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> v;
    std::getline(ss, cell, ',');
    for (int i = 0; i < 4 && std::getline(ss, cell, ','); ++i) v.push_back(std::stod(cell));
    // The large nodules must be found (smaller ones depend on the candidate
    // detector's sensitivity, measured on many held-out studies in bench/RESULTS.md).
    if (v.size() < 4 || v[3] < 10.0) continue;
    ++nodules;
    for (const auto& f : doc.at("findings")) {
      const auto c = f.at("center_mm");
      const double dist = std::hypot(c[0].get<double>() - v[0], c[1].get<double>() - v[1], c[2].get<double>() - v[2]);
      if (dist < std::max(5.0, v[3] / 2) && f.at("probability").get<double>() >= 0.5) {
        ++found;
        break;
      }
    }
  }
  ASSERT_GT(nodules, 0);
  EXPECT_EQ(found, nodules) << slurp(d.path() / "out" / "findings.json");
  // And not a flood of false findings.
  EXPECT_LE(doc.at("findings").size(), static_cast<size_t>(nodules + 8));
}

#endif  // HILUM_HAVE_IMAGING && HILUM_CLI
