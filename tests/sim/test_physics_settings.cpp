// The simulated chip's response to pulse and read conditions (docs/calibration.md, "The simulated
// device's response to pulse conditions"), measured as a chip would be: over many cells, fixed
// seeds, one condition at a time. Tolerances are a few binomial or sample standard errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "host_helper.hpp"
#include "sim/chip.hpp"

using namespace metaplast::sim;
using namespace metaplast::sim::testing;
namespace devices = metaplast::devices;

namespace {

constexpr int kCells = 2000;  // cells measured per condition

// Defect-free, relaxation off: what a pulse does is what a read right after it sees.
devices::Calibration ideal_calibration() {
  devices::Calibration c = devices::Calibration::defaults();
  c.relaxation.enabled = false;
  c.yield.defect_fraction = 0.0;
  return c;
}

Chip factory_chip(std::uint64_t seed, const devices::Calibration& c = ideal_calibration()) {
  Chip chip(devices::DeviceModel(c), seed);
  chip.form_all_at_factory();
  return chip;
}

// Fraction of kCells factory (LCS) cells that one SET pulse switches to HCS.
double set_fraction(double bl_v, double width_ns) {
  Chip chip = factory_chip(11);
  const double gate_v = chip.model().calibration().hcs_levels[3].gate_voltage_v;
  int switched = 0;
  for (int i = 0; i < kCells; ++i) {
    chip.set(i, bl_v, gate_v, width_ns);
    switched += chip.cell(i).state == CellState::hcs;
  }
  return static_cast<double>(switched) / kCells;
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

// Conductances of kCells cells after a SET at (bl_v, gate_v, width_ns) from the LCS.
std::vector<double> after_set(double bl_v, double gate_v, double width_ns) {
  Chip chip = factory_chip(12);
  std::vector<double> g;
  for (int i = 0; i < kCells; ++i) {
    chip.set(i, bl_v, gate_v, width_ns);
    REQUIRE(chip.cell(i).state == CellState::hcs);
    g.push_back(chip.true_conductance_us(i));
  }
  return g;
}

// Geometric mean conductance of kCells cells RESET at (sl_v, width_ns) from HCS level 4.
double lcs_after_reset(double sl_v, double width_ns) {
  Chip chip = factory_chip(13);
  const double gate_v = chip.model().calibration().hcs_levels[3].gate_voltage_v;
  double sum_ln = 0;
  for (int i = 0; i < kCells; ++i) {
    chip.set(i, 1.2, gate_v, 100);
    chip.reset(i, sl_v, width_ns);
    sum_ln += std::log(chip.true_conductance_us(i));
  }
  return std::exp(sum_ln / kCells);
}

// Fraction of kCells pristine cells that one FORM pulse forms.
double forming_yield(double bl_v, double width_ns, devices::Calibration c = ideal_calibration()) {
  Chip chip(devices::DeviceModel(c), 14);
  int formed = 0;
  for (int i = 0; i < kCells; ++i) {
    chip.form(i, bl_v, c.hcs_levels[0].gate_voltage_v, width_ns);
    formed += chip.cell(i).state != CellState::pristine;
  }
  return static_cast<double>(formed) / kCells;
}

// Mean relative change of the true conductance of kCells HCS cells after `reads` reads at read_v.
double read_drift(double read_v, int reads) {
  Chip chip = factory_chip(15);
  const double gate_v = chip.model().calibration().hcs_levels[3].gate_voltage_v;
  double sum = 0;
  for (int i = 0; i < kCells; ++i) {
    chip.set(i, 1.2, gate_v, 100);
    const double before = chip.true_conductance_us(i);
    for (int k = 0; k < reads; ++k) chip.read(i, read_v);
    sum += chip.true_conductance_us(i) / before - 1.0;
  }
  return sum / kCells;
}

}  // namespace

TEST_CASE("SET success rises with bit-line amplitude and pulse width", "[physics]") {
  const devices::DeviceModel model(ideal_calibration());
  // Binomial standard error at p = 0.5 and 2000 cells: 0.011; tolerance 0.04.
  std::vector<double> by_amplitude;
  for (double bl_v : {0.6, 0.65, 0.75, 0.85, 0.9, 1.2}) {
    const double fraction = set_fraction(bl_v, 100);
    INFO("BL " << bl_v << " V: " << fraction);
    CHECK(fraction == Approx(model.set_probability(bl_v, 100)).margin(0.04));
    by_amplitude.push_back(fraction);
  }
  CHECK(by_amplitude.front() == 0.0);  // below threshold - transition: never
  CHECK(by_amplitude.back() == 1.0);   // the default SET pulse: always
  CHECK(by_amplitude[2] == Approx(0.5).margin(0.04));
  for (std::size_t i = 1; i < by_amplitude.size(); ++i)
    CHECK(by_amplitude[i] >= by_amplitude[i - 1]);
  CHECK(by_amplitude[3] > by_amplitude[1] + 0.5);

  // At 0.75 V: 20 ns acts like 0.68 V, 500 ns like 0.82 V (0.1 V per decade).
  const double short_pulse = set_fraction(0.75, 20);
  const double reference = set_fraction(0.75, 100);
  const double long_pulse = set_fraction(0.75, 500);
  CHECK(short_pulse == Approx(model.set_probability(0.75, 20)).margin(0.04));
  CHECK(long_pulse == Approx(model.set_probability(0.75, 500)).margin(0.04));
  CHECK(short_pulse + 0.25 < reference);
  CHECK(reference + 0.25 < long_pulse);
  CHECK(set_fraction(1.2, 5) == 0.0);  // shorter than min_pulse_width_ns
}

TEST_CASE("G after SET follows the gate's compliance current, weakly the amplitude", "[physics]") {
  const auto cal = ideal_calibration();
  std::vector<double> means;
  for (int level : {0, 3, 7}) {
    const auto& l = cal.hcs_levels[static_cast<std::size_t>(level)];
    const double mean = mean_of(after_set(1.2, l.gate_voltage_v, 100));
    INFO("level " << level + 1 << ": mean " << mean << " uS");
    // Sample standard error < 0.2 uS; d2d offsets average out to well under 2 %.
    CHECK(mean == Approx(l.median_conductance_us).epsilon(0.02));
    means.push_back(mean);
  }
  CHECK(means[0] < means[1]);
  CHECK(means[1] < means[2]);

  // Over-drive: 2.0 V instead of 1.2 V gives 1 + 0.05 * 0.8 = 4 % more, a tenfold wider pulse
  // 0.5 % more; the same cells and draws, so the ratio is exact to the floor at the LCS.
  const double gate_v = cal.hcs_levels[7].gate_voltage_v;
  const double nominal = mean_of(after_set(1.2, gate_v, 100));
  CHECK(mean_of(after_set(2.0, gate_v, 100)) / nominal == Approx(1.04).margin(0.002));
  CHECK(mean_of(after_set(1.2, gate_v, 1000)) / nominal == Approx(1.005).margin(0.002));
}

TEST_CASE("the LCS after RESET is deeper the larger the source-line amplitude", "[physics]") {
  const auto cal = ideal_calibration();
  const double lcs = cal.lcs.median_conductance_us;
  // Geometric means; standard error of ln G over 2000 cells ~0.012. Expected:
  // median * exp(-3 (V_eff - 1.5)).
  const double weak = lcs_after_reset(1.1, 100);
  const double mid = lcs_after_reset(1.3, 100);
  const double nominal = lcs_after_reset(1.5, 100);
  const double strong = lcs_after_reset(2.0, 100);
  CHECK(weak == Approx(lcs * std::exp(1.2)).epsilon(0.05));
  CHECK(mid == Approx(lcs * std::exp(0.6)).epsilon(0.05));
  CHECK(nominal == Approx(lcs).epsilon(0.05));
  CHECK(strong == Approx(lcs * std::exp(-1.5)).epsilon(0.05));
  CHECK(weak > mid);
  CHECK(mid > nominal);
  CHECK(nominal > strong);
  // A weak RESET leaves an intermediate conductance: between the LCS and HCS level 1.
  CHECK(weak > 2.0 * lcs);
  CHECK(weak < cal.hcs_levels[0].median_conductance_us);
  // A longer pulse goes deeper too (0.1 V per decade).
  CHECK(lcs_after_reset(1.5, 1000) == Approx(lcs * std::exp(-0.3)).epsilon(0.05));
  // Below the threshold nothing switches: the cells stay at level 4 (~80 uS).
  CHECK(lcs_after_reset(1.0, 100) > 50.0);
}

TEST_CASE("forming yield rises with voltage and with pulse width", "[physics]") {
  // Forming voltages ~ Normal(3.0, 0.15): yield = Phi((V_eff - 3.0) / 0.15); binomial standard
  // error <= 0.011, tolerance 0.04.
  const auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  std::vector<double> by_voltage;
  for (double v : {2.7, 2.85, 3.0, 3.15, 3.3, 3.6}) {
    const double yield = forming_yield(v, 1000);
    INFO("FORM " << v << " V: " << yield);
    CHECK(yield == Approx(phi((v - 3.0) / 0.15)).margin(0.04));
    by_voltage.push_back(yield);
  }
  for (std::size_t i = 1; i < by_voltage.size(); ++i) CHECK(by_voltage[i] > by_voltage[i - 1]);
  CHECK(by_voltage.back() > 0.999);

  // A decade longer pulse forms like 0.15 V more: 3.0 V at 10 us ~ 3.15 V at 1 us.
  const double short_pulse = forming_yield(3.0, 100);
  const double long_pulse = forming_yield(3.0, 10000);
  CHECK(short_pulse == Approx(phi(-1.0)).margin(0.04));
  CHECK(long_pulse == Approx(phi(1.0)).margin(0.04));
  CHECK(short_pulse < by_voltage[2]);
  CHECK(long_pulse > by_voltage[2]);

  // With a per-pulse spread, the cell's own forming voltage is its per-pulse median: a pulse
  // right at it forms about half of the cells, and one at +3 sigma forms every cell.
  auto c = ideal_calibration();
  c.forming.pulse_sigma_v = 0.05;
  Chip chip(devices::DeviceModel(c), 16);
  int formed_at_own = 0;
  for (int i = 0; i < kCells; ++i) {
    chip.form(i, chip.cell(i).traits.forming_voltage_v, 1.0, 1000);
    formed_at_own += chip.cell(i).state != CellState::pristine;
  }
  CHECK(static_cast<double>(formed_at_own) / kCells == Approx(0.5).margin(0.04));
  for (int i = 0; i < kCells; ++i) {
    chip.form(i, chip.cell(i).traits.forming_voltage_v + 0.15, 1.0, 1000);
    CHECK(chip.cell(i).state != CellState::pristine);
  }
}

TEST_CASE("read disturb grows steeply with read voltage and is nil at 0.2 V", "[physics]") {
  constexpr int kReads = 200;
  const double at_default = read_drift(0.2, kReads);
  const double at_035 = read_drift(0.35, kReads);
  const double at_045 = read_drift(0.45, kReads);
  // Bound at the default read: below 1e-9 relative after 200 reads (the model gives exactly 0).
  CHECK(std::abs(at_default) < 1e-9);
  // Per read: 1e-6 (exp((V - 0.3) / 0.05) - 1): 1.72e-6 at 0.35 V, 1.91e-5 at 0.45 V.
  CHECK(at_035 == Approx(std::pow(1.0 + 1e-6 * std::expm1(1.0), kReads) - 1.0).epsilon(1e-6));
  CHECK(at_045 == Approx(std::pow(1.0 + 1e-6 * std::expm1(3.0), kReads) - 1.0).epsilon(1e-6));
  CHECK(at_045 > 5.0 * at_035);
  CHECK(at_035 > 0.0);
}

TEST_CASE("through the firmware, the configured pulse and read conditions reach the physics",
          "[physics]") {
  auto board = make_board(17);
  TestHost host(board);
  const auto block = p::Selection::block(0, 0, 16, 128);  // 2048 cells
  auto config = host.ok<p::Configuration>(p::GetConfigurationRequest{});
  config.set_bit_line_mv = 750;  // the middle of the SET transition
  host.ok<p::EmptyBody>(p::ConfigureRequest{config});
  p::SetRequest set;
  set.batch = {host.next_batch(), 0, static_cast<std::uint32_t>(block.size())};
  set.selection = block;
  set.level = 4;
  REQUIRE(host.ok<p::PulseResponse>(set).cells_done == block.size());
  int switched = 0;
  for (int i = 0; i < static_cast<int>(block.size()); ++i)
    switched += board.chip().cell(i).state == CellState::hcs;
  CHECK(static_cast<double>(switched) / block.size() == Approx(0.5).margin(0.04));

  // Reads at 0.45 V raise a formed cell's conductance; at 0.2 V they leave it alone.
  const int cell = 5;
  const double before = board.chip().true_conductance_us(cell);
  for (int k = 0; k < 20; ++k) host.read_all(p::Selection::list({cell}));
  CHECK(board.chip().true_conductance_us(cell) == before);
  config.read_voltage_mv = 450;
  host.ok<p::EmptyBody>(p::ConfigureRequest{config});
  for (int k = 0; k < 20; ++k) host.read_all(p::Selection::list({cell}));
  CHECK(board.chip().true_conductance_us(cell) > before * (1.0 + 1e-4));
}

TEST_CASE("at the reference pulses the new parameters change nothing, not even the stream",
          "[physics]") {
  // The same operations on a chip with every dependence switched off (the threshold model)
  // and on the default chip: identical conductances and random state.
  auto threshold = devices::Calibration::defaults();
  threshold.switching.width_v_per_decade = 0.0;
  threshold.switching.set_transition_v = 0.0;
  threshold.switching.set_overdrive_rel_per_v = 0.0;
  threshold.switching.reset_depth_ln_per_v = 0.0;
  threshold.forming.width_v_per_decade = 0.0;
  threshold.read_disturb.rel_per_read = 0.0;
  const auto run = [](const devices::Calibration& c) {
    Chip chip(devices::DeviceModel(c), 18);
    for (int i = 0; i < 500; ++i) chip.form(i, 3.6, 0.85, 1000);
    std::vector<double> out;
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 500; ++i) {
        chip.reset(i, 1.5, 100);
        out.push_back(chip.read(i, 0.2));
        chip.set(i, 1.2, c.hcs_levels[static_cast<std::size_t>(i % 8)].gate_voltage_v, 100);
        out.push_back(chip.read(i, 0.2));
      }
    }
    return std::make_pair(out, chip.rng().state());
  };
  const auto with_threshold = run(threshold);
  const auto with_defaults = run(devices::Calibration::defaults());
  CHECK(with_threshold.first == with_defaults.first);
  CHECK(with_threshold.second == with_defaults.second);
}

TEST_CASE("pulse-condition parameters round-trip through calibration.json; errors name the path",
          "[physics][calibration]") {
  auto c = devices::Calibration::defaults();
  c.switching.reference_width_ns = 50;
  c.switching.width_v_per_decade = 0.12;
  c.switching.set_transition_v = 0.25;
  c.switching.set_reference_bl_v = 1.3;
  c.switching.set_overdrive_rel_per_v = 0.07;
  c.switching.reset_reference_sl_v = 1.6;
  c.switching.reset_depth_ln_per_v = 2.5;
  c.forming.reference_width_ns = 2000;
  c.forming.width_v_per_decade = 0.2;
  c.forming.pulse_sigma_v = 0.03;
  c.read_disturb.onset_voltage_v = 0.25;
  c.read_disturb.slope_v = 0.04;
  c.read_disturb.rel_per_read = 2e-6;
  const std::string text = devices::calibration_to_json(c);
  const auto back = devices::calibration_from_json(text, "cal.json");
  CHECK(devices::calibration_to_json(back) == text);
  CHECK(back.switching.set_transition_v == 0.25);
  CHECK(back.forming.pulse_sigma_v == 0.03);
  CHECK(back.read_disturb.rel_per_read == 2e-6);

  const auto error_of = [](const nlohmann::json& j) -> std::string {
    try {
      devices::calibration_from_json(j.dump(), "cal.json");
    } catch (const devices::CalibrationError& e) {
      return e.what();
    }
    return "";
  };
  const auto j = nlohmann::json::parse(text);
  auto wrong_type = j;
  wrong_type["switching"]["set_transition_v"] = "wide";
  CHECK_THAT(error_of(wrong_type), Catch::Contains("cal.json") &&
                                       Catch::Contains("/switching/set_transition_v") &&
                                       Catch::Contains("a number"));
  auto out_of_range = j;
  out_of_range["read_disturb"]["slope_v"] = -0.1;
  CHECK_THAT(error_of(out_of_range), Catch::Contains("/read_disturb/slope_v"));
  auto weak_reference = j;
  weak_reference["switching"]["reset_reference_sl_v"] = 0.5;  // below the RESET threshold
  CHECK_THAT(error_of(weak_reference), Catch::Contains("/switching/reset_reference_sl_v"));
  auto typo = j;
  typo["forming"]["pulse_sigma"] = 0.1;
  CHECK_THAT(error_of(typo), Catch::Contains("/forming/pulse_sigma"));

  // A version-1 file has none of these: they take their defaults; given anyway, they are
  // unknown keys of that version.
  auto v1 = j;
  v1["schema_version"] = 1;
  v1.erase("read_disturb");
  for (const char* key : {"reference_width_ns", "width_v_per_decade", "pulse_sigma_v"})
    v1["forming"].erase(key);
  for (const char* key :
       {"reference_width_ns", "width_v_per_decade", "set_transition_v", "set_reference_bl_v",
        "set_overdrive_rel_per_v", "reset_reference_sl_v", "reset_depth_ln_per_v"})
    v1["switching"].erase(key);
  const auto old = devices::calibration_from_json(v1.dump(), "v1.json");
  CHECK(old.switching.set_transition_v == devices::SwitchingModel{}.set_transition_v);
  CHECK(old.read_disturb.rel_per_read == devices::ReadDisturbModel{}.rel_per_read);
  auto v1_with_new = v1;
  v1_with_new["read_disturb"] = j["read_disturb"];
  CHECK_THAT(error_of(v1_with_new), Catch::Contains("/read_disturb"));
}
