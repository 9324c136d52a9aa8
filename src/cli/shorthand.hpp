// AWS CLI's shorthand syntax for structure parameters:
//   Key=Value,Key2=Value2        a structure (values are strings)
//   Key=a,b,c / Key=[a,b]        a list
//   Key={Inner=x}                a nested structure
//   Key="a,b" / Key='x=y'        quoted values
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace pgs::cli {

// Parses shorthand into a JSON object whose leaves are strings; throws
// UsageError naming the position of the problem (never the value: it may be a secret).
nlohmann::json parse_shorthand(const std::string &text);

}  // namespace pgs::cli
