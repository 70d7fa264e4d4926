// Image classification datasets in IDX format (MNIST, and Fashion-MNIST converted to IDX by
// scripts/fetch_data.sh, class-interleaved so every prefix is balanced): loading with clear
// errors, batch gathering into float rows, and slicing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace metaplast::learning {

// A set of labelled greyscale images held in memory as raw bytes (60,000 MNIST images: 47 MB).
struct Dataset {
  std::string name;                   // "mnist" or "fashion" (or a file stem for load_idx)
  std::filesystem::path images_file;  // where the images came from (for error messages)
  std::size_t rows = 28, cols = 28;
  std::vector<std::uint8_t> pixels;  // size() * rows * cols bytes, row-major, raw 0..255
  std::vector<std::uint8_t> labels;  // size() labels, 0..9

  // Number of images.
  std::size_t size() const;
  // rows * cols.
  std::size_t pixels_per_image() const;
  // Writes images[indices[k]] scaled to [0,1] (pixel / 255.0f) into row k of `out`
  // (indices.size() x pixels_per_image(), row-major). Labels are read directly from `labels`.
  // Precondition: every index < size() (checked only in debug builds).
  void gather(std::span<const std::size_t> indices, float* out) const;
  // Rows [begin, end) as a new Dataset (used for --train-limit and --validation hold-out).
  // Throws std::out_of_range if begin > end or end > size().
  Dataset slice(std::size_t begin, std::size_t end) const;
};

// Bounds on what an IDX file may claim, checked before anything is allocated.
inline constexpr std::size_t kMaxIdxImageSide = 1024;  // rows and columns, pixels
inline constexpr std::uintmax_t kMaxIdxFileBytes = std::uintmax_t{1} << 32;  // 4 GiB

// Loads one IDX image file (magic 2051, u8 images) + label file (magic 2049, u8 labels).
// Throws std::runtime_error naming the file and the problem: missing file (and "run
// scripts/fetch_data.sh (or scripts/setup.sh) to fetch the datasets"), bad magic (expected
// 2051 / 2049), truncated file or trailing bytes (expected N bytes, found M), no images, image
// sides outside 1..kMaxIdxImageSide, a file larger than kMaxIdxFileBytes, image/label count
// mismatch, labels out of 0..9. The dataset's name is the image file's stem.
Dataset load_idx(const std::filesystem::path& images_file,
                 const std::filesystem::path& labels_file);

// What load_idx does once the files are read: the same checks and errors, on the files' bytes
// (the file names are only used in messages). For the fuzz target tests/fuzz/targets/idx.cpp.
Dataset parse_idx(std::string_view image_bytes, const std::filesystem::path& images_file,
                  std::string_view label_bytes, const std::filesystem::path& labels_file);

struct TaskData {
  Dataset train;
  Dataset test;
};

// task is "mnist" or "fashion": files
// <data_dir>/<task>/{train,t10k}-{images-idx3,labels-idx1}-ubyte. Unknown task names throw
// std::invalid_argument, listing the known ones. Both datasets are named after the task. Errors of
// load_idx propagate; test images of another size than the training images throw
// std::runtime_error naming both files and both sizes.
TaskData load_task(const std::filesystem::path& data_dir, std::string_view task);

// The task names load_task knows, in their canonical order.
std::span<const std::string_view> known_tasks();

// $METAPLAST_DATA if set (and non-empty), else the compile-time METAPLAST_DEFAULT_DATA_DIR
// (<repo>/data).
std::filesystem::path default_data_dir();

}  // namespace metaplast::learning
