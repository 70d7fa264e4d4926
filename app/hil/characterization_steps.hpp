// The steps of a characterisation from the open board to the files on disk, one definition for
// `metaplast characterize` and a campaign's characterize step. Each caller keeps its own board
// address, chip registry policy, progress, printing and logging; the chip record is
// characterization_record.hpp's.
#pragma once

#include <filesystem>
#include <string>

#include "app/hil/characterize.hpp"
#include "devices/calibration.hpp"
#include "instruments/array_board.hpp"

namespace metaplast::hil {

// On an open board: configures it with `settings` (board::session_settings), activates it, runs
// the campaign (run_characterization) and closes it. Throws as run_characterization and the board
// does; the driver leaves the board in its safe state on every exit path.
Characterization measure_characterization(instruments::ArrayBoard& board,
                                          const instruments::BoardSettings& settings,
                                          const CharacterizeOptions& options);

// fit_characterization of `data` into a calibration identified as measured on `info`'s board
// (model, serial) and chip `chip_id`, dated at the end of the campaign, source
// "characterization"; the fields not measured come from `base`.
CharacterizationResult fit_chip_characterization(const Characterization& data,
                                                 const instruments::BoardInfo& info,
                                                 const std::string& chip_id,
                                                 const devices::Calibration& base,
                                                 double outlier_z);

// Writes every output file of a characterisation into the folder `dir` (docs/calibration.md):
// samples.csv, cdf.csv, calibration.json, unformed.csv (row,col of the cells read as unformed),
// bad_cells.csv (row,col,reason,detail of the cells excluded from the fit), then cdf.png with
// cdf_plot.dat and cdf.gp. Each file is written whole; throws std::runtime_error naming a file
// that cannot be written. Returns "" when the plot was drawn, else why not (plot_cdf): a missing
// plot is for the caller to report, the data files are there.
std::string write_characterization_files(const Characterization& data,
                                         const CharacterizationResult& result,
                                         const std::filesystem::path& dir);

}  // namespace metaplast::hil
