#include <gtest/gtest.h>

#include <cstdlib>

#include "model/env.h"

namespace hilum {
namespace {

TEST(EnvSwitch, ZeroIsOffOneIsOnAnythingElseTheFallback) {
  const char* name = "HILUM_TEST_ENV_SWITCH";
  unsetenv(name);
  EXPECT_TRUE(env_switch(name, true));
  EXPECT_FALSE(env_switch(name, false));
  setenv(name, "0", 1);
  EXPECT_FALSE(env_switch(name, true));
  setenv(name, "1", 1);
  EXPECT_TRUE(env_switch(name, false));
  for (const char* other : {"", "yes", "01", "2"}) {
    setenv(name, other, 1);
    EXPECT_TRUE(env_switch(name, true)) << other;
    EXPECT_FALSE(env_switch(name, false)) << other;
  }
  unsetenv(name);
}

}  // namespace
}  // namespace hilum
