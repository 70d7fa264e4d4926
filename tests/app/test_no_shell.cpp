// No product code hands a string to a shell: every external program runs through
// app/util/process.hpp with an argument vector (docs/architecture.md "External programs").
// This test reads the product source folders and lists every file:line that calls system(),
// popen(), an execl*() or names /bin/sh or `sh -c`.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// The code part of a line: a line comment dropped (a "//" inside a string literal is rare
// enough in this tree to be worth no parser; it could only hide, never invent, a finding).
std::string code_of(const std::string& line) {
  const auto comment = line.find("//");
  return comment == std::string::npos ? line : line.substr(0, comment);
}

std::vector<std::string> shell_calls_in(const fs::path& root) {
  static const std::regex kShell(
      R"((^|[^A-Za-z0-9_])(system|popen|execl|execlp|execle)\s*\(|/bin/sh|"sh"|sh -c)");
  std::vector<std::string> found;
  for (const char* folder : {"app", "instruments", "sim", "drivers", "protocols", "bench"}) {
    if (!fs::exists(root / folder)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      const auto ext = entry.path().extension();
      if (!entry.is_regular_file() ||
          (ext != ".cpp" && ext != ".hpp" && ext != ".h" && ext != ".c")) {
        continue;
      }
      std::ifstream in(entry.path());
      std::string line;
      for (int number = 1; std::getline(in, line); ++number) {
        if (std::regex_search(code_of(line), kShell)) {
          found.push_back(fs::relative(entry.path(), root).string() + ":" + std::to_string(number) +
                          ": " + line);
        }
      }
    }
  }
  return found;
}

}  // namespace

TEST_CASE("the finder sees a shell call, and not one in a comment") {
  const fs::path root = fs::temp_directory_path() / "metaplast-no-shell-selftest";
  fs::remove_all(root);
  fs::create_directories(root / "app");
  std::ofstream(root / "app" / "bad.cpp") << "int f() {\n  return std::system(\"ls\");\n}\n"
                                          << "// never popen(\"x\")\n"
                                          << "auto p = ::popen(cmd, \"r\");\n";
  const auto found = shell_calls_in(root);
  REQUIRE(found.size() == 2);
  CHECK(found[0].rfind("app/bad.cpp:2:", 0) == 0);
  CHECK(found[1].rfind("app/bad.cpp:5:", 0) == 0);
  fs::remove_all(root);
}

TEST_CASE("no product code runs a shell (system, popen, execl, sh -c)") {
  const auto found = shell_calls_in(METAPLAST_SOURCE_DIR);
  std::string listing;
  for (const auto& f : found) listing += f + "\n";
  INFO("run programs with metaplast::util::run_process (app/util/process.hpp) instead:\n"
       << listing);
  CHECK(found.empty());
}
