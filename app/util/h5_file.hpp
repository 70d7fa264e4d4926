// The one way the product writes HDF5 files (array snapshots, measurements): a self-describing
// file built in memory and written whole through a temporary name and a rename, so a crash or a
// full disk leaves the previous file (or none) and never a broken one. Readable with h5py,
// MATLAB's h5read, h5dump.
//
// What a file holds (docs/run-records.md, docs/bench.md "Measurements"):
//   - datasets (any path, groups made as needed) of numbers, each with a "units" string
//     attribute saying what the numbers are;
//   - dimension scales: a 1-D dataset made a scale (HDF5 Dimension Scales, H5DS) and attached to
//     an axis of another dataset, so a reader sees e.g. which time each column was read at;
//   - string and number attributes on the root ("/") or on a dataset.
//
// Errors: every failure throws std::runtime_error "HDF5 file <file>: cannot <what>" (the HDF5
// library's own error stack is silenced). Nothing is written to disk before commit().
// Not thread safe: one H5File per thread (the HDF5 library is built without thread safety).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace metaplast::util {

class H5File {
 public:
  // An empty file, in memory, to be written to `file` by commit(). Throws as above.
  explicit H5File(std::filesystem::path file);
  ~H5File();
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  // A dataset at `path` ("name" or "group/name"; parent groups are created) of shape `dims`
  // (row-major; the product of dims equals values.size()) and, when `units` is not empty, its
  // "units" attribute. Element types: float, double, int8..int64, uint8..uint64.
  template <class T>
  void write_dataset(std::string_view path, const std::vector<std::size_t>& dims,
                     std::span<const T> values, std::string_view units);
  template <class T>
  void write_dataset(std::string_view path, const std::vector<std::size_t>& dims,
                     const std::vector<T>& values, std::string_view units) {
    write_dataset<T>(path, dims, std::span<const T>(values), units);
  }
  // A 1-D dataset (dims = {values.size()}).
  template <class T>
  void write_vector(std::string_view path, const std::vector<T>& values, std::string_view units) {
    write_dataset<T>(path, {values.size()}, std::span<const T>(values), units);
  }

  // An empty group (datasets make their groups themselves).
  void create_group(std::string_view path);

  // Makes the 1-D dataset `scale` a dimension scale named `label` (H5DSset_scale).
  void set_scale(std::string_view scale, std::string_view label);
  // Attaches the scale `scale` (made by set_scale, its length that of the axis) to axis `axis`
  // (0-based) of `dataset` (H5DSattach_scale). Throws when the lengths differ.
  void attach_scale(std::string_view dataset, std::string_view scale, unsigned axis);

  // Attributes on `object`: "/" (or "") the root, else a dataset or group path. An attribute of
  // the same name is replaced.
  void string_attribute(std::string_view object, std::string_view name, std::string_view value);
  void number_attribute(std::string_view object, std::string_view name, double value);
  // A 1-D array of doubles (may be empty).
  void numbers_attribute(std::string_view object, std::string_view name,
                         std::span<const double> values);
  void integer_attribute(std::string_view object, std::string_view name, std::int64_t value);
  // Unsigned 32-bit and int attributes keep their HDF5 type (readers of older files expect it).
  void uint32_attribute(std::string_view object, std::string_view name, std::uint32_t value);
  void int_attribute(std::string_view object, std::string_view name, int value);

  // Writes the file (directories created) in one checked write and a rename
  // (common/atomic_file.hpp), removes temporaries a killed writer left and syncs. After commit
  // the object accepts nothing more. Throws std::runtime_error naming the file.
  void commit();

  const std::filesystem::path& path() const { return file_; }

 private:
  struct Impl;
  enum class Element { f32, f64, i8, i16, i32, i64, u8, u16, u32, u64 };
  template <class T>
  static constexpr Element element_of() {
    if constexpr (std::is_same_v<T, float>)
      return Element::f32;
    else if constexpr (std::is_same_v<T, double>)
      return Element::f64;
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 1)
      return Element::i8;
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 2)
      return Element::i16;
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 4)
      return Element::i32;
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 8)
      return Element::i64;
    else if constexpr (std::is_integral_v<T> && sizeof(T) == 1)
      return Element::u8;
    else if constexpr (std::is_integral_v<T> && sizeof(T) == 2)
      return Element::u16;
    else if constexpr (std::is_integral_v<T> && sizeof(T) == 4)
      return Element::u32;
    else {
      static_assert(std::is_integral_v<T> && sizeof(T) == 8, "H5File: unsupported element type");
      return Element::u64;
    }
  }
  // The typed writer behind write_dataset.
  void write_raw(std::string_view path, const std::vector<std::size_t>& dims, const void* data,
                 std::size_t count, Element element, std::string_view units);

  std::filesystem::path file_;
  std::unique_ptr<Impl> impl_;
};

template <class T>
void H5File::write_dataset(std::string_view path, const std::vector<std::size_t>& dims,
                           std::span<const T> values, std::string_view units) {
  write_raw(path, dims, values.data(), values.size(), element_of<T>(), units);
}

}  // namespace metaplast::util
