// The command line: global options (connection, --output, --query) and a
// command's parameters, with AWS CLI's rules (shorthand, JSON, file://,
// --cli-input-json, --generate-cli-skeleton).
#pragma once

#include "cli/command.hpp"
#include "cli/conn.hpp"
#include "cli/output.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace pgs::cli {

struct Globals {
    ConnOptions conn;
    OutputFormat output = OutputFormat::Json;
    bool output_given = false;
    std::optional<std::string> query;
    bool help = false;
};

// If args[i] is a global option, takes it (and its value) into g, advances i
// past it and returns true. Throws UsageError for a missing value.
bool take_global(const std::vector<std::string> &args, size_t &i, Globals &g);

// What a command's parameters amount to.
struct Request {
    nlohmann::json body = nlohmann::json::object();  // AWS's request document
    bool skeleton = false;                           // --generate-cli-skeleton
};

// Parses a command's arguments (after SERVICE COMMAND); global options among
// them go to g. Throws UsageError (exit 252) or GeneralError.
Request parse_request(const CommandSpec &cmd, const std::vector<std::string> &args, Globals &g);

// Reads a value the AWS way: file://PATH and fileb://PATH give the file's
// content; for secrets env:NAME gives the variable's. Throws UsageError.
std::string resolve_value(const std::string &raw, bool secret, const std::string &option);

// The skeleton --generate-cli-skeleton prints.
nlohmann::json skeleton_of(const CommandSpec &cmd);

}  // namespace pgs::cli
