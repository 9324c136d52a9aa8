#include <exception>
#include <string>

#include "boundary/guard.hpp"

namespace pgs {

const char* PgError::what() const noexcept {
  return edata_ != nullptr && edata_->message != nullptr ? edata_->message : "PostgreSQL error";
}

namespace detail {

ErrorData* RunGuarded(void (*fn)(void*), void* arg) noexcept {
  MemoryContext caller_cxt = CurrentMemoryContext;
  ErrorData* volatile edata = nullptr;
  PG_TRY();
  {
    fn(arg);
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(caller_cxt);
    edata = CopyErrorData();
    FlushErrorState();
  }
  PG_END_TRY();
  return edata;
}

Datum InvokeGuarded(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo) {
  sigjmp_buf* saved_stack = PG_exception_stack;
  ErrorContextCallback* saved_context = error_context_stack;
  ErrorData* edata = nullptr;
  static char message_buf[512];
  const char* message = nullptr;
  try {
    return impl(fcinfo);
  } catch (const PgError& e) {
    edata = e.edata();
  } catch (const std::exception& e) {
    // No palloc here: an ERROR must not escape a catch handler.
    strlcpy(message_buf, e.what(), sizeof(message_buf));
    message = message_buf;
  } catch (...) {
    message = "unknown C++ exception";
  }
  // Every C++ frame of impl is gone now; raising is safe.
  PG_exception_stack = saved_stack;
  error_context_stack = saved_context;
  if (edata != nullptr) ReThrowError(edata);
  ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("pg_streams: %s", message)));
  pg_unreachable();
}

}  // namespace detail
}  // namespace pgs
