// Fuzz target: campaign files (app/campaign/campaign.hpp, docs/testing.md). Any input either
// parses or throws the loader's documented errors: common::JsonFileError (not strict JSON) or
// CampaignError (a bad value). Anything else (a crash, a sanitizer report, another exception
// type such as nlohmann::json::type_error) is a finding.
#include "app/campaign/campaign.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "common/json_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto campaign = metaplast::campaign::parse_campaign_text(text, "fuzz.json");
    (void)metaplast::campaign::format_plan(campaign);
  } catch (const metaplast::common::JsonFileError&) {
  } catch (const metaplast::campaign::CampaignError&) {
  }
  return 0;
}
