// app/util/process: programs run by argument vector, never through a shell; stdin, stdout,
// stderr, working directory, deadline, a program that is not there.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "app/util/gnuplot.hpp"
#include "app/util/process.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using metaplast::util::find_program;
using metaplast::util::ProcessOptions;
using metaplast::util::run_process;

TEST_CASE("arguments reach the program verbatim: shell syntax stays text") {
  const fs::path dir = metaplast::test::scratch_path("metaplast-process", "verbatim");
  fs::create_directories(dir);
  ProcessOptions options;
  options.working_directory = dir;
  const std::string hostile = "a'$(touch Q)'b `touch R` ; touch S";
  const auto r = run_process({"printf", "%s", hostile}, options);
  REQUIRE(r.ok());
  CHECK(r.out == hostile);
  CHECK_FALSE(fs::exists(dir / "Q"));
  CHECK_FALSE(fs::exists(dir / "R"));
  CHECK_FALSE(fs::exists(dir / "S"));
  fs::remove_all(dir);
}

TEST_CASE("stdin is fed, stdout and stderr are captured apart, the exit status is kept") {
  ProcessOptions options;
  options.stdin_bytes = "line one\nline two\n";
  const auto cat = run_process({"cat"}, options);
  REQUIRE(cat.ok());
  CHECK(cat.out == options.stdin_bytes);

  const auto ls = run_process({"ls", "/no/such/metaplast/path"});
  CHECK(ls.started);
  CHECK_FALSE(ls.ok());
  CHECK(ls.exit_code != 0);
  CHECK(ls.out.empty());
  CHECK_THAT(ls.err, Catch::Contains("/no/such/metaplast/path"));
  CHECK_THAT(ls.describe(), Catch::Contains("exit status"));
}

TEST_CASE("the working directory is the child's, a path with an apostrophe included") {
  const fs::path dir = metaplast::test::scratch_path("metaplast-process", "bob's run");
  fs::create_directories(dir);
  ProcessOptions options;
  options.working_directory = dir;
  const auto r = run_process({"pwd"}, options);
  REQUIRE(r.ok());
  CHECK(r.out == fs::canonical(dir).string() + "\n");
  fs::remove_all(dir);
}

TEST_CASE("a child past its deadline is killed and reaped") {
  ProcessOptions options;
  options.timeout = std::chrono::milliseconds(200);
  const auto r = run_process({"sleep", "60"}, options);
  CHECK(r.started);
  CHECK(r.timed_out);
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.describe(), Catch::Contains("timeout"));
}

TEST_CASE("large outputs are drained (no deadlock) and capped; unread stdin does not kill us") {
  const auto big = run_process({"head", "-c", "3000000", "/dev/zero"});
  REQUIRE(big.ok());
  CHECK(big.out.size() == metaplast::util::kMaxCapturedBytes);

  ProcessOptions options;
  options.stdin_bytes.assign(4 << 20, 'x');  // more than a pipe holds; `true` reads none
  const auto r = run_process({"true"}, options);
  CHECK(r.ok());
}

TEST_CASE("a program that is not there is reported, not run") {
  const auto r = run_process({"metaplast-no-such-program"});
  CHECK_FALSE(r.started);
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.describe(), Catch::Contains("metaplast-no-such-program"));
  CHECK_FALSE(find_program("metaplast-no-such-program").has_value());
  REQUIRE(find_program("sh").has_value());
  CHECK(fs::exists(*find_program("sh")));
  CHECK_THROWS_AS(run_process({}), std::invalid_argument);
}

// The tests' own helper (tests/app/support/process.hpp) runs the real binaries the same way.
TEST_CASE("the tests' run() passes apostrophes and $(...) verbatim, no shell") {
  const fs::path dir = metaplast::test::scratch_path("metaplast-process", "bob's run");
  fs::create_directories(dir);
  const std::string hostile = "a'$(touch " + (dir / "Q").string() + ")'b";
  const fs::path log = dir / "log's.txt";
  CHECK(metaplast::test::run({"/usr/bin/printf", "%s", hostile}, log) == 0);
  CHECK(metaplast::test::read_file(log) == hostile);
  CHECK_FALSE(fs::exists(dir / "Q"));
  CHECK(metaplast::test::run({"/bin/sh", "-c", "exit 3"}, log) == 3);
  fs::remove_all(dir);
}
