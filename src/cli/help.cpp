// --help texts, at every level.
#include "cli/run.hpp"

#include <iostream>

namespace pgs::cli {

namespace {

const char *const kGlobalOptions = R"(GLOBAL OPTIONS
  -d, --dbname DBNAME     database name, conninfo string or URI (also --endpoint-url)
  -h, --host HOST         server host or socket directory
  -p, --port PORT         server port
  -U, --username USER     role to connect as
  --output json|text|table  output format (json)
  --query EXPR            select part of the answer: A.B, A[0], A[-1], A[*].B, A[].B
  --help                  this text (also: pg-streams [SERVICE [COMMAND]] help)
  Unset connection options come from PG* environment variables, ~/.pgpass and
  service files, as with psql.
)";

const char *type_hint(ParamType t)
{
    switch (t) {
    case ParamType::String:
        return "(string)";
    case ParamType::Integer:
        return "(integer)";
    case ParamType::Boolean:
        return "(boolean)";
    case ParamType::Structure:
        return "(structure)";
    case ParamType::StringList:
        return "(list)";
    }
    return "";
}

}  // namespace

void print_main_help()
{
    std::cout << "pg-streams: a command-line client for pg_streams, shaped like the AWS CLI\n\n"
                 "SYNOPSIS\n"
                 "  pg-streams [GLOBAL OPTIONS] SERVICE COMMAND [PARAMETERS]\n"
                 "  pg-streams [GLOBAL OPTIONS] tail TABLE_OR_ARN [--from trim-horizon|latest|SEQ] [--shard ID]\n"
                 "  pg-streams [GLOBAL OPTIONS] stats [--watch [SECONDS]]\n\n"
                 "SERVICES\n";
    for (const auto &[name, line] : service_list())
        std::cout << "  " << name << std::string(name.size() < 17 ? 17 - name.size() : 1, ' ') << line << "\n";
    std::cout << "\n" << kGlobalOptions
              << "\nEXIT STATUS\n"
                 "  0 success, 252 bad command line or parameters, 254 the server refused the request\n"
                 "  (AWS's exception name and message on stderr), 255 connection or other failures.\n";
}

void print_service_help(const std::string &service)
{
    std::cout << "pg-streams " << service << " COMMAND [PARAMETERS]\n\nCOMMANDS\n";
    for (const auto &c : command_table()) {
        if (c.service != service)
            continue;
        std::cout << "  " << c.name << std::string(c.name.size() < 31 ? 31 - c.name.size() : 1, ' ') << c.summary
                  << "\n";
    }
    std::cout << "\nSee pg-streams " << service << " COMMAND --help for a command's parameters.\n";
}

void print_command_help(const CommandSpec &cmd)
{
    std::cout << "NAME\n  pg-streams " << cmd.service << " " << cmd.name << " (" << cmd.operation << ")\n\n"
              << "DESCRIPTION\n  " << cmd.summary << "\n\nSYNOPSIS\n  pg-streams " << cmd.service << " "
              << cmd.name << "\n";
    for (const auto &p : cmd.params) {
        std::string syn = p.type == ParamType::Boolean ? "--" + p.option + " | --no-" + p.option
                                                       : "--" + p.option + " <value>";
        std::cout << "    " << (p.required ? syn : "[" + syn + "]") << "\n";
    }
    std::cout << "    [--cli-input-json <value>]\n    [--generate-cli-skeleton]\n\nOPTIONS\n";
    for (const auto &p : cmd.params)
        std::cout << "  --" << p.option << " " << type_hint(p.type) << (p.required ? " required" : "") << "\n      "
                  << p.key << ": " << p.help << "\n";
    std::cout << "  --cli-input-json (string)\n"
                 "      The request as a JSON document (AWS's member names), or file://PATH.\n"
                 "      Parameters given as options take precedence.\n"
                 "  --generate-cli-skeleton\n"
                 "      Prints a --cli-input-json document with every member.\n\n"
                 "  A value file://PATH is read from the file. Structures take AWS's shorthand\n"
                 "  (Key=Value,Key2=Value2, Key={Inner=Value}, Key=[a,b]) or JSON.\n"
                 "  Secrets may also be given as env:NAME (an environment variable).\n\n"
              << kGlobalOptions;
}

void print_tail_help()
{
    std::cout << "pg-streams tail TABLE_OR_ARN [--from trim-horizon|latest|SEQ] [--shard ID]\n\n"
                 "Follows a stream live: every record of every shard (or of --shard ID) as one line of\n"
                 "JSON, in order per shard, until Ctrl-C (or SIGTERM), or until a disabled stream has been\n"
                 "read to its end.\n\n"
                 "  TABLE_OR_ARN       a table with a stream (its latest) or a stream ARN\n"
                 "  --from latest      records committed after tail started (the default)\n"
                 "  --from trim-horizon  everything the stream still holds, then new records\n"
                 "  --from SEQ         from the record with this SequenceNumber on\n"
                 "  --shard ID         one shard only\n\n"
              << kGlobalOptions;
}

void print_stats_help()
{
    std::cout << "pg-streams stats [--watch [SECONDS]]\n\n"
                 "Prints streams.event_source_mapping_stats (the mappings of roles you are a member of):\n"
                 "as a table by default, all columns with --output json or text. --watch refreshes it every\n"
                 "SECONDS (2) until Ctrl-C.\n\n"
              << kGlobalOptions;
}

}  // namespace pgs::cli
