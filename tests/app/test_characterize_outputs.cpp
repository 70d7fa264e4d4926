// The output files of `metaplast characterize` (samples.csv, cdf.csv, calibration.json,
// unformed.csv, bad_cells.csv, the plot and the chip record) on a full disk: one error naming the
// file that did not fit, no .tmp left behind, and every file that is there complete.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "app/cli/commands.hpp"
#include "app/hil/chip_registry.hpp"
#include "tests/app/support/full_disk.hpp"
#include "tests/app/support/process.hpp"

namespace hil = metaplast::hil;
namespace fs = std::filesystem;
using metaplast::test::read_file;
using metaplast::test::temporaries;
using metaplast::test::with_file_size_limit;

namespace {

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-characterize-outputs", name);
}

// `metaplast characterize` in this process, on the in-process simulated board, into `dir`/out
// with its chip record in `dir`/chips.
void characterize(const fs::path& dir) {
  CLI::App app;
  app.require_subcommand(1);
  metaplast::cli::add_characterize_command(app);
  app.parse(
      "characterize --device sim:?seed=3&formed=1 --cells 20 --cycles 2 --read-repeats 0 "
      "--chip FULL-1 --out " +
          (dir / "out").string() + " --chips-dir " + (dir / "chips").string(),
      false);
}

// Every file the run wrote and its size (the registry's empty .lock file aside).
std::map<fs::path, std::uintmax_t> outputs(const fs::path& dir) {
  std::map<fs::path, std::uintmax_t> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() != ".lock") {
      files[fs::relative(e.path(), dir)] = e.file_size();
    }
  }
  return files;
}

// A file that is there is whole: not empty, text ends its last line, JSON parses.
void check_complete(const fs::path& file) {
  INFO(file);
  const std::string text = read_file(file);
  REQUIRE_FALSE(text.empty());
  const auto ext = file.extension();
  if (ext == ".csv" || ext == ".json" || ext == ".gp") CHECK(text.back() == '\n');
  if (ext == ".json") CHECK_NOTHROW(nlohmann::json::parse(text));
}

}  // namespace

TEST_CASE("characterize on a full disk: one error naming the file, nothing half-written") {
  const fs::path full = scratch("unlimited");
  characterize(full);
  const auto sizes = outputs(full);
  REQUIRE(sizes.count("out/samples.csv") == 1);
  REQUIRE(sizes.count("out/calibration.json") == 1);
  REQUIRE(sizes.count("chips/FULL-1.json") == 1);

  // One run per output file, the limit one byte short of it: the first file written that does
  // not fit is named, and is not there.
  for (const auto& [name, bytes] : sizes) {
    if (bytes < 2) continue;
    const fs::path dir = scratch("limit-" + std::to_string(bytes - 1));
    const std::string error = with_file_size_limit(bytes - 1, [&] { characterize(dir); });
    INFO("limit " << bytes - 1 << " bytes (" << name.string() << "): " << error);
    if (!error.empty()) {
      const auto named = std::find_if(sizes.begin(), sizes.end(), [&](const auto& f) {
        return error.find((dir / f.first).string()) != std::string::npos;
      });
      REQUIRE(named != sizes.end());
      CHECK(named->second > bytes - 1);
      CHECK_FALSE(fs::exists(dir / named->first));
    } else {
      CHECK(name == "out/cdf.png");  // only the plot may be missing: a warning, not an error
      CHECK_FALSE(fs::exists(dir / name));
    }
    CHECK(temporaries(dir).empty());
    for (const auto& [written, size] : outputs(dir)) check_complete(dir / written);
    fs::remove_all(dir);
  }
  // samples.csv is written first: a limit below its size is its error.
  const fs::path dir = scratch("samples");
  const std::string error =
      with_file_size_limit(sizes.at("out/samples.csv") - 1, [&] { characterize(dir); });
  CHECK_THAT(error, Catch::Contains((dir / "out" / "samples.csv").string()));
  CHECK_FALSE(fs::exists(dir / "out" / "samples.csv"));
  fs::remove_all(dir);
  fs::remove_all(full);
}

TEST_CASE("the chip registry on a full disk: an error naming the record, the old one kept") {
  const fs::path dir = scratch("registry");
  hil::ChipRegistry registry(dir);
  registry.update("W1-D1", 128, 128, [](hil::ChipRecord& r) { r.add_writes(0, 5); });
  const fs::path file = dir / "W1-D1.json";
  const std::string before = read_file(file);
  REQUIRE_FALSE(before.empty());

  // The new record is longer than the old one; the limit lets only the old one fit.
  const std::string error = with_file_size_limit(before.size(), [&] {
    registry.update("W1-D1", 128, 128, [](hil::ChipRecord& r) {
      for (std::uint32_t c = 0; c < 1000; ++c) r.add_writes(c, 1000000 + c);
    });
  });
  CHECK_THAT(error, Catch::Contains(file.string()));
  CHECK(read_file(file) == before);
  CHECK(registry.load("W1-D1")->total_writes == 5);
  CHECK(temporaries(dir).empty());
  fs::remove_all(dir);
}
