#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/json_file.hpp"

using metaplast::common::option_value_text;
using nlohmann::json;

TEST_CASE("option values print as a person writes them", "[json]") {
  CHECK(option_value_text(json("sim:?seed=1")) == "sim:?seed=1");
  // A float option stored in JSON as a double prints as the float it is.
  CHECK(option_value_text(json(2.4f)) == "2.4");
  CHECK(json(2.4f).dump() == "2.4000000953674316");
  CHECK(option_value_text(json(0.02f)) == "0.02");
  CHECK(option_value_text(json(0.0)) == "0");
  // A double that is no float keeps its digits; integers, booleans and lists are JSON.
  CHECK(option_value_text(json(0.1)) == "0.1");
  CHECK(option_value_text(json(1.0 / 3.0)) == json(1.0 / 3.0).dump());
  CHECK(option_value_text(json(20)) == "20");
  CHECK(option_value_text(json(true)) == "true");
  CHECK(option_value_text(json::array({256, 128})) == "[256,128]");
}
