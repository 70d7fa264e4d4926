// Text into HTML: the live view's listings and the campaign report's pages.
#pragma once

#include <string>
#include <string_view>

namespace metaplast::live {

// `text` with & < > " ' as HTML entities: safe in HTML text and in quoted attributes.
std::string html_escape(std::string_view text);

}  // namespace metaplast::live
