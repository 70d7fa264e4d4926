// What the measurement tests check on every output folder (docs/bench.md, "Measurements"): the
// CSV's header lines, a valid PNG, the board's safe state after a stop, the harness options
// a test runs a measurement with, and the error text of a campaign file. Header-only, for
// tests/app/test_measure*.cpp and test_cell_map.cpp.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "app/bench/measurement.hpp"
#include "app/campaign/campaign.hpp"
#include "instruments/array_board.hpp"
#include "protocols/board_messages.hpp"

namespace metaplast::test {

// The CSV starts with the settings and board lines, then column names with units.
inline void check_csv(const std::filesystem::path& file, const std::string& serial,
                      const std::string& columns) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  CHECK(line.rfind("# board settings: read_voltage_v=", 0) == 0);
  std::getline(in, line);
  CHECK(line.rfind("# board: ", 0) == 0);
  CHECK(line.find(serial) != std::string::npos);
  while (std::getline(in, line) && line.rfind("#", 0) == 0) {
  }
  CHECK(line == columns);
}

// A PNG: its magic bytes and more than a trivial size.
inline void check_png(const std::filesystem::path& file) {
  REQUIRE(std::filesystem::exists(file));
  CHECK(std::filesystem::file_size(file) > 5000);
  std::ifstream in(file, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  CHECK(std::string(magic, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
}

inline bench::HarnessOptions harness(const std::string& device, const std::filesystem::path& out) {
  bench::HarnessOptions h;
  h.session.device = device;
  h.session.yes = true;  // a tcp: simboard stands for a chip: the tests allow its pulses
  h.out = out;
  h.log = [](const std::string&) {};
  h.progress_line = false;
  return h;
}

// The error a campaign file's text gives as "camp.json" ("(no error)" when it parses).
inline std::string campaign_error(const std::string& text) {
  try {
    campaign::parse_campaign(nlohmann::json::parse(text), "camp.json");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// The board's own state flags, read over the link as any host would.
inline std::uint32_t board_state_flags(const std::string& address) {
  instruments::ArrayBoard board(address);
  board.open();
  const auto reply = board.link().call(protocols::GetStatusRequest{});
  const auto status = protocols::decode_response<protocols::GetStatusResponse>(reply.frame.payload);
  REQUIRE(status);
  return status.value->state_flags;
}

}  // namespace metaplast::test
