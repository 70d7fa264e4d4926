// The one HDF5 writer (app/util/h5_file.hpp): datasets with units, dimension scales attached to
// axes, attributes on the root and on datasets, read back with the HDF5 C API; nothing on disk
// before commit(); errors name the file.
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "app/util/h5_file.hpp"
#include "tests/app/support/h5_read.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using test::number_attribute;
using test::string_attribute;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("metaplast-h5file-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  return dir;
}

}  // namespace

TEST_CASE("an HDF5 file reads back with units, scales and attributes", "[h5]") {
  const fs::path dir = fresh_dir("roundtrip");
  const fs::path file = dir / "sub" / "m.h5";
  {
    util::H5File h5(file);
    const std::vector<double> time_s{1, 10, 100};
    const std::vector<std::uint16_t> cell{0, 1};
    const std::vector<float> g{1, 2, 3, 4, 5, 6};  // [cell][time]
    h5.write_vector("time_s", time_s, "s since programming");
    h5.write_vector("cell", cell, "cell index");
    h5.write_dataset("data/conductance_us", {2, 3}, g, "uS");
    h5.set_scale("time_s", "time");
    h5.set_scale("cell", "cell");
    h5.attach_scale("data/conductance_us", "cell", 0);
    h5.attach_scale("data/conductance_us", "time_s", 1);
    // A scale of the wrong length is refused, naming the file.
    CHECK_THROWS_WITH(h5.attach_scale("data/conductance_us", "time_s", 0),
                      Catch::Contains(file.string()) && Catch::Contains("length 2"));
    h5.string_attribute("/", "kind", "retention");
    h5.number_attribute("/", "board_setting_read_voltage_v", 0.25);
    h5.number_attribute("data/conductance_us", "fill", 0.5);
    h5.string_attribute("", "kind", "retention, replaced");
    // Nothing on disk yet.
    CHECK_FALSE(fs::exists(file));
    h5.commit();
    CHECK_THROWS_AS(h5.write_vector("late", time_s, "s"), std::logic_error);
  }
  REQUIRE(fs::exists(file));
  const hid_t h5 = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(h5 >= 0);
  CHECK(string_attribute(h5, "kind") == "retention, replaced");
  CHECK(number_attribute(h5, "board_setting_read_voltage_v") == 0.25);
  const hid_t set = H5Dopen2(h5, "data/conductance_us", H5P_DEFAULT);
  REQUIRE(set >= 0);
  CHECK(string_attribute(set, "units") == "uS");
  CHECK(number_attribute(set, "fill") == 0.5);
  std::vector<float> g(6);
  REQUIRE(H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, g.data()) >= 0);
  CHECK(g[4] == 5.0f);
  const hid_t time = H5Dopen2(h5, "time_s", H5P_DEFAULT);
  const hid_t cell = H5Dopen2(h5, "cell", H5P_DEFAULT);
  CHECK(string_attribute(time, "units") == "s since programming");
  CHECK(H5DSis_scale(time) > 0);
  CHECK(H5DSis_attached(set, time, 1) > 0);
  CHECK(H5DSis_attached(set, cell, 0) > 0);
  CHECK(H5DSis_attached(set, time, 0) == 0);
  char label[16] = {};
  CHECK(H5DSget_scale_name(time, label, sizeof label) > 0);
  CHECK(std::string(label) == "time");
  H5Dclose(cell);
  H5Dclose(time);
  H5Dclose(set);
  H5Fclose(h5);
  fs::remove_all(dir);
}

TEST_CASE("an HDF5 file refuses a shape that does not match its values", "[h5]") {
  const fs::path dir = fresh_dir("shape");
  util::H5File h5(dir / "x.h5");
  const std::vector<double> v{1, 2, 3};
  CHECK_THROWS_WITH(h5.write_dataset("v", {2, 2}, v, "V"),
                    Catch::Contains("x.h5") && Catch::Contains("3 values"));
  CHECK_THROWS_WITH(h5.attach_scale("missing", "v", 0), Catch::Contains("open dataset missing"));
}
