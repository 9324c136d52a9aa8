// streams._invoke_http: one POST of an event to a registered HTTP function,
// exactly as a mapping sends a batch (headers, signature, 6 MB response
// cap), for streams.invoke. Its answer, or its error raised.
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "boundary/guard.hpp"
#include "boundary/spi.hpp"
#include "dispatch/event.hpp"
#include "dispatch/http_request.hpp"
#include "dispatch/store.hpp"
#include "targets/error_body.hpp"
#include "targets/signing.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

namespace pgs::dispatch {
namespace {

[[noreturn]] void Raise(int sqlstate, const char* detail, const std::string& message) {
  PgCall([&] {
    ereport(ERROR, (errcode(sqlstate), errmsg("%s", message.c_str()), errdetail("%s", detail)));
  });
  throw std::logic_error("unreachable");
}

// The function's error as Lambda reports it: errorMessage (and errorType)
// of the body when it is such a JSON object, else the start of the body.
void RaiseFunctionError(const targets::HttpRequest& req, const targets::HttpResponse& res) {
  std::string message, type = res.function_error;
  nlohmann::json doc = nlohmann::json::parse(res.body, nullptr, false);
  if (doc.is_object() && doc.contains("errorMessage") && doc["errorMessage"].is_string()) {
    message = targets::ErrorBodyExcerpt(doc["errorMessage"].get<std::string>(), req.secrets);
    if (doc.contains("errorType") && doc["errorType"].is_string()) type += ": " + doc["errorType"].get<std::string>();
  } else {
    message = targets::ErrorBodyExcerpt(res.body, req.secrets);
  }
  Raise(ERRCODE_RAISE_EXCEPTION, ("FunctionError " + type).c_str(), message);
}

}  // namespace
}  // namespace pgs::dispatch

// (function_name text, owner oid, event jsonb) -> jsonb
PGS_FUNCTION(pgs_invoke_http) {
  using namespace pgs::dispatch;
  std::string name = pgs::PgCall([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
  uint32_t owner = PG_GETARG_OID(1);
  std::string event = pgs::PgCall([&] {
    Jsonb* ev = PG_GETARG_JSONB_P(2);
    return JsonbToCString(nullptr, &ev->root, VARSIZE(ev));
  });
  TargetConfig target;
  {
    pgs::spi::Session spi;
    target = LoadTarget(name, owner);
  }
  if (!target.exists || !target.http) Raise(ERRCODE_UNDEFINED_OBJECT, "ResourceNotFoundException", "Function not found: " + name);
  if (!target.host_allowed)
    Raise(ERRCODE_INSUFFICIENT_PRIVILEGE, "AccessDeniedException",
          "the host of function " + name + " is not in pg_streams.http_allowed_hosts");
  pgs::targets::HttpRequest req = BuildHttpRequest(target, event, pgs::targets::Sha256Hex(RandomUuid()), "");
  pgs::targets::HttpResponse res = pgs::targets::HttpPost(req, [] { pgs::PgCall([] { CHECK_FOR_INTERRUPTS(); }); });
  if (!res.answered)
    Raise(ERRCODE_CONNECTION_FAILURE, "ServiceException",
          res.timed_out ? "function " + name + " timed out after " + std::to_string(req.timeout_ms) + " ms"
                        : "HTTP request to function " + name + " failed: " + res.error);
  if (res.status == 429 || (res.status == 503 && res.retry_after_s))
    Raise(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, "TooManyRequestsException",
          "function " + name + " is throttled: HTTP " + std::to_string(res.status));
  if (res.status < 200 || res.status > 299)
    Raise(ERRCODE_RAISE_EXCEPTION, "ServiceException",
          "HTTP " + std::to_string(res.status) + ": " + pgs::targets::ErrorBodyExcerpt(res.body, req.secrets));
  if (res.function_error[0] != '\0') RaiseFunctionError(req, res);
  if (res.body.empty()) PG_RETURN_NULL();
  // A body that is not JSON comes back as a JSON string, as Lambda returns
  // whatever bytes the function answered.
  bool is_json = nlohmann::json::accept(res.body);
  std::string json = is_json ? res.body : nlohmann::json(res.body).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return pgs::PgCall([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str())); });
}
