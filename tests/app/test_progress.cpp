// app/util/progress: the one progress line and time-left estimate of every long command.
#include <catch2/catch.hpp>
#include <string>

#include "app/util/progress.hpp"

using metaplast::util::format_duration;
using metaplast::util::ProgressLine;
using metaplast::util::seconds_left;

TEST_CASE("durations read as seconds, minutes or hours", "[progress]") {
  CHECK(format_duration(0) == "0 s");
  CHECK(format_duration(-5) == "0 s");
  CHECK(format_duration(42.4) == "42 s");
  CHECK(format_duration(190) == "3 min 10 s");
  CHECK(format_duration(3600 + 5 * 60 + 59) == "1 h 05 min");
}

TEST_CASE("time left is the rest of the job at the pace so far", "[progress]") {
  CHECK(seconds_left(10, 0.0) == 0.0);   // nothing done yet: no estimate
  CHECK(seconds_left(10, 0.25) == Approx(30.0));
  CHECK(seconds_left(10, 1.0) == 0.0);
  CHECK(seconds_left(10, 1.5) == 0.0);   // past the end: nothing left
}

TEST_CASE("the progress line stays silent when stderr is not a terminal", "[progress]") {
  // ctest gives the test a pipe, not a terminal: logs and CI keep one line per step.
  ProgressLine line;
  CHECK_FALSE(line.enabled());
  line.show("not shown");
  line.show_count("label", 3, 3);
  line.clear();
  CHECK(line.elapsed_seconds() >= 0.0);
}
