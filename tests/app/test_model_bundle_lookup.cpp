// Which model bundle `hilum analyze` and `hilum batch` use when none is named:
// $HILUM_MODEL_BUNDLE, else the demo bundle of the source tree, unless
// $HILUM_DEFAULT_BUNDLE=none hides it (docs/reports.md, "Model bundle").
#include <gtest/gtest.h>

#if HILUM_HAVE_IMAGING && defined(HILUM_CLI)

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "app/analyze.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
using namespace hilum;

namespace {

// Sets (or, with nullopt, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

const fs::path kDemoBundle = fs::path(HILUM_SOURCE_DIR) / "resources" / "models";

}  // namespace

TEST(DefaultModelBundle, EnvironmentThenTheDemoBundle) {
  ScopedEnv fallback("HILUM_DEFAULT_BUNDLE", std::nullopt);
  {
    ScopedEnv named("HILUM_MODEL_BUNDLE", "/srv/hilum/bundle-7");
    auto dir = default_model_bundle_dir();
    ASSERT_TRUE(dir.ok()) << dir.error().message();
    EXPECT_EQ(*dir, fs::path("/srv/hilum/bundle-7"));  // as given, even where it holds nothing
  }
  ScopedEnv named("HILUM_MODEL_BUNDLE", std::nullopt);
  auto dir = default_model_bundle_dir();
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  ASSERT_FALSE(dir->empty());
  EXPECT_TRUE(fs::equivalent(*dir, kDemoBundle)) << dir->string();
  auto allowed = built_in_bundles_allowed();
  ASSERT_TRUE(allowed.ok());
  EXPECT_TRUE(*allowed);
}

TEST(DefaultModelBundle, DefaultBundleNoneHidesTheDemoBundleOnly) {
  ScopedEnv fallback("HILUM_DEFAULT_BUNDLE", "none");
  {
    ScopedEnv named("HILUM_MODEL_BUNDLE", "/srv/hilum/bundle-7");
    auto dir = default_model_bundle_dir();
    ASSERT_TRUE(dir.ok()) << dir.error().message();
    EXPECT_EQ(*dir, fs::path("/srv/hilum/bundle-7"));
  }
  ScopedEnv named("HILUM_MODEL_BUNDLE", std::nullopt);
  auto dir = default_model_bundle_dir();
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  EXPECT_TRUE(dir->empty()) << dir->string();
  auto allowed = built_in_bundles_allowed();
  ASSERT_TRUE(allowed.ok());
  EXPECT_FALSE(*allowed);
}

TEST(DefaultModelBundle, OtherValuesOfDefaultBundleAreRefused) {
  ScopedEnv named("HILUM_MODEL_BUNDLE", std::nullopt);
  for (const char* value : {"off", "None", "0", "/opt/hilum/models"}) {
    ScopedEnv fallback("HILUM_DEFAULT_BUNDLE", value);
    auto dir = default_model_bundle_dir();
    ASSERT_FALSE(dir.ok()) << value;
    EXPECT_EQ(dir.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(dir.error().message().find("HILUM_DEFAULT_BUNDLE is '" + std::string(value) + "'"),
              std::string::npos)
        << dir.error().message();
  }
}

// The CLI refuses up front, exit 2, and leaves no output folder behind.
TEST(DefaultModelBundle, AnalyzeWithoutABundleExitsTwo) {
  test::ScratchDir d;
  fs::create_directories(d / "study");
  const std::vector<std::string> args = {"analyze", (d / "study").string(), "--no-clinical-text", "--out",
                                         (d / "out").string()};
  auto r = test::run_command(HILUM_CLI, args, "env -u HILUM_MODEL_BUNDLE HILUM_DEFAULT_BUNDLE=none ");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no model bundle: give --model-bundle DIR or set HILUM_MODEL_BUNDLE"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("HILUM_DEFAULT_BUNDLE=none"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "out"));

  r = test::run_command(HILUM_CLI, args, "env -u HILUM_MODEL_BUNDLE HILUM_DEFAULT_BUNDLE=no ");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("HILUM_DEFAULT_BUNDLE is 'no'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "out"));
}

#endif
