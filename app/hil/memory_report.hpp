// The memory report (the paper's 15x claim, docs/method.md section 1): hidden-weight memory of
// this network against the BNN baseline 784-4096-4096-10, both with 32-bit hidden weights, and
// the rest of the per-weight host state counted honestly.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace metaplast::hil {

// Weights of a fully connected network without biases (sizes: inputs, hidden..., outputs).
std::size_t dense_weights(const std::vector<std::size_t>& sizes);

// {"network": {"layers", "weights", "hidden_weight_bytes"}, "bnn_baseline": {...},
//  "hidden_weight_ratio", "host_bytes_per_weight": {...}, "host_state_ratio",
//  "analog_devices", "notes"}. Pure function of its arguments. consolidation_bytes: the host bytes
// per weight of a selective rule's consolidation state (docs/method.md 6), 0 for the others; it
// adds "hidden_and_consolidation_ratio" (the 15x with that state counted) and the ratio an 8-bit
// state would give.
nlohmann::json memory_report(const std::vector<std::size_t>& sizes, std::size_t analog_devices,
                             std::size_t consolidation_bytes = 0);

// Writes dir/memory.json atomically (throws std::runtime_error naming it when the write fails)
// and returns the report.
nlohmann::json write_memory_report(const std::filesystem::path& dir,
                                   const std::vector<std::size_t>& sizes,
                                   std::size_t analog_devices, std::size_t consolidation_bytes = 0);
// One line for a terminal.
std::string memory_report_line(const nlohmann::json& report);

}  // namespace metaplast::hil
