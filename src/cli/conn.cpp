#include "cli/conn.hpp"

namespace pgs::cli {

namespace {

std::string trimmed(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

std::string field(const PGresult *r, int code)
{
    const char *v = PQresultErrorField(r, code);
    return v ? v : "";
}

}  // namespace

Connection::Connection(const ConnOptions &opts) : conn_(nullptr, &PQfinish)
{
    std::vector<const char *> keys;
    std::vector<const char *> values;
    auto add = [&](const char *k, const std::string &v) {
        if (!v.empty()) {
            keys.push_back(k);
            values.push_back(v.c_str());
        }
    };
    // dbname first: with expand_dbname a conninfo string or URI in it is
    // expanded, and the options given after it take precedence.
    add("dbname", opts.dbname);
    add("host", opts.host);
    add("port", opts.port);
    add("user", opts.user);
    keys.push_back("application_name");
    values.push_back("pg-streams");
    keys.push_back("fallback_application_name");
    values.push_back("pg-streams");
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_.reset(PQconnectdbParams(keys.data(), values.data(), 1));
    if (!conn_)
        throw ConnectError{"out of memory"};
    if (PQstatus(conn_.get()) != CONNECTION_OK)
        throw ConnectError{trimmed(PQerrorMessage(conn_.get()))};
}

Result Connection::exec(const std::string &sql, const std::vector<Param> &params)
{
    std::vector<const char *> values;
    values.reserve(params.size());
    for (const auto &p : params)
        values.push_back(p ? p->c_str() : nullptr);
    PGresult *raw = PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(params.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    Result r(raw);
    ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    if (PQstatus(conn_.get()) == CONNECTION_BAD)
        throw ConnectError{"the connection to the server was lost: " + trimmed(PQerrorMessage(conn_.get()))};
    if (!raw)
        throw ServiceError{"", trimmed(PQerrorMessage(conn_.get())), "", ""};
    ServiceError e{field(raw, PG_DIAG_SQLSTATE), field(raw, PG_DIAG_MESSAGE_PRIMARY),
                   field(raw, PG_DIAG_MESSAGE_DETAIL), field(raw, PG_DIAG_MESSAGE_HINT)};
    if (e.message.empty())
        e.message = trimmed(PQresultErrorMessage(raw));
    throw e;
}

}  // namespace pgs::cli
