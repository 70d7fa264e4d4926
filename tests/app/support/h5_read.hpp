// Reading an HDF5 file back with the HDF5 C API, for the app tests that check what was written
// (util::H5File, array snapshots, measurements): attributes and whole datasets, each failing the
// test when the object is missing or unreadable.
// Header-only: tests/CMakeLists.txt makes every test_*.cpp an executable.
#pragma once

#include <hdf5.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "instruments/board_settings.hpp"

namespace metaplast::test {

// A string attribute of a file, group or dataset, without its padding.
inline std::string string_attribute(hid_t object, const char* name) {
  const hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
  REQUIRE(attr >= 0);
  const hid_t type = H5Aget_type(attr);
  std::string value(H5Tget_size(type), '\0');
  REQUIRE(H5Aread(attr, type, value.data()) >= 0);
  H5Tclose(type);
  H5Aclose(attr);
  return value.c_str();
}

// A scalar attribute read as the native type `type` (H5T_NATIVE_UINT32 for T = std::uint32_t).
template <class T>
T scalar_attribute(hid_t object, const char* name, hid_t type) {
  const hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
  REQUIRE(attr >= 0);
  T value{};
  REQUIRE(H5Aread(attr, type, &value) >= 0);
  H5Aclose(attr);
  return value;
}

inline double number_attribute(hid_t object, const char* name) {
  return scalar_attribute<double>(object, name, H5T_NATIVE_DOUBLE);
}

// A scalar or 1-D number attribute, as a list of doubles.
inline std::vector<double> numbers_attribute(hid_t object, const char* name) {
  const hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
  REQUIRE(attr >= 0);
  const hid_t space = H5Aget_space(attr);
  std::vector<double> values(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
  if (!values.empty()) REQUIRE(H5Aread(attr, H5T_NATIVE_DOUBLE, values.data()) >= 0);
  H5Sclose(space);
  H5Aclose(attr);
  return values;
}

// Every board setting as the record's root attribute "board_setting_<key>" equals `settings`.
inline void check_settings_attributes(hid_t file, const instruments::BoardSettings& settings) {
  for (const auto& f : instruments::setting_fields()) {
    const std::string name = std::string("board_setting_") + f.key;
    INFO(name);
    CHECK(numbers_attribute(file, name.c_str()) == f.get(settings));
  }
}

// A whole dataset read as the native type `type`; it must hold `expected` values.
template <class T>
std::vector<T> dataset(hid_t file, const char* name, hid_t type, std::size_t expected) {
  const hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
  REQUIRE(set >= 0);
  const hid_t space = H5Dget_space(set);
  REQUIRE(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)) == expected);
  std::vector<T> values(expected);
  REQUIRE(H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
  H5Sclose(space);
  H5Dclose(set);
  return values;
}

}  // namespace metaplast::test
