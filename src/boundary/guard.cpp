#include <exception>
#include <string>

#include "boundary/guard.hpp"

namespace pgs {

namespace {

// Caught errors, until the C++ code that carries them is done with them.
MemoryContext CaughtErrorContext() {
  static MemoryContext cxt = nullptr;
  if (cxt == nullptr)
    cxt = AllocSetContextCreate(TopMemoryContext, "pg_streams caught errors", ALLOCSET_SMALL_SIZES);
  return cxt;
}

void FreeCaught(ErrorData* e) noexcept { FreeErrorData(e); }

// A string copy in cxt that never raises; nullptr when memory ran out.
char* DupNoOom(MemoryContext cxt, const char* s) noexcept {
  if (s == nullptr) return nullptr;
  size_t len = strlen(s) + 1;
  auto* out = static_cast<char*>(MemoryContextAllocExtended(cxt, len, MCXT_ALLOC_NO_OOM));
  if (out != nullptr) memcpy(out, s, len);
  return out;
}

}  // namespace

PgError::PgError(ErrorData* edata) : edata_(edata, FreeCaught) {}

const char* PgError::what() const noexcept {
  return edata_ != nullptr && edata_->message != nullptr ? edata_->message : "PostgreSQL error";
}

ErrorData* PgError::ForRethrow() const noexcept {
  if (edata_ == nullptr) return nullptr;
  auto* copy = static_cast<ErrorData*>(MemoryContextAllocExtended(ErrorContext, sizeof(ErrorData), MCXT_ALLOC_NO_OOM));
  if (copy == nullptr) return nullptr;
  *copy = *edata_;
  char** fields[] = {&copy->message,     &copy->detail,        &copy->detail_log,    &copy->hint,
                     &copy->context,     &copy->backtrace,     &copy->schema_name,   &copy->table_name,
                     &copy->column_name, &copy->datatype_name, &copy->constraint_name, &copy->internalquery};
  for (char** f : fields) *f = DupNoOom(ErrorContext, *f);  // a field lost to OOM is left out
  copy->assoc_context = ErrorContext;
  return copy;
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
    MemoryContextSwitchTo(CaughtErrorContext());
    edata = CopyErrorData();
    MemoryContextSwitchTo(caller_cxt);
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
    // Copied out before the exception (and its ErrorData) is destroyed.
    edata = e.ForRethrow();
    if (edata == nullptr) message = "out of memory";
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
