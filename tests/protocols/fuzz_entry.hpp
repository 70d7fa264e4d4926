// The one entry point shared by the libFuzzer target (fuzz_protocol_decoder) and the corpus
// replay test: feeds arbitrary bytes through the stream decoder and every message decoder, and
// checks that whatever decodes re-encodes to the same bytes. Aborts on any violation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace metaplast::protocols::fuzz {

// Returns 0 (libFuzzer convention). Calls std::abort() if an invariant is broken.
int run_one_input(const std::uint8_t* data, std::size_t size);

}  // namespace metaplast::protocols::fuzz
