#include "app/hil/memory_report.hpp"

#include <cstdio>
#include <stdexcept>

#include "common/atomic_file.hpp"

namespace metaplast::hil {

namespace {

const std::vector<std::size_t> kBnnBaseline{784, 4096, 4096, 10};

// Host bytes per weight of this implementation while training.
constexpr std::size_t kHiddenBytes = 4;      // W_H, float32
constexpr std::size_t kAdamBytes = 8;        // first and second moments, float32 each
constexpr std::size_t kQuantizedBytes = 4;   // W_Q / effective weight fed to the forward pass
constexpr std::size_t kGradientBytes = 4;    // dLoss/dW_Q of the last batch
constexpr std::size_t kNewLevelBytes = 4;    // the optimizer's fresh W_Q (diffed by the store)
constexpr std::size_t kLevelIndexBytes = 2;  // programmed level, for change detection

}  // namespace

std::size_t dense_weights(const std::vector<std::size_t>& sizes) {
  std::size_t n = 0;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) n += sizes[l] * sizes[l + 1];
  return n;
}

nlohmann::json memory_report(const std::vector<std::size_t>& sizes, std::size_t analog_devices,
                             std::size_t consolidation_bytes) {
  const std::size_t ours = dense_weights(sizes), bnn = dense_weights(kBnnBaseline);
  const std::size_t ours_state = kHiddenBytes + kAdamBytes + kQuantizedBytes + kGradientBytes +
                                 kNewLevelBytes + kLevelIndexBytes + consolidation_bytes;
  const std::size_t bnn_state = kHiddenBytes + kAdamBytes + kQuantizedBytes + kGradientBytes;
  nlohmann::json j;
  j["network"] = {{"layers", sizes},
                  {"weights", ours},
                  {"hidden_weight_bits", 32},
                  {"hidden_weight_bytes", ours * kHiddenBytes}};
  j["bnn_baseline"] = {{"layers", kBnnBaseline},
                       {"weights", bnn},
                       {"hidden_weight_bits", 32},
                       {"hidden_weight_bytes", bnn * kHiddenBytes}};
  j["hidden_weight_ratio"] = static_cast<double>(bnn) / static_cast<double>(ours);
  if (consolidation_bytes > 0) {
    // The selective rules keep one more number per weight: counted with the hidden weights.
    const auto with_state = [&](std::size_t bytes) {
      return static_cast<double>(bnn * kHiddenBytes) /
             static_cast<double>(ours * (kHiddenBytes + bytes));
    };
    j["consolidation_bits"] = consolidation_bytes * 8;
    j["hidden_and_consolidation_ratio"] = with_state(consolidation_bytes);
    j["hidden_and_8bit_consolidation_ratio"] = with_state(1);
  }
  j["host_bytes_per_weight"] = {{"hidden_weight", kHiddenBytes},
                                {"adam_moments", kAdamBytes},
                                {"quantized_or_effective_weight", kQuantizedBytes},
                                {"gradient", kGradientBytes},
                                {"optimizer_output_wq", kNewLevelBytes},
                                {"level_index", kLevelIndexBytes},
                                {"consolidation_state", consolidation_bytes},
                                {"total", ours_state}};
  j["host_state_bytes"] = ours * ours_state;
  j["bnn_host_state_bytes"] = bnn * bnn_state;
  j["host_state_ratio"] =
      static_cast<double>(bnn * bnn_state) / static_cast<double>(ours * ours_state);
  j["analog_devices"] = analog_devices;
  j["notes"] =
      "hidden_weight_ratio is the paper's comparison (32-bit hidden weights, same bits per "
      "weight): it is the ratio of weight counts. Adam keeps two more 32-bit moments per weight "
      "in both networks, so the optimizer state keeps the same ratio. host_state counts every "
      "per-weight array this implementation holds while training (the BNN with the same code "
      "would not need the level bookkeeping); virtual devices add their simulation state on top "
      "(not counted: it stands in for hardware). BatchNorm parameters are per neuron, not "
      "counted.";
  return j;
}

nlohmann::json write_memory_report(const std::filesystem::path& dir,
                                   const std::vector<std::size_t>& sizes,
                                   std::size_t analog_devices, std::size_t consolidation_bytes) {
  const nlohmann::json j = memory_report(sizes, analog_devices, consolidation_bytes);
  common::write_file_atomically(dir / "memory.json", j.dump(2) + "\n");
  return j;
}

std::string memory_report_line(const nlohmann::json& j) {
  char line[512];
  std::snprintf(
      line, sizeof line,
      "memory: hidden weights %zu x 32 bit = %.2f MB (BNN 784-4096-4096-10: %.2f MB): %.1fx "
      "less; with Adam moments and all per-weight host state %.1fx; analog devices %zu",
      j["network"]["weights"].get<std::size_t>(),
      j["network"]["hidden_weight_bytes"].get<double>() / 1e6,
      j["bnn_baseline"]["hidden_weight_bytes"].get<double>() / 1e6,
      j["hidden_weight_ratio"].get<double>(), j["host_state_ratio"].get<double>(),
      j["analog_devices"].get<std::size_t>());
  std::string text = line;
  if (j.contains("hidden_and_consolidation_ratio")) {
    std::snprintf(line, sizeof line,
                  "; hidden weights with the rule's %zu-bit consolidation state %.1fx (8-bit: "
                  "%.1fx)",
                  j["consolidation_bits"].get<std::size_t>(),
                  j["hidden_and_consolidation_ratio"].get<double>(),
                  j["hidden_and_8bit_consolidation_ratio"].get<double>());
    text += line;
  }
  return text;
}

}  // namespace metaplast::hil
