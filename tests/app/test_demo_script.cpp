// The README's first command at its default (demo) scale, from a built binary: scripts/demo.sh
// characterises the simulated board, trains through it with and without metaplasticity and must
// show the difference (docs/method.md 7): MNIST kept within 5 points at m* = 4 (the value for
// the calibration's 9 levels at that scale), at least 40 points lost at m* = 0.
#include <cstdlib>
#include <regex>
#include <string>

#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using metaplast::test::read_file;

namespace {

// The change in points printed on the line that starts with `label`, e.g.
// "  with metaplasticity (m* = 4):    88.65 -> 86.82 (-1.83 points)".
double points_changed(const std::string& output, const std::string& label) {
  const std::regex line(label + R"(\s+([0-9.]+) -> ([0-9.]+) \(([-+][0-9.]+) points\))");
  std::smatch match;
  REQUIRE(std::regex_search(output, match, line));
  const double first = std::stod(match[1]), last = std::stod(match[2]);
  CHECK(std::stod(match[3]) == Approx(last - first).margin(0.011));
  CHECK(first > 85.0);  // MNIST was learned
  return last - first;
}

}  // namespace

TEST_CASE("scripts/demo.sh shows MNIST kept with metaplasticity and lost without", "[demo]") {
  const fs::path out = metaplast::test::scratch_path("metaplast-test", "demo");
  const fs::path log = metaplast::test::scratch_path("metaplast-test", "demo.log");
  ::setenv("METAPLAST_BIN", METAPLAST_BINARY_DIR "/bin/metaplast", 1);
  ::setenv("METAPLAST_DEMO_OUT", out.c_str(), 1);
  const int status =
      metaplast::test::run({"/bin/bash", METAPLAST_SOURCE_DIR "/scripts/demo.sh"}, log);
  const std::string output = read_file(log);
  INFO(output);
  REQUIRE(status == 0);
  CHECK(points_changed(output, R"(with metaplasticity \(m\* = 4\):)") >= -5.0);
  CHECK(points_changed(output, R"(without metaplasticity \(m\* = 0\):)") <= -40.0);
  CHECK(fs::exists(out / "train" / "report" / "index.html"));
  CHECK(fs::exists(out / "characterize" / "calibration.json"));
  for (const auto& p : {out, log}) fs::remove_all(p);
}
