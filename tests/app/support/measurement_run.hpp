// What the tests of the device measurements (app/bench/, tests/app/test_measure*.cpp) share: the
// harness options of a quiet run with permission, the CSV and PNG checks, and the board's own state
// flags read over the link as any host would. Header-only: tests/CMakeLists.txt makes every
// test_*.cpp an executable.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "app/bench/measurement.hpp"
#include "instruments/array_board.hpp"
#include "protocols/board_messages.hpp"

namespace metaplast::test {

// A run on `device` into the new folder `out`: no log, no progress line, pulses allowed (a tcp:
// simboard stands for a chip: the tests allow its pulses).
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

// The CSV starts with the settings and board lines (the board's `serial`), then `columns`.
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

// The board's own state flags (protocols::board_state), read over the link.
inline std::uint32_t board_state_flags(const std::string& address) {
  instruments::ArrayBoard board(address);
  board.open();
  const auto reply = board.link().call(protocols::GetStatusRequest{});
  const auto status = protocols::decode_response<protocols::GetStatusResponse>(reply.frame.payload);
  REQUIRE(status);
  return status.value->state_flags;
}

}  // namespace metaplast::test
