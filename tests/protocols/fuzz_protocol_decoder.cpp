// libFuzzer target: build with -DMETAPLAST_FUZZ=ON and CXX=clang++.
#include <cstddef>
#include <cstdint>

#include "tests/protocols/fuzz_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return metaplast::protocols::fuzz::run_one_input(data, size);
}
