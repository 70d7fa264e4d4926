#include "app/bench/saved_read.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "app/util/csv.hpp"
#include "app/util/h5_reader.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;

namespace {

constexpr const char* kAccepted =
    "cell-map --from takes a whole-array read the product wrote: `metaplast board read --out` "
    "CSV, a training run's snapshots/epoch_NNNN.h5, or a cell map's cell_map.h5 or cell_map.csv";
constexpr const char* kReadAgain =
    "a cell map needs every cell: read the whole array (`metaplast board read --out FILE`, or "
    "`metaplast measure cell-map` on the board)";

// A `board read` CSV has one line per array row and no header: the array it must cover.
constexpr std::size_t kBoardReadRows = 128, kBoardReadCols = 128;

std::invalid_argument error(const fs::path& file, const std::string& what) {
  return std::invalid_argument("--from " + file.string() + ": " + what);
}

std::string cell_text(std::size_t index, std::size_t cols) {
  return "row " + std::to_string(index / cols) + ", col " + std::to_string(index % cols);
}

// A number of the file, or nothing when the text is not one ("nan" is one: NaN).
std::optional<double> number_of(const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (end == begin) return std::nullopt;
  while (*end == ' ' || *end == '\r') ++end;
  if (*end != '\0') return std::nullopt;
  return v;
}

// A row or column index of the file (0..65535), or nothing.
std::optional<std::size_t> index_of(const std::string& text) {
  const auto v = number_of(text);
  if (!v || !(*v >= 0 && *v <= 65535) || *v != std::floor(*v)) return std::nullopt;
  return static_cast<std::size_t>(*v);
}

// Every conductance a number: else which cells read NaN (and where in the file).
void require_no_nan(const fs::path& file, const SavedRead& r, const std::string& where_first) {
  std::size_t nan = 0, first = 0;
  for (std::size_t i = 0; i < r.conductance_us.size(); ++i) {
    if (std::isnan(r.conductance_us[i]) && nan++ == 0) first = i;
  }
  if (nan == 0) return;
  throw error(file, std::to_string(nan) +
                        " cell(s) read NaN, not a conductance (first: " + cell_text(first, r.cols) +
                        where_first + "): read the array again, or give a file without NaN");
}

void set_geometry(const fs::path& file, SavedRead& r, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535) {
    throw error(file, "an array of " + std::to_string(rows) + " x " + std::to_string(cols) +
                          " cells: not an array read. " + kAccepted);
  }
  r.rows = static_cast<std::uint16_t>(rows);
  r.cols = static_cast<std::uint16_t>(cols);
}

// --- HDF5: a cell map's cell_map.h5, a training snapshot ---

std::vector<double> grid(const util::H5Reader& h5, const char* name, const SavedRead& r) {
  const auto d = h5.dims(name);
  if (d.size() != 2 || d[0] != r.rows || d[1] != r.cols) {
    throw error(h5.path(), std::string(name) + " is not [row][col] like conductance_us");
  }
  return h5.doubles(name);
}

SavedRead load_h5(const fs::path& file) {
  const util::H5Reader h5(file);
  const std::string format = h5.string_attribute("/", "format").value_or("");
  SavedRead r;
  const bool snapshot = format.starts_with("metaplast array snapshot");
  const bool measurement = format.starts_with("metaplast measurement");
  const std::string kind = h5.string_attribute("/", "kind").value_or("");
  if (measurement && kind != "cell-map") {
    throw error(file, "a " + kind +
                          " measurement's HDF5 file: it holds the cells that measurement chose, "
                          "not a read of the array. " +
                          kAccepted);
  }
  if ((!snapshot && !measurement) || !h5.has("conductance_us")) {
    throw error(file,
                "an HDF5 file that is not a metaplast array snapshot or cell map (root "
                "attribute format \"" +
                    format + "\"). " + kAccepted);
  }
  r.kind = snapshot ? "training snapshot" : "cell map HDF5";
  const auto d = h5.dims("conductance_us");
  if (d.size() != 2)
    throw error(file, "conductance_us is not [row][col]. " + std::string(kAccepted));
  set_geometry(file, r, d[0], d[1]);
  r.conductance_us = h5.doubles("conductance_us");
  r.chip_id = h5.string_attribute("/", "chip_id").value_or("");
  if (snapshot && h5.has("layer")) {
    // NaN on a cell without a weight: the training run read only its placed cells.
    const auto layer = grid(h5, "layer", r);
    std::size_t missing = 0, first = 0;
    for (std::size_t i = 0; i < layer.size(); ++i) {
      if (layer[i] < 0 && std::isnan(r.conductance_us[i]) && missing++ == 0) first = i;
    }
    if (missing > 0) {
      throw error(file, "a partial read: the training run read only the " +
                            std::to_string(layer.size() - missing) + " cells holding weights; " +
                            std::to_string(missing) + " of " + std::to_string(layer.size()) +
                            " cells were not read (first: " + cell_text(first, r.cols) + "); " +
                            kReadAgain);
    }
  }
  if (measurement) {
    if (h5.has("form_pulses")) {
      for (double p : grid(h5, "form_pulses", r)) r.form_pulses.push_back(std::lround(p));
    }
    r.formed_threshold_us = h5.number_attribute("class", "formed_threshold_us");
    r.stuck_above_us = h5.number_attribute("class", "stuck_above_us");
  }
  require_no_nan(file, r, "");
  return r;
}

// --- CSV: `board read`'s matrix, a cell map's list ---

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw error(file, "cannot be opened for reading");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string not_a_read(std::size_t line, const std::string& why) {
  return "line " + std::to_string(line) + ": " + why + ". " + kAccepted;
}

// "# board: model serial (firmware ..., R x C)": the array's geometry; "# chip: ID";
// "# thresholds: formed_threshold_us=X stuck_above_us=Y".
void read_header(const std::string& comment, SavedRead& r, std::size_t& rows, std::size_t& cols) {
  unsigned long a = 0, b = 0;
  if (comment.starts_with("board: ")) {
    const auto open = comment.rfind(", ");
    if (open != std::string::npos &&
        std::sscanf(comment.c_str() + open, ", %lu x %lu)", &a, &b) == 2) {
      rows = a;
      cols = b;
    }
  } else if (comment.starts_with("chip: ")) {
    r.chip_id = comment.substr(6);
  } else if (comment.starts_with("thresholds: ")) {
    double f = 0, s = 0;
    if (std::sscanf(comment.c_str(), "thresholds: formed_threshold_us=%lf stuck_above_us=%lf", &f,
                    &s) == 2) {
      r.formed_threshold_us = f;
      r.stuck_above_us = s;
    }
  }
}

SavedRead load_cell_list(const fs::path& file, const std::vector<std::string>& lines,
                         std::size_t header) {
  SavedRead r;
  r.kind = "cell map CSV";
  std::size_t rows = 0, cols = 0;
  for (std::size_t i = 0; i < header; ++i) {
    // "# text" (CsvWriter's comment lines); a bare "#" says nothing.
    if (lines[i].starts_with("# ")) read_header(lines[i].substr(2), r, rows, cols);
  }
  const auto columns = util::csv_split(lines[header]);
  int pulses_column = -1;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] == "form_pulses") pulses_column = static_cast<int>(c);
  }
  struct Entry {
    std::size_t row, col, line;
    double g;
    std::optional<long> pulses;
  };
  std::vector<Entry> entries;
  std::size_t max_row = 0, max_col = 0;
  for (std::size_t i = header + 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto f = util::try_csv_split(lines[i]);
    const bool three = f && f->size() >= 3;
    const auto row = three ? index_of((*f)[0]) : std::nullopt;
    const auto col = three ? index_of((*f)[1]) : std::nullopt;
    const auto g = three ? number_of((*f)[2]) : std::nullopt;
    if (!row || !col || !g) {
      throw error(file, not_a_read(i + 1, "not \"row,col,conductance_us,...\" numbers"));
    }
    Entry e{*row, *col, i + 1, *g, {}};
    if (pulses_column >= 0 && static_cast<std::size_t>(pulses_column) < f->size() &&
        !(*f)[static_cast<std::size_t>(pulses_column)].empty()) {
      const auto p = number_of((*f)[static_cast<std::size_t>(pulses_column)]);
      if (!p || *p < 0) throw error(file, not_a_read(i + 1, "form_pulses is not a count"));
      e.pulses = std::lround(*p);
    }
    max_row = std::max(max_row, e.row);
    max_col = std::max(max_col, e.col);
    entries.push_back(e);
  }
  if (entries.empty()) throw error(file, not_a_read(header + 1, "no cell listed"));
  if (rows == 0) rows = kBoardReadRows, cols = kBoardReadCols;  // no header: the whole array
  set_geometry(file, r, rows, cols);
  if (max_row >= rows || max_col >= cols) {
    throw error(file, "lists cells outside the " + std::to_string(rows) + " x " +
                          std::to_string(cols) + " array its header names. " + kAccepted);
  }
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  r.conductance_us.assign(n, std::numeric_limits<double>::quiet_NaN());
  std::vector<bool> seen(n, false);
  bool all_pulses = true;
  std::vector<long> pulses(n, 0);
  for (const auto& e : entries) {
    const std::size_t i = e.row * cols + e.col;
    if (seen[i]) {
      throw error(file, not_a_read(e.line, "lists " + cell_text(i, cols) + " a second time"));
    }
    seen[i] = true;
    if (std::isnan(e.g)) {
      throw error(file, "line " + std::to_string(e.line) + ": " + cell_text(i, cols) +
                            " reads NaN, not a conductance: read the array again, or give a "
                            "file without NaN");
    }
    r.conductance_us[i] = e.g;
    all_pulses = all_pulses && e.pulses.has_value();
    pulses[i] = e.pulses.value_or(0);
  }
  if (entries.size() < n) {
    std::size_t first = 0;
    while (seen[first]) ++first;
    throw error(file,
                "a partial read: " + std::to_string(entries.size()) + " of " + std::to_string(n) +
                    " cells listed (first missing: " + cell_text(first, cols) + "); " + kReadAgain);
  }
  if (all_pulses) r.form_pulses = std::move(pulses);
  return r;
}

SavedRead load_matrix(const fs::path& file, const std::vector<std::string>& lines) {
  SavedRead r;
  r.kind = "board read CSV";
  std::size_t cols = 0, rows = 0;
  std::vector<double> values;
  std::size_t first_nan_line = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto f = util::try_csv_split(lines[i]);
    if (!f) throw error(file, not_a_read(i + 1, "not CSV"));
    if (rows == 0) cols = f->size();
    if (f->size() != cols) {
      throw error(file, "a partial read: line " + std::to_string(i + 1) + " has " +
                            std::to_string(f->size()) + " values, line 1 has " +
                            std::to_string(cols) + "; " + kReadAgain);
    }
    for (const auto& text : *f) {
      const auto v = number_of(text);
      if (!v) throw error(file, not_a_read(i + 1, "\"" + text + "\" is not a conductance"));
      if (std::isnan(*v) && first_nan_line == 0) first_nan_line = i + 1;
      values.push_back(*v);
    }
    ++rows;
  }
  if (rows == 0) throw error(file, "an empty file. " + std::string(kAccepted));
  // The file carries no geometry: `board read` writes the whole array of the board, 128 x 128.
  if (rows != kBoardReadRows || cols != kBoardReadCols) {
    throw error(file, "a partial read: " + std::to_string(rows) + " lines of " +
                          std::to_string(cols) + " values, not the whole " +
                          std::to_string(kBoardReadRows) + " x " + std::to_string(kBoardReadCols) +
                          " array; " + kReadAgain);
  }
  set_geometry(file, r, rows, cols);
  r.conductance_us = std::move(values);
  require_no_nan(file, r, ", line " + std::to_string(first_nan_line));
  return r;
}

SavedRead load_csv(const fs::path& file) {
  const auto lines = lines_of(file);
  std::size_t header = 0;
  while (header < lines.size() && lines[header].starts_with("#")) ++header;
  if (header < lines.size() && lines[header].starts_with("row,col,conductance_us")) {
    return load_cell_list(file, lines, header);
  }
  if (header > 0) {
    throw error(file, not_a_read(header + 1, "a CSV whose columns are not row,col,conductance_us"));
  }
  return load_matrix(file, lines);
}

}  // namespace

std::string thresholds_line(double formed_threshold_us, double stuck_above_us) {
  char text[120];
  std::snprintf(text, sizeof text, "thresholds: formed_threshold_us=%.17g stuck_above_us=%.17g",
                formed_threshold_us, stuck_above_us);
  return text;
}

SavedRead load_saved_read(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    throw error(file, "no such file (give the path of a saved whole-array read; " +
                          std::string(kAccepted) + ")");
  }
  if (fs::is_directory(file, ec)) {
    throw error(file, "a folder, not a file (a cell map's folder holds cell_map.h5: give that)");
  }
  std::ifstream in(file, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  if (in.gcount() == 8 && std::string(magic, 8) == std::string("\x89HDF\r\n\x1a\n", 8)) {
    return load_h5(file);
  }
  return load_csv(file);
}

}  // namespace metaplast::bench
