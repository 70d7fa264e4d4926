// Fuzz target of the simulated chip's state file (sim::Chip::parse, docs/testing.md). The first
// input byte chooses how the rest is used:
//   even: the rest is a whole state file, as read from disk;
//   odd:  the rest is a state file's header (through rows and columns) and some cell records;
//         the records are repeated up to the 128 x 128 cells (a partial record left over stays at
//         the end) and the CRC-32 appended, so the fuzzer reaches the parser behind the checksum
//         with small inputs.
// The parser must return a chip or throw sim::StateFileError; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "protocols/frame.hpp"
#include "sim/chip.hpp"

namespace {

constexpr std::size_t kCalibrationLengthAt = 8 + 4 + 8 + 8 + 8 + 32;  // magic ... random state
constexpr std::size_t kCellBytes = 4 + 12 * 8;

std::string with_all_cells_and_checksum(std::string_view input) {
  std::string bytes(input);
  if (bytes.size() >= kCalibrationLengthAt + 4) {
    std::uint32_t calibration_bytes = 0;
    std::memcpy(&calibration_bytes, bytes.data() + kCalibrationLengthAt, 4);
    const std::size_t header = kCalibrationLengthAt + 4 + std::size_t{calibration_bytes} + 8;
    if (bytes.size() >= header + kCellBytes) {
      const std::string given = bytes.substr(header);
      const std::size_t records = given.size() / kCellBytes;
      bytes.resize(header);
      for (int c = 0; c < metaplast::sim::Chip::kCells; ++c) {
        bytes.append(given, (static_cast<std::size_t>(c) % records) * kCellBytes, kCellBytes);
      }
      bytes.append(given, records * kCellBytes);
    }
  }
  const std::uint32_t crc = metaplast::protocols::crc32(
      {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
  bytes.append(reinterpret_cast<const char*>(&crc), sizeof crc);
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string bytes =
      (data[0] & 1) != 0 ? with_all_cells_and_checksum(rest) : std::string(rest);
  try {
    const metaplast::sim::Chip chip = metaplast::sim::Chip::parse(bytes, "state");
    (void)chip.true_conductance_us(0);
  } catch (const metaplast::sim::StateFileError&) {
  }
  return 0;
}
