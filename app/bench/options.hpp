// Options of the measurements, one definition for the command line and the campaign steps: a
// wrong value throws OptionError carrying the option's key, which the command line shows as
// "--<key>" and a campaign check as the JSON path of the step's key (docs/campaigns.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace metaplast::bench {

class OptionError : public std::invalid_argument {
 public:
  // what(): "--<key>: <problem>".
  OptionError(std::string key, const std::string& problem)
      : std::invalid_argument("--" + key + ": " + problem),
        key_(std::move(key)),
        problem_(problem) {}
  const std::string& key() const { return key_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string key_, problem_;
};

// Reading a campaign step's options object: each throws OptionError naming the key when the
// value has the wrong type or is out of [min, max].
std::int64_t json_integer(const nlohmann::json& step, const std::string& key, std::int64_t min,
                          std::int64_t max);
double json_number(const nlohmann::json& step, const std::string& key, double min, double max);
std::vector<double> json_numbers(const nlohmann::json& step, const std::string& key);
std::vector<int> json_integers(const nlohmann::json& step, const std::string& key, int min,
                               int max);
// Throws OptionError for a key of `step` not in `known` (listing the known ones).
void json_only_keys(const nlohmann::json& step, const std::set<std::string>& known);

}  // namespace metaplast::bench
