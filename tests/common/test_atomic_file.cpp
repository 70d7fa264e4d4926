// write_file_atomically, the one way product code replaces a whole file: content replaced whole,
// and on a full disk (a small tmpfs; root only) one error naming the target, the old content kept
// and no temporary file left.
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/atomic_file.hpp"

namespace fs = std::filesystem;
using metaplast::common::Durability;
using metaplast::common::write_file_atomically;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("metaplast_atomic_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a file is written, then replaced whole, with no temporary file left", "[atomic]") {
  const fs::path dir = scratch("plain");
  for (Durability durability : {Durability::process_kill, Durability::power_loss}) {
    write_file_atomically(dir / "f.json", "first", durability);
    CHECK(read(dir / "f.json") == "first");
    write_file_atomically(dir / "f.json", "second", durability);
    CHECK(read(dir / "f.json") == "second");
    CHECK(entries(dir) == 1);
  }
  CHECK_THROWS_WITH(write_file_atomically(dir / "missing" / "f.json", "x"),
                    Catch::Contains((dir / "missing" / "f.json").string()) &&
                        Catch::Contains("check that the directory exists and is writable"));
  fs::remove_all(dir);
}

TEST_CASE("a full disk: one error naming the file, old content kept, no temporary file",
          "[atomic][full-disk]") {
  const fs::path dir = scratch("full");
  if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("cannot mount a tmpfs (" << std::strerror(errno) << "): full disk not checked");
    fs::remove_all(dir);
    return;
  }
  const fs::path file = dir / "checkpoint.bin";
  write_file_atomically(file, "old content", Durability::power_loss);
  const std::string too_big(200 * 1024, 'x');
  for (Durability durability : {Durability::process_kill, Durability::power_loss}) {
    CHECK_THROWS_WITH(write_file_atomically(file, too_big, durability),
                      Catch::Contains("cannot write " + file.string() + ": write failed") &&
                          Catch::Contains("No space left on device") &&
                          Catch::Contains("free some space"));
    CHECK(read(file) == "old content");
    CHECK(entries(dir) == 1);
  }
  ::umount(dir.c_str());
  fs::remove_all(dir);
}
