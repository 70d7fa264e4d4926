// SHA-256 against the FIPS 180-4 example vectors and against sha256sum's values for the dataset
// files (scripts/data.sha256).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "app/learning/dataset.hpp"
#include "app/util/sha256.hpp"

using metaplast::util::Sha256;
using metaplast::util::sha256_file_hex;
using metaplast::util::sha256_hex;
using metaplast::util::to_hex;

TEST_CASE("sha256 of the standard test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(
      sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                 "klmnopqrlmnopqrsmnopqrstnopqrstu") ==
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 fed in pieces equals the one-shot hash, at every padding boundary") {
  std::string text;
  for (int i = 0; i < 300; ++i) text.push_back(static_cast<char>('a' + (i * 7) % 26));
  for (std::size_t length : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 300u}) {
    const std::string_view message(text.data(), length);
    for (std::size_t piece : {1u, 3u, 64u, 100u}) {
      Sha256 hash;
      for (std::size_t pos = 0; pos < length; pos += piece) {
        hash.update(message.substr(pos, piece));
      }
      INFO("length " << length << ", pieces of " << piece);
      CHECK(to_hex(hash.digest()) == sha256_hex(message));
    }
  }
}

TEST_CASE("sha256 of the dataset and web files equals the recorded sha256sum values") {
  std::ifstream sums(std::string(METAPLAST_SOURCE_DIR) + "/scripts/data.sha256");
  REQUIRE(sums);
  const auto data_dir = metaplast::learning::default_data_dir();
  std::string line;
  int checked = 0;
  while (std::getline(sums, line)) {
    std::istringstream fields(line);
    std::string expected, name;
    fields >> expected >> name;
    INFO(name << " (run scripts/fetch_data.sh if it is missing)");
    CHECK(sha256_file_hex(data_dir / name) == expected);
    ++checked;
  }
  CHECK(checked == 10);  // 8 dataset files, and uPlot's script and style sheet (docs/live.md)
}

TEST_CASE("sha256_file_hex of a missing or unreadable file throws, naming it") {
  const auto missing = std::filesystem::temp_directory_path() /
                       ("metaplast_sha_missing_" + std::to_string(getpid()));
  REQUIRE_THROWS_WITH(sha256_file_hex(missing), Catch::Contains(missing.string()));
  REQUIRE_THROWS_WITH(sha256_file_hex(std::filesystem::temp_directory_path()),
                      Catch::Contains("cannot open"));
}
