// The C++/PostgreSQL boundary.
//
// PostgreSQL reports errors with longjmp; C++ with exceptions. Neither may
// cross into the other's frames:
//  * PGS_FUNCTION defines a SQL-callable entry point whose body runs inside
//    try/catch; a caught error is re-raised as a PostgreSQL ERROR only after
//    every C++ frame of the body has been unwound.
//  * PgCall runs PostgreSQL code that may raise an ERROR from C++ code with
//    live C++ objects; the ERROR is caught, copied and thrown as PgError.
#pragma once

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "boundary/pg.hpp"

namespace pgs {

// A PostgreSQL ERROR caught by PgCall, carried through C++ frames. The
// ErrorData lives in a process-long memory context of its own (not in the
// caller's context: that may be SPI's or a subtransaction's, deleted while
// the exception unwinds) and is freed with the last PgError that holds it.
class PgError : public std::exception {
 public:
  // Takes ownership of edata (allocated by detail::RunGuarded).
  explicit PgError(ErrorData* edata);
  const char* what() const noexcept override;
  ErrorData* edata() const noexcept { return edata_.get(); }
  // A copy in ErrorContext for ReThrowError, or nullptr when memory ran out.
  // ErrorContext is reset by whoever handles the error raised with it.
  ErrorData* ForRethrow() const noexcept;

 private:
  std::shared_ptr<ErrorData> edata_;
};

namespace detail {
// Runs fn(arg) under PG_TRY. Returns nullptr on success or the copied
// ErrorData when fn raised an ERROR. The copy lives in a process-long
// context: pass it to PgError (or FreeErrorData it).
ErrorData* RunGuarded(void (*fn)(void*), void* arg) noexcept;

// Runs impl(fcinfo) with C++ exceptions caught; re-raises them as ERRORs.
Datum InvokeGuarded(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo);
}  // namespace detail

// Calls f() (PostgreSQL code, no C++ exceptions) and turns an ERROR it raises
// into a thrown PgError. f must not own C++ objects with destructors.
template <typename F>
auto PgCall(F&& f) -> decltype(f()) {
  using R = decltype(f());
  if constexpr (std::is_void_v<R>) {
    auto trampoline = [](void* p) { (*static_cast<std::remove_reference_t<F>*>(p))(); };
    if (ErrorData* e = detail::RunGuarded(trampoline, &f)) throw PgError(e);
  } else {
    static_assert(std::is_trivially_copyable_v<R>, "PgCall returns plain values only");
    struct Box {
      std::remove_reference_t<F>* f;
      R result;
    } box{&f, R{}};
    auto trampoline = [](void* p) {
      Box* b = static_cast<Box*>(p);
      b->result = (*b->f)();
    };
    if (ErrorData* e = detail::RunGuarded(trampoline, &box)) throw PgError(e);
    return box.result;
  }
}

}  // namespace pgs

// Defines the SQL-callable C function `name`; the body that follows is C++.
#define PGS_FUNCTION(name)                                                      \
  static Datum name##_impl(FunctionCallInfo fcinfo);                            \
  extern "C" {                                                                  \
  PG_FUNCTION_INFO_V1(name);                                                    \
  }                                                                             \
  extern "C" Datum name(PG_FUNCTION_ARGS) {                                     \
    return pgs::detail::InvokeGuarded(name##_impl, fcinfo);                     \
  }                                                                             \
  static Datum name##_impl([[maybe_unused]] FunctionCallInfo fcinfo)
