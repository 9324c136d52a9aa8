// SPI from C++: every call that can raise goes through PgCall, so an ERROR
// arrives as a PgError; values are copied out into C++ types.
#pragma once

#include <optional>
#include <string>

#include "boundary/guard.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace pgs::spi {

// Connects SPI for the lifetime of the object.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Runs sql with arguments; returns SPI_processed. Raises PgError on failure.
uint64 Exec(const char* sql, int nargs, const Oid* types, const Datum* values, const char* nulls, bool read_only,
            long count = 0);

// Like Exec, for a statement run again and again with the same text: its plan
// is prepared once per process (kept across transactions, revalidated by
// PostgreSQL after DDL). Only for constant texts: every distinct text is kept.
uint64 ExecPrepared(const char* sql, int nargs, const Oid* types, const Datum* values, const char* nulls,
                    bool read_only, long count = 0);

std::optional<int64> Int64(uint64 row, int col);
std::optional<int32> Int32(uint64 row, int col);
std::optional<bool> Bool(uint64 row, int col);
std::optional<std::string> Text(uint64 row, int col);  // any type, through its output function

}  // namespace pgs::spi
