#include "app/hil/snapshot_h5.hpp"

#include <cstdio>
#include <vector>

#include "app/util/h5_file.hpp"
#include "common/clock.hpp"

namespace metaplast::hil {

namespace fs = std::filesystem;

fs::path snapshot_path(const fs::path& run_dir, int epoch_index) {
  char name[32];
  std::snprintf(name, sizeof name, "epoch_%04d.h5", epoch_index);
  return run_dir / "snapshots" / name;
}

namespace {

// The datasets and attributes of `s` into `h5`.
void write_contents(util::H5File& h5, const ArraySnapshot& s) {
  const std::vector<std::size_t> grid{s.rows, s.cols};
  h5.write_dataset("conductance_us", grid, s.conductance_us,
                   "uS (microsiemens), read at the end of the epoch; NaN: no weight on the cell");
  h5.write_dataset("target_conductance_us", grid, s.target_conductance_us,
                   "uS, program-and-verify target of the cell's level; NaN: no weight");
  h5.write_dataset("target_level", grid, s.target_level,
                   "level index: 0 = LCS (RESET), 1..N = HCS by compliance current; -1: no weight");
  h5.write_dataset("layer", grid, s.layer,
                   "network layer of the cell's weight (input layer 0); -1: no weight");
  h5.write_dataset("programming_count", grid, s.programming_count,
                   "programming operations (SET or RESET pulses, verify retries included) since "
                   "the run started, every cell");

  h5.create_group("verify");
  const std::vector<std::size_t> n{s.verify.size()};
  std::vector<std::uint16_t> row, col;
  std::vector<std::uint8_t> level, passed;
  std::vector<std::uint32_t> pulses;
  std::vector<float> final_us;
  std::vector<std::uint64_t> batch;
  for (const VerifyRow& v : s.verify) {
    row.push_back(static_cast<std::uint16_t>(v.cell / s.cols));
    col.push_back(static_cast<std::uint16_t>(v.cell % s.cols));
    level.push_back(v.level);
    pulses.push_back(v.pulses);
    final_us.push_back(v.final_conductance_us);
    passed.push_back(v.passed ? 1 : 0);
    batch.push_back(v.batch);
  }
  h5.write_dataset("verify/row", n, row, "array row");
  h5.write_dataset("verify/col", n, col, "array column");
  h5.write_dataset("verify/target_level", n, level, "level index");
  h5.write_dataset("verify/pulses", n, pulses, "programming pulses of this program-and-verify");
  h5.write_dataset("verify/final_conductance_us", n, final_us, "uS, last verify read");
  h5.write_dataset("verify/passed", n, passed, "1: ended in band");
  h5.write_dataset("verify/batch", n, batch, "seq of the batch record in journal.jsonl");

  h5.string_attribute("/", "run_id", s.run_id);
  h5.string_attribute("/", "chip_id", s.chip_id);
  h5.string_attribute("/", "board_serial", s.board_serial);
  h5.uint32_attribute("/", "board_boot_id", s.board_boot_id);
  h5.string_attribute("/", "task", s.task);
  h5.int_attribute("/", "epoch", s.epoch);
  h5.int_attribute("/", "epoch_index", s.epoch_index);
  h5.number_attribute("/", "band_us", s.band_us);
  write_settings_attributes(h5, s.board_settings);
  h5.string_attribute("/", "units",
                      "conductances in uS (microsiemens); counts in programming operations (SET "
                      "or RESET pulses); arrays row-major [row][col]");
  h5.string_attribute("/", "created", common::utc_now_iso8601());
  h5.string_attribute("/", "format", "metaplast array snapshot 1 (docs/run-records.md)");
}

}  // namespace

void write_settings_attributes(util::H5File& h5, const instruments::BoardSettings& settings) {
  for (const auto& f : instruments::setting_fields()) {
    const std::string name = std::string("board_setting_") + f.key;
    const auto value = f.get(settings);
    if (f.list) {
      h5.numbers_attribute("/", name, value);
    } else {
      h5.number_attribute("/", name, value.at(0));
    }
  }
}

void write_snapshot_h5(const fs::path& file, const ArraySnapshot& s) {
  util::H5File h5(file);
  write_contents(h5, s);
  h5.commit();
}

}  // namespace metaplast::hil
