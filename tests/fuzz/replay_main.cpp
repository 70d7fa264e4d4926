// Replays every file of the corpus folders given on the command line through the fuzz target's
// own LLVMFuzzerTestOneInput, so what a libFuzzer run once found stays fixed in every ordinary
// build (docs/testing.md). A broken invariant aborts; an empty or missing corpus fails.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path dir = argv[i];
    if (!fs::is_directory(dir)) {
      std::fprintf(stderr, "fuzz replay: corpus folder %s does not exist\n", dir.c_str());
      return 1;
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                            std::istreambuf_iterator<char>());
      std::fprintf(stderr, "%s\n", entry.path().c_str());  // names the input if it crashes
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++files;
    }
  }
  if (files == 0) {
    std::fprintf(stderr, "fuzz replay: no corpus file found\n");
    return 1;
  }
  std::printf("fuzz replay: %zu files replayed\n", files);
  return 0;
}
