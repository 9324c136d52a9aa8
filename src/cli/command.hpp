// What a command is: its AWS name, its parameters as AWS CLI spells them, and
// the one SQL call to the streams.* API that carries it out.
#pragma once

#include "cli/conn.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <utility>
#include <string>
#include <vector>

namespace pgs::cli {

enum class ParamType {
    String,
    Integer,
    Boolean,     // --name / --no-name
    Structure,   // shorthand Key=Value,... or JSON
    StringList,  // one or more words, or a JSON list
};

struct ParamSpec {
    ParamSpec(std::string option_, std::string key_, ParamType type_, bool required_, std::string help_,
              bool secret_ = false, std::vector<std::string> boolean_keys_ = {})
        : option(std::move(option_)), key(std::move(key_)), type(type_), required(required_),
          help(std::move(help_)), secret(secret_), boolean_keys(std::move(boolean_keys_))
    {
    }

    std::string option;  // without the leading "--"
    std::string key;     // the request key (AWS's member name)
    ParamType type;
    bool required;
    std::string help;
    bool secret = false;                     // never echoed; also read from file:// or env:NAME
    std::vector<std::string> boolean_keys;   // shorthand members that are booleans
};

// The SQL of a command and its bound parameters.
struct Call {
    std::string sql;
    std::vector<Param> params;
};

struct CommandSpec {
    std::string service;    // dynamodbstreams, dynamodb, lambda
    std::string name;       // get-records
    std::string operation;  // GetRecords (named in error messages)
    std::string summary;
    std::vector<ParamSpec> params;
    std::function<Call(const nlohmann::json &request)> build;
};

// Every SERVICE COMMAND pg-streams knows.
const std::vector<CommandSpec> &command_table();

const CommandSpec *find_command(const std::string &service, const std::string &name);

// The services, in the order --help lists them, with a line on each.
const std::vector<std::pair<std::string, std::string>> &service_list();

}  // namespace pgs::cli
