// The enum-name tables (common/enum_names.hpp): names and values from one table, the fallback
// for a value outside it, and the refusal of an unknown name listing the accepted ones.
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "common/enum_names.hpp"

using namespace metaplast::common;

namespace {

enum class Colour { red, green, blue };
constexpr auto kColourNames = enum_table<Colour>({
    {Colour::red, "red"},
    {Colour::green, "green"},
    {Colour::blue, "blue-ish"},
});

std::string parse_error(std::string_view name, std::string_view accepted = {}) {
  try {
    parse_enum(kColourNames, name, "--colour: unknown colour", accepted);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("every value's name parses back to the value") {
  static_assert(kColourNames.size() == 3);
  for (const auto& entry : kColourNames) {
    CHECK(enum_value(kColourNames, enum_name(kColourNames, entry.value)) == entry.value);
    CHECK(parse_enum(kColourNames, entry.name, "unknown") == entry.value);
  }
  CHECK(std::string(enum_name(kColourNames, Colour::blue)) == "blue-ish");
  static_assert(enum_value(kColourNames, "green") == Colour::green);
}

TEST_CASE("a value outside the table gets the fallback name") {
  CHECK(std::string(enum_name(kColourNames, static_cast<Colour>(7))) == "?");
  CHECK(std::string(enum_name(kColourNames, static_cast<Colour>(7), "unknown colour")) ==
        "unknown colour");
}

TEST_CASE("an unknown name is refused with the accepted names") {
  CHECK(enum_names_list(kColourNames) == "red, green or blue-ish");
  CHECK(parse_error("Red") == "--colour: unknown colour 'Red': use red, green or blue-ish");
  CHECK(parse_error("") == "--colour: unknown colour '': use red, green or blue-ish");
  CHECK(parse_error("teal", "red (warm) or green (cool)") ==
        "--colour: unknown colour 'teal': use red (warm) or green (cool)");
  CHECK_FALSE(enum_value(kColourNames, "blue").has_value());
}
