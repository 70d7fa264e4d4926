// The IDX loader: the real datasets fetched by scripts/fetch_data.sh, and each malformed input a
// user could meet (missing, wrong, truncated or inconsistent files) giving the promised message.
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "app/learning/dataset.hpp"

namespace fs = std::filesystem;
using metaplast::learning::Dataset;
using metaplast::learning::default_data_dir;
using metaplast::learning::load_idx;
using metaplast::learning::load_task;

namespace {

// A fresh directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("metaplast_test_dataset_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void put_u32(std::vector<std::uint8_t>& bytes, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(std::uint8_t(value >> shift));
}

void write_file(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// IDX image file: `count` images of rows x cols where image i has every pixel = 10 * i + p % 7.
std::vector<std::uint8_t> image_file_bytes(std::uint32_t count, std::uint32_t magic = 2051,
                                           std::uint32_t rows = 28, std::uint32_t cols = 28) {
  std::vector<std::uint8_t> bytes;
  put_u32(bytes, magic);
  put_u32(bytes, count);
  put_u32(bytes, rows);
  put_u32(bytes, cols);
  for (std::uint32_t i = 0; i < count; ++i) {
    for (std::uint32_t p = 0; p < rows * cols; ++p) bytes.push_back(std::uint8_t(10 * i + p % 7));
  }
  return bytes;
}

std::vector<std::uint8_t> label_file_bytes(const std::vector<std::uint8_t>& labels,
                                           std::uint32_t magic = 2049) {
  std::vector<std::uint8_t> bytes;
  put_u32(bytes, magic);
  put_u32(bytes, std::uint32_t(labels.size()));
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  return bytes;
}

std::array<std::size_t, 10> class_counts(const Dataset& data, std::size_t prefix) {
  std::array<std::size_t, 10> counts{};
  for (std::size_t i = 0; i < prefix; ++i) ++counts[data.labels[i]];
  return counts;
}

}  // namespace

TEST_CASE("MNIST loads with the standard counts and sizes") {
  const auto mnist = load_task(default_data_dir(), "mnist");
  CHECK(mnist.train.name == "mnist");
  CHECK(mnist.train.size() == 60000);
  CHECK(mnist.test.size() == 10000);
  CHECK(mnist.train.pixels_per_image() == 784);
  CHECK(mnist.train.pixels.size() == 60000u * 784u);
  CHECK(mnist.test.pixels.size() == 10000u * 784u);
  // The well-known first training labels of MNIST: 5, 0, 4, 1, 9.
  CHECK(std::vector<int>(mnist.train.labels.begin(), mnist.train.labels.begin() + 5) ==
        std::vector<int>{5, 0, 4, 1, 9});
  const auto counts = class_counts(mnist.train, 60000);
  CHECK(std::accumulate(counts.begin(), counts.end(), std::size_t{0}) == 60000);
  for (std::size_t count : counts) CHECK(count > 5000);
}

TEST_CASE("Fashion-MNIST is interleaved: labels 0..9 repeat and every prefix is balanced") {
  const auto fashion = load_task(default_data_dir(), "fashion");
  CHECK(fashion.train.name == "fashion");
  REQUIRE(fashion.train.size() == 60000);
  REQUIRE(fashion.test.size() == 10000);
  for (const Dataset* data : {&fashion.train, &fashion.test}) {
    for (std::size_t i = 0; i < 10; ++i) CHECK(data->labels[i] == i);
    for (std::size_t prefix : {10u, 100u, 1000u, 10000u}) {
      INFO("prefix " << prefix);
      for (std::size_t count : class_counts(*data, prefix)) CHECK(count == prefix / 10);
    }
  }
  for (std::size_t count : class_counts(fashion.train, 60000)) CHECK(count == 6000);
  // No empty image was kept (the package holds two empty rows in class 0).
  for (std::size_t i = 0; i < fashion.train.size(); i += 997) {
    const auto* image = fashion.train.pixels.data() + i * 784;
    CHECK(std::any_of(image, image + 784, [](std::uint8_t p) { return p != 0; }));
  }
}

TEST_CASE("gather scales the chosen images to [0, 1] in the order of the indices") {
  const auto mnist = load_task(default_data_dir(), "mnist").test;
  const std::vector<std::size_t> indices = {7, 0, 9999, 7};
  std::vector<float> out(indices.size() * 784, -1.0f);
  mnist.gather(indices, out.data());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    for (std::size_t p = 0; p < 784; ++p) {
      REQUIRE(out[k * 784 + p] == float(mnist.pixels[indices[k] * 784 + p]) / 255.0f);
    }
  }
  CHECK(*std::max_element(out.begin(), out.end()) == 1.0f);
  CHECK(*std::min_element(out.begin(), out.end()) == 0.0f);
}

TEST_CASE("slice keeps the rows [begin, end) and rejects ranges outside the dataset") {
  const auto fashion = load_task(default_data_dir(), "fashion").test;
  const Dataset part = fashion.slice(25, 40);
  CHECK(part.name == "fashion");
  REQUIRE(part.size() == 15);
  CHECK(part.pixels_per_image() == 784);
  CHECK(std::equal(part.labels.begin(), part.labels.end(), fashion.labels.begin() + 25));
  CHECK(std::equal(part.pixels.begin(), part.pixels.end(), fashion.pixels.begin() + 25 * 784));
  CHECK(fashion.slice(10000, 10000).size() == 0);
  CHECK_THROWS_AS(fashion.slice(0, 10001), std::out_of_range);
  CHECK_THROWS_AS(fashion.slice(20, 10), std::out_of_range);
}

TEST_CASE("load_idx reads well-formed small files") {
  TempDir dir;
  write_file(dir.path / "imgs", image_file_bytes(3));
  write_file(dir.path / "labs", label_file_bytes({2, 9, 0}));
  const Dataset data = load_idx(dir.path / "imgs", dir.path / "labs");
  CHECK(data.name == "imgs");
  CHECK(data.size() == 3);
  CHECK(data.rows == 28);
  CHECK(data.labels == std::vector<std::uint8_t>{2, 9, 0});
  CHECK(data.pixels[2 * 784 + 3] == 23);
}

TEST_CASE("loader errors name the file and the problem") {
  TempDir dir;
  const fs::path images = dir.path / "train-images-idx3-ubyte";
  const fs::path labels = dir.path / "train-labels-idx1-ubyte";
  write_file(images, image_file_bytes(4));
  write_file(labels, label_file_bytes({1, 2, 3, 4}));
  REQUIRE(load_idx(images, labels).size() == 4);

  SECTION("missing file: says which one and how to fetch the data") {
    fs::remove(labels);
    CHECK_THROWS_WITH(load_idx(images, labels),
                      Catch::Contains(labels.string()) &&
                          Catch::Contains("run scripts/fetch_data.sh (or scripts/setup.sh) to "
                                          "fetch the datasets"));
  }
  SECTION("missing task directory in load_task") {
    CHECK_THROWS_WITH(load_task(dir.path, "mnist"),
                      Catch::Contains((dir.path / "mnist" / "train-images-idx3-ubyte").string()) &&
                          Catch::Contains("scripts/fetch_data.sh"));
  }
  SECTION("bad magic in the image file") {
    write_file(images, image_file_bytes(4, 2049));
    CHECK_THROWS_WITH(load_idx(images, labels), Catch::Contains(images.string()) &&
                                                    Catch::Contains("bad magic") &&
                                                    Catch::Contains("expected 2051"));
  }
  SECTION("bad magic in the label file (images and labels swapped)") {
    CHECK_THROWS_WITH(load_idx(images, images), Catch::Contains("expected 2049"));
    CHECK_THROWS_WITH(load_idx(labels, labels),
                      Catch::Contains(labels.string()) && Catch::Contains("expected 2051"));
  }
  SECTION("truncated image file: expected and found sizes") {
    auto bytes = image_file_bytes(4);
    bytes.resize(bytes.size() - 100);
    write_file(images, bytes);
    CHECK_THROWS_WITH(load_idx(images, labels),
                      Catch::Contains(images.string()) && Catch::Contains("truncated") &&
                          Catch::Contains("expected 3152 bytes, found 3052"));
  }
  SECTION("file shorter than its header") {
    write_file(labels, {0, 0, 8});
    CHECK_THROWS_WITH(load_idx(images, labels),
                      Catch::Contains(labels.string()) && Catch::Contains("truncated"));
  }
  SECTION("image/label count mismatch") {
    write_file(labels, label_file_bytes({1, 2, 3}));
    CHECK_THROWS_WITH(load_idx(images, labels),
                      Catch::Contains("count mismatch") && Catch::Contains("4 images, 3 labels"));
  }
  SECTION("label out of 0..9") {
    write_file(labels, label_file_bytes({1, 2, 10, 4}));
    CHECK_THROWS_WITH(load_idx(images, labels), Catch::Contains(labels.string()) &&
                                                    Catch::Contains("label 10 of item 2") &&
                                                    Catch::Contains("out of 0..9"));
  }
}

TEST_CASE("load_task refuses test images of another size than the training images") {
  // Evaluation gathers test images in rows of the training size: 56 x 28 test images overran
  // the buffer (heap corruption), 14 x 28 ones were read half from the next image (issue 19).
  TempDir dir;
  const fs::path task = dir.path / "mnist";
  fs::create_directories(task);
  write_file(task / "train-images-idx3-ubyte", image_file_bytes(4));
  write_file(task / "train-labels-idx1-ubyte", label_file_bytes({1, 2, 3, 4}));
  write_file(task / "t10k-labels-idx1-ubyte", label_file_bytes({5, 6}));
  for (const std::uint32_t rows : {56u, 14u}) {
    write_file(task / "t10k-images-idx3-ubyte", image_file_bytes(2, 2051, rows, 28));
    CHECK_THROWS_WITH(load_task(dir.path, "mnist"),
                      Catch::Contains((task / "t10k-images-idx3-ubyte").string()) &&
                          Catch::Contains(std::to_string(rows) + " x 28 pixels") &&
                          Catch::Contains((task / "train-images-idx3-ubyte").string()) &&
                          Catch::Contains("are 28 x 28"));
  }
  write_file(task / "t10k-images-idx3-ubyte", image_file_bytes(2));
  const auto data = load_task(dir.path, "mnist");
  CHECK(data.test.images_file == task / "t10k-images-idx3-ubyte");
  CHECK(data.train.slice(1, 3).images_file == task / "train-images-idx3-ubyte");
}

TEST_CASE("load_task rejects unknown tasks, listing the known ones") {
  CHECK_THROWS_AS(load_task(default_data_dir(), "cifar"), std::invalid_argument);
  CHECK_THROWS_WITH(load_task(default_data_dir(), "cifar"),
                    Catch::Contains("cifar") && Catch::Contains("mnist, fashion"));
}

TEST_CASE("default_data_dir honours METAPLAST_DATA") {
  const char* previous = std::getenv("METAPLAST_DATA");
  const std::string saved = previous ? previous : "";
  setenv("METAPLAST_DATA", "/somewhere/else", 1);
  CHECK(default_data_dir() == fs::path("/somewhere/else"));
  unsetenv("METAPLAST_DATA");
  CHECK(default_data_dir() == fs::path(METAPLAST_SOURCE_DIR) / "data");
  if (previous) setenv("METAPLAST_DATA", saved.c_str(), 1);
}
