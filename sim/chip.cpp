#include "sim/chip.hpp"

#include <bit>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "common/atomic_file.hpp"
#include "common/byte_io.hpp"
#include "protocols/frame.hpp"

namespace metaplast::sim {

namespace {
// Pulse kinds of Chip::pulse_uniform (part of the hash key).
constexpr std::uint64_t kSetKind = 1;
constexpr std::uint64_t kFormKind = 2;
}  // namespace

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

double Chip::pulse_uniform(int cell, std::uint64_t kind, std::uint64_t count) const {
  using devices::RandomStream;
  std::uint64_t key = RandomStream::mix64(seed_ ^ 0x70756c7365726e64ULL);  // "pulsernd"
  key = RandomStream::mix64(key + static_cast<std::uint64_t>(cell) * RandomStream::kGolden);
  key = RandomStream::mix64(key + kind * 0xbf58476d1ce4e5b9ULL + count);
  return static_cast<double>(key >> 11) * 0x1.0p-53;
}

void Chip::form_all_at_factory() {
  const auto& cal = model_.calibration();
  // Well above every cell's forming voltage; the factory's RESET is the reference RESET pulse
  // (the one the LCS median describes).
  const double form_v =
      cal.forming.median_voltage_v + 6.0 * cal.forming.sigma_v + 3.0 * cal.forming.pulse_sigma_v;
  const double form_width_ns =
      std::max(cal.switching.min_pulse_width_ns, cal.forming.reference_width_ns);
  for (int i = 0; i < kCells; ++i) {
    if (cells_[static_cast<std::size_t>(i)].state != CellState::pristine) continue;
    form(i, form_v, cal.hcs_levels.front().gate_voltage_v, form_width_ns);
    if (cells_[static_cast<std::size_t>(i)].state == CellState::pristine) continue;
    reset(i, cal.switching.reset_reference_sl_v, cal.switching.reference_width_ns);
  }
}

void Chip::form(int index, double bl_v, double gate_v, double width_ns) {
  Cell& c = at(index);
  if (c.state != CellState::pristine) {
    set(index, bl_v, gate_v, width_ns);
    return;
  }
  ++c.form_pulses;
  if (c.stuck || c.traits.defect == devices::CellDefect::unformable) return;
  const double p = model_.forming_probability(bl_v, width_ns, c.traits.forming_voltage_v);
  if (p <= 0.0 || (p < 1.0 && pulse_uniform(index, kFormKind, c.form_pulses) >= p)) return;
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
  const double p = model_.set_probability(bl_v, width_ns);
  const bool switches = p >= 1.0 || (p > 0.0 && pulse_uniform(index, kSetKind, c.set_pulses) < p);
  if (!c.stuck && switches) {
    const double g = model_.draw_hcs_us(model_.compliance_current_ua(gate_v), c.traits, rng_,
                                        model_.set_overdrive_factor(bl_v, width_ns));
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
  if (!c.stuck && model_.reset_switches(sl_v, width_ns)) {
    program(c, CellState::lcs,
            model_.draw_lcs_us(c.traits, rng_, model_.reset_depth_factor(sl_v, width_ns)));
  }
  count_pulse(c);
}

double Chip::true_conductance_us(int index) const {
  const Cell& c = cells_.at(static_cast<std::size_t>(index));
  if (c.state == CellState::pristine) return c.programmed_us;
  const double elapsed_s = static_cast<double>(time_ns_ - c.programmed_at_ns) * 1e-9;
  return model_.relaxed_us(c.programmed_us, c.relaxation_step_us, elapsed_s);
}

double Chip::read(int index, double read_v) {
  Cell& c = at(index);
  ++c.reads;
  const double g = model_.draw_read_us(true_conductance_us(index), rng_);
  // Read disturb: a weak SET in the read's polarity, scaling the whole relaxing conductance. No
  // change at all at or below the onset (the default 0.2 V read).
  const double disturb = model_.read_disturb_rel(read_v);
  if (disturb > 0.0 && c.state != CellState::pristine && !c.stuck) {
    c.programmed_us *= 1.0 + disturb;
    c.relaxation_step_us *= 1.0 + disturb;
  }
  return g;
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

[[noreturn]] void refuse(const std::string& name, const std::string& what) {
  throw StateFileError(name + ": " + what +
                       " (not a metaplast simulated-chip state file, or damaged; delete it to "
                       "start a fresh chip)");
}

// A reader of the state file `name` (for messages): a short read is "truncated at byte N".
common::ByteReader state_reader(std::string_view bytes, const std::string& name) {
  return common::ByteReader(bytes, [name](const common::ByteReadError& e) {
    refuse(name, "truncated at byte " + std::to_string(e.offset));
  });
}

}  // namespace

void Chip::save(const std::filesystem::path& path) const {
  common::ByteWriter w;
  w.reserve(4096 + cells_.size() * 100);
  w.raw(kMagic, sizeof(kMagic));
  w.pod(kStateVersion);
  w.pod(seed_);
  w.pod(time_ns_);
  w.pod(boot_count_);
  for (auto word : rng_.state()) w.pod(word);
  const std::string calibration_json = devices::calibration_to_json(model_.calibration());
  w.pod(static_cast<std::uint32_t>(calibration_json.size()));
  w.raw(calibration_json);
  w.pod(static_cast<std::uint32_t>(kRows));
  w.pod(static_cast<std::uint32_t>(kColumns));
  for (const auto& c : cells_) {
    w.pod(static_cast<std::uint8_t>(c.state));
    w.pod(static_cast<std::uint8_t>(c.stuck));
    w.pod(static_cast<std::uint8_t>(c.traits.defect));
    w.pod(static_cast<std::uint8_t>(c.traits.wears_out_stuck_hcs));
    w.pod(c.programmed_us);
    w.pod(c.relaxation_step_us);
    w.pod(c.programmed_at_ns);
    w.pod(c.set_pulses);
    w.pod(c.reset_pulses);
    w.pod(c.form_pulses);
    w.pod(c.reads);
    w.pod(c.traits.hcs_d2d_z);
    w.pod(c.traits.lcs_d2d_z);
    w.pod(c.traits.forming_voltage_v);
    w.pod(c.traits.endurance_cycles);
    w.pod(c.traits.pristine_conductance_us);
  }
  w.pod(checksum_of(w.bytes()));
  try {
    common::write_file_atomically(path, w.bytes());
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
  common::ByteReader r = state_reader(bytes, name);
  char magic[8];
  for (auto& ch : magic) ch = r.pod<char>();
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) refuse(name, "wrong magic number");
  const auto version = r.pod<std::uint32_t>();
  if (version < 1 || version > kStateVersion) {
    refuse(name, "state format version " + std::to_string(version) + ", this build reads 1 to " +
                     std::to_string(kStateVersion));
  }
  if (version >= 2) {
    // Checked before anything else is read, so a damaged file says so rather than what broke.
    if (bytes.size() < 12 + kChecksumBytes) refuse(name, "truncated at byte " + std::to_string(12));
    const std::string_view body = bytes.substr(0, bytes.size() - kChecksumBytes);
    const auto stored = state_reader(bytes.substr(body.size()), name).pod<std::uint32_t>();
    if (checksum_of(body) != stored)
      refuse(name, "checksum mismatch: the file is truncated or altered");
    r = state_reader(body, name);
    r.raw(12);  // the magic number and the version, read above
  }
  const auto seed = r.pod<std::uint64_t>();
  const auto time_ns = r.pod<std::int64_t>();
  const auto boot_count = r.pod<std::uint64_t>();
  devices::RandomStream::State state;
  for (auto& word : state) word = r.pod<std::uint64_t>();
  const std::string calibration_json(r.raw(r.pod<std::uint32_t>()));
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
  const auto rows = r.pod<std::uint32_t>();
  const auto columns = r.pod<std::uint32_t>();
  if (rows != kRows || columns != kColumns) refuse(name, "array is not 128 x 128");

  // Construct without drawing: manufacture traits come from the file.
  Chip chip(devices::DeviceModel(std::move(calibration)), seed, Undrawn{});
  chip.time_ns_ = time_ns;
  chip.boot_count_ = boot_count;
  chip.rng_.set_state(state);
  for (auto& c : chip.cells_) {
    const auto cell_state = r.pod<std::uint8_t>();
    if (cell_state > 2) refuse(name, "bad cell state");
    c.state = static_cast<CellState>(cell_state);
    c.stuck = r.pod<std::uint8_t>() != 0;
    const auto defect = r.pod<std::uint8_t>();
    if (defect > 3) refuse(name, "bad cell defect code");
    c.traits.defect = static_cast<devices::CellDefect>(defect);
    c.traits.wears_out_stuck_hcs = r.pod<std::uint8_t>() != 0;
    c.programmed_us = r.pod<double>();
    c.relaxation_step_us = r.pod<double>();
    c.programmed_at_ns = r.pod<std::int64_t>();
    c.set_pulses = r.pod<std::uint64_t>();
    c.reset_pulses = r.pod<std::uint64_t>();
    c.form_pulses = r.pod<std::uint64_t>();
    c.reads = r.pod<std::uint64_t>();
    c.traits.hcs_d2d_z = r.pod<double>();
    c.traits.lcs_d2d_z = r.pod<double>();
    c.traits.forming_voltage_v = r.pod<double>();
    c.traits.endurance_cycles = r.pod<double>();
    c.traits.pristine_conductance_us = r.pod<double>();
  }
  if (!r.at_end()) refuse(name, "trailing bytes");
  return chip;
}

}  // namespace metaplast::sim
