// What the tests of the device measurements (tests/app/test_measure*.cpp) share: the harness
// options of a test run, the PNG check, the error text of a campaign file, the board's state.
// Header-only: tests/CMakeLists.txt makes every test_*.cpp an executable.
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

// A measurement into `out` on `device`, quiet, pulses allowed (a tcp: simboard stands for a
// chip: the tests allow its pulses).
inline bench::HarnessOptions measurement_harness(const std::string& device,
                                                 const std::filesystem::path& out) {
  bench::HarnessOptions h;
  h.session.device = device;
  h.session.yes = true;
  h.out = out;
  h.log = [](const std::string&) {};
  h.progress_line = false;
  return h;
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
