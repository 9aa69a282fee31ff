// The phantom's patient and malignancy model: label statistics (the note must
// matter) and referral notes that state the profile with variety.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "vision/io/phantom_clinical.h"

namespace hilum {
namespace {

using phantom::Rng;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
bool has(const std::string& text, const std::string& word) { return lower(text).find(lower(word)) != std::string::npos; }

// Area under the ROC curve (Mann-Whitney, ties counted half).
double auc(const std::vector<double>& score, const std::vector<int>& label) {
  std::vector<size_t> order(score.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double rank_sum = 0, positives = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double rank = 0.5 * (i + 1 + j);
    for (size_t k = i; k < j; ++k) {
      if (label[order[k]]) {
        rank_sum += rank;
        ++positives;
      }
    }
    i = j;
  }
  const double negatives = score.size() - positives;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

// Studies drawn the way make_phantom draws them (without rendering).
struct Simulated {
  std::vector<double> full, image, note;
  std::vector<int> label;
  double studies_with_malignancy = 0;
};
Simulated simulate(int studies) {
  Simulated s;
  int positive_studies = 0;
  for (int i = 0; i < studies; ++i) {
    Rng rng(1000 + i, "simulation");
    const ClinicalProfile p = phantom::draw_clinical_profile(rng);
    const int count = phantom::draw_nodule_count(rng);
    bool any = false;
    for (int n = 0; n < count; ++n) {
      phantom::NoduleFeatures f = phantom::draw_nodule_appearance(rng);
      f.upper_zone = rng.chance(0.45);
      f.juxtapleural = rng.chance(0.25);
      const double il = phantom::image_logit(f);
      const double prob = phantom::malignancy_probability(il, p.note_logit);
      const int y = rng.uniform() < prob;
      any |= y;
      s.full.push_back(il + p.note_logit);
      s.image.push_back(il);
      s.note.push_back(p.note_logit);
      s.label.push_back(y);
    }
    positive_studies += any;
  }
  s.studies_with_malignancy = double(positive_studies) / studies;
  return s;
}

TEST(PhantomClinical, AboutHalfTheStudiesHaveAMalignantNodule) {
  const Simulated s = simulate(4000);
  EXPECT_GT(s.studies_with_malignancy, 0.40);
  EXPECT_LT(s.studies_with_malignancy, 0.60);
}

TEST(PhantomClinical, TheNoteCarriesMuchOfTheLabel) {
  const Simulated s = simulate(4000);
  const double full = auc(s.full, s.label), image = auc(s.image, s.label), note = auc(s.note, s.label);
  // What fusion can reach vs what the image (or the note) alone can.
  EXPECT_GE(full, 0.95);
  EXPECT_LE(image, 0.85);
  EXPECT_GE(image, 0.65);
  EXPECT_LE(note, 0.90);
  EXPECT_GE(full - image, 0.12);
  RecordProperty("auc_full", std::to_string(full));
  RecordProperty("auc_image_only", std::to_string(image));
  RecordProperty("auc_note_only", std::to_string(note));
}

TEST(PhantomClinical, RiskFactorsMoveTheLogitTheDocumentedWay) {
  ClinicalProfile base;
  base.age = 65;
  base.sex = "M";
  base.pack_years = 30;
  base.years_since_quit = 0;
  base.current_smoker = false;
  const double b = phantom::note_logit(base);
  auto with = [&](auto change) {
    ClinicalProfile p = base;
    change(p);
    return phantom::note_logit(p) - b;
  };
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.prior_cancer = true, p.prior_cancer_site = "lung"; }), 3.2, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.prior_cancer = true, p.prior_cancer_site = "breast"; }), 0.9, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.family_history = true; }), 1.3, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.emphysema = true; }), 1.0, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.haemoptysis = true; }), 1.5, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.weight_loss = true; }), 1.2, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.age = 75; }), 0.7, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.sex = "F"; }), 0.5, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.pack_years = 50; }), 0.9, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.current_smoker = true; }), 0.6, 1e-9);
  EXPECT_NEAR(with([](ClinicalProfile& p) { p.years_since_quit = 10; }), -0.6, 1e-9);
  phantom::NoduleFeatures f;
  f.diameter_mm = 8;
  EXPECT_NEAR(phantom::image_logit(f), 0, 1e-12);
  f.margin = NoduleMargin::kSpiculated;
  EXPECT_NEAR(phantom::image_logit(f), 1.5, 1e-12);
  f.diameter_mm = 16;
  EXPECT_NEAR(phantom::image_logit(f), 1.5 + 2 * std::log(2.0), 1e-12);
  EXPECT_NEAR(phantom::malignancy_probability(1.0, 1.5), 0.5, 1e-12);
}

TEST(PhantomClinical, NotesStateTheProfile) {
  for (int i = 0; i < 400; ++i) {
    Rng rng(77 + i, "note-test");
    const ClinicalProfile p = phantom::draw_clinical_profile(rng);
    const std::string text = phantom::write_referral_note(p, rng);
    SCOPED_TRACE(text);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    // Age, in digits or words.
    EXPECT_TRUE(has(text, std::to_string(p.age)) || has(text, phantom::number_in_words(p.age)));
    // Smoking status.
    if (p.never_smoker) {
      EXPECT_TRUE(has(text, "never") || has(text, "non-smoker") || has(text, "no smoking"));
    } else {
      EXPECT_TRUE(has(text, "smok") || has(text, "pk-yr") || has(text, "pack"));
      if (p.current_smoker) EXPECT_FALSE(has(text, "quit") || has(text, "gave up") || has(text, "stopped"));
      else EXPECT_TRUE(has(text, "quit") || has(text, "gave up") || has(text, "stopped") || has(text, "not smoked"));
    }
    // Prior lung cancer is named as such.
    if (p.prior_cancer_site == "lung") {
      EXPECT_TRUE(has(text, "lung") || has(text, "nsclc"));
    }
    if (p.haemoptysis) {
      EXPECT_TRUE(has(text, "haemoptysis") || has(text, "hemoptysis") || has(text, "blood"));
    }
    if (p.family_history) {
      EXPECT_TRUE(has(text, "lung"));
    }
    if (p.emphysema) {
      EXPECT_TRUE(has(text, "copd") || has(text, "emphysema"));
    }
    // Nothing from the image side leaks into the note.
    EXPECT_FALSE(has(text, "spiculat"));
    EXPECT_FALSE(has(text, " mm"));
  }
}

TEST(PhantomClinical, NotesAreWordedWithVariety) {
  std::set<std::string> notes, first_lines;
  std::map<std::string, int> phrasing;
  for (int i = 0; i < 300; ++i) {
    Rng rng(5000 + i, "variety");
    const ClinicalProfile p = phantom::draw_clinical_profile(rng);
    const std::string text = phantom::write_referral_note(p, rng);
    notes.insert(text);
    first_lines.insert(text.substr(0, std::min<size_t>(12, text.find('\n'))));
    for (const char* w : {"pack-year", "cigarettes", "pk-yr", "year old", "-year-old", "aged", "y/o"}) {
      if (has(text, w)) ++phrasing[w];
    }
  }
  EXPECT_EQ(notes.size(), 300u);
  EXPECT_GE(first_lines.size(), 8u);
  EXPECT_EQ(phrasing.size(), 7u);  // every phrasing occurs
}

TEST(PhantomClinical, NumbersInWords) {
  EXPECT_EQ(phantom::number_in_words(7), "seven");
  EXPECT_EQ(phantom::number_in_words(40), "forty");
  EXPECT_EQ(phantom::number_in_words(67), "sixty-seven");
  EXPECT_EQ(phantom::number_in_words(115), "one hundred and fifteen");
}

}  // namespace
}  // namespace hilum
