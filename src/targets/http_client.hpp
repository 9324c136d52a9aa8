// One HTTP POST through libcurl's multi interface, polled in slices so the
// caller can handle interrupts while a request is in flight. Pure C++: no
// PostgreSQL calls here; `poll` may throw (e.g. a PgError on SIGTERM).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
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

// Initializes libcurl once per process.
void HttpGlobalInit();

}  // namespace pgs::targets
