#include "sim/chip.hpp"

#include <bit>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "protocols/frame.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::sim {

static_assert(std::endian::native == std::endian::little,
              "the state file format is little-endian; add byte swapping for this host");

Chip::Chip(devices::DeviceModel model, std::uint64_t seed)
    : model_(std::move(model)), seed_(seed), rng_(seed), cells_(kCells) {
  const auto& calibration = model_.calibration();
  for (auto& c : cells_) {
    c.traits = model_.draw_traits(rng_);
    c.programmed_us = c.traits.pristine_conductance_us;
    switch (c.traits.defect) {
      case devices::CellDefect::stuck_hcs:
        c.state = CellState::hcs;
        c.stuck = true;
        c.programmed_us = model_.hcs_median_us(calibration.hcs_levels.back().icc_ua, c.traits);
        break;
      case devices::CellDefect::stuck_lcs:
        c.state = CellState::lcs;
        c.stuck = true;
        c.programmed_us = calibration.lcs.median_conductance_us;
        break;
      default:
        break;
    }
  }
}

Chip::Chip(devices::DeviceModel model, std::uint64_t seed, Undrawn)
    : model_(std::move(model)), seed_(seed), rng_(seed), cells_(kCells) {}

Cell& Chip::at(int index) {
  if (index < 0 || index >= kCells) {
    throw std::out_of_range("cell index " + std::to_string(index) + " outside 0.." +
                            std::to_string(kCells - 1));
  }
  return cells_[static_cast<std::size_t>(index)];
}

void Chip::program(Cell& c, CellState state, double g_us) {
  c.state = state;
  c.programmed_us = g_us;
  c.relaxation_step_us = model_.draw_relaxation_step_us(g_us, rng_);
  c.programmed_at_ns = time_ns_;
}

void Chip::count_pulse(Cell& c) {
  if (c.stuck) return;
  const auto pulses = c.set_pulses + c.reset_pulses;
  if (static_cast<double>(pulses) < c.traits.endurance_cycles) return;
  // Worn out: the filament no longer ruptures (stuck HCS) or no longer reforms (stuck LCS).
  c.stuck = true;
  const CellState mode = c.traits.wears_out_stuck_hcs ? CellState::hcs : CellState::lcs;
  if (c.state != mode) {
    const double g =
        mode == CellState::hcs
            ? model_.draw_hcs_us(model_.calibration().hcs_levels.back().icc_ua, c.traits, rng_)
            : model_.draw_lcs_us(c.traits, rng_);
    program(c, mode, g);
  }
}

void Chip::form_all_at_factory() {
  const auto& cal = model_.calibration();
  const double form_v = cal.forming.median_voltage_v + 6.0 * cal.forming.sigma_v;
  const double width_ns = std::max(cal.switching.min_pulse_width_ns, 1000.0);
  for (int i = 0; i < kCells; ++i) {
    if (cells_[static_cast<std::size_t>(i)].state != CellState::pristine) continue;
    form(i, form_v, cal.hcs_levels.front().gate_voltage_v, width_ns);
    if (cells_[static_cast<std::size_t>(i)].state == CellState::pristine) continue;
    reset(i, cal.switching.reset_threshold_sl_v + 0.5, width_ns);
  }
}

void Chip::form(int index, double bl_v, double gate_v, double width_ns) {
  Cell& c = at(index);
  if (c.state != CellState::pristine) {
    set(index, bl_v, gate_v, width_ns);
    return;
  }
  ++c.form_pulses;
  const auto& sw = model_.calibration().switching;
  if (c.stuck || c.traits.defect == devices::CellDefect::unformable) return;
  if (bl_v < c.traits.forming_voltage_v || width_ns < sw.min_pulse_width_ns) return;
  program(c, CellState::hcs,
          model_.draw_hcs_us(model_.compliance_current_ua(gate_v), c.traits, rng_));
}

void Chip::set(int index, double bl_v, double gate_v, double width_ns) {
  Cell& c = at(index);
  if (c.state == CellState::pristine) {
    // A SET pulse cannot form a cell (its voltage is far below forming), and is not an endurance
    // cycle of a device that does not exist yet.
    return;
  }
  ++c.set_pulses;
  const auto& sw = model_.calibration().switching;
  if (!c.stuck && bl_v >= sw.set_threshold_bl_v && width_ns >= sw.min_pulse_width_ns) {
    const double g = model_.draw_hcs_us(model_.compliance_current_ua(gate_v), c.traits, rng_);
    // A SET on a cell already in HCS does not weaken the filament.
    program(c, CellState::hcs,
            c.state == CellState::hcs ? std::max(g, true_conductance_us(index)) : g);
  }
  count_pulse(c);
}

void Chip::reset(int index, double sl_v, double width_ns) {
  Cell& c = at(index);
  if (c.state == CellState::pristine) return;
  ++c.reset_pulses;
  const auto& sw = model_.calibration().switching;
  if (!c.stuck && sl_v >= sw.reset_threshold_sl_v && width_ns >= sw.min_pulse_width_ns) {
    program(c, CellState::lcs, model_.draw_lcs_us(c.traits, rng_));
  }
  count_pulse(c);
}

double Chip::true_conductance_us(int index) const {
  const Cell& c = cells_.at(static_cast<std::size_t>(index));
  if (c.state == CellState::pristine) return c.programmed_us;
  const double elapsed_s = static_cast<double>(time_ns_ - c.programmed_at_ns) * 1e-9;
  return model_.relaxed_us(c.programmed_us, c.relaxation_step_us, elapsed_s);
}

double Chip::read(int index) {
  Cell& c = at(index);
  ++c.reads;
  return model_.draw_read_us(true_conductance_us(index), rng_);
}

void Chip::make_stuck(int index) { at(index).stuck = true; }

// --- state file -------------------------------------------------------------------------------
namespace {

constexpr char kMagic[8] = {'M', 'P', 'S', 'I', 'M', 'C', 'H', 'P'};
// Version 2 appends a CRC-32 of every byte before it; version 1 files (no checksum) are still read.
constexpr std::uint32_t kStateVersion = 2;
constexpr std::size_t kChecksumBytes = 4;

std::uint32_t checksum_of(std::string_view bytes) {
  return protocols::crc32({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
}

class Writer {
 public:
  template <typename T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void bytes(const std::string& s) {
    put(static_cast<std::uint32_t>(s.size()));
    out_ += s;
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view data, std::string name) : data_(data), name_(std::move(name)) {}
  template <typename T>
  T get() {
    T value;
    need(sizeof(T));
    std::memcpy(&value, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string bytes() {
    const auto n = get<std::uint32_t>();
    need(n);
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool at_end() const { return pos_ == data_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw StateFileError(name_ + ": " + what +
                         " (not a metaplast simulated-chip state file, or damaged; delete it to "
                         "start a fresh chip)");
  }

 private:
  void need(std::size_t n) const {
    if (data_.size() - pos_ < n) fail("truncated at byte " + std::to_string(pos_));
  }
  std::string_view data_;
  std::string name_;
  std::size_t pos_ = 0;
};

}  // namespace

void Chip::save(const std::filesystem::path& path) const {
  Writer w;
  w.str().reserve(4096 + cells_.size() * 100);
  w.str().append(kMagic, sizeof(kMagic));
  w.put(kStateVersion);
  w.put(seed_);
  w.put(time_ns_);
  w.put(boot_count_);
  for (auto word : rng_.state()) w.put(word);
  w.bytes(devices::calibration_to_json(model_.calibration()));
  w.put(static_cast<std::uint32_t>(kRows));
  w.put(static_cast<std::uint32_t>(kColumns));
  for (const auto& c : cells_) {
    w.put(static_cast<std::uint8_t>(c.state));
    w.put(static_cast<std::uint8_t>(c.stuck));
    w.put(static_cast<std::uint8_t>(c.traits.defect));
    w.put(static_cast<std::uint8_t>(c.traits.wears_out_stuck_hcs));
    w.put(c.programmed_us);
    w.put(c.relaxation_step_us);
    w.put(c.programmed_at_ns);
    w.put(c.set_pulses);
    w.put(c.reset_pulses);
    w.put(c.form_pulses);
    w.put(c.reads);
    w.put(c.traits.hcs_d2d_z);
    w.put(c.traits.lcs_d2d_z);
    w.put(c.traits.forming_voltage_v);
    w.put(c.traits.endurance_cycles);
    w.put(c.traits.pristine_conductance_us);
  }
  w.put(checksum_of(w.str()));
  try {
    common::write_file_atomically(path, w.str());
  } catch (const std::exception& e) {
    throw StateFileError(e.what());
  }
}

Chip Chip::load(const std::filesystem::path& path, const devices::Calibration* model_override) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw StateFileError(path.string() + ": cannot open the simulated-chip state file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw StateFileError(path.string() + ": read error; check the disk");
  return parse(buffer.str(), path.string(), model_override);
}

Chip Chip::parse(std::string_view bytes, const std::string& name,
                 const devices::Calibration* model_override) {
  Reader r(bytes, name);
  char magic[8];
  for (auto& ch : magic) ch = r.get<char>();
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) r.fail("wrong magic number");
  const auto version = r.get<std::uint32_t>();
  if (version < 1 || version > kStateVersion) {
    r.fail("state format version " + std::to_string(version) + ", this build reads 1 to " +
           std::to_string(kStateVersion));
  }
  if (version >= 2) {
    // Checked before anything else is read, so a damaged file says so rather than what broke.
    if (bytes.size() < 12 + kChecksumBytes) r.fail("truncated at byte " + std::to_string(12));
    const std::string_view body = bytes.substr(0, bytes.size() - kChecksumBytes);
    std::uint32_t stored = 0;
    std::memcpy(&stored, bytes.data() + body.size(), kChecksumBytes);
    if (checksum_of(body) != stored) r.fail("checksum mismatch: the file is truncated or altered");
    r = Reader(body, name);
    for (std::size_t i = 0; i < 12; ++i) r.get<char>();
  }
  const auto seed = r.get<std::uint64_t>();
  const auto time_ns = r.get<std::int64_t>();
  const auto boot_count = r.get<std::uint64_t>();
  devices::RandomStream::State state;
  for (auto& word : state) word = r.get<std::uint64_t>();
  const std::string calibration_json = r.bytes();
  devices::Calibration calibration;
  if (model_override != nullptr) {
    calibration = *model_override;
  } else {
    try {
      calibration = devices::calibration_from_json(calibration_json, name + " (stored model)");
    } catch (const devices::CalibrationError& e) {
      throw StateFileError(e.what());
    }
  }
  const auto rows = r.get<std::uint32_t>();
  const auto columns = r.get<std::uint32_t>();
  if (rows != kRows || columns != kColumns) r.fail("array is not 128 x 128");

  // Construct without drawing: manufacture traits come from the file.
  Chip chip(devices::DeviceModel(std::move(calibration)), seed, Undrawn{});
  chip.time_ns_ = time_ns;
  chip.boot_count_ = boot_count;
  chip.rng_.set_state(state);
  for (auto& c : chip.cells_) {
    const auto cell_state = r.get<std::uint8_t>();
    if (cell_state > 2) r.fail("bad cell state");
    c.state = static_cast<CellState>(cell_state);
    c.stuck = r.get<std::uint8_t>() != 0;
    const auto defect = r.get<std::uint8_t>();
    if (defect > 3) r.fail("bad cell defect code");
    c.traits.defect = static_cast<devices::CellDefect>(defect);
    c.traits.wears_out_stuck_hcs = r.get<std::uint8_t>() != 0;
    c.programmed_us = r.get<double>();
    c.relaxation_step_us = r.get<double>();
    c.programmed_at_ns = r.get<std::int64_t>();
    c.set_pulses = r.get<std::uint64_t>();
    c.reset_pulses = r.get<std::uint64_t>();
    c.form_pulses = r.get<std::uint64_t>();
    c.reads = r.get<std::uint64_t>();
    c.traits.hcs_d2d_z = r.get<double>();
    c.traits.lcs_d2d_z = r.get<double>();
    c.traits.forming_voltage_v = r.get<double>();
    c.traits.endurance_cycles = r.get<double>();
    c.traits.pristine_conductance_us = r.get<double>();
  }
  if (!r.at_end()) r.fail("trailing bytes");
  return chip;
}

}  // namespace metaplast::sim
