// The HTTP request of an invocation: the target's URL, headers and TLS
// settings, pg_streams' own headers, the signature.
#include "dispatch/http_request.hpp"

#include "dispatch/event.hpp"
#include "dispatch/store.hpp"
#include "targets/signing.hpp"

namespace pgs::dispatch {

targets::HttpRequest BuildHttpRequest(const TargetConfig& target, const std::string& body, const std::string& key,
                                      const std::string& mapping_uuid) {
  targets::HttpRequest req;
  req.url = target.url;
  req.body = body;
  req.timeout_ms = target.timeout_ms;
  req.verify_tls = target.verify_tls;
  req.ca_file = target.ca_file;
  req.headers = target.headers;
  for (const std::string& h : target.headers) {
    size_t colon = h.find(':');
    if (colon == std::string::npos) continue;
    size_t v = h.find_first_not_of(' ', colon + 1);
    if (v != std::string::npos) req.secrets.push_back(h.substr(v));
  }
  if (!target.signing_secret.empty()) req.secrets.push_back(target.signing_secret);
  if (size_t q = target.url.find('?'); q != std::string::npos) req.secrets.push_back(target.url.substr(q + 1));
  req.headers.push_back("Content-Type: application/json");
  req.headers.push_back("User-Agent: pg_streams/0.1.0");
  req.headers.push_back("X-Pgs-Request-Id: " + RandomUuid());
  if (!mapping_uuid.empty()) req.headers.push_back("X-Pgs-Event-Source-Mapping: " + mapping_uuid);
  req.headers.push_back("Idempotency-Key: " + key);
  if (!target.signing_secret.empty()) {
    std::string ts = std::to_string(NowUs() / 1000000);
    req.headers.push_back("X-Pgs-Timestamp: " + ts);
    req.headers.push_back("X-Pgs-Signature: v1=" + targets::HmacSha256Hex(target.signing_secret, ts + "." + body));
  }
  return req;
}

}  // namespace pgs::dispatch
