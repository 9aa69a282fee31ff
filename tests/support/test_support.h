// Shared helpers for Hilum's tests: unique scratch directories and running the
// real `hilum` binary. Every path here includes the process id and the test's
// name, so that CTest can run tests in parallel processes without collisions.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace hilum::test {

// A fresh directory for the current test, removed when the object goes away.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag = "") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "global";
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::temp_directory_path() /
            ("hilum_" + name + (tag.empty() ? "" : "_" + tag) + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct CommandResult {
  int exit_code = -1;  // -1 when the process did not exit normally (a crash)
  std::string out, err;
};

// Runs a shell command line (quoted by the caller, e.g. with shell_quote),
// capturing stdout and stderr; stdin is /dev/null.
inline CommandResult run_shell(const std::string& command_line) {
  static int counter = 0;
  const auto err_path = std::filesystem::temp_directory_path() /
                        ("hilum_stderr_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".txt");
  const std::string cmd = command_line + " 2>" + shell_quote(err_path.string()) + " </dev/null";
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  std::stringstream ss;
  ss << err.rdbuf();
  r.err = ss.str();
  std::error_code ec;
  std::filesystem::remove(err_path, ec);
  return r;
}

// Runs `program args...` through the shell (each argument quoted), capturing
// stdout and stderr; `env_prefix` goes before the program (e.g. "env -u X ").
inline CommandResult run_command(const std::string& program, const std::vector<std::string>& args,
                                 const std::string& env_prefix = "") {
  std::string cmd = env_prefix + shell_quote(program);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_shell(cmd);
}

#ifdef HILUM_CLI
// Runs the `hilum` binary built with the tests.
inline CommandResult run_hilum(const std::vector<std::string>& args) { return run_command(HILUM_CLI, args); }
#endif

}  // namespace hilum::test
