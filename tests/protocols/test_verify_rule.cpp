// The program-and-verify rule of docs/protocol.md 4.6 (protocols/verify_rule.hpp): the band's
// edges, the pulse choice on either side of it, the wire's tolerance grid, and the per-cell loop
// against a scripted cell.
#include <catch2/catch.hpp>
#include <cstddef>
#include <utility>
#include <vector>

#include "protocols/verify_rule.hpp"

using namespace metaplast::protocols;

TEST_CASE("the band is two-sided for levels >= 1 and inclusive at its edges") {
  const auto band = verify_band(2, 40.0, 1.5);
  CHECK_FALSE(band.one_sided);
  CHECK(band.contains(40.0));
  CHECK(band.contains(38.5));
  CHECK(band.contains(41.5));
  CHECK_FALSE(band.contains(38.49));
  CHECK_FALSE(band.contains(41.51));
}

TEST_CASE("the LCS band (level 0) is one-sided: any lower conductance is in band") {
  const auto band = verify_band(0, 2.0, 1.0);
  CHECK(band.one_sided);
  CHECK(band.contains(0.0));
  CHECK(band.contains(-5.0));
  CHECK(band.contains(3.0));
  CHECK_FALSE(band.contains(3.01));
}

TEST_CASE("pulse choice: RESET above the band or for level 0, SET below the band") {
  const auto set_level = verify_band(3, 60.0, 2.0);
  CHECK(set_level.pulse_for(62.01) == PulseKind::kReset);
  CHECK(set_level.pulse_for(120.0) == PulseKind::kReset);
  CHECK(set_level.pulse_for(57.99) == PulseKind::kSet);
  CHECK(set_level.pulse_for(0.5) == PulseKind::kSet);
  const auto lcs = verify_band(0, 2.0, 1.0);
  CHECK(lcs.pulse_for(3.5) == PulseKind::kReset);
  CHECK(lcs.pulse_for(200.0) == PulseKind::kReset);
}

TEST_CASE("the tolerance goes over the wire in 0.01 uS units, rounded to nearest") {
  CHECK(tolerance_us_x100(1.0) == 100);
  CHECK(tolerance_us_x100(2.504) == 250);
  CHECK(tolerance_us_x100(2.506) == 251);
  CHECK(tolerance_on_wire_grid(2.504) == Approx(2.50).margin(1e-12));
  CHECK(tolerance_on_wire_grid(2.506) == Approx(2.51).margin(1e-12));
  // The host judges the board's cells with the tolerance the board received.
  CHECK(tolerance_on_wire_grid(1.234) == tolerance_us_x100(1.234) / 100.0);
}

namespace {

// A cell whose reads follow a script: each pulse moves to the next scripted conductance.
struct ScriptedCell {
  explicit ScriptedCell(std::vector<double> script) : conductances(std::move(script)) {}
  std::vector<double> conductances;
  std::size_t position = 0;
  std::vector<PulseKind> pulses;
  std::size_t reads = 0;

  double read() {
    ++reads;
    return conductances.at(position);
  }
  void pulse(PulseKind kind) {
    pulses.push_back(kind);
    ++position;
  }
  VerifyOutcome run(const VerifyBand& band, std::uint32_t max_attempts) {
    return verify_cell(
        band, max_attempts, [this] { return read(); }, [this](PulseKind k) { pulse(k); });
  }
};

}  // namespace

TEST_CASE("verify_cell: a cell already in band takes no pulse and one read") {
  ScriptedCell cell({40.2});
  const auto out = cell.run(verify_band(2, 40.0, 1.0), 20);
  CHECK(out.attempts == 0);
  CHECK(out.passed);
  CHECK(out.final_us == 40.2);
  CHECK(cell.reads == 1);
  CHECK(cell.pulses.empty());
}

TEST_CASE("verify_cell: pulses chosen from each read until the cell is in band") {
  // Too high (RESET), then too low (SET), then too low again (SET), then in band.
  ScriptedCell cell({80.0, 5.0, 30.0, 39.5});
  const auto out = cell.run(verify_band(2, 40.0, 1.0), 20);
  CHECK(out.attempts == 3);
  CHECK(out.passed);
  CHECK(out.final_us == 39.5);
  CHECK(cell.reads == 4);
  CHECK(cell.pulses == std::vector<PulseKind>{PulseKind::kReset, PulseKind::kSet, PulseKind::kSet});
}

TEST_CASE("verify_cell: gives up after max_attempts pulses and reports the last read") {
  ScriptedCell cell({10.0, 11.0, 12.0, 13.0, 14.0});
  const auto out = cell.run(verify_band(2, 40.0, 1.0), 3);
  CHECK(out.attempts == 3);
  CHECK_FALSE(out.passed);
  CHECK(out.final_us == 13.0);
  CHECK(cell.reads == 4);
  CHECK(cell.pulses.size() == 3);
}

TEST_CASE("verify_cell: level 0 only ever RESETs") {
  ScriptedCell cell({50.0, 20.0, 2.5});
  const auto out = cell.run(verify_band(0, 1.0, 2.0), 10);
  CHECK(out.passed);
  CHECK(cell.pulses == std::vector<PulseKind>{PulseKind::kReset, PulseKind::kReset});
}
