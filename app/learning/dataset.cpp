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

// An IDX file of unsigned bytes: its dimensions and its payload, read whole after checking that
// the file holds exactly the header plus the product of the dimensions.
struct IdxFile {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> payload;
};

IdxFile read_idx(const std::filesystem::path& file, std::uint32_t magic, std::size_t num_dims) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) {
    fail(file, "not found; run scripts/fetch_data.sh (or scripts/setup.sh) to fetch the datasets");
  }
  const std::uintmax_t file_bytes = std::filesystem::file_size(file, error);
  std::ifstream in(file, std::ios::binary);
  if (error || !in) fail(file, "cannot be opened for reading");

  const std::size_t header_bytes = 4 + 4 * num_dims;
  auto check_length = [&](std::uintmax_t needed) {
    if (file_bytes < needed) {
      fail(file, "truncated file: expected at least " + std::to_string(header_bytes) +
                     " bytes of IDX header, found " + std::to_string(file_bytes) +
                     "; run scripts/fetch_data.sh to fetch the datasets again");
    }
  };
  std::array<std::uint8_t, 16> header{};
  check_length(4);
  in.read(reinterpret_cast<char*>(header.data()), 4);
  const std::uint32_t found_magic = big_endian_u32(header.data());
  if (found_magic != magic) {
    const bool images = magic == kImagesMagic;
    fail(file,
         "bad magic number " + std::to_string(found_magic) + ", expected " + std::to_string(magic) +
             ": not an IDX " + (images ? "image" : "label") +
             " file of unsigned bytes; run scripts/fetch_data.sh to fetch the datasets again");
  }
  check_length(header_bytes);
  in.read(reinterpret_cast<char*>(header.data()) + 4,
          static_cast<std::streamsize>(header_bytes - 4));
  IdxFile idx;
  std::size_t payload_bytes = 1;
  for (std::size_t k = 0; k < num_dims; ++k) {
    idx.dims.push_back(big_endian_u32(header.data() + 4 + 4 * k));
    payload_bytes *= idx.dims.back();
  }
  const std::uintmax_t expected = header_bytes + payload_bytes;
  if (file_bytes != expected) {
    fail(file, std::string(file_bytes < expected ? "truncated file" : "file too long") +
                   ": expected " + std::to_string(expected) + " bytes, found " +
                   std::to_string(file_bytes) +
                   "; run scripts/fetch_data.sh to fetch the datasets again");
  }
  idx.payload.resize(payload_bytes);
  in.read(reinterpret_cast<char*>(idx.payload.data()), static_cast<std::streamsize>(payload_bytes));
  if (static_cast<std::size_t>(in.gcount()) != payload_bytes) fail(file, "read error");
  return idx;
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
  part.rows = rows;
  part.cols = cols;
  const std::size_t n = pixels_per_image();
  part.pixels.assign(pixels.begin() + static_cast<std::ptrdiff_t>(begin * n),
                     pixels.begin() + static_cast<std::ptrdiff_t>(end * n));
  part.labels.assign(labels.begin() + static_cast<std::ptrdiff_t>(begin),
                     labels.begin() + static_cast<std::ptrdiff_t>(end));
  return part;
}

Dataset load_idx(const std::filesystem::path& images_file,
                 const std::filesystem::path& labels_file) {
  IdxFile images = read_idx(images_file, kImagesMagic, 3);
  IdxFile labels = read_idx(labels_file, kLabelsMagic, 1);
  if (images.dims[0] != labels.dims[0]) {
    throw std::runtime_error("dataset files " + images_file.string() + " and " +
                             labels_file.string() + ": image/label count mismatch (" +
                             std::to_string(images.dims[0]) + " images, " +
                             std::to_string(labels.dims[0]) +
                             " labels); run scripts/fetch_data.sh to fetch the datasets again");
  }
  for (std::size_t i = 0; i < labels.payload.size(); ++i) {
    if (labels.payload[i] >= kClasses) {
      fail(labels_file, "label " + std::to_string(labels.payload[i]) + " of item " +
                            std::to_string(i) + " is out of 0..9");
    }
  }
  Dataset dataset;
  dataset.name = images_file.stem().string();
  dataset.rows = images.dims[1];
  dataset.cols = images.dims[2];
  dataset.pixels = std::move(images.payload);
  dataset.labels = std::move(labels.payload);
  return dataset;
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
  return data;
}

std::filesystem::path default_data_dir() {
  const char* from_env = std::getenv("METAPLAST_DATA");
  if (from_env != nullptr && *from_env != '\0') return from_env;
  return METAPLAST_DEFAULT_DATA_DIR;
}

}  // namespace metaplast::learning
