#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "sim/chip.hpp"

using namespace metaplast::sim;
namespace devices = metaplast::devices;

namespace {

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("metaplast_sim_" + std::to_string(::getpid()) + "_" + name);
}

// A fixed stream of operations; returns every read value.
std::vector<double> run_stream(Chip& chip, int first_round, int rounds) {
  const auto& cal = chip.model().calibration();
  std::vector<double> reads;
  for (int round = first_round; round < first_round + rounds; ++round) {
    for (int cell = 0; cell < 64; ++cell) {
      const auto& level = cal.hcs_levels[static_cast<std::size_t>((cell + round) % 8)];
      chip.reset(cell, 1.5, 100.0);
      chip.set(cell, 1.2, level.gate_voltage_v, 100.0);
      chip.advance_time_ns(1000);
      reads.push_back(chip.read(cell));
    }
  }
  return reads;
}

}  // namespace

TEST_CASE("a fresh chip is unformed, forming needs the cell's voltage", "[chip]") {
  devices::Calibration cal = devices::Calibration::defaults();
  cal.yield.defect_fraction = 0.0;
  Chip chip(devices::DeviceModel(cal), 1);
  CHECK(chip.cell(0).state == CellState::pristine);
  CHECK(chip.true_conductance_us(0) < 1.0);
  // SET does nothing to a pristine cell and is no endurance cycle.
  chip.set(0, 1.2, cal.hcs_levels[0].gate_voltage_v, 100);
  CHECK(chip.cell(0).state == CellState::pristine);
  CHECK(chip.cell(0).set_pulses == 0);
  chip.form(0, chip.cell(0).traits.forming_voltage_v - 0.05, 1.0, 1000);
  CHECK(chip.cell(0).state == CellState::pristine);
  chip.form(0, chip.cell(0).traits.forming_voltage_v + 0.05, 1.0, 1000);
  CHECK(chip.cell(0).state == CellState::hcs);
  CHECK(chip.cell(0).form_pulses == 2);
  CHECK(chip.true_conductance_us(0) > cal.forming.success_conductance_us);
}

TEST_CASE("factory forming leaves formable cells in LCS, unformable ones pristine", "[chip]") {
  devices::Calibration cal = devices::Calibration::defaults();
  cal.yield.defect_fraction = 0.02;
  cal.yield.unformable_share = 1.0;
  Chip chip(devices::DeviceModel(cal), 2);
  chip.form_all_at_factory();
  int pristine = 0, lcs = 0;
  for (int i = 0; i < Chip::kCells; ++i) {
    const Cell& c = chip.cell(i);
    if (c.traits.defect == devices::CellDefect::unformable) {
      CHECK(c.state == CellState::pristine);
      ++pristine;
    } else if (c.state == CellState::lcs) {
      ++lcs;
      CHECK(c.form_pulses == 1);
      CHECK(c.reset_pulses == 1);
    }
  }
  CHECK(pristine > 0);
  CHECK(pristine + lcs == Chip::kCells);
}

TEST_CASE("every SET and RESET pulse counts, switching or not", "[chip]") {
  devices::Calibration cal = devices::Calibration::defaults();
  cal.yield.defect_fraction = 0.0;
  Chip chip(devices::DeviceModel(cal), 3);
  chip.form_all_at_factory();
  const auto before = chip.cell(5);
  chip.set(5, 0.1, 1.0, 100);  // below the SET threshold: no switching, still a pulse
  CHECK(chip.cell(5).state == CellState::lcs);
  chip.set(5, 1.2, 1.0, 100);
  CHECK(chip.cell(5).state == CellState::hcs);
  chip.reset(5, 1.5, 100);
  CHECK(chip.cell(5).state == CellState::lcs);
  CHECK(chip.cell(5).set_pulses == before.set_pulses + 2);
  CHECK(chip.cell(5).reset_pulses == before.reset_pulses + 1);
}

TEST_CASE("same seed and same operations give identical results", "[chip][reproducibility]") {
  Chip a(devices::DeviceModel(devices::Calibration::defaults()), 77);
  Chip b(devices::DeviceModel(devices::Calibration::defaults()), 77);
  a.form_all_at_factory();
  b.form_all_at_factory();
  CHECK(run_stream(a, 0, 3) == run_stream(b, 0, 3));
  Chip c(devices::DeviceModel(devices::Calibration::defaults()), 78);
  c.form_all_at_factory();
  CHECK(run_stream(c, 0, 3) != run_stream(a, 3, 3));
}

TEST_CASE("state file round trip: save, load, continue == uninterrupted", "[chip][state]") {
  const auto path = temp_path("chip_state.bin");
  Chip uninterrupted(devices::DeviceModel(devices::Calibration::defaults()), 123);
  uninterrupted.form_all_at_factory();
  run_stream(uninterrupted, 0, 2);
  uninterrupted.count_boot();
  uninterrupted.save(path);
  const auto expected = run_stream(uninterrupted, 2, 2);

  Chip restored = Chip::load(path);
  std::filesystem::remove(path);
  CHECK(restored.boot_count() == 1);
  CHECK(restored.seed() == 123);
  CHECK(restored.time_ns() == uninterrupted.time_ns() - 2 * 64 * 1000);
  CHECK(run_stream(restored, 2, 2) == expected);
  for (int i = 0; i < Chip::kCells; i += 97) {
    CHECK(restored.cell(i).set_pulses == uninterrupted.cell(i).set_pulses);
    CHECK(restored.true_conductance_us(i) == uninterrupted.true_conductance_us(i));
  }
}

TEST_CASE("a damaged state file is refused with its name", "[chip][state]") {
  const auto path = temp_path("chip_state_bad.bin");
  Chip chip(devices::DeviceModel(devices::Calibration::defaults()), 1);
  chip.save(path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  CHECK_THROWS_WITH(Chip::load(path),
                    Catch::Contains("chip_state_bad.bin") && Catch::Contains("truncated"));
  std::filesystem::remove(path);
}

TEST_CASE("a cell that reaches its endurance gets stuck", "[chip][endurance]") {
  devices::Calibration cal = devices::Calibration::defaults();
  cal.yield.defect_fraction = 0.0;
  cal.endurance.median_cycles = 200;
  cal.endurance.sigma_ln = 0.1;
  Chip chip(devices::DeviceModel(cal), 4);
  chip.form_all_at_factory();
  const int cell = 10;
  const auto limit = static_cast<int>(chip.cell(cell).traits.endurance_cycles) + 2;
  for (int i = 0; i < limit && !chip.cell(cell).stuck; ++i) {
    chip.set(cell, 1.2, cal.hcs_levels[4].gate_voltage_v, 100);
    chip.reset(cell, 1.5, 100);
  }
  REQUIRE(chip.cell(cell).stuck);
  const bool stuck_high = chip.cell(cell).traits.wears_out_stuck_hcs;
  CHECK(chip.cell(cell).state == (stuck_high ? CellState::hcs : CellState::lcs));
  const double g = chip.true_conductance_us(cell);
  chip.set(cell, 1.2, cal.hcs_levels[7].gate_voltage_v, 100);
  chip.reset(cell, 1.5, 100);
  CHECK(chip.true_conductance_us(cell) == g);
}

TEST_CASE("state files end in a CRC-32; version 1 files without it still load", "[chip][state]") {
  const auto path = temp_path("chip_state_v1.bin");
  Chip chip(devices::DeviceModel(devices::Calibration::defaults()), 5);
  chip.form_all_at_factory();
  chip.save(path);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // A flipped bit in a cell's pulse count would be a plausible chip: the checksum refuses it.
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x01;
  CHECK_THROWS_WITH(Chip::parse(flipped, path.string()),
                    Catch::Contains(path.string()) && Catch::Contains("checksum mismatch") &&
                        Catch::Contains("delete it to start a fresh chip"));
  // Version 1: the same bytes without the checksum.
  std::string version1 = bytes.substr(0, bytes.size() - 4);
  const std::uint32_t one = 1;
  std::memcpy(version1.data() + 8, &one, sizeof one);
  const Chip old = Chip::parse(version1, path.string());
  CHECK(old.seed() == 5);
  for (int i = 0; i < Chip::kCells; i += 101) {
    CHECK(old.cell(i).form_pulses == chip.cell(i).form_pulses);
  }
  std::filesystem::remove(path);
}
