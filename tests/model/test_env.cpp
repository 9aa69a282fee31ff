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

TEST(EnvCount, WholeNumbersInRangeElseTheFallback) {
  const char* name = "HILUM_TEST_ENV_COUNT";
  unsetenv(name);
  EXPECT_EQ(env_count(name, 128), 128);
  setenv(name, "512", 1);
  EXPECT_EQ(env_count(name, 128), 512);
  EXPECT_EQ(env_count(name, 128, 256), 128);  // above `most`
  for (const char* bad : {"", "0", "-4", "+4", "4x", " 4", "1e3", "99999999999"}) {
    setenv(name, bad, 1);
    EXPECT_EQ(env_count(name, 128), 128) << bad;
  }
  unsetenv(name);
}

}  // namespace
}  // namespace hilum
