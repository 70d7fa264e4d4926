#include "app/bench/cell_map.hpp"

#include <cmath>

#include "app/bench/options.hpp"
#include "app/board/board_session.hpp"
#include "app/util/csv.hpp"
#include "app/util/h5_file.hpp"
#include "app/util/sha256.hpp"
#include "common/atomic_file.hpp"
#include "devices/calibration.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Legend colours: formed green, unformed light grey, unformable orange, stuck red, bad purple.
const ArrayMapCategory kCategories[kCellClasses] = {{"formed", "#2ca02c"},
                                                    {"unformed", "#d0d0d0"},
                                                    {"unformable", "#ff7f0e"},
                                                    {"stuck", "#d62728"},
                                                    {"bad", "#7b2d9b"}};

// The chip's record in the registry `dir` ("" or no record: nothing), checked against the
// array's geometry; `note` says which it was.
std::optional<hil::ChipRecord> chip_record(const fs::path& dir, const std::string& chip,
                                           const CellBlock& array, std::string& note) {
  if (chip.empty()) {
    note = "no chip id: no bad cells marked (give --chip)";
    return std::nullopt;
  }
  if (dir.empty()) {
    note = "no chip registry for an in-process sim: board (give --chips-dir)";
    return std::nullopt;
  }
  const hil::ChipRegistry registry(dir);
  auto record = registry.load(chip);
  if (!record) {
    note = "chip " + chip + " has no record in " + dir.string() + ": no bad cells marked";
    return std::nullopt;
  }
  if (record->rows != array.rows || record->cols != array.cols) {
    throw std::invalid_argument("chip registry " + registry.file_for(chip).string() + ": chip " +
                                chip + " is " + std::to_string(record->rows) + " x " +
                                std::to_string(record->cols) + ", the array read is " +
                                std::to_string(array.rows) + " x " + std::to_string(array.cols) +
                                ": give the right --chip (or --chips-dir)");
  }
  note = std::to_string(record->bad_cells.size()) + " bad cell(s) of chip " + chip + " in " +
         registry.file_for(chip).string();
  return record;
}

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
          {"counters", o.counters},
          {"from", o.from},
          {"chips-dir", o.chips_dir}};
}

CellMapOptions cell_map_options_from_json(const json& step) {
  json_only_keys(step, {"formed-threshold-us", "stuck-above-us", "counters", "from", "chips-dir"});
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
  for (const auto& [key, value] : {std::pair{"from", &o.from}, {"chips-dir", &o.chips_dir}}) {
    if (!step.contains(key)) continue;
    if (!step[key].is_string()) {
      throw OptionError(key,
                        std::string("must be a file path (a string), got ") + step[key].dump());
    }
    *value = step[key].get<std::string>();
  }
  check_cell_map_options(o);
  return o;
}

CellClass classify_cell(double g, long form_pulses, double formed_threshold_us,
                        double stuck_above_us, bool registry_bad) {
  if (g > stuck_above_us) return CellClass::stuck;
  if (g >= formed_threshold_us && form_pulses == 0) return CellClass::stuck;
  if (registry_bad) return CellClass::bad;
  if (g >= formed_threshold_us) return CellClass::formed;
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
  thresholds_from_ = "board";
  const auto map = board.read_array();  // one array read, no pulse
  conductance_us_ = map.conductance_us;
  form_pulses_.clear();
  if (options_.counters) {
    form_pulses_.assign(block_.size(), 0);
    for (const auto& c : board.counters_array()) {
      form_pulses_[static_cast<std::size_t>(c.cell.row) * block_.cols + c.cell.col] = c.form_pulses;
    }
  }
  const auto registry =
      hil::ChipRegistry::for_run(options_.chips_dir, board::is_sim_address(context.record.address));
  classify(chip_record(registry, context.record.chip_id, block_, registry_note_));
}

void CellMapMeasurement::classify_saved(const SavedRead& read, const fs::path& registry,
                                        const std::string& chip_id) {
  block_ = {0, 0, read.rows, read.cols};
  // The built-in calibration's targets as a board reports them (single precision).
  const auto builtin = devices::Calibration::defaults();
  const double lcs_us = static_cast<float>(builtin.lcs.median_conductance_us);
  const double top_us = static_cast<float>(builtin.hcs_levels.back().median_conductance_us);
  thresholds_from_ =
      read.formed_threshold_us && read.stuck_above_us ? read.kind : "built-in calibration";
  formed_threshold_us_ = options_.formed_threshold_us > 0
                             ? options_.formed_threshold_us
                             : read.formed_threshold_us.value_or(kFormedThresholdPerLcs * lcs_us);
  stuck_above_us_ = options_.stuck_above_us > 0 ? options_.stuck_above_us
                                                : read.stuck_above_us.value_or(2 * top_us);
  conductance_us_ = read.conductance_us;
  form_pulses_ = options_.counters ? read.form_pulses : std::vector<long>{};
  classify(chip_record(registry, chip_id, block_, registry_note_));
}

void CellMapMeasurement::classify(const std::optional<hil::ChipRecord>& chip) {
  if (options_.formed_threshold_us > 0 || options_.stuck_above_us > 0) {
    thresholds_from_ = "options, else " + thresholds_from_;
  }
  bad_cells_.clear();
  if (chip) bad_cells_ = chip->bad_cells;
  classes_.resize(block_.size());
  for (std::size_t i = 0; i < block_.size(); ++i) {
    classes_[i] = classify_cell(conductance_us_[i], form_pulses_.empty() ? -1 : form_pulses_[i],
                                formed_threshold_us_, stuck_above_us_,
                                bad_cells_.count(static_cast<std::uint32_t>(i)) != 0);
  }
  read_ = true;
}

std::string CellMapMeasurement::reason(std::size_t i) const {
  std::string text;
  switch (classes_[i]) {
    case CellClass::stuck:
      text = conductance_us_[i] > stuck_above_us_ ? "reads above stuck_above_us"
                                                  : "reads formed, no FORM pulse counted";
      break;
    case CellClass::unformable:
      text = "unformed after " + std::to_string(form_pulses_[i]) + " FORM pulse(s)";
      break;
    default:
      break;
  }
  const auto bad = bad_cells_.find(static_cast<std::uint32_t>(i));
  if (bad != bad_cells_.end()) {
    const auto& b = bad->second;
    text += (text.empty() ? "" : "; ") + std::string("chip registry: ") + b.reason +
            (b.detail.empty() ? "" : " (" + b.detail + ")") + (b.date.empty() ? "" : ", " + b.date);
  }
  return text;
}

json CellMapMeasurement::write_results(const MeasurementRecord& record, const fs::path& dir,
                                       std::string& plot_error) const {
  const std::size_t n = classes_.size();
  std::vector<std::uint8_t> codes(n);
  std::vector<double> values(n);
  json counts = json::object();
  for (const auto& c : kCategories) counts[c.name] = 0;
  json listed = {{"stuck", json::array()}, {"unformable", json::array()}, {"bad", json::array()}};
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
    h5.int_attribute("class", "counters_used", form_pulses_.empty() ? 0 : 1);
    h5.string_attribute("class", "thresholds_from", thresholds_from_);
    h5.string_attribute("class", "chip_registry", registry_note_);
    if (!form_pulses_.empty()) {
      std::vector<std::uint32_t> pulses(form_pulses_.begin(), form_pulses_.end());
      h5.write_dataset("form_pulses", {block_.rows, block_.cols}, pulses,
                       "FORM pulses the board counted on the cell");
      attach_block_scales(h5, "form_pulses", 0);
    }
    h5.commit();

    auto header = csv_header_lines(record);
    header.push_back(thresholds_line(formed_threshold_us_, stuck_above_us_));
    util::CsvWriter csv(header, {"row", "col", "conductance_us", "form_pulses", "class", "reason"});
    for (std::size_t i = 0; i < n; ++i) {
      const auto cell = block_.cell(i);
      csv.integer(cell.row).integer(cell.col).number(conductance_us_[i], "%.4f");
      if (form_pulses_.empty()) {
        csv.text("");
      } else {
        csv.integer(form_pulses_[i]);
      }
      csv.text(cell_class_name(classes_[i])).text(reason(i)).end_row();
    }
    common::write_file_atomically(dir / "cell_map.csv", csv.str());

    ArrayMapPlot plot;
    plot.title = "Cell map: " +
                 (record.source.is_null()
                      ? record.board.serial
                      : fs::path(record.source.at("path").get<std::string>()).filename().string()) +
                 ", chip " + (record.chip_id.empty() ? "unknown" : record.chip_id);
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
          {"thresholds_from", thresholds_from_},
          {"counters", !form_pulses_.empty()},
          {"chip_registry", registry_note_},
          {"stuck_cells", listed["stuck"]},
          {"unformable_cells", listed["unformable"]},
          {"bad_cells", listed["bad"]}};
}

}  // namespace metaplast::bench

namespace metaplast::bench {

MeasurementOutcome map_saved_read(const CellMapOptions& options, const std::string& chip,
                                  const fs::path& out,
                                  const std::function<void(const std::string&)>& log) {
  check_cell_map_options(options);
  const fs::path file = options.from;
  const SavedRead read = load_saved_read(file);
  MeasurementRecord record;
  record.kind = "cell-map";
  record.options = to_json(options);
  record.chip_id = chip.empty() ? read.chip_id : chip;
  if (!record.chip_id.empty()) hil::validate_chip_id(record.chip_id);
  record.source = {{"path", fs::absolute(file).lexically_normal().string()},
                   {"sha256", util::sha256_file_hex(file)},
                   {"kind", read.kind}};
  const fs::path registry = options.chips_dir.empty() ? hil::ChipRegistry::default_directory()
                                                      : fs::path(options.chips_dir);
  CellMapMeasurement m(options);
  m.classify_saved(read, registry, record.chip_id);
  if (log) {
    log("cell-map: " + file.string() + " (" + read.kind + ", " + std::to_string(read.rows) + " x " +
        std::to_string(read.cols) + ")" +
        (read.form_pulses.empty() || !options.counters ? ", no FORM counters" : ""));
  }
  return run_measurement_without_board(m, record, out);
}

}  // namespace metaplast::bench
