// Synthetic chest CT studies ("phantoms"): the embedded sample study and the
// test and training generator for everything downstream. See docs/phantom.md.
//
// A phantom is deterministic in its seed: same seed and options, same bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "vision/nodule.h"
#include "vision/volume.h"

namespace hilum {

struct PhantomOptions {
  uint64_t seed = 1;
  int nodules = -1;  // number of nodules; -1 = drawn from the seed
  int slices = -1;   // number of axial slices; -1 = drawn from the seed (thickness 0.625-2.5 mm)
};

// Ground truth for one nodule (what truth.csv holds).
struct PhantomNodule {
  Vec3 center_mm{};  // world LPS
  double diameter_mm = 0;
  NoduleType type = NoduleType::kSolid;
  double solid_diameter_mm = 0;  // part-solid: solid component; solid: = diameter; GGN: 0
  bool juxtapleural = false;
  bool juxtavascular = false;
  bool malignant = false;
  double malignancy_probability = 0;  // the generator's probability behind the label
};

// Patient risk factors written into clinical.txt (and only there).
struct ClinicalProfile {
  int age = 60;
  std::string sex;  // "M"/"F"
  double pack_years = 0;
  bool current_smoker = false;
  int years_since_quit = 0;
  bool prior_cancer = false;
  bool family_history = false;
  bool emphysema = false;
  std::vector<std::string> symptoms;
};

struct Phantom {
  Volume volume;
  StudyInfo info;  // synthetic identifiers (never a real person)
  std::vector<PhantomNodule> nodules;
  ClinicalProfile clinical;
  std::string clinical_text;  // the referral note
};

Result<Phantom> make_phantom(const PhantomOptions& options, Progress& progress);

// Writes `dir`/ with the DICOM CT series (one file per slice, under dir/dicom/),
// truth.csv and clinical.txt. Files are written atomically.
Status write_phantom_study(const Phantom& phantom, const std::filesystem::path& dir, Progress& progress);

}  // namespace hilum
