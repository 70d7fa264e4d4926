// Reading back the HDF5 files the product writes (util::H5File: array snapshots, measurements),
// for the commands that take a saved file as input (`metaplast measure cell-map --from FILE`).
// Read-only; the HDF5 library's own error stack is silenced; every failure throws
// std::runtime_error naming the file and the object ("HDF5 file <file>: <what>").
// Not thread safe: one H5Reader per thread (the HDF5 library is built without thread safety).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace metaplast::util {

class H5Reader {
 public:
  // Opens `file` read-only. Throws when it is missing or not an HDF5 file.
  explicit H5Reader(std::filesystem::path file);
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  // Whether a dataset (or group) exists at `path` ("name" or "group/name").
  bool has(std::string_view path) const;
  // A string attribute of the root ("/") or of a dataset; nothing when it is not there.
  std::optional<std::string> string_attribute(std::string_view object, std::string_view name) const;
  // A numeric scalar attribute as double; nothing when it is not there.
  std::optional<double> number_attribute(std::string_view object, std::string_view name) const;
  // The shape of a dataset (row-major).
  std::vector<std::size_t> dims(std::string_view path) const;
  // A whole numeric dataset, converted to double (integers exactly up to 2^53).
  std::vector<double> doubles(std::string_view path) const;

  const std::filesystem::path& path() const { return file_; }

 private:
  std::filesystem::path file_;
  long long id_ = -1;  // hid_t
};

}  // namespace metaplast::util
