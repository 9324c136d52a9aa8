// The start of an HTTP error response's body, fit for last_error: bounded,
// valid UTF-8, without the request's secrets. Pure C++: no PostgreSQL here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::targets {

// At most this many bytes of a body are kept.
constexpr size_t kMaxErrorBody = 1024;

// The body's first max bytes (cut on a character boundary, "..." appended
// when cut), with every occurrence of a secret of 4 bytes or more replaced by
// "[redacted]", invalid UTF-8 and NUL bytes by U+FFFD, and leading and
// trailing white space removed.
std::string ErrorBodyExcerpt(std::string_view body, const std::vector<std::string>& secrets,
                             size_t max = kMaxErrorBody);

}  // namespace pgs::targets
