// common::utc_now_iso8601: the one timestamp of every record (run records, chip records, journals,
// frame recordings, snapshots).
#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <regex>
#include <string>

#include "common/clock.hpp"

TEST_CASE("utc_now_iso8601 is ISO 8601 UTC to the second, and now", "[clock]") {
  const std::time_t before = std::time(nullptr);
  const std::string now = metaplast::common::utc_now_iso8601();
  const std::time_t after = std::time(nullptr);
  REQUIRE(std::regex_match(now, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")));
  std::tm parsed{};
  REQUIRE(strptime(now.c_str(), "%Y-%m-%dT%H:%M:%SZ", &parsed) != nullptr);
  const std::time_t seconds = timegm(&parsed);
  CHECK(seconds >= before);
  CHECK(seconds <= after);
}
