// IDENTIFY validation: a board advertising a limit outside the range docs/protocol.md 4.1 states
// is refused at open with the field, the value and the allowed range.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>

#include "instruments/array_board.hpp"
#include "scripted_board.hpp"
#include "sim/server.hpp"

using namespace metaplast;
using namespace metaplast::instruments;
using namespace metaplast::testing;
namespace p = metaplast::protocols;

namespace {

p::IdentifyResponse simulated_identity() {
  sim::SimOptions options;
  options.formed = true;
  return sim::make_firmware(options)->identity();
}

// Opens a board whose IDENTIFY answer is the simulator's with `edit` applied; returns the error
// message (empty if it opened).
std::string open_error(const std::function<void(p::IdentifyResponse&)>& edit) {
  auto identity = simulated_identity();
  edit(identity);
  ScriptedBoard board([&](const p::Frame& request, drivers::Transport& link) {
    const p::ResponseStatus ok{p::Status::kOk, identity.boot_id, 0};
    const auto opcode = static_cast<p::Opcode>(request.header.opcode);
    // IDENTIFY as edited; anything else (the SAFE_STATE of close()) a plain ok.
    const auto payload = opcode == p::Opcode::kIdentify ? p::encode_response(ok, identity)
                                                        : p::encode_response(ok, p::EmptyBody{});
    link.write(p::encode_response_frame(request.header.sequence, opcode, payload),
               drivers::deadline_after(std::chrono::seconds(1)));
  });
  ArrayBoard host(board.address());
  try {
    host.open();
  } catch (const BoardError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the simulated board's identity is within every range") {
  CHECK(open_error([](p::IdentifyResponse&) {}).empty());
}

TEST_CASE("max_payload_bytes outside 512..4160 is refused at identify, naming field and range") {
  // 0 used to be taken as 4160; 16..20 gave internal encoder errors later; sizes wrapped.
  for (const std::uint16_t bad : {0, 16, 20, 511, 4161, 65535}) {
    const auto error = open_error([&](p::IdentifyResponse& id) { id.max_payload_bytes = bad; });
    INFO(error);
    CHECK(error.find("max_payload_bytes = " + std::to_string(bad)) != std::string::npos);
    CHECK(error.find("512 .. 4160") != std::string::npos);
    CHECK(error.find("tcp:127.0.0.1:") != std::string::npos);
  }
  CHECK(open_error([](p::IdentifyResponse& id) { id.max_payload_bytes = 512; }).empty());
}

TEST_CASE("every advertised limit outside its range is refused at identify") {
  const std::vector<std::pair<std::string, std::function<void(p::IdentifyResponse&)>>> cases = {
      {"read_voltage_max_mv = 65535", [](auto& id) { id.limits.read_voltage_max_mv = 65535; }},
      {"read_voltage_min_mv = 0", [](auto& id) { id.limits.read_voltage_min_mv = 0; }},
      {"read_voltage_max_mv = 40", [](auto& id) { id.limits.read_voltage_max_mv = 40; }},
      {"rows = 0", [](auto& id) { id.rows = 0; }},
      {"cols = 300", [](auto& id) { id.cols = 300; }},
      {"adc_bits = 24", [](auto& id) { id.adc_bits = 24; }},
      {"max_attempts = 0", [](auto& id) { id.limits.max_attempts = 0; }},
      {"max_attempts = 200", [](auto& id) { id.limits.max_attempts = 200; }},
      {"boot_id = 0", [](auto& id) { id.boot_id = 0; }},
      {"pulse_width_min_ns = 0", [](auto& id) { id.limits.pulse_width_min_ns = 0; }},
      {"pulse_width_max_ns = 5",
       [](auto& id) {
         id.limits.pulse_width_min_ns = 10;
         id.limits.pulse_width_max_ns = 5;
       }},
      {"watchdog_max_ms = 1", [](auto& id) { id.limits.watchdog_max_ms = 1; }},
      {"watchdog_min_ms = 100000", [](auto& id) { id.limits.watchdog_min_ms = 100'000; }},
      {"tia_ranges[0].nanoamps_per_code = nan",
       [](auto& id) {
         id.tia_ranges[0].nanoamps_per_code = std::numeric_limits<float>::quiet_NaN();
       }},
      {"tia_ranges[1].zero_code = 16384", [](auto& id) { id.tia_ranges[1].zero_code = 16384; }},
      {"levels[0].icc_na (the LCS) = 5", [](auto& id) { id.levels[0].icc_na = 5; }},
      {"levels[3].target_conductance_us = -1",
       [](auto& id) { id.levels[3].target_conductance_us = -1; }},
  };
  for (const auto& [expected, edit] : cases) {
    const auto error = open_error(edit);
    INFO(expected << " -> " << error);
    CHECK(error.find(expected) != std::string::npos);
    CHECK(error.find("outside the allowed range") != std::string::npos);
  }
}
