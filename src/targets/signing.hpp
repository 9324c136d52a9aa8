// Request signing and idempotency keys of HTTP targets.
//
//   X-Pgs-Timestamp: <unix seconds>
//   X-Pgs-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
#pragma once

#include <string>

namespace pgs::targets {

// Lowercase hex HMAC-SHA256 of message under key.
std::string HmacSha256Hex(const std::string& key, const std::string& message);
// Lowercase hex SHA-256.
std::string Sha256Hex(const std::string& message);

}  // namespace pgs::targets
