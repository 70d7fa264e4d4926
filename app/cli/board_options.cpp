#include "app/cli/board_options.hpp"

#include <stdexcept>
#include <string>

namespace metaplast::cli {

void add_board_settings_options(CLI::App* cmd, instruments::SettingValues& values) {
  const std::string group = "Board settings (default: the station file's board_settings, else "
                            "built-in; docs/bench.md)";
  for (const auto& field : instruments::setting_fields()) {
    const std::string key = field.key, option = field.option;
    const std::string unit = *field.unit ? std::string(" (") + field.unit + ")" : "";
    cmd->add_option_function<std::string>(
           option,
           [&values, &field, key, option](const std::string& text) {
             try {
               values[key] = instruments::parse_setting_text(field, text, option);
             } catch (const std::invalid_argument& e) {
               throw CLI::ValidationError(e.what());
             }
           },
           field.meaning + unit)
        ->type_name(field.list      ? "LIST"
                    : field.integer ? "INT"
                                    : "FLOAT")
        ->group(group);
  }
}

}  // namespace metaplast::cli
