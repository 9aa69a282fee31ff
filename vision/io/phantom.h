// Synthetic chest CT studies ("phantoms"): the embedded sample study and the
// test and training generator for everything downstream. See docs/phantom.md
// for the anatomy, the acquisition and the malignancy model.
//
// A phantom is deterministic in its seed and options: same seed and options,
// same bytes on disk (no clocks, no thread-order dependence).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "model/tensor.h"
#include "vision/nodule.h"
#include "vision/volume.h"

namespace hilum {

struct PhantomOptions {
  uint64_t seed = 1;
  int nodules = -1;  // number of nodules, 0..kMaxNodules; -1 = drawn from the seed (1-4)
  int slices = -1;   // axial slices, kMinSlices..kMaxSlices; -1 = drawn from the seed.
                     // The slice thickness is 300 mm / slices, clamped to 0.625-2.5 mm.
  // Relative weights of the sites a nodule is placed at: isolated, juxtapleural
  // (flattened on the pleura), juxtavascular (touching a vessel of 2 mm or more).
  // A nodule that finds no room at its site is placed as an isolated one.
  // Weights other than the default change the nodules' sites, not their number,
  // size, type or malignancy model (those are drawn before the site).
  std::array<double, 3> site_weights{0.5, 0.25, 0.25};

  static constexpr int kMaxNodules = 20;
  static constexpr int kMinSlices = 16;
  static constexpr int kMaxSlices = 640;
};

// Bad-input error naming the offending option when `options` is out of range.
Status validate_phantom_options(const PhantomOptions& options);

// The sites in site_weights' order: isolated, juxtapleural, juxtavascular
// (app/training_export.h parse_nodule_sites reads --nodule-sites by these names).
const std::array<std::string_view, 3>& nodule_site_names();
// The weights back as text, NAME=WEIGHT,... in that order (manifests, logs).
std::string nodule_sites_text(const std::array<double, 3>& weights);

enum class NoduleMargin { kSmooth, kLobulated, kSpiculated };
std::string_view nodule_margin_name(NoduleMargin m);  // "smooth", "lobulated", "spiculated"

// Ground truth for one nodule (what truth.csv holds).
struct PhantomNodule {
  Vec3 center_mm{};  // world LPS
  double diameter_mm = 0;  // long axis
  NoduleType type = NoduleType::kSolid;
  double solid_diameter_mm = 0;  // part-solid: solid component; solid: = diameter; GGN: 0
  NoduleMargin margin = NoduleMargin::kSmooth;
  bool upper_zone = false;  // above the hilum (the model's stand-in for "upper lobe")
  bool juxtapleural = false;
  bool juxtavascular = false;
  bool malignant = false;
  double malignancy_probability = 0;  // the generator's probability behind the label
  double image_logit = 0;             // the image-visible part of the malignancy logit
  // The nodule as drawn (its label voxels before blur and noise, spicules
  // included; where a vessel overlaps it, the vessel's), measured as sizing
  // measures: long and short axis on the axial slice of largest area, their
  // mean, and the voxel volume. The reference a reader's measurement is
  // compared with (truth.csv's axial_* columns; `hilum eval batch`).
  double drawn_long_mm = 0, drawn_short_mm = 0, drawn_mean_mm = 0, drawn_volume_mm3 = 0;
};

// Patient risk factors written into clinical.txt (and only there: the DICOM
// header carries no age or sex).
struct ClinicalProfile {
  int age = 60;
  std::string sex;  // "M"/"F"
  double pack_years = 0;
  bool current_smoker = false;
  bool never_smoker = false;
  int years_since_quit = 0;  // former smokers
  int cigarettes_per_day = 0;
  int smoking_years = 0;
  bool prior_cancer = false;
  std::string prior_cancer_site;  // "" when none; "lung", "breast", "colorectal", ...
  bool family_history = false;    // lung cancer in a first-degree relative
  bool emphysema = false;         // emphysema / COPD
  bool haemoptysis = false;
  bool weight_loss = false;
  std::vector<std::string> symptoms;  // every symptom the note mentions as present
  double note_logit = 0;              // the note-only part of the malignancy logit
};

// Tissue classes of Phantom::labels (low 7 bits); bit 0x80 marks voxels inside
// the lungs (parenchyma, intrapulmonary vessels and airways, nodules).
enum PhantomTissue : uint8_t {
  kTissueAir = 0,  // outside the body, and gas outside the lungs (stomach)
  kTissueFat = 1,
  kTissueSoft = 2,  // muscle, heart, great vessels, abdominal organs, cartilage
  kTissueBone = 3,
  kTissueLung = 4,    // parenchyma (emphysema included)
  kTissueVessel = 5,  // pulmonary vessels inside the lungs
  kTissueAirway = 6,  // lumen and wall of trachea and bronchi
  kTissueNodule = 7,
  kTissueTable = 8,
};
constexpr uint8_t kInLungBit = 0x80;

struct Phantom {
  Volume volume;  // HU, exactly what the written DICOM decodes to (whole numbers)
  Tensor labels;  // u8 [z, y, x]: PhantomTissue | kInLungBit, before noise and blur
  StudyInfo info;  // synthetic identifiers (never a real person)
  std::vector<PhantomNodule> nodules;
  ClinicalProfile clinical;
  std::string clinical_text;  // the referral note
  double noise_sd_hu = 0;     // CT noise after blur
};

// The patient and the referral note of a seed, exactly as make_phantom()
// draws them (they come from their own random streams), without rendering
// anything: cheap enough for many thousands of seeds.
struct PhantomNote {
  ClinicalProfile profile;
  std::string text;
};
PhantomNote make_phantom_note(uint64_t seed);

// Builds the study in memory. Errors: bad input (options out of range),
// cancelled (progress.cancelled()).
Result<Phantom> make_phantom(const PhantomOptions& options, Progress& progress);

struct PhantomWriteOptions {
  bool labels = false;  // also write labels.npy (u8, z/y/x)
};

// Writes into `dir` (created when missing): dicom/IM00001.dcm... (one CT Image
// Storage file per slice, explicit VR little endian, the most superior slice
// first), truth.csv and clinical.txt (and labels.npy when asked). Everything is
// written under a staging folder inside `dir` and moved into place at the end,
// replacing an earlier phantom's files; on any error or cancellation the
// staging folder is removed, `dir` is removed again if this call created it, and
// an earlier study in `dir` is left as it was. `dir` that cannot be created or
// written is bad input.
Status write_phantom_study(const Phantom& phantom, const std::filesystem::path& dir, Progress& progress,
                           const PhantomWriteOptions& options = {});

// A cheap early check that `dir` can become a study folder (an existing
// folder, or a path whose nearest existing ancestor is a writable folder), so
// that callers can refuse bad output paths before generating anything. Bad
// input when not; write_phantom_study remains the real test.
Status check_phantom_output_dir(const std::filesystem::path& dir);

// The truth.csv text (LUNA16 columns + type, solid_diameter_mm, malignant,
// juxtapleural, juxtavascular, margin, malignancy_probability).
std::string phantom_truth_csv(const Phantom& phantom);

}  // namespace hilum
