#include "vision/io/phantom_clinical.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace hilum::phantom {

// ---------------------------------------------------------------------------
// Nodules

int draw_nodule_count(Rng& rng) { return 1 + static_cast<int>(rng.weighted({0.40, 0.30, 0.18, 0.12})); }

namespace {
double log_uniform(Rng& rng, double lo, double hi, double skew = 1.0) {
  return std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * std::pow(rng.uniform(), skew));
}
}  // namespace

NoduleFeatures draw_nodule_appearance(Rng& rng) {
  NoduleFeatures f;
  switch (rng.weighted({0.65, 0.15, 0.20})) {
    case 0:
      f.type = NoduleType::kSolid;
      f.diameter_mm = log_uniform(rng, 3, 30, 1.25);
      f.solid_diameter_mm = f.diameter_mm;
      break;
    case 1:
      f.type = NoduleType::kPartSolid;
      f.diameter_mm = log_uniform(rng, 8, 30);
      f.solid_diameter_mm = std::max(3.0, f.diameter_mm * rng.uniform(0.3, 0.65));
      break;
    default:
      f.type = NoduleType::kGroundGlass;
      f.diameter_mm = log_uniform(rng, 5, 30);
      f.solid_diameter_mm = 0;
      break;
  }
  f.diameter_mm = std::round(f.diameter_mm * 10) / 10;
  f.solid_diameter_mm = std::round(f.solid_diameter_mm * 10) / 10;
  if (f.type == NoduleType::kGroundGlass) {
    f.margin = rng.chance(0.2) ? NoduleMargin::kLobulated : NoduleMargin::kSmooth;
  } else {
    const size_t m = rng.weighted({0.55, 0.25, 0.20});
    f.margin = m == 0 ? NoduleMargin::kSmooth : m == 1 ? NoduleMargin::kLobulated : NoduleMargin::kSpiculated;
    // Spicules on a nodule of a few millimetres would not be visible.
    if (f.diameter_mm < 6 && f.margin == NoduleMargin::kSpiculated) f.margin = NoduleMargin::kLobulated;
  }
  return f;
}

// ---------------------------------------------------------------------------
// Malignancy model (docs/phantom.md lists the same numbers).

double image_logit(const NoduleFeatures& f) {
  double l = 2.0 * std::log(f.diameter_mm / 8.0);
  if (f.type == NoduleType::kPartSolid) l += 1.0;
  if (f.type == NoduleType::kGroundGlass) l -= 0.3;
  if (f.margin == NoduleMargin::kLobulated) l += 0.6;
  if (f.margin == NoduleMargin::kSpiculated) l += 1.5;
  if (f.upper_zone) l += 0.4;
  // Small smooth pleural-based solid nodules are mostly intrapulmonary lymph nodes.
  if (f.juxtapleural && f.margin == NoduleMargin::kSmooth && f.diameter_mm < 10) l -= 0.3;
  return l;
}

double note_logit(const ClinicalProfile& p) {
  double l = 0.07 * (p.age - 65);
  if (p.sex == "F") l += 0.5;
  if (p.never_smoker) {
    l -= 1.8;
  } else {
    l += 0.045 * (p.pack_years - 30);
    if (p.current_smoker) l += 0.6;
    else l -= 0.06 * std::min(p.years_since_quit, 20);
  }
  if (p.prior_cancer) l += p.prior_cancer_site == "lung" ? 3.2 : 0.9;
  if (p.family_history) l += 1.3;
  if (p.emphysema) l += 1.0;
  if (p.haemoptysis) l += 1.5;
  if (p.weight_loss) l += 1.2;
  return l;
}

double malignancy_probability(double image_logit, double note_logit) {
  constexpr double kSteepness = 3.0, kOffset = 2.5;
  return 1.0 / (1.0 + std::exp(-kSteepness * (image_logit + note_logit - kOffset)));
}

// ---------------------------------------------------------------------------
// Patient

ClinicalProfile draw_clinical_profile(Rng& rng) {
  ClinicalProfile p;
  p.age = static_cast<int>(std::lround(std::clamp(64 + 8 * rng.normal(), 40.0, 85.0)));
  p.sex = rng.chance(0.45) ? "F" : "M";
  const size_t status = rng.weighted({0.20, 0.45, 0.35});
  p.never_smoker = status == 0;
  p.current_smoker = status == 2;
  if (!p.never_smoker) {
    static const int kPerDay[] = {5, 10, 15, 20, 20, 20, 25, 30, 40};
    p.cigarettes_per_day = rng.pick(kPerDay);
    if (!p.current_smoker) p.years_since_quit = rng.integer(1, std::max(1, std::min(25, p.age - 30)));
    const int max_years = std::max(10, p.age - 15 - p.years_since_quit);
    p.smoking_years = rng.integer(std::min(10, max_years), max_years);
    p.pack_years = p.cigarettes_per_day * p.smoking_years / 20.0;
  }
  const double u = rng.uniform();
  if (u < 0.12) {
    p.prior_cancer = true;
    p.prior_cancer_site = "lung";
  } else if (u < 0.32) {
    static const char* kSites[] = {"breast", "colorectal", "prostate", "head and neck", "lymphoma",
                                   "bladder", "kidney",  "melanoma"};
    p.prior_cancer = true;
    p.prior_cancer_site = rng.pick(kSites);
    if (p.sex == "F" && p.prior_cancer_site == "prostate") p.prior_cancer_site = "breast";
    if (p.sex == "M" && p.prior_cancer_site == "breast") p.prior_cancer_site = "prostate";
  }
  p.family_history = rng.chance(0.20);
  p.emphysema = rng.chance(p.never_smoker ? 0.05 : 0.35);
  p.haemoptysis = rng.chance(0.08);
  p.weight_loss = rng.chance(0.10);
  const bool cough = rng.chance(0.30), dyspnoea = rng.chance(0.20), chest_pain = rng.chance(0.08);
  if (cough) p.symptoms.push_back("cough");
  if (p.haemoptysis) p.symptoms.push_back("haemoptysis");
  if (p.weight_loss) p.symptoms.push_back("weight loss");
  if (dyspnoea) p.symptoms.push_back("dyspnoea");
  if (chest_pain) p.symptoms.push_back("chest pain");
  p.note_logit = note_logit(p);
  return p;
}

// ---------------------------------------------------------------------------
// Referral note

std::string number_in_words(int n) {
  static const char* kOnes[] = {"zero",    "one",     "two",       "three",    "four",
                                "five",    "six",     "seven",     "eight",    "nine",
                                "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const char* kTens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
  if (n < 0) return "minus " + number_in_words(-n);
  if (n < 20) return kOnes[n];
  if (n < 100) return std::string(kTens[n / 10]) + (n % 10 ? std::string("-") + kOnes[n % 10] : "");
  if (n < 1000) {
    std::string s = std::string(kOnes[n / 100]) + " hundred";
    if (n % 100) s += " and " + number_in_words(n % 100);
    return s;
  }
  return std::to_string(n);
}

namespace {

class NoteWriter {
 public:
  NoteWriter(const ClinicalProfile& p, Rng& rng) : p_(p), rng_(rng), female_(p.sex == "F") {}

  std::string write() {
    switch (rng_.integer(0, 4)) {
      case 0: return request_form();
      case 1: return letter();
      case 2: return structured();
      case 3: return screening();
      default: return shorthand();
    }
  }

 private:
  template <size_t N>
  const char* any(const char* const (&options)[N]) {
    return options[rng_.bits() % N];
  }
  static std::string cap(std::string s) {
    if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
    return s;
  }
  // A number as digits or (sometimes) in words.
  std::string num(int n, double words = 0.25) {
    return rng_.chance(words) ? number_in_words(n) : std::to_string(n);
  }
  std::string he() { return female_ ? "she" : "he"; }
  std::string his() { return female_ ? "her" : "his"; }

  std::string age_sex_phrase() {  // "a 67-year-old man"
    const char* const kMen[] = {"man", "male", "gentleman"};
    const char* const kWomen[] = {"woman", "female", "lady"};
    const std::string noun = female_ ? any(kWomen) : any(kMen);
    switch (rng_.integer(0, 3)) {
      case 0: return num(p_.age) + "-year-old " + noun;
      case 1: return num(p_.age, 0) + " year old " + noun;
      case 2: return noun + " aged " + num(p_.age);
      default: return num(p_.age, 0) + " y/o " + noun;
    }
  }

  std::string pack_years_text() {
    const int py = static_cast<int>(std::lround(p_.pack_years));
    switch (rng_.integer(0, 3)) {
      case 0: return "a " + num(py, 0) + " pack-year history";
      case 1: return num(py) + " pack-years";
      case 2: return "approximately " + num(py, 0) + " pack years";
      default: return "around " + num(py, 0) + " pack-years";
    }
  }
  std::string per_day_text() {  // "20 cigarettes a day for 35 years"
    std::string per_day;
    if (p_.cigarettes_per_day == 20 && rng_.chance(0.5)) per_day = "a pack a day";
    else if (p_.cigarettes_per_day == 40 && rng_.chance(0.5)) per_day = "two packs a day";
    else per_day = num(p_.cigarettes_per_day) + " cigarettes " + any({"a day", "per day", "daily"});
    return per_day + " for " + num(p_.smoking_years) + " years";
  }
  std::string quit_text() {
    const int y = p_.years_since_quit;
    const std::string years = num(y) + (y == 1 ? " year" : " years");
    switch (rng_.integer(0, 3)) {
      case 0: return "quit " + years + " ago";
      case 1: return "stopped smoking " + years + " ago";
      case 2: return "gave up " + years + " ago";
      default: return "has not smoked for " + years;
    }
  }

  // A full smoking sentence (without final period).
  std::string smoking_sentence() {
    if (p_.never_smoker) {
      const char* const k[] = {"lifelong non-smoker", "never smoker", "has never smoked",
                               "no smoking history", "non-smoker, never smoked"};
      return cap(any(k));
    }
    const bool dose_as_packs = rng_.chance(0.6);
    const std::string dose = dose_as_packs ? pack_years_text() : per_day_text();
    if (p_.current_smoker) {
      switch (rng_.integer(0, 2)) {
        case 0: return "Current smoker, " + dose;
        case 1: return cap(he()) + " still smokes" + (dose_as_packs ? " (" + dose + ")" : ", " + dose);
        default: return "Active smoker with " + (dose_as_packs ? dose : "a history of " + dose);
      }
    }
    switch (rng_.integer(0, 2)) {
      case 0: return "Ex-smoker (" + dose + "), " + quit_text();
      case 1: return "Former smoker, " + dose + "; " + quit_text();
      default: return cap(he()) + " smoked " + (dose_as_packs ? "(" + dose + ")" : dose) + " and " + quit_text();
    }
  }
  std::string smoking_short() {
    if (p_.never_smoker) return any({"never", "never smoked", "non-smoker (never)"});
    const int py = static_cast<int>(std::lround(p_.pack_years));
    std::string s = p_.current_smoker ? any({"current", "current smoker", "smoker"})
                                      : any({"ex-smoker", "former", "ex"});
    s += ", " + std::to_string(py) + any({" pack-years", " pk-yr", " PY"});
    if (!p_.current_smoker) s += ", quit " + std::to_string(p_.years_since_quit) + any({" yrs ago", "y ago", " years ago"});
    return s;
  }

  std::string prior_cancer_sentence() {
    if (!p_.prior_cancer) {
      const char* const k[] = {"No previous malignancy", "No history of cancer", "No prior cancer",
                               "No personal history of malignancy"};
      return any(k);
    }
    const std::string yrs = num(rng_.integer(2, 12)) + " years ago";
    const std::string& site = p_.prior_cancer_site;
    if (site == "lung") {
      switch (rng_.integer(0, 3)) {
        case 0: return "Previous right upper lobectomy for lung adenocarcinoma " + yrs;
        case 1: return "History of stage I non-small cell lung cancer treated with SBRT " + yrs;
        case 2: return "Treated lung cancer (left lower lobe squamous cell carcinoma, resected " + yrs + ")";
        default: return "Past history of primary lung carcinoma, wedge resection " + yrs;
      }
    }
    if (site == "breast") return any({"Breast cancer treated ", "Left breast carcinoma, mastectomy "}) + yrs;
    if (site == "colorectal") return any({"Colorectal carcinoma resected ", "Bowel cancer treated "}) + yrs;
    if (site == "prostate") return any({"Prostate cancer treated with radiotherapy ", "Prostate carcinoma, prostatectomy "}) + yrs;
    if (site == "head and neck") return any({"Laryngeal cancer treated with chemoradiotherapy ", "Head and neck squamous cell carcinoma treated "}) + yrs;
    if (site == "lymphoma") return any({"Hodgkin lymphoma treated ", "Non-Hodgkin lymphoma, in remission since treatment "}) + yrs;
    if (site == "bladder") return "Bladder cancer (TURBT) " + yrs;
    if (site == "kidney") return "Renal cell carcinoma, nephrectomy " + yrs;
    return "Melanoma excised " + yrs;
  }
  std::string prior_cancer_short() {
    if (!p_.prior_cancer) return any({"no malignancy", "nil malignant", "no cancer history"});
    if (p_.prior_cancer_site == "lung") return any({"lung cancer (resected)", "NSCLC, lobectomy", "previous lung ca"});
    return p_.prior_cancer_site + any({" cancer (treated)", " ca, treated", " cancer, in remission"});
  }

  std::string family_sentence() {
    if (p_.family_history) {
      const char* const rel_m[] = {"father", "brother", "mother", "sister"};
      const std::string rel = any(rel_m);
      switch (rng_.integer(0, 2)) {
        case 0: return cap(his()) + " " + rel + " died of lung cancer";
        case 1: return "Family history of lung cancer (" + rel + ")";
        default: return "First-degree relative with lung cancer (" + rel + ")";
      }
    }
    switch (rng_.integer(0, 3)) {
      case 0: return "No family history of lung cancer";
      case 1: return "Family history: " + std::string(any({"mother", "father"})) + " had " + any({"bowel", "breast", "prostate"}) + " cancer, no lung cancer in the family";
      case 2: return "No relevant family history";
      default: return "";
    }
  }
  std::string family_short() {
    if (p_.family_history) return std::string(any({"father", "mother", "brother", "sister"})) + " - lung ca";
    return any({"nil", "no lung ca in family", "non-contributory"});
  }

  std::string emphysema_sentence() {
    if (p_.emphysema) {
      const char* const k[] = {"Known COPD on inhalers", "Emphysema noted on previous chest imaging",
                               "COPD (spirometry: moderate obstruction)", "Background of emphysema"};
      return any(k);
    }
    const char* const k[] = {"No known chronic lung disease", "Spirometry normal", "", ""};
    return any(k);
  }

  std::string symptoms_sentence() {
    std::vector<std::string> present;
    for (const auto& s : p_.symptoms) {
      if (s == "cough") present.push_back(any({"a persistent cough", "a cough for two months", "a chronic productive cough"}));
      if (s == "haemoptysis") present.push_back(any({"haemoptysis", "an episode of coughing up blood", "blood-streaked sputum", "hemoptysis"}));
      if (s == "weight loss") present.push_back("unintentional weight loss of " + num(rng_.integer(4, 10)) + " kg");
      if (s == "dyspnoea") present.push_back(any({"exertional breathlessness", "shortness of breath on exertion", "dyspnoea"}));
      if (s == "chest pain") present.push_back(any({"intermittent chest wall pain", "pleuritic chest pain"}));
    }
    std::string out;
    if (present.empty()) {
      out = any({"Asymptomatic", "Currently asymptomatic", "No respiratory symptoms"});
    } else {
      out = any({"Presents with ", "Reports ", "Complains of "});
      for (size_t i = 0; i < present.size(); ++i) {
        if (i) out += i + 1 == present.size() ? " and " : ", ";
        out += present[i];
      }
    }
    // Explicit negatives, as clinicians write them.
    std::vector<std::string> negatives;
    if (!p_.haemoptysis && rng_.chance(0.5)) negatives.push_back("haemoptysis");
    if (!p_.weight_loss && rng_.chance(0.5)) negatives.push_back("weight loss");
    if (!negatives.empty()) {
      out += std::string(". ") + any({"No ", "Denies "}) + negatives[0];
      if (negatives.size() > 1) out += " or " + negatives[1];
    }
    return out;
  }
  std::string symptoms_short() {
    if (p_.symptoms.empty()) return "none";
    std::string out;
    for (size_t i = 0; i < p_.symptoms.size(); ++i) out += (i ? ", " : "") + p_.symptoms[i];
    return out;
  }

  std::string other_history() {
    const char* const k[] = {"Hypertension", "Type 2 diabetes on metformin", "Hypercholesterolaemia",
                             "Atrial fibrillation on apixaban", "Osteoarthritis", "Hypothyroidism",
                             "Previous appendicectomy", "Gastro-oesophageal reflux"};
    std::string out = any(k);
    if (rng_.chance(0.5)) {
      std::string second = any(k);
      if (second != out) out += ", " + second;
    }
    return out;
  }

  std::string reason() {
    if (p_.haemoptysis) return any({"Haemoptysis - please exclude malignancy", "Investigation of haemoptysis"});
    if (p_.weight_loss) return "Weight loss - ?underlying malignancy";
    if (p_.prior_cancer && rng_.chance(0.5)) return "Surveillance following treatment of previous cancer";
    const char* const k[] = {"Lung cancer screening (annual low-dose CT)", "Baseline low-dose CT, lung screening programme",
                             "Follow-up of a nodule seen on chest radiograph", "Incidental lung nodule on previous imaging - please characterise",
                             "Persistent cough, please assess"};
    return any(k);
  }

  static void add(std::string& out, const std::string& sentence) {
    if (sentence.empty()) return;
    if (!out.empty() && out.back() != '\n' && out.back() != ' ') out += ' ';
    out += sentence + ".";
  }

  std::string request_form() {
    std::string out = any({"CT REQUEST\n", "Radiology request\n", "REQUEST: CT chest\n"});
    out += std::string("Examination: ") + any({"Low-dose CT thorax", "CT chest without contrast", "LDCT chest"}) + "\n";
    std::string details;
    add(details, cap(age_sex_phrase()));
    add(details, smoking_sentence());
    add(details, prior_cancer_sentence());
    add(details, emphysema_sentence());
    add(details, family_sentence());
    add(details, symptoms_sentence());
    add(details, "PMH: " + other_history());
    out += "Clinical details: " + details + "\n";
    out += "Question: " + reason() + ".\n";
    return out;
  }

  std::string letter() {
    std::string out = any({"Dear Radiologist,\n\n", "Dear Colleague,\n\n", "Dear Dr,\n\n"});
    std::string body = "Thank you for arranging a CT of the chest for this " + age_sex_phrase() + ". Reason: " + reason();
    add(body, "");
    body += ".";
    add(body, smoking_sentence());
    add(body, prior_cancer_sentence());
    add(body, family_sentence());
    add(body, emphysema_sentence());
    add(body, symptoms_sentence());
    add(body, "Other history: " + other_history());
    out += body + "\n\n" + any({"Kind regards,\nRespiratory Clinic\n", "Yours sincerely,\nGeneral Practice\n",
                                "Many thanks,\nOncology Outpatients\n"});
    return out;
  }

  std::string structured() {
    std::string out;
    out += "Indication: " + reason() + "\n";
    out += "Age: " + std::to_string(p_.age) + "\n";
    out += std::string("Sex: ") + (female_ ? any({"F", "Female"}) : any({"M", "Male"})) + "\n";
    out += "Smoking: " + smoking_short() + "\n";
    std::string pmh = prior_cancer_short();
    if (p_.emphysema) pmh += std::string(", ") + any({"COPD", "emphysema"});
    pmh += ", " + other_history();
    out += "PMH: " + pmh + "\n";
    out += "FHx: " + family_short() + "\n";
    out += "Symptoms: " + symptoms_short() + "\n";
    return out;
  }

  std::string screening() {
    std::string out = std::string(any({"Lung screening programme - ", "Targeted lung health check - "})) +
                      any({"baseline", "annual", "incident round"}) + " LDCT.\n";
    std::string body;
    add(body, cap(age_sex_phrase()));
    add(body, smoking_sentence());
    add(body, emphysema_sentence());
    add(body, prior_cancer_sentence());
    add(body, family_sentence());
    add(body, symptoms_sentence());
    out += body + "\n";
    return out;
  }

  std::string shorthand() {
    std::string out = std::to_string(p_.age) + (female_ ? "F" : "M") + ", ";
    if (p_.never_smoker) {
      out += any({"never smoker", "non-smoker"});
    } else {
      out += (p_.current_smoker ? std::string("smoker ") : std::string("ex-smoker ")) +
             std::to_string(static_cast<int>(std::lround(p_.pack_years))) + "pk-yr";
      if (!p_.current_smoker) out += " (quit " + std::to_string(p_.years_since_quit) + "y)";
    }
    out += ". ";
    out += (p_.prior_cancer ? "Hx " + prior_cancer_short() : std::string("No prior ca")) + ". ";
    if (p_.family_history) out += "FHx lung ca (" + std::string(any({"father", "mother", "brother", "sister"})) + "). ";
    if (p_.emphysema) out += std::string(any({"COPD", "Emphysema"})) + ". ";
    if (p_.symptoms.empty()) out += "Asymptomatic. ";
    else out += "C/o " + symptoms_short() + ". ";
    if (!p_.haemoptysis && rng_.chance(0.4)) out += "No haemoptysis. ";
    out += "Q: " + reason() + "?\n";
    return out;
  }

  const ClinicalProfile& p_;
  Rng& rng_;
  bool female_;
};

}  // namespace

std::string write_referral_note(const ClinicalProfile& p, Rng& rng) { return NoteWriter(p, rng).write(); }

}  // namespace hilum::phantom
