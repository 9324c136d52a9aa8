// The HTTP request of an invocation, for mappings and streams.invoke.
#pragma once

#include <string>

#include "dispatch/model.hpp"
#include "targets/http_client.hpp"

namespace pgs::dispatch {

// POST of body to target with pg_streams' headers (Idempotency-Key: key;
// X-Pgs-Event-Source-Mapping when mapping_uuid is not empty) and, when the
// target has a signing secret, X-Pgs-Timestamp and X-Pgs-Signature. The
// request's secrets list what error texts must never show.
targets::HttpRequest BuildHttpRequest(const TargetConfig& target, const std::string& body, const std::string& key,
                                      const std::string& mapping_uuid);

}  // namespace pgs::dispatch
