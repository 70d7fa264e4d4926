#include "app/bench/array_map.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "app/bench/level_plot.hpp"
#include "app/bench/options.hpp"
#include "app/util/gnuplot.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr int kArraySide = 128;
}  // namespace

std::vector<instruments::Cell> CellBlock::cells() const {
  std::vector<instruments::Cell> out(size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = cell(i);
  return out;
}

void check_block(const CellBlock& b) {
  if (b.rows < 1 || b.rows > kArraySide) throw OptionError("rows", "must be in 1..128");
  if (b.cols < 1 || b.cols > kArraySide) throw OptionError("cols", "must be in 1..128");
  if (b.row0 + b.rows > kArraySide) {
    throw OptionError("row0",
                      "row0 + rows must be at most 128, got " + std::to_string(b.row0 + b.rows));
  }
  if (b.col0 + b.cols > kArraySide) {
    throw OptionError("col0",
                      "col0 + cols must be at most 128, got " + std::to_string(b.col0 + b.cols));
  }
}

void read_block_options(const json& step, CellBlock& b) {
  const auto read = [&](const char* key, std::uint16_t& v, int min) {
    if (step.contains(key)) v = static_cast<std::uint16_t>(json_integer(step, key, min, 128));
  };
  read("row0", b.row0, 0);
  read("col0", b.col0, 0);
  read("rows", b.rows, 1);
  read("cols", b.cols, 1);
  check_block(b);
}

void add_block_json(const CellBlock& b, json& options) {
  options["row0"] = b.row0;
  options["col0"] = b.col0;
  options["rows"] = b.rows;
  options["cols"] = b.cols;
}

void check_block_on_board(const CellBlock& b, const instruments::BoardInfo& board) {
  if (b.row0 + b.rows > board.rows || b.col0 + b.cols > board.cols) {
    throw std::invalid_argument(
        "the block rows " + std::to_string(b.row0) + ".." + std::to_string(b.row0 + b.rows - 1) +
        ", columns " + std::to_string(b.col0) + ".." + std::to_string(b.col0 + b.cols - 1) +
        " is outside the board's " + std::to_string(board.rows) + " x " +
        std::to_string(board.cols) + " array: choose --row0/--col0/--rows/--cols inside it");
  }
}

void write_block_scales(util::H5File& h5, const CellBlock& b) {
  std::vector<std::uint16_t> rows(b.rows), cols(b.cols);
  for (std::uint16_t r = 0; r < b.rows; ++r) rows[r] = static_cast<std::uint16_t>(b.row0 + r);
  for (std::uint16_t c = 0; c < b.cols; ++c) cols[c] = static_cast<std::uint16_t>(b.col0 + c);
  h5.write_vector("row", rows, "array row");
  h5.set_scale("row", "row");
  h5.write_vector("col", cols, "array column");
  h5.set_scale("col", "col");
}

void attach_block_scales(util::H5File& h5, const std::string& dataset, unsigned row_axis) {
  h5.attach_scale(dataset, "row", row_axis);
  h5.attach_scale(dataset, "col", row_axis + 1);
}

namespace {

// "#rrggbb" as the integer gnuplot's rgbcolor variable takes.
long rgb_value(const std::string& colour) { return std::strtol(colour.c_str() + 1, nullptr, 16); }

}  // namespace

std::string plot_array_map(const ArrayMapPlot& plot, const fs::path& png) {
  const CellBlock& b = plot.block;
  const bool categorical = !plot.categories.empty();
  std::ostringstream data;
  char line[96];
  // Block 0: the map (col row value, or col row rgb for a categorical map); block 1: the marked
  // cells (col row).
  data << "# column row " << (categorical ? "colour(rgb)" : "value") << "\n";
  for (std::size_t i = 0; i < b.size(); ++i) {
    const auto cell = b.cell(i);
    const double v = plot.values[i];
    if (categorical) {
      const auto k = static_cast<std::size_t>(v);
      const bool known = std::isfinite(v) && v >= 0 && k < plot.categories.size();
      std::snprintf(line, sizeof line, "%u %u %ld\n", cell.col, cell.row,
                    known ? rgb_value(plot.categories[k].colour) : 0xffffffL);
    } else {
      std::snprintf(line, sizeof line, "%u %u %.6g\n", cell.col, cell.row, v);
    }
    data << line;
    if (cell.col + 1u == b.col0 + b.cols) data << "\n";
  }
  data << "\n\n# marked cells: column row\n";
  for (const auto& c : plot.marked) data << c.col << ' ' << c.row << "\n";
  if (plot.marked.empty()) data << "nan nan\n";

  std::ostringstream g;
  g << "# Draw with `gnuplot " << png.stem().string() << ".gp` in this folder.\n"
    << "set terminal pngcairo size 900,760 enhanced font 'DejaVu Sans,11'\n"
    << "set output " << util::gnuplot_quote(png.filename().string()) << "\n"
    << "set title " << util::gnuplot_quote(plot.title) << " noenhanced\n"
    << "set xlabel 'Column'\nset ylabel 'Row'\nset size ratio -1\n"
    << "set xrange [" << b.col0 - 0.5 << ":" << b.col0 + b.cols - 0.5 << "]\n"
    << "set yrange [" << b.row0 + b.rows - 0.5 << ":" << b.row0 - 0.5 << "]\n"
    << "set key outside right top box\n"
    << "data = " << util::gnuplot_quote(plot_data_name(png)) << "\n";
  if (categorical) {
    g << "unset colorbox\n"
      << "plot data index 0 using 1:2:(int($3)/65536):(int($3)/256%256):(int($3)%256) "
         "with rgbimage notitle";
    for (const auto& c : plot.categories) {
      g << ", \\\n     NaN with boxes fs solid lc rgb " << util::gnuplot_quote(c.colour)
        << " title " << util::gnuplot_quote_text(c.name);
    }
  } else {
    g << "set cblabel " << util::gnuplot_quote(plot.colour_bar_label) << "\n"
      << "set palette rgb 33,13,10\n"
      << "plot data index 0 using 1:2:3 with image notitle";
  }
  if (!plot.marked.empty()) {
    g << ", \\\n     data index 1 using 1:2 with points pt 2 ps 0.8 lc rgb 'black' title "
      << util::gnuplot_quote_text(plot.marked_label);
  }
  g << "\n";
  return draw_gnuplot_plot(png, data.str(), g.str());
}

}  // namespace metaplast::bench
