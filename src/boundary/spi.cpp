#include "boundary/spi.hpp"

#include <unordered_map>

extern "C" {
#include "catalog/pg_type.h"
}

namespace pgs::spi {

Session::Session() {
  PgCall([] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_streams: SPI_connect failed");
  });
}

Session::~Session() {
  // Runs while an exception may unwind: nothing may escape. A failure here
  // (none is expected) is dropped; the transaction's abort cleans up SPI.
  if (ErrorData* e = detail::RunGuarded([](void*) { SPI_finish(); }, nullptr)) FreeErrorData(e);
}

uint64 Exec(const char* sql, int nargs, const Oid* types, const Datum* values, const char* nulls, bool read_only,
            long count) {
  return PgCall([&]() -> uint64 {
    int rc = SPI_execute_with_args(sql, nargs, const_cast<Oid*>(types), const_cast<Datum*>(values), nulls,
                                   read_only, count);
    if (rc < 0) elog(ERROR, "pg_streams: SPI failed (%s): %s", SPI_result_code_string(rc), sql);
    return SPI_processed;
  });
}

uint64 ExecPrepared(const char* sql, int nargs, const Oid* types, const Datum* values, const char* nulls,
                    bool read_only, long count) {
  static std::unordered_map<std::string, SPIPlanPtr> plans;
  auto it = plans.find(sql);
  SPIPlanPtr plan = it == plans.end() ? nullptr : it->second;
  if (plan == nullptr) {
    plan = PgCall([&] {
      SPIPlanPtr p = SPI_prepare(sql, nargs, const_cast<Oid*>(types));
      if (p == nullptr) elog(ERROR, "pg_streams: SPI_prepare failed (%s): %s", SPI_result_code_string(SPI_result), sql);
      if (SPI_keepplan(p) != 0) elog(ERROR, "pg_streams: SPI_keepplan failed");
      return p;
    });
    plans.emplace(sql, plan);
  }
  return PgCall([&]() -> uint64 {
    int rc = SPI_execute_plan(plan, const_cast<Datum*>(values), nulls, read_only, count);
    if (rc < 0) elog(ERROR, "pg_streams: SPI failed (%s): %s", SPI_result_code_string(rc), sql);
    return SPI_processed;
  });
}

namespace {
template <typename T>
std::optional<T> Binary(uint64 row, int col, T (*conv)(Datum)) {
  bool isnull = true;
  Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
  if (isnull) return std::nullopt;
  return conv(d);
}
int64 ToInt64(Datum d) { return DatumGetInt64(d); }
int32 ToInt32(Datum d) { return DatumGetInt32(d); }
bool ToBool(Datum d) { return DatumGetBool(d); }
}  // namespace

std::optional<int64> Int64(uint64 row, int col) { return Binary<int64>(row, col, ToInt64); }
std::optional<int32> Int32(uint64 row, int col) { return Binary<int32>(row, col, ToInt32); }
std::optional<bool> Bool(uint64 row, int col) { return Binary<bool>(row, col, ToBool); }

std::optional<std::string> Text(uint64 row, int col) {
  struct Out {
    char* s;
    size_t len;
  };
  Out out = PgCall([&]() -> Out {
    bool isnull = true;
    Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
    if (isnull) return Out{nullptr, 0};
    Oid type = SPI_gettypeid(SPI_tuptable->tupdesc, col);
    if (type == TEXTOID) {
      text* t = DatumGetTextPP(d);
      return Out{VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};
    }
    char* s = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
    return Out{s, strlen(s)};
  });
  if (out.s == nullptr) return std::nullopt;
  return std::string(out.s, out.len);
}

}  // namespace pgs::spi
