#include "app/bench/options.hpp"

#include <cmath>

namespace metaplast::bench {

using nlohmann::json;

std::int64_t json_integer(const json& step, const std::string& key, std::int64_t min,
                          std::int64_t max) {
  const json& v = step.at(key);
  if (!v.is_number_integer() &&
      !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
    throw OptionError(key, "must be a whole number in " + std::to_string(min) + ".." +
                               std::to_string(max) + ", got " + v.dump());
  }
  const double value = v.get<double>();
  if (value < static_cast<double>(min) || value > static_cast<double>(max)) {
    throw OptionError(key, "must be in " + std::to_string(min) + ".." + std::to_string(max) +
                               ", got " + v.dump());
  }
  return static_cast<std::int64_t>(value);
}

double json_number(const json& step, const std::string& key, double min, double max) {
  const json& v = step.at(key);
  if (!v.is_number() || !(v.get<double>() >= min && v.get<double>() <= max)) {
    char range[96];
    std::snprintf(range, sizeof range, "a number in [%g, %g]", min, max);
    throw OptionError(key, std::string("must be ") + range + ", got " + v.dump());
  }
  return v.get<double>();
}

std::vector<double> json_numbers(const json& step, const std::string& key) {
  const json& v = step.at(key);
  if (!v.is_array()) throw OptionError(key, "must be a list of numbers, got " + v.dump());
  std::vector<double> out;
  for (const json& x : v) {
    if (!x.is_number()) throw OptionError(key, "must be a list of numbers, got " + v.dump());
    out.push_back(x.get<double>());
  }
  return out;
}

std::vector<int> json_integers(const json& step, const std::string& key, int min, int max) {
  const json& v = step.at(key);
  std::vector<int> out;
  const auto bad = [&] {
    return OptionError(key, "must be a list of whole numbers in " + std::to_string(min) + ".." +
                                std::to_string(max) + ", got " + v.dump());
  };
  if (!v.is_array()) throw bad();
  for (const json& x : v) {
    if (!x.is_number_integer() || x.get<std::int64_t>() < min || x.get<std::int64_t>() > max) {
      throw bad();
    }
    out.push_back(x.get<int>());
  }
  return out;
}

void json_only_keys(const json& step, const std::set<std::string>& known) {
  for (const auto& [key, value] : step.items()) {
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw OptionError(key, "unknown option (known: " + list + ")");
  }
}

}  // namespace metaplast::bench
