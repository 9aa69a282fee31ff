// --nodule-sites (hilum phantom, export-training-set): app/training_export.h parse_nodule_sites.
#include <gtest/gtest.h>

#if HILUM_HAVE_IMAGING

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "app/training_export.h"
#include "vision/io/phantom.h"

namespace hilum {
namespace {

TEST(NoduleSites, ParseAndRejectBadInput) {
  auto w = parse_nodule_sites("juxtavascular=3,isolated=1");
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(*w, (std::array<double, 3>{1, 0, 3}));
  EXPECT_EQ(nodule_sites_text(*w), "isolated=1,juxtapleural=0,juxtavascular=3");
  auto back = parse_nodule_sites(nodule_sites_text(PhantomOptions{}.site_weights));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, PhantomOptions{}.site_weights);
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"", "empty"},
           {"pleural=1", "unknown site 'pleural'"},
           {"isolated", "no '='"},
           {"isolated=1,", "no '='"},
           {"isolated=x", "'isolated' must be a number"},
           {"isolated=1x", "'isolated' must be a number"},
           {"isolated=", "'isolated' must be a number"},
           {"isolated=-0.5", "'isolated' must be a number"},
           {"isolated=nan", "'isolated' must be a number"},
           {"isolated=1,isolated=2", "given twice"},
           {"isolated=0,juxtapleural=0", "at least one site"}}) {
    SCOPED_TRACE(text);
    auto r = parse_nodule_sites(text);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find(message), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("--nodule-sites"), std::string::npos);
  }
}

}  // namespace
}  // namespace hilum

#endif  // HILUM_HAVE_IMAGING
