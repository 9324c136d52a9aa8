// pg-streams: a command-line client for pg_streams, shaped like the AWS CLI.
//   pg-streams [connection options] SERVICE COMMAND [parameters]
#include "cli/args.hpp"
#include "cli/errors.hpp"
#include "cli/run.hpp"

#include <iostream>
#include <string>
#include <vector>

using namespace pgs::cli;

namespace {

void usage_error(const std::string &message, bool usage)
{
    if (usage)
        std::cerr << "usage: pg-streams [options] <command> <subcommand> [parameters]\n"
                     "To see help text, you can run:\n\n"
                     "  pg-streams help\n"
                     "  pg-streams <command> help\n"
                     "  pg-streams <command> <subcommand> help\n\n"
                     "pg-streams: error: ";
    std::cerr << message << "\n";
}

bool is_service(const std::string &s)
{
    for (const auto &[name, line] : service_list())
        if (name == s)
            return true;
    return false;
}

int run(const std::vector<std::string> &args)
{
    Globals g;
    std::string service;
    size_t i = 0;
    while (i < args.size() && service.empty()) {
        if (take_global(args, i, g))
            continue;
        if (args[i] == "help") {
            g.help = true;
            ++i;
            continue;
        }
        if (args[i].compare(0, 1, "-") == 0)
            throw UsageError{"Unknown options: " + args[i]};
        service = args[i++];
    }
    if (service.empty()) {
        if (g.help) {
            print_main_help();
            return kExitOk;
        }
        throw UsageError{"the following arguments are required: command"};
    }
    if (!is_service(service))
        throw UsageError{"argument command: Invalid choice: '" + service +
                         "', valid choices are: dynamodbstreams, dynamodb, lambda, tail, stats"};
    std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
    if (service == "tail")
        return run_tail(rest, g);
    if (service == "stats")
        return run_stats(rest, g);

    std::string command;
    size_t j = 0;
    while (j < rest.size() && command.empty()) {
        if (take_global(rest, j, g))
            continue;
        if (rest[j] == "help") {
            g.help = true;
            ++j;
            continue;
        }
        if (rest[j].compare(0, 1, "-") == 0)
            throw UsageError{"Unknown options: " + rest[j]};
        command = rest[j++];
    }
    if (command.empty()) {
        if (g.help) {
            print_service_help(service);
            return kExitOk;
        }
        throw UsageError{"the following arguments are required: operation"};
    }
    const CommandSpec *cmd = find_command(service, command);
    if (!cmd) {
        std::string valid;
        for (const auto &c : command_table())
            if (c.service == service)
                valid += (valid.empty() ? "" : ", ") + c.name;
        throw UsageError{"argument operation: Invalid choice: '" + command + "', valid choices are: " + valid};
    }
    return run_command(*cmd, std::vector<std::string>(rest.begin() + static_cast<long>(j), rest.end()), g);
}

std::string operation_of(const std::vector<std::string> &args)
{
    std::vector<std::string> words;
    for (const auto &a : args)
        if (a.compare(0, 1, "-") != 0)
            words.push_back(a);
    for (size_t k = 0; k + 1 < words.size(); ++k)
        if (const CommandSpec *c = find_command(words[k], words[k + 1]))
            return c->operation;
    return "";
}

}  // namespace

int main(int argc, char **argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        return run(args);
    } catch (const UsageError &e) {
        usage_error(e.message, e.usage);
        return kExitUsage;
    } catch (const ServiceError &e) {
        std::string op = operation_of(args);
        std::cerr << "\nAn error occurred (" << exception_name(e) << ")"
                  << (op.empty() ? "" : " when calling the " + op + " operation") << ": " << e.message << "\n";
        return kExitService;
    } catch (const ConnectError &e) {
        std::cerr << "\nCould not connect to the database server: " << e.message << "\n";
        return kExitGeneral;
    } catch (const GeneralError &e) {
        std::cerr << "\n" << e.message << "\n";
        return kExitGeneral;
    } catch (const std::exception &e) {
        std::cerr << "\n" << e.what() << "\n";
        return kExitGeneral;
    }
}
