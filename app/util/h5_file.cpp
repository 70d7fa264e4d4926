#include "app/util/h5_file.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "common/atomic_file.hpp"

namespace metaplast::util {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw std::runtime_error("HDF5 file " + file.string() + ": cannot " + what);
}

void check(herr_t status, const fs::path& file, const std::string& what) {
  if (status < 0) fail(file, what);
}

// One HDF5 identifier, closed with its own close function.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const fs::path& file, const std::string& what)
      : id_(id), close_(close) {
    if (id_ < 0) fail(file, what);
  }
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

hid_t native(int element) {
  switch (element) {
    case 0:
      return H5T_NATIVE_FLOAT;
    case 1:
      return H5T_NATIVE_DOUBLE;
    case 2:
      return H5T_NATIVE_INT8;
    case 3:
      return H5T_NATIVE_INT16;
    case 4:
      return H5T_NATIVE_INT32;
    case 5:
      return H5T_NATIVE_INT64;
    case 6:
      return H5T_NATIVE_UINT8;
    case 7:
      return H5T_NATIVE_UINT16;
    case 8:
      return H5T_NATIVE_UINT32;
    default:
      return H5T_NATIVE_UINT64;
  }
}

std::string object_path(std::string_view object) {
  if (object.empty()) return "/";
  return std::string(object);
}

void fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// A host killed while writing `file` left "<file>.tmp<pid>" (common/atomic_file.cpp): the file
// is now complete, so they go.
void remove_stale_temporaries(const fs::path& file) {
  const std::string prefix = file.filename().string() + ".tmp";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(file.parent_path(), ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove(e.path(), ec);
  }
}

}  // namespace

struct H5File::Impl {
  hid_t file = -1;
  bool committed = false;
  ~Impl() {
    if (file >= 0) H5Fclose(file);
  }
};

// The file is built with HDF5's core driver without backing store: the library never touches the
// disk, so a full disk is one error from commit() naming the file with nothing left behind (a
// failed H5Fclose on a real file also leaves the library crashing at exit).
H5File::H5File(fs::path file) : file_(std::move(file)), impl_(std::make_unique<Impl>()) {
  // HDF5 prints its error stack to stderr by default; the exception says what failed.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, file_, "make file access properties");
  check(H5Pset_fapl_core(access, 1 << 20, /*backing_store=*/0), file_, "select in-memory file");
  impl_->file = H5Fcreate(file_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access);
  if (impl_->file < 0) fail(file_, "create the file in memory");
}

H5File::~H5File() = default;

void H5File::write_raw(std::string_view path, const std::vector<std::size_t>& dims,
                       const void* data, std::size_t count, Element element,
                       std::string_view units) {
  if (impl_->committed) throw std::logic_error("H5File: written after commit()");
  const std::string name(path);
  std::size_t product = 1;
  std::vector<hsize_t> shape;
  for (const std::size_t d : dims) {
    product *= d;
    shape.push_back(static_cast<hsize_t>(d));
  }
  if (product != count) {
    fail(file_, "write dataset " + name + ": " + std::to_string(count) + " values for a shape of " +
                    std::to_string(product));
  }
  const hid_t type = native(static_cast<int>(element));
  Handle space(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), H5Sclose,
               file_, "create a dataspace");
  Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose, file_, "make link properties");
  check(H5Pset_create_intermediate_group(links, 1), file_, "allow intermediate groups");
  Handle set(H5Dcreate2(impl_->file, name.c_str(), type, space, links, H5P_DEFAULT, H5P_DEFAULT),
             H5Dclose, file_, "create dataset " + name);
  if (count > 0) {
    check(H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), file_, "write dataset " + name);
  }
  if (!units.empty()) string_attribute(name, "units", units);
}

void H5File::create_group(std::string_view path) {
  const std::string name(path);
  Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose, file_, "make link properties");
  check(H5Pset_create_intermediate_group(links, 1), file_, "allow intermediate groups");
  Handle group(H5Gcreate2(impl_->file, name.c_str(), links, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
               file_, "create group " + name);
}

void H5File::set_scale(std::string_view scale, std::string_view label) {
  const std::string name(scale), text(label);
  Handle set(H5Dopen2(impl_->file, name.c_str(), H5P_DEFAULT), H5Dclose, file_,
             "open dataset " + name);
  check(H5DSset_scale(set, text.c_str()), file_, "make " + name + " a dimension scale");
}

void H5File::attach_scale(std::string_view dataset, std::string_view scale, unsigned axis) {
  const std::string data_name(dataset), scale_name(scale);
  Handle set(H5Dopen2(impl_->file, data_name.c_str(), H5P_DEFAULT), H5Dclose, file_,
             "open dataset " + data_name);
  Handle dim(H5Dopen2(impl_->file, scale_name.c_str(), H5P_DEFAULT), H5Dclose, file_,
             "open dataset " + scale_name);
  Handle set_space(H5Dget_space(set), H5Sclose, file_, "get the space of " + data_name);
  Handle dim_space(H5Dget_space(dim), H5Sclose, file_, "get the space of " + scale_name);
  const int rank = H5Sget_simple_extent_ndims(set_space);
  if (rank < 0 || axis >= static_cast<unsigned>(rank)) {
    fail(file_, "attach " + scale_name + " to axis " + std::to_string(axis) + " of " + data_name +
                    " (rank " + std::to_string(rank) + ")");
  }
  std::vector<hsize_t> shape(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(set_space, shape.data(), nullptr);
  const hssize_t scale_length = H5Sget_simple_extent_npoints(dim_space);
  if (scale_length != static_cast<hssize_t>(shape[axis])) {
    fail(file_, "attach " + scale_name + " (" + std::to_string(scale_length) + " values) to axis " +
                    std::to_string(axis) + " of " + data_name + " (length " +
                    std::to_string(shape[axis]) + ")");
  }
  check(H5DSattach_scale(set, dim, axis), file_,
        "attach " + scale_name + " to axis " + std::to_string(axis) + " of " + data_name);
}

namespace {

// Creates attribute `name` of `type` on `object` (replacing one of that name) and writes `value`:
// a scalar, or with `count` a 1-D array of that many elements (0 allowed).
void write_attribute(hid_t h5, const fs::path& file, std::string_view object, std::string_view name,
                     hid_t type, const void* value, std::optional<hsize_t> count = std::nullopt) {
  const std::string where = object_path(object), key(name);
  Handle target(H5Oopen(h5, where.c_str(), H5P_DEFAULT), H5Oclose, file, "open " + where);
  if (H5Aexists(target, key.c_str()) > 0) {
    check(H5Adelete(target, key.c_str()), file, "replace attribute " + key);
  }
  Handle space(count ? H5Screate_simple(1, &*count, nullptr) : H5Screate(H5S_SCALAR), H5Sclose,
               file, "create a dataspace");
  Handle attr(H5Acreate2(target, key.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
              file, "create attribute " + key);
  if (count && *count == 0) return;
  check(H5Awrite(attr, type, value), file, "write attribute " + key);
}

}  // namespace

void H5File::string_attribute(std::string_view object, std::string_view name,
                              std::string_view value) {
  const std::string text(value);
  Handle str(H5Tcopy(H5T_C_S1), H5Tclose, file_, "make a string type");
  check(H5Tset_size(str, text.size() + 1), file_, "size a string");
  write_attribute(impl_->file, file_, object, name, str, text.c_str());
}

void H5File::number_attribute(std::string_view object, std::string_view name, double value) {
  write_attribute(impl_->file, file_, object, name, H5T_NATIVE_DOUBLE, &value);
}

void H5File::numbers_attribute(std::string_view object, std::string_view name,
                               std::span<const double> values) {
  write_attribute(impl_->file, file_, object, name, H5T_NATIVE_DOUBLE, values.data(),
                  hsize_t{values.size()});
}

void H5File::integer_attribute(std::string_view object, std::string_view name, std::int64_t value) {
  write_attribute(impl_->file, file_, object, name, H5T_NATIVE_INT64, &value);
}

void H5File::uint32_attribute(std::string_view object, std::string_view name, std::uint32_t value) {
  write_attribute(impl_->file, file_, object, name, H5T_NATIVE_UINT32, &value);
}

void H5File::int_attribute(std::string_view object, std::string_view name, int value) {
  write_attribute(impl_->file, file_, object, name, H5T_NATIVE_INT, &value);
}

void H5File::commit() {
  if (impl_->committed) throw std::logic_error("H5File: commit() called twice");
  if (!file_.parent_path().empty()) fs::create_directories(file_.parent_path());
  std::vector<char> image;
  check(H5Fflush(impl_->file, H5F_SCOPE_GLOBAL), file_, "flush");
  const ssize_t size = H5Fget_file_image(impl_->file, nullptr, 0);
  if (size <= 0) fail(file_, "size the file image");
  image.resize(static_cast<std::size_t>(size));
  if (H5Fget_file_image(impl_->file, image.data(), image.size()) != size) {
    fail(file_, "copy the file image");
  }
  H5Fclose(impl_->file);
  impl_->file = -1;
  impl_->committed = true;
  common::write_file_atomically(file_, std::string_view(image.data(), image.size()));
  const fs::path folder = file_.parent_path().empty() ? fs::path(".") : file_.parent_path();
  remove_stale_temporaries(file_.parent_path().empty() ? fs::path(".") / file_ : file_);
  fsync_path(file_);
  fsync_path(folder);
}

}  // namespace metaplast::util
