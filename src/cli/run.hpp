// Running things: the AWS-shaped commands, tail and stats. Each returns the
// exit code; errors are thrown as UsageError, GeneralError, ConnectError or
// ServiceError and reported by main.
#pragma once

#include "cli/args.hpp"
#include "cli/command.hpp"

#include <string>
#include <vector>

namespace pgs::cli {

int run_command(const CommandSpec &cmd, const std::vector<std::string> &args, Globals &g);
int run_tail(const std::vector<std::string> &args, Globals &g);
int run_stats(const std::vector<std::string> &args, Globals &g);

// The AWS exception a server error stands for: its DETAIL when the server named
// one, else a name fitting its SQLSTATE.
std::string exception_name(const ServiceError &e);

// Help texts (stdout).
void print_main_help();
void print_service_help(const std::string &service);
void print_command_help(const CommandSpec &cmd);
void print_tail_help();
void print_stats_help();

}  // namespace pgs::cli
