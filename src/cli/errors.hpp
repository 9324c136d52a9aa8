// Exit codes and the errors that lead to them, as AWS CLI v2 uses them.
#pragma once

#include <string>

namespace pgs::cli {

constexpr int kExitOk = 0;
constexpr int kExitInterrupted = 130;   // Ctrl-C during a command
constexpr int kExitUsage = 252;         // command syntax or parameter validation
constexpr int kExitService = 254;       // the service (the server) refused the request
constexpr int kExitGeneral = 255;       // anything else: connection failures, I/O

// Bad command line or parameters (exit 252). With usage, AWS's usage lines are
// printed before the message.
struct UsageError {
    std::string message;
    bool usage = true;
};

// A local failure that is not the user's syntax (a file:// that cannot be read, ...).
struct GeneralError {
    std::string message;
};

}  // namespace pgs::cli
