// Fuzz target of the training checkpoint (learning::parse_checkpoint and check_checkpoint_fits,
// docs/testing.md). The first input byte chooses how the rest is used:
//   even: the rest is a whole checkpoint file, as read from disk;
//   odd:  the rest is a checkpoint's payload, framed here with a valid header and checksum (format
//         version 1 + (byte / 2) % 3), so the fuzzer reaches the payload parser behind the
//         checksum.
// A parsed state is then checked against a small network (4 inputs, 3 hidden, 10 outputs) of a
// run of 2 tasks x 3 epochs. Both must succeed or throw std::runtime_error; anything else is a
// finding.
#include "app/learning/checkpoint.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "app/learning/network.hpp"
#include "app/learning/quantizer.hpp"

namespace {

namespace learning = metaplast::learning;
constexpr std::uint64_t kConfigHash = 7;

template <typename T>
void append(std::string& bytes, const T& value) {
  bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// The layout of checkpoint.hpp, with the checksum the given version expects.
std::string framed(std::string_view payload, std::uint32_t version) {
  std::string bytes("MPLCKPT", 8);
  append(bytes, version);
  append(bytes, kConfigHash);
  append(bytes, static_cast<std::uint64_t>(payload.size()));
  const std::uint64_t header_hash = learning::fnv1a64(bytes);
  append(bytes,
         version >= 3 ? learning::fnv1a64(payload, header_hash) : learning::fnv1a64(payload));
  bytes.append(payload);
  return bytes;
}

const learning::Network& small_network() {
  static const learning::Network network = [] {
    learning::NetworkConfig config;
    config.inputs = 4;
    config.hidden = {3};
    return learning::Network(config, learning::Quantizer::uniform(), 1);
  }();
  return network;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string bytes =
      (data[0] & 1) != 0 ? framed(rest, 1 + (data[0] / 2) % 3) : std::string(rest);
  try {
    const learning::TrainingState state = learning::parse_checkpoint(bytes, "fuzz", kConfigHash);
    learning::check_checkpoint_fits(state, "fuzz", small_network(), 2, 3);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
