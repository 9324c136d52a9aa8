#include "cli/run.hpp"

#include "cli/errors.hpp"
#include "cli/output.hpp"

#include <iostream>
#include <regex>

namespace pgs::cli {

using nlohmann::json;

std::string exception_name(const ServiceError &e)
{
    static const std::regex aws_name("^[A-Z][A-Za-z]*(Exception|Error|Fault)$");
    if (std::regex_match(e.detail, aws_name))
        return e.detail;
    const std::string &s = e.sqlstate;
    if (s == "42501")
        return "AccessDeniedException";
    if (s == "42P01" || s == "42704" || s == "3F000" || s == "42883")
        return "ResourceNotFoundException";
    if (s == "42710" || s == "23505")
        return "ResourceConflictException";
    if (s == "53400")
        return "TooManyRequestsException";
    if (s.compare(0, 2, "22") == 0)
        return "ValidationException";
    if (s == "57014")
        return "RequestTimeoutException";
    return "ServiceException";
}

int run_command(const CommandSpec &cmd, const std::vector<std::string> &args, Globals &g)
{
    Request req = parse_request(cmd, args, g);
    if (g.help) {
        print_command_help(cmd);
        return kExitOk;
    }
    if (req.skeleton) {
        std::cout << skeleton_of(cmd).dump(4) << '\n';
        return kExitOk;
    }
    if (cmd.name == "enable-stream") {
        const json &s = req.body.contains("StreamSpecification") ? req.body["StreamSpecification"] : json();
        if (s.is_object() && s.contains("StreamEnabled") && s["StreamEnabled"] == false)
            throw UsageError{"--stream-specification StreamEnabled=false: use disable-stream (or update-table)", false};
    }
    Call call = cmd.build(req.body);
    Connection conn(g.conn);
    Result r = conn.exec(call.sql, call.params);
    if (r.rows() < 1 || r.columns() < 1 || r.is_null(0, 0) || r.value(0, 0).empty())
        return kExitOk;  // DeleteFunction and void answers print nothing
    json doc = json::parse(r.value(0, 0), nullptr, false);
    if (doc.is_discarded())
        throw GeneralError{"the server's answer is not JSON"};
    if (g.query)
        doc = apply_query(doc, *g.query);
    if (g.query && doc.is_null())
        return kExitOk;
    print_document(std::cout, doc, g.output, cmd.operation);
    return kExitOk;
}

}  // namespace pgs::cli
