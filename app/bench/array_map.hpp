// What the measurements over a block of the array share (docs/bench.md, "Measurements"): the
// block itself (options row0, col0, rows, cols), its row and column scales in an HDF5 file, and
// the map plot of a value per cell, either continuous (a colour bar with units) or categorical
// (one colour per class, with a legend), with cells marked on top.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/util/h5_file.hpp"
#include "instruments/board_types.hpp"

namespace metaplast::bench {

// A rectangle of cells, row-major: cell i is (row0 + i / cols, col0 + i % cols).
struct CellBlock {
  std::uint16_t row0 = 0, col0 = 0, rows = 16, cols = 16;
  std::size_t size() const { return static_cast<std::size_t>(rows) * cols; }
  instruments::Cell cell(std::size_t i) const {
    return {static_cast<std::uint16_t>(row0 + i / cols),
            static_cast<std::uint16_t>(col0 + i % cols)};
  }
  std::vector<instruments::Cell> cells() const;
};

// Throws OptionError naming row0/col0/rows/cols when the block leaves a 128 x 128 array or is
// empty.
void check_block(const CellBlock& block);
// The keys row0, col0, rows, cols of a campaign step (each optional), checked.
void read_block_options(const nlohmann::json& step, CellBlock& block);
void add_block_json(const CellBlock& block, nlohmann::json& options);
// Throws std::invalid_argument when the block does not fit the board's geometry.
void check_block_on_board(const CellBlock& block, const instruments::BoardInfo& board);

// The 1-D datasets "row" and "col" (array row and column of the block, dimension scales "row"
// and "col"); attach_block_scales attaches them to the last two axes of a [..][rows][cols]
// dataset.
void write_block_scales(util::H5File& h5, const CellBlock& block);
void attach_block_scales(util::H5File& h5, const std::string& dataset, unsigned row_axis);

struct ArrayMapCategory {
  std::string name;    // legend entry
  std::string colour;  // "#rrggbb"
};

struct ArrayMapPlot {
  std::string title;  // shown as text (serial, chip id: quoted, inert)
  CellBlock block;
  std::vector<double> values;  // block.size(), row-major; NaN: not drawn
  // Continuous map: the colour bar's label, with units, in gnuplot's enhanced-text markup
  // (written by the code, never user data): "Forming voltage V_{BL} (V)" draws BL as a subscript.
  std::string colour_bar_label;
  // Categorical map when not empty: values are class codes 0..N-1, drawn in these colours, with
  // a legend entry per class.
  std::vector<ArrayMapCategory> categories;
  // Cells drawn as a symbol on top of the map, with this legend entry.
  std::vector<instruments::Cell> marked;
  std::string marked_label;
};

// Draws `plot` into `png` (data and script next to it, as plot_levels). Returns "" when drawn,
// else why not.
std::string plot_array_map(const ArrayMapPlot& plot, const std::filesystem::path& png);

}  // namespace metaplast::bench
