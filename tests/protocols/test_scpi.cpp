// SCPI line helpers: commands an instrument would accept, lines split from a chunked stream,
// and the response forms (numbers, lists, error queue entries) parsed or refused.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "protocols/scpi.hpp"

using namespace metaplast::protocols::scpi;

TEST_CASE("commands and queries are single terminated lines") {
  const std::vector<double> args = {0.2, -1.5e-3};
  CHECK(command("SOUR:VOLT", args) == "SOUR:VOLT 0.2,-0.0015\n");
  CHECK(command("OUTP", "ON") == "OUTP ON\n");
  CHECK(command("*RST") == "*RST\n");
  CHECK(query("MEAS:CURR") == "MEAS:CURR?\n");
  CHECK(query("*IDN?") == "*IDN?\n");
  CHECK(quote("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK_THROWS_AS(command(""), std::invalid_argument);
  CHECK_THROWS_AS(command("SOUR:VOLT\n*RST"), std::invalid_argument);
  CHECK_THROWS_AS(command("OUTP", "ON\n*RST"), std::invalid_argument);
  const std::vector<double> nan = {std::nan("")};
  CHECK_THROWS_AS(command("SOUR:VOLT", nan), std::invalid_argument);
}

TEST_CASE("the line splitter joins chunks and drops CR") {
  LineSplitter s;
  CHECK(s.feed("1.0E-3\r").empty());
  const auto lines = s.feed("\n2,3\nKEITH");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "1.0E-3");
  CHECK(lines[1] == "2,3");
  CHECK(s.buffered_bytes() == 5);
  CHECK(s.feed("LEY\n") == std::vector<std::string>{"KEITHLEY"});
}

TEST_CASE("an overlong line is discarded and counted, the next one survives") {
  LineSplitter s(8);
  const auto lines = s.feed(std::string(100, 'x') + "\nok\n");
  CHECK(lines == std::vector<std::string>{"ok"});
  CHECK(s.overlong_lines() == 1);
  CHECK(s.buffered_bytes() == 0);
}

TEST_CASE("numbers, lists and error entries parse; malformed ones are refused") {
  CHECK(parse_number(" +9.9E37 ") == 9.9e37);
  CHECK(parse_number("-1.5e-3") == -1.5e-3);
  CHECK_FALSE(parse_number("1.5V"));
  CHECK_FALSE(parse_number(""));
  const auto list = parse_numbers("1,2.5,-3");
  REQUIRE(list);
  CHECK(*list == std::vector<double>{1, 2.5, -3});
  CHECK_FALSE(parse_numbers("1,,3"));
  const auto err = parse_error("-113,\"Undefined header\"");
  REQUIRE(err);
  CHECK(err->code == -113);
  CHECK(err->message == "Undefined header");
  CHECK(err->is_error());
  const auto none = parse_error("+0,\"No error\"");
  REQUIRE(none);
  CHECK_FALSE(none->is_error());
  CHECK(parse_error("-100,\"say \"\"x\"\"\"")->message == "say \"x\"");
  CHECK_FALSE(parse_error("garbage"));
  CHECK_FALSE(parse_error("-100,unquoted"));
}
