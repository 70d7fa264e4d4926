#include "app/hil/snapshot_h5.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/clock.hpp"

namespace metaplast::hil {

namespace fs = std::filesystem;

namespace {

// One HDF5 identifier, closed with its own close function.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const fs::path& file, const char* what)
      : id_(id), close_(close) {
    if (id_ < 0) throw std::runtime_error("HDF5 snapshot " + file.string() + ": cannot " + what);
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

void check(herr_t status, const fs::path& file, const std::string& what) {
  if (status < 0) throw std::runtime_error("HDF5 snapshot " + file.string() + ": cannot " + what);
}

template <class T>
void write_dataset(hid_t where, const char* name, hid_t type, const std::vector<hsize_t>& dims,
                   const std::vector<T>& values, const char* units, const fs::path& file) {
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
               file, "create a dataspace");
  Handle set(H5Dcreate2(where, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
             file, (std::string("create dataset ") + name).c_str());
  if (!values.empty()) {
    check(H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), file,
          std::string("write dataset ") + name);
  }
  if (units != nullptr) {
    Handle str(H5Tcopy(H5T_C_S1), H5Tclose, file, "make a string type");
    const std::string text(units);
    check(H5Tset_size(str, text.size() + 1), file, "size a string");
    Handle scalar(H5Screate(H5S_SCALAR), H5Sclose, file, "create a scalar");
    Handle attr(H5Acreate2(set, "units", str, scalar, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, file,
                "create attribute units");
    check(H5Awrite(attr, str, text.c_str()), file, "write attribute units");
  }
}

void string_attribute(hid_t where, const char* name, const std::string& value,
                      const fs::path& file) {
  Handle str(H5Tcopy(H5T_C_S1), H5Tclose, file, "make a string type");
  check(H5Tset_size(str, value.size() + 1), file, "size a string");
  Handle scalar(H5Screate(H5S_SCALAR), H5Sclose, file, "create a scalar");
  Handle attr(H5Acreate2(where, name, str, scalar, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, file,
              (std::string("create attribute ") + name).c_str());
  check(H5Awrite(attr, str, value.c_str()), file, std::string("write attribute ") + name);
}

template <class T>
void number_attribute(hid_t where, const char* name, hid_t type, T value, const fs::path& file) {
  Handle scalar(H5Screate(H5S_SCALAR), H5Sclose, file, "create a scalar");
  Handle attr(H5Acreate2(where, name, type, scalar, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, file,
              (std::string("create attribute ") + name).c_str());
  check(H5Awrite(attr, type, &value), file, std::string("write attribute ") + name);
}

void fsync_file(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

fs::path snapshot_path(const fs::path& run_dir, int epoch_index) {
  char name[32];
  std::snprintf(name, sizeof name, "epoch_%04d.h5", epoch_index);
  return run_dir / "snapshots" / name;
}

namespace {

// The datasets and attributes of `s` into the open file `h5` (named `file` in errors).
void write_contents(hid_t h5, const ArraySnapshot& s, const fs::path& file) {
  const std::vector<hsize_t> grid{s.rows, s.cols};
  write_dataset(h5, "conductance_us", H5T_NATIVE_FLOAT, grid, s.conductance_us,
                "uS (microsiemens), read at the end of the epoch; NaN: no weight on the cell",
                file);
  write_dataset(h5, "target_conductance_us", H5T_NATIVE_FLOAT, grid, s.target_conductance_us,
                "uS, program-and-verify target of the cell's level; NaN: no weight", file);
  write_dataset(h5, "target_level", H5T_NATIVE_INT16, grid, s.target_level,
                "level index: 0 = LCS (RESET), 1..N = HCS by compliance current; -1: no weight",
                file);
  write_dataset(h5, "layer", H5T_NATIVE_INT16, grid, s.layer,
                "network layer of the cell's weight (input layer 0); -1: no weight", file);
  write_dataset(h5, "programming_count", H5T_NATIVE_UINT32, grid, s.programming_count,
                "programming operations (SET or RESET pulses, verify retries included) since "
                "the run started, every cell",
                file);

  Handle verify(H5Gcreate2(h5, "verify", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, file,
                "create group verify");
  const std::vector<hsize_t> n{s.verify.size()};
  std::vector<std::uint16_t> row, col;
  std::vector<std::uint8_t> level, passed;
  std::vector<std::uint32_t> pulses;
  std::vector<float> final_us;
  std::vector<std::uint64_t> batch;
  for (const VerifyRow& v : s.verify) {
    row.push_back(static_cast<std::uint16_t>(v.cell / s.cols));
    col.push_back(static_cast<std::uint16_t>(v.cell % s.cols));
    level.push_back(v.level);
    pulses.push_back(v.pulses);
    final_us.push_back(v.final_conductance_us);
    passed.push_back(v.passed ? 1 : 0);
    batch.push_back(v.batch);
  }
  write_dataset(verify, "row", H5T_NATIVE_UINT16, n, row, "array row", file);
  write_dataset(verify, "col", H5T_NATIVE_UINT16, n, col, "array column", file);
  write_dataset(verify, "target_level", H5T_NATIVE_UINT8, n, level, "level index", file);
  write_dataset(verify, "pulses", H5T_NATIVE_UINT32, n, pulses,
                "programming pulses of this program-and-verify", file);
  write_dataset(verify, "final_conductance_us", H5T_NATIVE_FLOAT, n, final_us,
                "uS, last verify read", file);
  write_dataset(verify, "passed", H5T_NATIVE_UINT8, n, passed, "1: ended in band", file);
  write_dataset(verify, "batch", H5T_NATIVE_UINT64, n, batch,
                "seq of the batch record in journal.jsonl", file);

  string_attribute(h5, "run_id", s.run_id, file);
  string_attribute(h5, "chip_id", s.chip_id, file);
  string_attribute(h5, "board_serial", s.board_serial, file);
  number_attribute(h5, "board_boot_id", H5T_NATIVE_UINT32, s.board_boot_id, file);
  string_attribute(h5, "task", s.task, file);
  number_attribute(h5, "epoch", H5T_NATIVE_INT, s.epoch, file);
  number_attribute(h5, "epoch_index", H5T_NATIVE_INT, s.epoch_index, file);
  number_attribute(h5, "band_us", H5T_NATIVE_DOUBLE, s.band_us, file);
  for (const auto& f : instruments::setting_fields()) {
    const std::string name = std::string("board_setting_") + f.key;
    number_attribute(h5, name.c_str(), H5T_NATIVE_DOUBLE, f.get(s.board_settings), file);
  }
  string_attribute(h5, "units",
                   "conductances in uS (microsiemens); counts in programming operations (SET "
                   "or RESET pulses); arrays row-major [row][col]",
                   file);
  string_attribute(h5, "created", common::utc_now_iso8601(), file);
  string_attribute(h5, "format", "metaplast array snapshot 1 (docs/run-records.md)", file);
}

// A host killed while writing `file` left "<file>.tmp<pid>" (common/atomic_file.cpp): the snapshot
// is now complete, so they go.
void remove_stale_temporaries(const fs::path& file) {
  const std::string prefix = file.filename().string() + ".tmp";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(file.parent_path(), ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove(e.path(), ec);
  }
}

}  // namespace

// The file is built in memory (HDF5's core driver, no backing store) and written in one checked
// write by common::write_file_atomically: HDF5 never touches the disk, so a full disk is one error
// naming the file with nothing left behind (a failed H5Fclose on a real file also leaves the
// library crashing at exit).
void write_snapshot_h5(const fs::path& file, const ArraySnapshot& s) {
  fs::create_directories(file.parent_path());
  // HDF5 prints its error stack to stderr by default; the exception says what failed.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::vector<char> image;
  {
    Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, file, "make file access properties");
    check(H5Pset_fapl_core(access, 1 << 20, /*backing_store=*/0), file, "select in-memory file");
    Handle h5(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access), H5Fclose, file,
              "create the file in memory");
    write_contents(h5, s, file);
    check(H5Fflush(h5, H5F_SCOPE_GLOBAL), file, "flush");
    const ssize_t size = H5Fget_file_image(h5, nullptr, 0);
    if (size <= 0) check(-1, file, "size the file image");
    image.resize(static_cast<std::size_t>(size));
    if (H5Fget_file_image(h5, image.data(), image.size()) != size) {
      check(-1, file, "copy the file image");
    }
  }
  common::write_file_atomically(file, std::string_view(image.data(), image.size()));
  remove_stale_temporaries(file);
  fsync_file(file);
  fsync_file(file.parent_path());
}

}  // namespace metaplast::hil
