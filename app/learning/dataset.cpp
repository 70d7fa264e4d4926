#include "app/learning/dataset.hpp"

#include <array>
#include <cassert>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace metaplast::learning {
namespace {

constexpr std::uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension
constexpr std::size_t kClasses = 10;
constexpr std::array<std::string_view, 2> kKnownTasks = {"mnist", "fashion"};

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& problem) {
  throw std::runtime_error("dataset file " + file.string() + ": " + problem);
}

std::uint32_t big_endian_u32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

constexpr const char* kFetchAgain = "; run scripts/fetch_data.sh to fetch the datasets again";

// An IDX file of unsigned bytes: its dimensions and its payload, after checking that the bytes
// are exactly the header plus the product of the dimensions.
struct IdxFile {
  std::vector<std::uint32_t> dims;
  std::string_view payload;
};

IdxFile parse_idx_file(std::string_view bytes, const std::filesystem::path& file,
                       std::uint32_t magic, std::size_t num_dims) {
  const std::size_t header_bytes = 4 + 4 * num_dims;
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  auto check_length = [&](std::size_t needed) {
    if (bytes.size() < needed) {
      fail(file, "truncated file: expected at least " + std::to_string(header_bytes) +
                     " bytes of IDX header, found " + std::to_string(bytes.size()) + kFetchAgain);
    }
  };
  check_length(4);
  const std::uint32_t found_magic = big_endian_u32(data);
  if (found_magic != magic) {
    const bool images = magic == kImagesMagic;
    fail(file, "bad magic number " + std::to_string(found_magic) + ", expected " +
                   std::to_string(magic) + ": not an IDX " + (images ? "image" : "label") +
                   " file of unsigned bytes" + kFetchAgain);
  }
  check_length(header_bytes);
  IdxFile idx;
  for (std::size_t k = 0; k < num_dims; ++k) idx.dims.push_back(big_endian_u32(data + 4 + 4 * k));
  if (idx.dims[0] == 0) fail(file, std::string("holds no items (count 0)") + kFetchAgain);
  // Sides are bounded first, so the product below cannot overflow 64 bits.
  std::uint64_t payload_bytes = idx.dims[0];
  for (std::size_t k = 1; k < num_dims; ++k) {
    if (idx.dims[k] == 0 || idx.dims[k] > kMaxIdxImageSide) {
      fail(file, "image side " + std::to_string(idx.dims[k]) + " is outside 1.." +
                     std::to_string(kMaxIdxImageSide) + " pixels" + kFetchAgain);
    }
    payload_bytes *= idx.dims[k];
  }
  const std::uint64_t expected = header_bytes + payload_bytes;
  if (bytes.size() != expected) {
    fail(file, std::string(bytes.size() < expected ? "truncated file" : "file too long") +
                   ": expected " + std::to_string(expected) + " bytes, found " +
                   std::to_string(bytes.size()) + kFetchAgain);
  }
  idx.payload = bytes.substr(header_bytes);
  return idx;
}

// The whole file, after checking it exists and is of a plausible size (before reading it).
std::string read_idx_bytes(const std::filesystem::path& file) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) {
    fail(file, "not found; run scripts/fetch_data.sh (or scripts/setup.sh) to fetch the datasets");
  }
  const std::uintmax_t file_bytes = std::filesystem::file_size(file, error);
  std::ifstream in(file, std::ios::binary);
  if (error || !in) fail(file, "cannot be opened for reading");
  if (file_bytes > kMaxIdxFileBytes) {
    fail(file, "is " + std::to_string(file_bytes) + " bytes, more than the " +
                   std::to_string(kMaxIdxFileBytes) + " an IDX dataset may have" + kFetchAgain);
  }
  std::string bytes(static_cast<std::size_t>(file_bytes), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::uintmax_t>(in.gcount()) != file_bytes) {
    fail(file, "read error (the file changed size while being read?)");
  }
  return bytes;
}

std::string side_text(const Dataset& data) {
  return std::to_string(data.rows) + " x " + std::to_string(data.cols);
}

}  // namespace

std::size_t Dataset::size() const { return labels.size(); }

std::size_t Dataset::pixels_per_image() const { return rows * cols; }

void Dataset::gather(std::span<const std::size_t> indices, float* out) const {
  const std::size_t n = pixels_per_image();
  for (std::size_t k = 0; k < indices.size(); ++k) {
    assert(indices[k] < size());
    const std::uint8_t* image = pixels.data() + indices[k] * n;
    float* row = out + k * n;
    for (std::size_t p = 0; p < n; ++p) row[p] = static_cast<float>(image[p]) / 255.0f;
  }
}

Dataset Dataset::slice(std::size_t begin, std::size_t end) const {
  if (begin > end || end > size()) {
    throw std::out_of_range("Dataset::slice: rows [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") are outside " + name + "'s " +
                            std::to_string(size()) + " images");
  }
  Dataset part;
  part.name = name;
  part.images_file = images_file;
  part.rows = rows;
  part.cols = cols;
  const std::size_t n = pixels_per_image();
  part.pixels.assign(pixels.begin() + static_cast<std::ptrdiff_t>(begin * n),
                     pixels.begin() + static_cast<std::ptrdiff_t>(end * n));
  part.labels.assign(labels.begin() + static_cast<std::ptrdiff_t>(begin),
                     labels.begin() + static_cast<std::ptrdiff_t>(end));
  return part;
}

Dataset parse_idx(std::string_view image_bytes, const std::filesystem::path& images_file,
                  std::string_view label_bytes, const std::filesystem::path& labels_file) {
  const IdxFile images = parse_idx_file(image_bytes, images_file, kImagesMagic, 3);
  const IdxFile labels = parse_idx_file(label_bytes, labels_file, kLabelsMagic, 1);
  if (images.dims[0] != labels.dims[0]) {
    throw std::runtime_error("dataset files " + images_file.string() + " and " +
                             labels_file.string() + ": image/label count mismatch (" +
                             std::to_string(images.dims[0]) + " images, " +
                             std::to_string(labels.dims[0]) + " labels)" + kFetchAgain);
  }
  for (std::size_t i = 0; i < labels.payload.size(); ++i) {
    const auto label = static_cast<std::uint8_t>(labels.payload[i]);
    if (label >= kClasses) {
      fail(labels_file,
           "label " + std::to_string(label) + " of item " + std::to_string(i) + " is out of 0..9");
    }
  }
  Dataset dataset;
  dataset.name = images_file.stem().string();
  dataset.images_file = images_file;
  dataset.rows = images.dims[1];
  dataset.cols = images.dims[2];
  dataset.pixels.assign(images.payload.begin(), images.payload.end());
  dataset.labels.assign(labels.payload.begin(), labels.payload.end());
  return dataset;
}

Dataset load_idx(const std::filesystem::path& images_file,
                 const std::filesystem::path& labels_file) {
  const std::string images = read_idx_bytes(images_file);
  const std::string labels = read_idx_bytes(labels_file);
  return parse_idx(images, images_file, labels, labels_file);
}

std::span<const std::string_view> known_tasks() { return kKnownTasks; }

TaskData load_task(const std::filesystem::path& data_dir, std::string_view task) {
  bool known = false;
  std::string list;
  for (std::string_view name : kKnownTasks) {
    known = known || name == task;
    list += (list.empty() ? "" : ", ") + std::string(name);
  }
  if (!known) {
    throw std::invalid_argument("unknown task '" + std::string(task) + "'; known tasks: " + list);
  }
  const std::filesystem::path dir = data_dir / task;
  TaskData data{load_idx(dir / "train-images-idx3-ubyte", dir / "train-labels-idx1-ubyte"),
                load_idx(dir / "t10k-images-idx3-ubyte", dir / "t10k-labels-idx1-ubyte")};
  data.train.name = std::string(task);
  data.test.name = std::string(task);
  // The network's input is the training images' size; evaluation gathers test images with it.
  if (data.test.rows != data.train.rows || data.test.cols != data.train.cols) {
    throw std::runtime_error("dataset file " + data.test.images_file.string() + " has images of " +
                             side_text(data.test) + " pixels, but the training images (" +
                             data.train.images_file.string() + ") are " + side_text(data.train) +
                             "; both must have the same size" + kFetchAgain);
  }
  return data;
}

std::filesystem::path default_data_dir() {
  const char* from_env = std::getenv("METAPLAST_DATA");
  if (from_env != nullptr && *from_env != '\0') return from_env;
  return METAPLAST_DEFAULT_DATA_DIR;
}

}  // namespace metaplast::learning
