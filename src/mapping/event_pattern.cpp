// SQL functions over the event-pattern matcher (src/filter):
// streams.test_event_pattern (EventBridge's TestEventPattern) and
// streams._filter_pattern_error (create/update_event_source_mapping's check).
#include <stdexcept>
#include <string>

#include "filter/filter.hpp"  // first: it must not see PostgreSQL headers
#include "boundary/guard.hpp"

extern "C" {
#include "utils/builtins.h"
}

namespace {

std::string Arg(FunctionCallInfo fcinfo, int n) {
  struct Slice {
    const char* data;
    size_t len;
  };
  Slice s = pgs::PgCall([&] {
    text* t = PG_GETARG_TEXT_PP(n);
    return Slice{VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};
  });
  return std::string(s.data, s.len);
}

// The error create_event_source_mapping raises for a bad pattern.
[[noreturn]] void RaiseInvalidPattern(const std::string& hint) {
  pgs::PgCall([&] {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("Invalid filter pattern definition."),
                    errdetail("InvalidParameterValueException"), errhint("%s", hint.c_str())));
  });
  throw std::logic_error("unreachable");
}

}  // namespace

// streams.test_event_pattern(pattern text, event text) -> boolean
PGS_FUNCTION(pgs_test_event_pattern) {
  std::string pattern = Arg(fcinfo, 0);
  std::string event = Arg(fcinfo, 1);
  std::string error;
  bool matched = false;
  try {
    pgs::filter::Filter f({pattern});
    error = pgs::filter::Filter::CheckEvent(event);
    if (error.empty()) matched = f.Match(event) == pgs::filter::Filter::Result::kMatch;
  } catch (const pgs::filter::PatternError& e) {
    RaiseInvalidPattern(e.what());
  }
  if (!error.empty()) {
    pgs::PgCall([&] {
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("Event is not valid JSON."),
                      errdetail("ValidationException"), errhint("%s", error.c_str())));
    });
  }
  PG_RETURN_BOOL(matched);
}

// streams._filter_pattern_error(pattern text) -> text: NULL when the pattern
// is valid, else what is wrong and where.
PGS_FUNCTION(pgs_filter_pattern_error) {
  std::string hint = pgs::filter::CheckPattern(Arg(fcinfo, 0));
  if (hint.empty()) PG_RETURN_NULL();
  return pgs::PgCall([&] { return PointerGetDatum(cstring_to_text(hint.c_str())); });
}
