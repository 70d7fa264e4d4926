#include "app/hil/characterization_record.hpp"

namespace metaplast::hil {

std::filesystem::path record_characterization(ChipRegistry& registry, const std::string& chip_id,
                                              const instruments::BoardInfo& info,
                                              const Characterization& data,
                                              const CharacterizationResult& result,
                                              const std::filesystem::path& calibration_file) {
  registry.update(chip_id, info.rows, info.cols, [&](ChipRecord& r) {
    for (const auto* list : {&data.scan.formed, &data.scan.excluded}) {
      for (const auto& c : *list) r.formed_cells.insert(r.index(c.row, c.col));
    }
    std::uint64_t writes = 0;
    for (std::size_t i = 0; i < data.cells.size(); ++i) {
      r.add_writes(r.index(data.cells[i].row, data.cells[i].col), data.pulses_per_cell[i]);
      writes += data.pulses_per_cell[i];
    }
    for (const auto& b : result.bad_cells) {
      const auto& c = data.cells[b.cell];
      r.mark_bad(r.index(c.row, c.col), b.reason, b.detail, data.finished);
    }
    r.sessions.push_back({data.finished, "characterize", info.model, info.serial, data.cells.size(),
                          writes, "calibration " + calibration_file.string()});
  });
  return registry.file_for(chip_id);
}

void exclude_known_bad_cells(const ChipRegistry& registry, const std::string& chip_id,
                             CharacterizeOptions& options) {
  if (const auto record = registry.load(chip_id)) {
    for (const auto& [cell, bad] : record->bad_cells) options.excluded_cells.insert(cell);
  }
}

}  // namespace metaplast::hil
