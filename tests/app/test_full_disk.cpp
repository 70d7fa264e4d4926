// A full disk under a run's --out directory (issue 19): the run stops with one clear error naming
// the file it could not write and the system's reason, leaves no temporary file behind and no
// empty or cut file that looks finished (summary.json marks a finished run). The disk is a small
// tmpfs mounted for the test (root only: the test says so and passes without checking otherwise).
#include <sys/mount.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using metaplast::test::read_file;

namespace {

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";

// A tmpfs of `size` (mount's syntax: "64k") at a scratch path, unmounted at the end.
struct SmallDisk {
  fs::path dir;
  bool mounted = false;
  std::string why_not;
  explicit SmallDisk(const std::string& size)
      : dir(metaplast::test::scratch_path("metaplast-test", "disk-" + size)) {
    fs::create_directories(dir);
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    if (!mounted) why_not = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted) ::umount(dir.c_str());
    fs::remove_all(dir);
  }
};

}  // namespace

TEST_CASE("a run on a full disk stops with one error naming the file, no .tmp left behind",
          "[full-disk]") {
  REQUIRE(fs::exists(kBinary));
  // 4k: config.json or metrics.csv; 64k and 1m: the 1.3 MB checkpoint of the first epoch.
  for (const std::string size : {"4k", "64k", "1m"}) {
    SmallDisk disk(size);
    if (!disk.mounted) {
      WARN("cannot mount a tmpfs (" << disk.why_not << "): full-disk behaviour not checked");
      return;
    }
    const fs::path out = disk.dir / "run";
    const fs::path log = metaplast::test::scratch_path("metaplast-test", "disk-" + size + ".log");
    const int code = metaplast::test::wait_exit(metaplast::test::spawn(
        kBinary,
        {kBinary, "train", "--tasks", "mnist", "--epochs", "1", "--hidden", "128", "64",
         "--train-limit", "1000", "--threads", "2", "--out", out.string()},
        log));
    const std::string output = read_file(log);
    fs::remove(log);
    INFO("disk of " << size << ": " << output);
    CHECK(code == 1);
    CHECK_THAT(output, Catch::Contains("cannot write " + out.string() + "/") &&
                           Catch::Contains("No space left on device"));
    CHECK_FALSE(fs::exists(out / "summary.json"));
    for (const auto& entry : fs::recursive_directory_iterator(out)) {
      CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
      if (entry.path().filename() == "config.json") {
        CHECK_NOTHROW(nlohmann::json::parse(read_file(entry.path())));
      }
    }
  }
}
