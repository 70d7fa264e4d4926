#include "app/util/h5_reader.hpp"

#include <hdf5.h>

#include <stdexcept>

namespace metaplast::util {

namespace {

std::runtime_error h5_error(const std::filesystem::path& file, const std::string& what) {
  return std::runtime_error("HDF5 file " + file.string() + ": " + what);
}

// Closes an HDF5 handle of any kind on scope exit.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

}  // namespace

H5Reader::H5Reader(std::filesystem::path file) : file_(std::move(file)) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (!std::filesystem::exists(file_)) throw h5_error(file_, "no such file");
  if (H5Fis_hdf5(file_.c_str()) <= 0) throw h5_error(file_, "not an HDF5 file");
  id_ = H5Fopen(file_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id_ < 0) throw h5_error(file_, "cannot open it for reading");
}

H5Reader::~H5Reader() {
  if (id_ >= 0) H5Fclose(id_);
}

bool H5Reader::has(std::string_view path) const {
  const std::string p(path);
  return H5Lexists(id_, p.c_str(), H5P_DEFAULT) > 0;
}

std::optional<std::string> H5Reader::string_attribute(std::string_view object,
                                                      std::string_view name) const {
  const std::string o(object), n(name);
  if (H5Aexists_by_name(id_, o.c_str(), n.c_str(), H5P_DEFAULT) <= 0) return std::nullopt;
  const Handle attr{H5Aopen_by_name(id_, o.c_str(), n.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  const Handle type{H5Aget_type(attr.id), H5Tclose};
  if (attr.id < 0 || type.id < 0 || H5Tget_class(type.id) != H5T_STRING ||
      H5Tis_variable_str(type.id) > 0) {
    throw h5_error(file_, "attribute " + n + " of " + o + " is not a fixed-length string");
  }
  std::string value(H5Tget_size(type.id), '\0');
  if (H5Aread(attr.id, type.id, value.data()) < 0) {
    throw h5_error(file_, "cannot read attribute " + n + " of " + o);
  }
  return std::string(value.c_str());
}

std::optional<double> H5Reader::number_attribute(std::string_view object,
                                                 std::string_view name) const {
  const std::string o(object), n(name);
  if (H5Aexists_by_name(id_, o.c_str(), n.c_str(), H5P_DEFAULT) <= 0) return std::nullopt;
  const Handle attr{H5Aopen_by_name(id_, o.c_str(), n.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  double value = 0;
  if (attr.id < 0 || H5Aread(attr.id, H5T_NATIVE_DOUBLE, &value) < 0) {
    throw h5_error(file_, "attribute " + n + " of " + o + " is not a number");
  }
  return value;
}

std::vector<std::size_t> H5Reader::dims(std::string_view path) const {
  const std::string p(path);
  const Handle set{H5Dopen2(id_, p.c_str(), H5P_DEFAULT), H5Dclose};
  if (set.id < 0) throw h5_error(file_, "no dataset " + p);
  const Handle space{H5Dget_space(set.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 0) throw h5_error(file_, "cannot read the shape of " + p);
  std::vector<hsize_t> d(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.id, d.data(), nullptr);
  return {d.begin(), d.end()};
}

std::vector<double> H5Reader::doubles(std::string_view path) const {
  const std::string p(path);
  const Handle set{H5Dopen2(id_, p.c_str(), H5P_DEFAULT), H5Dclose};
  if (set.id < 0) throw h5_error(file_, "no dataset " + p);
  const Handle space{H5Dget_space(set.id), H5Sclose};
  const hssize_t points = H5Sget_simple_extent_npoints(space.id);
  if (points < 0) throw h5_error(file_, "cannot read the shape of " + p);
  const auto n = static_cast<std::size_t>(points);
  const Handle type{H5Dget_type(set.id), H5Tclose};
  const H5T_class_t kind = H5Tget_class(type.id);
  if (kind != H5T_INTEGER && kind != H5T_FLOAT) throw h5_error(file_, p + " is not numeric");
  std::vector<double> values(n);
  if (H5Dread(set.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    throw h5_error(file_, "cannot read " + p);
  }
  return values;
}

}  // namespace metaplast::util
