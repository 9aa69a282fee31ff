// The phantom's patient and malignancy model (docs/phantom.md, "Malignancy
// model"): who the patient is, what the referral note says, and how the label
// of each nodule depends on what the image shows and on what only the note
// says. Internal to hilum_vision_io; the tests use it to check the model's
// statistics without rendering volumes.
#pragma once

#include <cstdint>
#include <string>

#include "vision/io/phantom.h"
#include "vision/io/phantom_random.h"

namespace hilum::phantom {

// What the image shows of a nodule, as the malignancy model sees it.
struct NoduleFeatures {
  double diameter_mm = 8;
  NoduleType type = NoduleType::kSolid;
  double solid_diameter_mm = 8;
  NoduleMargin margin = NoduleMargin::kSmooth;
  bool upper_zone = false;
  bool juxtapleural = false;
};

// Number of nodules when the options leave it to the seed (1-4).
int draw_nodule_count(Rng& rng);
// Size, type and margin of one nodule.
NoduleFeatures draw_nodule_appearance(Rng& rng);

ClinicalProfile draw_clinical_profile(Rng& rng);

// The two parts of the malignancy logit and the label probability.
double image_logit(const NoduleFeatures& f);
double note_logit(const ClinicalProfile& p);
double malignancy_probability(double image_logit, double note_logit);

// A referral note stating the profile's risk factors, worded with variety.
std::string write_referral_note(const ClinicalProfile& p, Rng& rng);

// "sixty-seven" for 0..999.
std::string number_in_words(int n);

}  // namespace hilum::phantom
