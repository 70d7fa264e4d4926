// Strings from the user (an --out path) and from the board (its IDENTIFY serial) are data, never
// commands: the real binaries with a run directory holding shell and gnuplot syntax, and with a
// simulated board whose serial is a gnuplot command. Plots are drawn all the same.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/util/process.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kMetaplast = METAPLAST_BINARY_DIR "/bin/metaplast";
const std::string kSimboard = METAPLAST_BINARY_DIR "/bin/metaplast-simboard";

// Runs the binary with argv in `cwd`; requires success and returns its output.
std::string run_ok(const std::vector<std::string>& argv, const fs::path& cwd) {
  metaplast::util::ProcessOptions options;
  options.working_directory = cwd;
  options.timeout = std::chrono::minutes(9);
  const auto r = metaplast::util::run_process(argv, options);
  INFO(r.describe() << "\n" << r.out << r.err);
  REQUIRE(r.ok());
  return r.out + r.err;
}

// Every file named `name` under `root`.
std::vector<fs::path> find_named(const fs::path& root, const std::string& name) {
  std::vector<fs::path> found;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().filename() == name) found.push_back(e.path());
  }
  return found;
}

}  // namespace

TEST_CASE("train and report in a run directory named with quotes and $(...): plots, no command") {
  REQUIRE(fs::exists(kMetaplast));
  const fs::path cwd = metaplast::test::scratch_path("metaplast-hostile", "train");
  fs::create_directories(cwd / "runs");
  const fs::path out = cwd / "runs" / "bob's a'$(touch Q)'b `touch R`";
  run_ok({kMetaplast, "train", "--tasks", "mnist", "--epochs", "1", "--train-limit", "500",
          "--hidden", "16", "--threads", "1", "--placement", "virtual", "--out", out.string()},
         cwd);
  CHECK(fs::file_size(out / "endurance.png") > 1000);
  run_ok({kMetaplast, "report", out.string()}, cwd);
  CHECK(fs::exists(out / "report" / "index.html"));
  CHECK(fs::exists(out / "report" / "endurance-run-virtual.png"));
  CHECK(find_named(cwd, "Q").empty());
  CHECK(find_named(cwd, "R").empty());
  CHECK_FALSE(fs::exists(fs::current_path() / "Q"));
  fs::remove_all(cwd);
}

TEST_CASE("characterize a board whose serial is a gnuplot command; report its folder") {
  REQUIRE(fs::exists(kMetaplast));
  const fs::path cwd = metaplast::test::scratch_path("metaplast-hostile", "serial");
  fs::create_directories(cwd);
  // The simulated board answers IDENTIFY with the serial of its calibration file.
  const fs::path calibration = cwd / "calibration.json";
  run_ok({kSimboard, "--write-default-calibration", calibration.string()}, cwd);
  json c = json::parse(metaplast::test::read_file(calibration));
  c["identity"]["board_serial"] = "x';system 'touch P';#";
  std::ofstream(calibration) << c.dump(2);

  const fs::path out = cwd / "bob's run";
  const std::string output = run_ok(
      {kMetaplast, "characterize", "--device",
       "sim:?seed=5&formed=1&calibration=" + calibration.string(), "--cells", "40", "--cycles", "2",
       "--read-repeats", "0", "--no-registry", "--chip", "T1", "--out", out.string()},
      cwd);
  CHECK_THAT(output, Catch::Contains("x';system 'touch P';#"));  // it did reach the host
  CHECK(fs::file_size(out / "cdf.png") > 1000);
  CHECK(find_named(cwd, "P").empty());

  // `metaplast report` takes a characterize --out folder: its CDF and the per-level table.
  run_ok({kMetaplast, "report", out.string()}, cwd);
  const std::string html = metaplast::test::read_file(out / "report" / "index.html");
  CHECK_THAT(html, Catch::Contains("Characterisation") && Catch::Contains("<h2>Levels</h2>"));
  bool cdf_png = false;
  for (const auto& e : fs::directory_iterator(out / "report")) {
    cdf_png = cdf_png || (e.path().filename().string().rfind("cdf-", 0) == 0 &&
                          e.path().extension() == ".png");
  }
  CHECK(cdf_png);
  CHECK(find_named(cwd, "P").empty());
  fs::remove_all(cwd);
}
