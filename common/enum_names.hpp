// Names of enum values from one table per enum: to_string and parse read the same entries, so a
// name can never be printed that cannot be read back, and an unknown name is refused with the
// list of those accepted. Header-only, standard library only (protocols/ and drivers/ use it too).
//
//   constexpr auto kRuleNames = common::enum_table<Rule>({{Rule::a, "a"}, {Rule::b, "b"}});
//   const char* to_string(Rule r) { return common::enum_name(kRuleNames, r); }
//   Rule parse_rule(std::string_view s) { return common::parse_enum(kRuleNames, s, "--rule: unknown
//   rule"); }
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace metaplast::common {

template <class E>
struct EnumName {
  E value;
  const char* name;
};

template <class E, std::size_t N>
using EnumTable = std::array<EnumName<E>, N>;

// A table from a braced list: common::enum_table<E>({{E::x, "x"}, ...}).
template <class E, std::size_t N>
constexpr EnumTable<E, N> enum_table(const EnumName<E> (&entries)[N]) {
  EnumTable<E, N> table{};
  for (std::size_t i = 0; i < N; ++i) table[i] = entries[i];
  return table;
}

// The name of `value`; `fallback` for a value the table does not hold (a corrupt cast).
template <class E, std::size_t N>
constexpr const char* enum_name(const EnumTable<E, N>& table, E value, const char* fallback = "?") {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return fallback;
}

template <class E, std::size_t N>
constexpr std::optional<E> enum_value(const EnumTable<E, N>& table, std::string_view name) {
  for (const auto& entry : table) {
    if (name == entry.name) return entry.value;
  }
  return std::nullopt;
}

// "a, b or c"
template <class E, std::size_t N>
std::string enum_names_list(const EnumTable<E, N>& table) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) out += i + 1 == N ? " or " : ", ";
    out += table[i].name;
  }
  return out;
}

// The value named `name`, else std::invalid_argument("<unknown> '<name>': use <accepted>"), where
// <accepted> is `accepted` if given (to explain the choices), else the table's names.
template <class E, std::size_t N>
E parse_enum(const EnumTable<E, N>& table, std::string_view name, std::string_view unknown,
             std::string_view accepted = {}) {
  if (auto value = enum_value(table, name)) return *value;
  throw std::invalid_argument(std::string(unknown) + " '" + std::string(name) + "': use " +
                              (accepted.empty() ? enum_names_list(table) : std::string(accepted)));
}

}  // namespace metaplast::common
