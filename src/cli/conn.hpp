// libpq connection of the pg-streams client: one SQL call per command,
// parameters bound (PQexecParams), never interpolated into the SQL text.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgs::cli {

// Connection options as psql takes them; empty ones fall back to libpq's
// defaults (PG* environment, ~/.pgpass, service files).
struct ConnOptions {
    std::string dbname;  // a database name, a conninfo string or a URI
    std::string host;
    std::string port;
    std::string user;
};

// A connection that could not be made (exit 255, as AWS CLI's endpoint errors).
struct ConnectError {
    std::string message;
};

// An error the server raised: SQLSTATE, message and DETAIL (the AWS exception name).
struct ServiceError {
    std::string sqlstate;
    std::string message;
    std::string detail;
    std::string hint;
};

using Param = std::optional<std::string>;  // nullopt binds NULL

class Result {
public:
    explicit Result(PGresult *r) : res_(r, &PQclear) {}
    int rows() const { return PQntuples(res_.get()); }
    int columns() const { return PQnfields(res_.get()); }
    std::string name(int col) const { return PQfname(res_.get(), col); }
    bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
    std::string value(int row, int col) const { return PQgetvalue(res_.get(), row, col); }
    Oid type(int col) const { return PQftype(res_.get(), col); }

private:
    std::unique_ptr<PGresult, decltype(&PQclear)> res_;
};

class Connection {
public:
    explicit Connection(const ConnOptions &opts);  // throws ConnectError
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    // Runs one statement; throws ServiceError on an error result, ConnectError
    // when the connection is lost.
    Result exec(const std::string &sql, const std::vector<Param> &params = {});

private:
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

}  // namespace pgs::cli
