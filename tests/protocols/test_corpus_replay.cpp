// Replays every file of tests/protocols/corpus (minimised by the libFuzzer run) through the
// fuzzer's entry function, so what the fuzzer once found stays fixed in every ordinary build.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "tests/protocols/fuzz_entry.hpp"

TEST_CASE("every fuzz corpus file passes the decoder invariants") {
  namespace fs = std::filesystem;
  const fs::path dir = METAPLAST_PROTOCOL_CORPUS_DIR;
  REQUIRE(fs::is_directory(dir));
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                          std::istreambuf_iterator<char>());
    INFO(entry.path().string());
    // Aborts (test crash) on a broken invariant; returns 0 otherwise.
    CHECK(metaplast::protocols::fuzz::run_one_input(bytes.data(), bytes.size()) == 0);
    ++files;
  }
  CHECK(files >= 10);
}
