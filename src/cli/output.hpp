// Output as AWS CLI prints it: --output json (default), text or table, after
// an optional --query (a JMESPath subset: a.b, a[0], a[-1], a[*].b, a[].b).
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace pgs::cli {

enum class OutputFormat { Json, Text, Table };

// Parses "json", "text" or "table"; throws UsageError otherwise.
OutputFormat parse_output_format(const std::string &name);

// Applies a --query expression; throws UsageError when it cannot be parsed.
nlohmann::json apply_query(const nlohmann::json &doc, const std::string &query);

// Prints doc in the format; title names the table (the operation). columns,
// if given, orders the columns of a table of a list of structures.
void print_document(std::ostream &out, const nlohmann::json &doc, OutputFormat format, const std::string &title,
                    const std::vector<std::string> &columns = {});

}  // namespace pgs::cli
