#include "app/hil/characterization_steps.hpp"

#include "app/hil/chip_registry.hpp"
#include "app/util/csv.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::hil {

namespace in = metaplast::instruments;

namespace {

void write_cells_csv(const std::filesystem::path& path, const std::vector<in::Cell>& cells) {
  util::CsvWriter csv({"row", "col"});
  for (const auto& c : cells) csv.integer(c.row).integer(c.col).end_row();
  common::write_file_atomically(path, csv.str());
}

void write_bad_cells_csv(const std::filesystem::path& path, const Characterization& data,
                         const CharacterizationResult& result) {
  util::CsvWriter csv({"row", "col", "reason", "detail"});
  for (const auto& b : result.bad_cells) {
    const auto& c = data.cells[b.cell];
    csv.integer(c.row).integer(c.col).text(b.reason).text(b.detail).end_row();
  }
  common::write_file_atomically(path, csv.str());
}

}  // namespace

Characterization measure_characterization(in::ArrayBoard& board, const in::BoardSettings& settings,
                                          const CharacterizeOptions& options) {
  board.configure(settings);
  board.activate();
  Characterization data = run_characterization(board, options);
  board.close();
  return data;
}

CharacterizationResult fit_chip_characterization(const Characterization& data,
                                                 const in::BoardInfo& info,
                                                 const std::string& chip_id,
                                                 const devices::Calibration& base,
                                                 double outlier_z) {
  devices::CalibrationIdentity identity;
  identity.board_model = info.model;
  identity.board_serial = info.serial;
  identity.chip_id = chip_id;
  identity.date = data.finished;
  identity.source = "characterization";
  return fit_characterization(data, base, identity, outlier_z);
}

std::string write_characterization_files(const Characterization& data,
                                         const CharacterizationResult& result,
                                         const std::filesystem::path& dir) {
  write_samples_csv(data, dir / "samples.csv");
  write_cdf_csv(data, dir / "cdf.csv");
  write_calibration(data, result, dir / "calibration.json");
  write_cells_csv(dir / "unformed.csv", data.scan.unformed);
  write_bad_cells_csv(dir / "bad_cells.csv", data, result);
  return plot_cdf(data, dir / "cdf.png");
}

}  // namespace metaplast::hil
