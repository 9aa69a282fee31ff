// The narrative impression: the prompt serialisation (identical to
// scripts/train/text_corpus.py), the template, the output check on crafted
// drafts, and drafting with a real (tiny, random) text model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "app/narrative.h"
#include "cuda/device.h"
#include "tests/app/report_fixture.h"
#include "tests/support/test_support.h"

namespace hilum {
namespace {

using test::make_document;
using test::make_finding;

FindingsDocument two_nodules() {
  auto a = make_finding(1, NoduleType::kPartSolid, 25.3, 23.8, "RUL", 0.97, 0.41, 15.6);
  a.volume_mm3 = 7153.7;
  auto b = make_finding(2, NoduleType::kSolid, 7.0, 5.0, "LLL", 0.9, 0.05);
  b.volume_mm3 = 91.6;
  return make_document({a, b});
}

TEST(Narrative, PythonFloatFormatting) {
  EXPECT_EQ(python_float(12.0, 1), "12.0");
  EXPECT_EQ(python_float(12.34, 1), "12.3");
  EXPECT_EQ(python_float(0.9, 2), "0.9");
  EXPECT_EQ(python_float(0.934, 2), "0.93");
  EXPECT_EQ(python_float(1.0, 2), "1.0");
  EXPECT_EQ(python_float(0.004, 2), "0.0");
  EXPECT_EQ(python_float(-0.0001, 1), "0.0");
}

TEST(Narrative, FindingsBlockMatchesTheTrainingFormat) {
  const FindingsDocument d = two_nodules();
  EXPECT_EQ(findings_block(d.findings),
            "Nodule 1: right upper lobe, part-solid, 25.3 x 23.8 mm (mean 24.6 mm), solid component 15.6 mm, "
            "volume "
            "7154 mm3, probability 0.97, malignancy 0.41, Lung-RADS 4B.\n"
            "Nodule 2: left lower lobe, solid, 7.0 x 5.0 mm (mean 6.0 mm), volume 92 mm3, probability 0.9, "
            "malignancy 0.05, Lung-RADS 3.");
  EXPECT_EQ(findings_block({}), "No nodule found.");
  EXPECT_EQ(impression_prompt({}), "<|findings|>\nNo nodule found.\n<|impression|>\n");
}

// The Python reference: text_corpus.findings_block() on the same items gives
// the same bytes (skipped when Debian's python3 is absent).
TEST(Narrative, FindingsBlockEqualsTextCorpusPy) {
  if (std::system("/usr/bin/python3 -c 'import ast' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no /usr/bin/python3";
  test::ScratchDir dir;
  const FindingsDocument d = two_nodules();
  const std::string script = R"(
import sys
sys.path.insert(0, sys.argv[1])
import text_corpus as tc
items = [
  {"id": 1, "lobe": "right upper lobe", "type": "part-solid", "long": 25.3, "short": 23.8, "mean": 24.6,
   "solid": 15.6, "volume": 7154, "prob": 0.97, "malig": 0.41, "rads": "4B"},
  {"id": 2, "lobe": "left lower lobe", "type": "solid", "long": 7.0, "short": 5.0, "mean": 6.0,
   "solid": 6.0, "volume": 92, "prob": 0.9, "malig": 0.05, "rads": "3"},
]
sys.stdout.write(tc.findings_block(items) + "\n---\n" + tc.findings_block([]))
)";
  std::ofstream(dir / "check.py") << script;
  auto r = test::run_command("/usr/bin/python3",
                             {(dir / "check.py").string(), std::string(HILUM_SOURCE_DIR) + "/scripts/train"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, findings_block(d.findings) + "\n---\n" + findings_block({}));
}

TEST(Narrative, TemplateImpressionInTheCorpusStyle) {
  const FindingsDocument d = two_nodules();
  EXPECT_EQ(template_impression(d),
            "1. Part-solid nodule in the right upper lobe measuring 25.3 x 23.8 mm (Lung-RADS 4B). 2. Solid "
            "nodule in "
            "the left lower lobe measuring 7.0 x 5.0 mm (Lung-RADS 3). Overall Lung-RADS 4B. Recommendation: "
            "diagnostic chest CT with or without contrast, PET/CT and/or tissue sampling.");
  EXPECT_EQ(template_impression(make_document({})),
            "No pulmonary nodule identified. Lung-RADS 1. Recommendation: continue annual screening with "
            "low-dose CT "
            "in 12 months.");
  EXPECT_TRUE(check_impression(template_impression(d), d).ok);
  EXPECT_TRUE(check_impression(template_impression(make_document({})), make_document({})).ok);
}

TEST(Narrative, CheckAcceptsFaithfulDrafts) {
  const FindingsDocument d = two_nodules();
  for (const std::string draft :
       {"Two nodules. A part-solid nodule in the right upper lobe of 25.3 x 23.8 mm, Lung-RADS 4B, and a "
        "solid "
        "nodule in the left lower lobe, 7 x 5 mm (Lung-RADS 3). Overall Lung-RADS category 4B.",
        "1. Part-solid nodule in the right upper lobe with dimensions of 25.3 x 23.8 mm (Lung-RADS 4B).",
        "Nodule 1 has a malignancy probability of 41% and a solid component of 15.6 mm; volume 7154 mm3.",
        "Nodule 1 (97 % nodule probability) measures 25.3 \u00d7 23.8 mm, 7153.7 mm\u00b3.",
        "Nodule 2 warrants low-dose CT in 6 months; diagnostic chest CT is advised for nodule 1."}) {
    const ImpressionCheck c = check_impression(draft, d);
    EXPECT_TRUE(c.ok) << draft << " -> " << c.reason;
  }
}

TEST(Narrative, CheckRejectsDisagreeingDrafts) {
  const FindingsDocument d = two_nodules();
  struct Case {
    std::string draft, reason_part;
  };
  for (const Case& c : std::vector<Case>{
           {"Part-solid nodule in the right upper lobe measuring 25.4 x 23.8 mm.", "25.4"},
           {"Solid nodule in the left upper lobe measuring 7.0 x 5.0 mm.", "left upper lobe"},
           {"Nodule in the RML.", "rml"},
           {"Overall Lung-RADS 4A.", "4A"},
           {"Lung-RADS category 2 nodules.", "2"},
           {"No pulmonary nodule identified. Lung-RADS 4B.", "no nodule"},
           {"Three nodules were found.", "three"},
           {"Follow-up in 24 months.", "24"},
           // Units matter: 2 is a nodule id and the count, but no size; 25.3 is a size, not a volume.
           {"The largest nodule measures 2 mm.", "2 mm"},
           {"Nodule 1 has a volume of 25.3 mm3.", "25.3 mm3"},
           {"Nodule 2 carries a 50% risk.", "50 %"},
           {"", "empty"},
           {"<|findings|> Nodule 1", "control token"},
       }) {
    const ImpressionCheck r = check_impression(c.draft, d);
    EXPECT_FALSE(r.ok) << c.draft;
    EXPECT_NE(r.reason.find(c.reason_part), std::string::npos) << c.draft << " -> " << r.reason;
  }
  // A side with no nodule: only right-sided findings.
  const FindingsDocument right =
      make_document({make_finding(1, NoduleType::kSolid, 5.0, 4.0, "RLL", 0.8, 0.1)});
  EXPECT_FALSE(check_impression("Small nodule in the left lung, 5.0 x 4.0 mm.", right).ok);
  EXPECT_TRUE(check_impression("Small nodule in the right lung, 5.0 x 4.0 mm.", right).ok);
  // No findings: any size or side is made up.
  EXPECT_FALSE(check_impression("A 6 mm nodule.", make_document({})).ok);
  EXPECT_FALSE(check_impression("No nodule in the right lung.", make_document({})).ok);
}

TEST(Narrative, WithoutAModelTheTemplateIsUsed) {
  const FindingsDocument d = two_nodules();
  const Narrative n = write_impression(d, nullptr);
  EXPECT_EQ(n.source, Narrative::Source::kTemplate);
  EXPECT_EQ(n.text, template_impression(d));
  EXPECT_NE(n.note.find("no text model"), std::string::npos);
}

// A real text model (tiny, random weights) drafts from the exact prompt; its
// draft is greedy and reproducible, and whatever it says goes through the
// check: a random model's text is discarded for the template.
TEST(Narrative, TinyRandomModelDraftIsCheckedAndFallsBack) {
  test::ScratchDir dir;
  test::write_tiny_text_model(dir / "text");
  auto drafter = ImpressionDrafter::load(dir / "text");
  ASSERT_TRUE(drafter.ok()) << drafter.error().message();
  const FindingsDocument d = two_nodules();
  auto a = (*drafter)->draft(d.findings);
  auto b = (*drafter)->draft(d.findings);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);  // greedy: deterministic
  const Narrative n = write_impression(d, drafter->get());
  EXPECT_EQ(n.model, "text");
  const ImpressionCheck c = check_impression(*a, d);
  if (c.ok) {
    EXPECT_EQ(n.source, Narrative::Source::kModel);
    EXPECT_EQ(n.text, *a);
  } else {
    EXPECT_EQ(n.source, Narrative::Source::kTemplate);
    EXPECT_EQ(n.text, template_impression(d));
    EXPECT_NE(n.note.find(c.reason), std::string::npos);
  }
}

// With a GPU the drafter runs the demo bundle's text model on the CUDA engine
// (bf16, greedy steps on the device): the same draft as on the CPU (fp32) at
// least to the first finding's numbers, and reproducible. Skips without a GPU.
TEST(Narrative, DraftsOnTheGpuLikeOnTheCpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const std::filesystem::path text = std::filesystem::path(HILUM_SOURCE_DIR) / "resources" / "models" / "text";
  auto cpu = ImpressionDrafter::load(text, Device::kCPU);
  auto gpu = ImpressionDrafter::load(text, Device::kCUDA);
  ASSERT_TRUE(cpu.ok()) << cpu.error().message();
  ASSERT_TRUE(gpu.ok()) << gpu.error().message();
  EXPECT_EQ((*cpu)->device(), Device::kCPU);
  ASSERT_EQ((*gpu)->device(), Device::kCUDA);
  EXPECT_TRUE((*cpu)->warm_up().ok());  // nothing to do on the CPU
  ASSERT_TRUE((*gpu)->warm_up().ok());
  const FindingsDocument d = two_nodules();
  auto a = (*cpu)->draft(d.findings);
  auto b = (*gpu)->draft(d.findings);
  auto c = (*gpu)->draft(d.findings);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(*b, *c);  // the GPU engine's cache is reset between drafts
  ASSERT_GE(a->size(), 40u) << *a;
  EXPECT_EQ(b->substr(0, 40), a->substr(0, 40)) << "cpu: " << *a << "\ngpu: " << *b;
}

TEST(Narrative, DrafterLoadErrorsNameTheFolder) {
  test::ScratchDir dir;
  auto r = ImpressionDrafter::load(dir / "missing");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("tokenizer.json"), std::string::npos);
}

}  // namespace
}  // namespace hilum
