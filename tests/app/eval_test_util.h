// Helpers shared by the evaluation tests: temporary directories, running
// external programs (the hilum CLI, Rscript, the Python reference) and reading
// their output.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace hilum::testing {

namespace fs = std::filesystem;

inline fs::path fixtures_dir() { return fs::path(HILUM_TEST_DATA_DIR) / "fixtures" / "eval"; }
inline fs::path golden_dir() { return fs::path(HILUM_TEST_DATA_DIR) / "golden"; }

// A fresh, empty directory removed at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("hilum_eval_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
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

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs `args` (quoted for the shell) and captures stdout, stderr and the exit code.
inline CommandResult run_command(const std::vector<std::string>& args) {
  static int counter = 0;
  const fs::path base = fs::temp_directory_path() /
                        ("hilum_eval_cmd_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::string cmd;
  for (const auto& a : args) cmd += shell_quote(a) + " ";
  cmd += std::string(">") + shell_quote(base.string() + ".out") + " 2>" + shell_quote(base.string() + ".err");
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_text(base.string() + ".out");
  r.err = read_text(base.string() + ".err");
  std::error_code ec;
  fs::remove(base.string() + ".out", ec);
  fs::remove(base.string() + ".err", ec);
  return r;
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
