// SHA-256 (FIPS 180-4), self-contained: used to record which dataset files a run used.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace metaplast::util {

// Incremental SHA-256: update() any number of times, then digest() once.
class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::uint8_t> bytes);
  void update(std::string_view text);
  // Finishes the hash; the object must not be updated afterwards.
  std::array<std::uint8_t, 32> digest();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

// Lower-case hex of a digest.
std::string to_hex(std::span<const std::uint8_t> digest);
// SHA-256 of a string, lower-case hex.
std::string sha256_hex(std::string_view text);
// SHA-256 of a file's contents, lower-case hex. Throws std::runtime_error naming the file if it
// cannot be opened or read.
std::string sha256_file_hex(const std::filesystem::path& file);

}  // namespace metaplast::util
