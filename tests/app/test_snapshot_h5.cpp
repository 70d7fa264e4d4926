// Per-epoch HDF5 array snapshots: what is written reads back (HDF5's own reader, and h5dump when
// the Debian hdf5-tools are installed), a stale temporary file from a crash is replaced, and the
// final file appears only complete.
#include <hdf5.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "app/hil/snapshot_h5.hpp"
#include "tests/app/support/full_disk.hpp"
#include "tests/app/support/h5_read.hpp"
#include "tests/app/support/process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using test::dataset;
using test::number_attribute;
using test::scalar_attribute;
using test::string_attribute;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("metaplast-h5-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  return dir;
}

hil::ArraySnapshot example() {
  hil::ArraySnapshot s;
  s.rows = 128;
  s.cols = 128;
  const std::size_t n = 128 * 128;
  s.conductance_us.assign(n, std::nanf(""));
  s.target_conductance_us.assign(n, std::nanf(""));
  s.target_level.assign(n, -1);
  s.layer.assign(n, -1);
  s.programming_count.assign(n, 0);
  for (std::uint32_t k = 0; k < 40; ++k) {
    const std::uint32_t index = 128 * 3 + k;  // row 3, columns 0..39
    s.conductance_us[index] = 10.0f + static_cast<float>(k);
    s.target_conductance_us[index] = 10.0f + static_cast<float>(k);
    s.target_level[index] = static_cast<std::int16_t>(k % 9);
    s.layer[index] = 1;
    s.programming_count[index] = k + 1;
    s.verify.push_back({index, static_cast<std::uint8_t>(k % 9), k % 4,
                        10.5f + static_cast<float>(k), k != 7, 1 + k / 10});
  }
  s.run_id = "run-7";
  s.chip_id = "chip-a";
  s.board_serial = "SIM-1";
  s.board_boot_id = 0xABCD;
  s.task = "fashion";
  s.epoch = 2;
  s.epoch_index = 5;
  s.band_us = 5.0;
  s.board_settings.read_voltage_v = 0.15;
  s.board_settings.set_pulse_width_ns = 120;
  return s;
}

}  // namespace

TEST_CASE("an array snapshot reads back with its layout, attributes and units", "[snapshot]") {
  const fs::path dir = fresh_dir("roundtrip");
  const fs::path file = hil::snapshot_path(dir, 5);
  CHECK(file == dir / "snapshots" / "epoch_0005.h5");
  // A crash while writing left half a temporary file: it is simply replaced.
  fs::create_directories(file.parent_path());
  std::ofstream(fs::path(file.string() + ".tmp4242")) << "half a file";
  const hil::ArraySnapshot s = example();
  hil::write_snapshot_h5(file, s);
  REQUIRE(fs::exists(file));
  CHECK(test::temporaries(dir).empty());

  const hid_t h5 = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(h5 >= 0);
  // Geometry: a 2-D 128 x 128 dataset.
  {
    const hid_t set = H5Dopen2(h5, "conductance_us", H5P_DEFAULT);
    const hid_t space = H5Dget_space(set);
    std::array<hsize_t, 2> dims{};
    REQUIRE(H5Sget_simple_extent_ndims(space) == 2);
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    CHECK(dims[0] == 128);
    CHECK(dims[1] == 128);
    H5Sclose(space);
    H5Dclose(set);
  }
  const auto g = dataset<float>(h5, "conductance_us", H5T_NATIVE_FLOAT, 128 * 128);
  CHECK(std::isnan(g[0]));
  CHECK(g[128 * 3 + 4] == 14.0f);
  std::size_t placed = 0;
  for (float v : g) placed += !std::isnan(v);
  CHECK(placed == 40);
  const auto level = dataset<std::int16_t>(h5, "target_level", H5T_NATIVE_INT16, 128 * 128);
  CHECK(level[128 * 3 + 10] == 1);
  CHECK(level[0] == -1);
  const auto count = dataset<std::uint32_t>(h5, "programming_count", H5T_NATIVE_UINT32, 128 * 128);
  CHECK(count[128 * 3 + 39] == 40);
  const auto passed = dataset<std::uint8_t>(h5, "verify/passed", H5T_NATIVE_UINT8, 40);
  CHECK(passed[7] == 0);
  CHECK(passed[8] == 1);
  const auto col = dataset<std::uint16_t>(h5, "verify/col", H5T_NATIVE_UINT16, 40);
  const auto row = dataset<std::uint16_t>(h5, "verify/row", H5T_NATIVE_UINT16, 40);
  CHECK(col[12] == 12);
  CHECK(row[12] == 3);

  CHECK(string_attribute(h5, "run_id") == "run-7");
  CHECK(string_attribute(h5, "chip_id") == "chip-a");
  CHECK(string_attribute(h5, "task") == "fashion");
  CHECK_THAT(string_attribute(h5, "units"), Catch::Contains("uS"));
  CHECK(scalar_attribute<std::uint32_t>(h5, "board_boot_id", H5T_NATIVE_UINT32) == 0xABCD);
  CHECK(scalar_attribute<int>(h5, "epoch", H5T_NATIVE_INT) == 2);
  // Every board setting in force, one attribute each.
  test::check_settings_attributes(h5, s.board_settings);
  H5Fclose(h5);

  // The standard tool reads it too (Debian hdf5-tools; h5py and MATLAB use the same library).
  if (fs::exists("/usr/bin/h5dump")) {
    const fs::path out = dir / "dump.txt";
    REQUIRE(metaplast::test::run({"/usr/bin/h5dump", "-H", file.string()}, out) == 0);
    std::ifstream in(out);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK_THAT(text, Catch::Contains("DATASET \"conductance_us\""));
    CHECK_THAT(text, Catch::Contains("( 128, 128 )"));
    CHECK_THAT(text, Catch::Contains("GROUP \"verify\""));
    CHECK_THAT(text, Catch::Contains("ATTRIBUTE \"board_boot_id\""));
  } else {
    WARN("h5dump not installed (Debian hdf5-tools): checked with the HDF5 library only");
  }
  fs::remove_all(dir);
}

TEST_CASE("a snapshot that cannot be written is an error naming the file", "[snapshot]") {
  const fs::path dir = fresh_dir("unwritable");
  fs::create_directories(dir / "snapshots");
  // A directory where the file should go.
  const fs::path file = hil::snapshot_path(dir, 1);
  fs::create_directories(file / "in-the-way");
  CHECK_THROWS_WITH(hil::write_snapshot_h5(file, example()), Catch::Contains("epoch_0001.h5"));
  CHECK_FALSE(fs::is_regular_file(file));
  CHECK(test::temporaries(dir).empty());
  fs::remove_all(dir);
}

TEST_CASE("a snapshot on a full disk: an error naming the file, no half file left", "[snapshot]") {
  const fs::path dir = fresh_dir("full");
  const fs::path file = hil::snapshot_path(dir, 1);
  fs::create_directories(file.parent_path());
  // Room for the HDF5 header, not for the 128 x 128 datasets.
  const std::string error =
      test::with_file_size_limit(4096, [&] { hil::write_snapshot_h5(file, example()); });
  CHECK_THAT(error, Catch::Contains(file.string()));
  CHECK_FALSE(fs::exists(file));
  CHECK(test::temporaries(dir).empty());
  fs::remove_all(dir);
}
