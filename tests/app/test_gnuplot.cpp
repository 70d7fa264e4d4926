// app/util/gnuplot: strings from users and boards are inert in a gnuplot script, and gnuplot runs
// in the script's folder whatever that folder is called.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "app/hil/characterize.hpp"
#include "app/util/gnuplot.hpp"
#include "app/util/process.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using metaplast::util::gnuplot_quote;
using metaplast::util::gnuplot_quote_text;

namespace {

const std::string kHostileSerial = "x';system 'touch P';#";

// gnuplot's `print` of the quoted text (gnuplot prints to stderr).
std::string printed_by_gnuplot(const std::string& quoted, const fs::path& dir) {
  std::ofstream(dir / "print.gp") << "print " << quoted << "\n";
  metaplast::util::ProcessOptions options;
  options.working_directory = dir;
  const auto r = metaplast::util::run_process({"gnuplot", "print.gp"}, options);
  REQUIRE(r.ok());
  return r.err;
}

}  // namespace

TEST_CASE("gnuplot_quote: quotes doubled, line breaks cannot start a new command") {
  CHECK(gnuplot_quote("bob's run") == "'bob''s run'");
  CHECK(gnuplot_quote("a\nsystem 'touch P'") == "'a system ''touch P'''");
  CHECK(gnuplot_quote("") == "''");
  CHECK(gnuplot_quote_text("run_1^2") == "'run\\_1\\^2'");
}

TEST_CASE("hostile strings reach gnuplot as text and run nothing") {
  REQUIRE(metaplast::util::gnuplot_installed());
  const fs::path dir = metaplast::test::scratch_path("metaplast-gnuplot", "quote");
  fs::create_directories(dir);
  for (const std::string& text :
       {kHostileSerial, std::string("a`touch B`b @x $(touch D) \\n"), std::string("l1\nl2")}) {
    INFO(text);
    std::string expected = text;
    for (char& c : expected) c = c == '\n' ? ' ' : c;
    CHECK(printed_by_gnuplot(gnuplot_quote(text), dir) == expected + "\n");
  }
  CHECK_FALSE(fs::exists(dir / "P"));
  CHECK_FALSE(fs::exists(dir / "B"));
  CHECK_FALSE(fs::exists(dir / "D"));
  fs::remove_all(dir);
}

TEST_CASE("the CDF plot of a board with a hostile serial, in a folder with an apostrophe") {
  REQUIRE(metaplast::util::gnuplot_installed());
  const fs::path dir = metaplast::test::scratch_path("metaplast-gnuplot", "bob's run");
  fs::create_directories(dir);
  metaplast::hil::Characterization data;
  data.board.model = "SIM'1";
  data.board.serial = kHostileSerial;
  data.cycles = 2;
  data.settings.read_voltage_v = 0.2;
  data.cells.resize(3);
  for (int level = 0; level < 3; ++level) {
    metaplast::hil::LevelSamples s;
    s.level = level;
    s.icc_ua = level * 100.0;
    s.by_cell = {{10.0 + 40 * level, 11.0 + 40 * level},
                 {12.0 + 40 * level, 13.0 + 40 * level},
                 {14.0 + 40 * level, 15.0 + 40 * level}};
    data.levels.push_back(s);
  }
  const std::string error = metaplast::hil::plot_cdf(data, dir / "cdf.png");
  CHECK(error.empty());
  CHECK(fs::file_size(dir / "cdf.png") > 1000);
  CHECK_FALSE(fs::exists(dir / "P"));
  CHECK_FALSE(fs::exists(fs::current_path() / "P"));
  // The script names its files relative to its folder: gnuplot cdf.gp there draws it again.
  const std::string script = metaplast::test::read_file(dir / "cdf.gp");
  CHECK(script.find(dir.string()) == std::string::npos);
  fs::remove(dir / "cdf.png");
  metaplast::util::ProcessOptions options;
  options.working_directory = dir;
  CHECK(metaplast::util::run_process({"gnuplot", "cdf.gp"}, options).ok());
  CHECK(fs::exists(dir / "cdf.png"));
  // Log axis tick labels are short numbers, never "0.000010".
  CHECK(script.find("0.0000") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a gnuplot failure names the script and says what gnuplot said") {
  const fs::path dir = metaplast::test::scratch_path("metaplast-gnuplot", "fail");
  fs::create_directories(dir);
  std::ofstream(dir / "bad.gp") << "plot 'no-such-file.dat'\n";
  const std::string error = metaplast::util::run_gnuplot(dir / "bad.gp");
  CHECK_THAT(error, Catch::Contains("bad.gp"));
  CHECK_THAT(error, Catch::Contains("no-such-file.dat"));
  fs::remove_all(dir);
}
