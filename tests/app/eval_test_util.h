// Helpers shared by the evaluation tests: temporary directories, running
// external programs (the hilum CLI, Rscript, the Python reference) and reading
// their output.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace hilum::testing {

namespace fs = std::filesystem;

inline fs::path fixtures_dir() { return fs::path(HILUM_TEST_DATA_DIR) / "fixtures" / "eval"; }
inline fs::path golden_dir() { return fs::path(HILUM_TEST_DATA_DIR) / "golden"; }

// A fresh, empty directory removed at the end of the test (a ScratchDir whose
// tag is unique within the process, so one test may hold several).
class TempDir : public test::ScratchDir {
 public:
  explicit TempDir(const std::string& name) : test::ScratchDir(name + std::to_string(counter_++)) {}

 private:
  static inline int counter_ = 0;
};

inline std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << text;
}

using test::CommandResult;
using test::shell_quote;

// Runs `args` (program first) and captures stdout, stderr and the exit code.
inline CommandResult run_command(const std::vector<std::string>& args) {
  return test::run_command(args.front(), std::vector<std::string>(args.begin() + 1, args.end()));
}

// Whether `program` is found on PATH (or is an existing executable path).
inline bool have_program(const std::string& program) {
  return run_command({"sh", "-c", "command -v " + shell_quote(program)}).exit_code == 0;
}

// Files in a directory, by name, sorted.
inline std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace hilum::testing
