// The bit-accurate claim: one command stream through the in-process, TCP and pseudo-terminal
// (serial driver) transports, against simulated boards with the same seed, gives identical raw
// results: ADC codes, program-and-verify results and counters.
#include <catch2/catch.hpp>

#include "instruments/array_board.hpp"
#include "sim_boards.hpp"

using namespace metaplast::instruments;
using namespace metaplast::testing;

namespace {

struct RawResults {
  std::vector<std::uint16_t> first_reads;
  std::vector<std::uint16_t> program_codes;
  std::vector<std::uint32_t> program_attempts;
  std::vector<std::uint16_t> array_codes;
  std::vector<std::uint64_t> counters;
  std::uint32_t boot_id = 0;
};

RawResults run_stream(const std::string& address) {
  ArrayBoard board(address);
  RawResults out;
  out.boot_id = board.open().boot_id;
  board.configure({});
  board.activate();
  std::vector<Cell> row;
  for (std::uint16_t c = 0; c < 128; ++c) row.push_back({1, c});
  for (const auto& r : board.read(row)) out.first_reads.push_back(r.code);
  board.set(row, 5);
  board.reset({row.begin(), row.begin() + 40});
  std::vector<ProgramTarget> targets;
  for (std::uint16_t i = 0; i < 700; ++i) {  // two PROGRAM_VERIFY chunks
    targets.push_back(
        {{static_cast<std::uint16_t>(10 + i / 128), static_cast<std::uint16_t>(i % 128)},
         static_cast<Level>(i % 9)});
  }
  ProgramOptions options;
  options.band_us = 4.0;
  options.max_attempts = 30;
  for (const auto& c : board.program_and_verify(targets, options).cells) {
    out.program_codes.push_back(c.final_code);
    out.program_attempts.push_back(c.attempts);
  }
  out.array_codes = board.read_array().codes;
  for (const auto& c : board.counters_array()) out.counters.push_back(c.programming_operations());
  board.close();
  return out;
}

void check_same(const RawResults& a, const RawResults& b) {
  CHECK(a.boot_id == b.boot_id);
  CHECK(a.first_reads == b.first_reads);
  CHECK(a.program_codes == b.program_codes);
  CHECK(a.program_attempts == b.program_attempts);
  CHECK(a.array_codes == b.array_codes);
  CHECK(a.counters == b.counters);
}

}  // namespace

TEST_CASE(
    "in-process, TCP and pseudo-terminal boards with the same seed give identical raw results") {
  const std::uint64_t seed = 31;
  const auto in_process = run_stream(sim_address(seed));
  REQUIRE(in_process.array_codes.size() == 128u * 128u);
  // The stream did something: cells were programmed and counted.
  std::uint64_t pulses = 0;
  for (auto c : in_process.counters) pulses += c;
  CHECK(pulses > 700);

  SECTION("TCP loopback") {
    TcpSimBoard tcp(sim_options(seed));
    check_same(in_process, run_stream(tcp.address()));
  }
  SECTION("pseudo-terminal through the serial driver") {
    PtySimBoard pty(sim_options(seed));
    check_same(in_process, run_stream(pty.address()));
  }
  SECTION("a different seed differs") {
    const auto other = run_stream(sim_address(seed + 1));
    CHECK(other.array_codes != in_process.array_codes);
  }
}
