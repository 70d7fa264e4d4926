// The chip record (chip_registry.hpp) after a characterisation, one function for the
// `characterize` command and a campaign's characterize step.
#pragma once

#include <filesystem>
#include <string>

#include "app/hil/characterize.hpp"
#include "app/hil/chip_registry.hpp"

namespace metaplast::hil {

// Adds to chip `chip_id`'s record: the formed cells found, the pulses applied per cell, the cells
// found bad, and a "characterize" session naming `calibration_file`. Returns the record file.
// Throws as ChipRegistry::update.
std::filesystem::path record_characterization(ChipRegistry& registry, const std::string& chip_id,
                                              const instruments::BoardInfo& info,
                                              const Characterization& data,
                                              const CharacterizationResult& result,
                                              const std::filesystem::path& calibration_file);

// Known bad cells of the chip (never picked again), from its record if it has one.
void exclude_known_bad_cells(const ChipRegistry& registry, const std::string& chip_id,
                             CharacterizeOptions& options);

}  // namespace metaplast::hil
