// Fuzz target of the IDX dataset loader (docs/testing.md): the input is a 2-byte little-endian
// length n, then n bytes of image file, then the rest as label file. The loader must accept the
// pair or throw its documented std::runtime_error; anything else (a crash, a sanitizer report,
// another exception type, a dataset breaking its invariants) is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "app/learning/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t image_bytes = std::min<std::size_t>(data[0] | (data[1] << 8), size - 2);
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  try {
    const metaplast::learning::Dataset dataset = metaplast::learning::parse_idx(
        bytes.substr(0, image_bytes), "images", bytes.substr(image_bytes), "labels");
    const bool consistent =
        dataset.size() > 0 && dataset.pixels.size() == dataset.size() * dataset.pixels_per_image();
    if (!consistent) std::abort();
    for (std::uint8_t label : dataset.labels) {
      if (label > 9) std::abort();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
