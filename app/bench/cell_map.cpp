#include "app/bench/cell_map.hpp"

#include <cmath>

#include "app/bench/options.hpp"
#include "app/util/csv.hpp"
#include "app/util/h5_file.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Legend colours: formed green, unformed light grey, unformable orange, stuck red.
const ArrayMapCategory kCategories[kCellClasses] = {{"formed", "#2ca02c"},
                                                    {"unformed", "#d0d0d0"},
                                                    {"unformable", "#ff7f0e"},
                                                    {"stuck", "#d62728"}};

}  // namespace

const char* cell_class_name(CellClass c) { return kCategories[static_cast<int>(c)].name.c_str(); }

void check_cell_map_options(const CellMapOptions& o) {
  if (!(o.formed_threshold_us >= 0) || o.formed_threshold_us > 1e6) {
    throw OptionError("formed-threshold-us", "must be in [0, 1e6] uS (0: 0.13 x the LCS target)");
  }
  if (!(o.stuck_above_us >= 0) || o.stuck_above_us > 1e6) {
    throw OptionError("stuck-above-us",
                      "must be in [0, 1e6] uS (0: 2 x the highest level's target)");
  }
  if (o.stuck_above_us > 0 && o.stuck_above_us <= o.formed_threshold_us) {
    throw OptionError("stuck-above-us", "must be above formed-threshold-us");
  }
}

json to_json(const CellMapOptions& o) {
  return {{"formed-threshold-us", o.formed_threshold_us},
          {"stuck-above-us", o.stuck_above_us},
          {"counters", o.counters}};
}

CellMapOptions cell_map_options_from_json(const json& step) {
  json_only_keys(step, {"formed-threshold-us", "stuck-above-us", "counters"});
  CellMapOptions o;
  if (step.contains("formed-threshold-us")) {
    o.formed_threshold_us = json_number(step, "formed-threshold-us", 0, 1e6);
  }
  if (step.contains("stuck-above-us"))
    o.stuck_above_us = json_number(step, "stuck-above-us", 0, 1e6);
  if (step.contains("counters")) {
    if (!step["counters"].is_boolean()) {
      throw OptionError("counters", "must be true or false, got " + step["counters"].dump());
    }
    o.counters = step["counters"].get<bool>();
  }
  check_cell_map_options(o);
  return o;
}

CellClass classify_cell(double g, long form_pulses, double formed_threshold_us,
                        double stuck_above_us) {
  if (g > stuck_above_us) return CellClass::stuck;
  if (g >= formed_threshold_us) return form_pulses == 0 ? CellClass::stuck : CellClass::formed;
  return form_pulses > 0 ? CellClass::unformable : CellClass::unformed;
}

void CellMapMeasurement::run_batch(MeasurementContext& context) {
  auto& board = context.board;
  const auto& info = board.info();
  block_ = {0, 0, info.rows, info.cols};
  formed_threshold_us_ = options_.formed_threshold_us > 0
                             ? options_.formed_threshold_us
                             : kFormedThresholdPerLcs * board.level_conductance_us(0);
  const auto top = static_cast<instruments::Level>(info.levels.size() - 1);
  stuck_above_us_ =
      options_.stuck_above_us > 0 ? options_.stuck_above_us : 2 * board.level_conductance_us(top);
  const auto map = board.read_array();  // one array read, no pulse
  conductance_us_ = map.conductance_us;
  form_pulses_.clear();
  if (options_.counters) {
    form_pulses_.assign(block_.size(), 0);
    for (const auto& c : board.counters_array()) {
      form_pulses_[static_cast<std::size_t>(c.cell.row) * block_.cols + c.cell.col] = c.form_pulses;
    }
  }
  classes_.resize(block_.size());
  for (std::size_t i = 0; i < block_.size(); ++i) {
    classes_[i] = classify_cell(conductance_us_[i], options_.counters ? form_pulses_[i] : -1,
                                formed_threshold_us_, stuck_above_us_);
  }
  read_ = true;
}

json CellMapMeasurement::write_results(const MeasurementRecord& record, const fs::path& dir,
                                       std::string& plot_error) const {
  const std::size_t n = classes_.size();
  std::vector<std::uint8_t> codes(n);
  std::vector<double> values(n);
  json counts = json::object();
  for (const auto& c : kCategories) counts[c.name] = 0;
  json listed = {{"stuck", json::array()}, {"unformable", json::array()}};
  for (std::size_t i = 0; i < n; ++i) {
    codes[i] = static_cast<std::uint8_t>(classes_[i]);
    values[i] = codes[i];
    const std::string name = cell_class_name(classes_[i]);
    counts[name] = counts[name].get<int>() + 1;
    if (listed.contains(name)) {
      const auto cell = block_.cell(i);
      listed[name].push_back({{"row", cell.row}, {"col", cell.col}});
    }
  }
  json names = json::object();
  for (int k = 0; k < kCellClasses; ++k) names[std::to_string(k)] = kCategories[k].name;
  if (read_) {
    util::H5File h5(dir / "cell_map.h5");
    write_record_attributes(h5, record);
    write_block_scales(h5, block_);
    h5.write_dataset("conductance_us", {block_.rows, block_.cols}, conductance_us_,
                     "uS, one read at the board's read voltage");
    attach_block_scales(h5, "conductance_us", 0);
    h5.write_dataset("class", {block_.rows, block_.cols}, codes, "class code (class_<code>)");
    attach_block_scales(h5, "class", 0);
    for (int k = 0; k < kCellClasses; ++k) {
      h5.string_attribute("class", "class_" + std::to_string(k), kCategories[k].name);
    }
    h5.string_attribute("class", "classes", names.dump());
    h5.string_attribute("class", "rule", "docs/bench.md, Measurements, Cell map");
    h5.number_attribute("class", "formed_threshold_us", formed_threshold_us_);
    h5.number_attribute("class", "stuck_above_us", stuck_above_us_);
    h5.int_attribute("class", "counters_used", options_.counters ? 1 : 0);
    if (!form_pulses_.empty()) {
      std::vector<std::uint32_t> pulses(form_pulses_.begin(), form_pulses_.end());
      h5.write_dataset("form_pulses", {block_.rows, block_.cols}, pulses,
                       "FORM pulses the board counted on the cell");
      attach_block_scales(h5, "form_pulses", 0);
    }
    h5.commit();

    util::CsvWriter csv(csv_header_lines(record), {"row", "col", "conductance_us", "class"});
    for (std::size_t i = 0; i < n; ++i) {
      const auto cell = block_.cell(i);
      csv.integer(cell.row).integer(cell.col).number(conductance_us_[i], "%.4f");
      csv.text(cell_class_name(classes_[i])).end_row();
    }
    common::write_file_atomically(dir / "cell_map.csv", csv.str());

    ArrayMapPlot plot;
    plot.title = "Cell map: " + record.board.serial + ", chip " + record.chip_id;
    plot.block = block_;
    plot.values = values;
    plot.categories.assign(std::begin(kCategories), std::end(kCategories));
    for (std::size_t k = 0; k < plot.categories.size(); ++k) {
      plot.categories[k].name += " (" + counts[plot.categories[k].name].dump() + ")";
    }
    plot_error = plot_array_map(plot, dir / "cell_map.png");
  }
  return {{"files", {"cell_map.h5", "cell_map.csv", "cell_map.png"}},
          {"cells", n},
          {"classes", counts},
          {"formed_threshold_us", formed_threshold_us_},
          {"stuck_above_us", stuck_above_us_},
          {"counters", options_.counters},
          {"stuck_cells", listed["stuck"]},
          {"unformable_cells", listed["unformable"]}};
}

}  // namespace metaplast::bench
