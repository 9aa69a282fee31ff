// CTest runs test_pacs once per test suite (so that a suite's tests share one
// Orthanc); tests/CMakeLists.txt lists the suites. This test fails when a suite
// is added here but not there, which would otherwise never run under CTest.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

namespace {

TEST(PacsSuites, EverySuiteIsRegisteredWithCTest) {
  std::set<std::string> registered;
  std::stringstream list(HILUM_PACS_SUITES);
  for (std::string name; std::getline(list, name, ';');) registered.insert(name);
  const auto* unit = ::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit->total_test_suite_count(); ++i) {
    const std::string name = unit->GetTestSuite(i)->name();
    EXPECT_TRUE(registered.count(name))
        << "test suite " << name << " is not in PACS_SUITES in tests/CMakeLists.txt, so CTest never runs it";
  }
}

}  // namespace
