// One HTTP POST through libcurl's multi interface, polled in slices so the
// caller can handle interrupts while a request is in flight. Pure C++: no
// PostgreSQL calls here; `poll` may throw (e.g. a PgError on SIGTERM).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgs::targets {

// Response bodies are read up to this size (Lambda's 6 MB payload limit);
// reading stops as soon as a body passes it, whatever its framing.
constexpr size_t kMaxResponseBody = 6 * 1024 * 1024;

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  long timeout_ms = 3000;
  bool verify_tls = true;
  std::string ca_file;  // empty: the system's CAs
  // Values never shown in an error text (configured header values, the
  // signing secret, the URL's query): not sent as such.
  std::vector<std::string> secrets;
};

struct HttpResponse {
  bool answered = false;  // false: timeout, refused, reset, DNS, TLS...
  bool timed_out = false;
  bool too_large = false;  // the body passed kMaxResponseBody; error says so
  long status = 0;
  std::string body;
  std::optional<double> retry_after_s;  // Retry-After in seconds, when given
  // X-Amz-Function-Error (as Lambda and its Runtime Interface Emulator answer
  // a function error with status 200): its value, empty when absent.
  char function_error[32] = {0};
  std::string error;                    // what went wrong, without secrets
};

// Performs the POST; calls poll() at least every 100 ms while waiting.
HttpResponse HttpPost(const HttpRequest& request, const std::function<void()>& poll);

// Requests in flight at once (a dispatcher worker's), through a multi handle
// of their own. HttpStart returns a tag; the request must stay alive until
// that tag comes back from HttpWait or is given to HttpCancel.
uint64_t HttpStart(const HttpRequest& request);
void HttpCancel(uint64_t tag);
size_t HttpInFlight();
// Moves the transfers on, waiting up to timeout_ms for one to have something
// to do; returns the finished ones.
std::vector<std::pair<uint64_t, HttpResponse>> HttpWait(int timeout_ms);

// Initializes libcurl once per process.
void HttpGlobalInit();

}  // namespace pgs::targets
