// pg-streams stats: streams.event_source_mapping_stats, as a table by default;
// --watch refreshes it until Ctrl-C.
#include "cli/errors.hpp"
#include "cli/run.hpp"
#include "cli/signals.hpp"

#include <unistd.h>

#include <ctime>
#include <iterator>
#include <iostream>

namespace pgs::cli {

using nlohmann::json;

namespace {

// The columns the table shows (all of them go to json and text).
const char *const kTableColumns[] = {"function_name", "uuid", "state", "backlog", "records_delivered",
                                     "records_failed", "invocations", "function_errors", "retries", "records_filtered",
                                     "iterator_age_ms", "next_attempt_at", "last_processing_result", "last_error"};

}  // namespace

int run_stats(const std::vector<std::string> &args, Globals &g)
{
    int watch = 0;
    for (size_t i = 0; i < args.size();) {
        if (take_global(args, i, g))
            continue;
        if (args[i] == "--watch") {
            watch = 2;
            ++i;
            if (i < args.size() && !args[i].empty() && args[i].find_first_not_of("0123456789") == std::string::npos) {
                watch = std::stoi(args[i]);
                if (watch < 1)
                    throw UsageError{"argument --watch: expected a number of seconds >= 1"};
                ++i;
            }
        } else if (args[i] == "help") {
            g.help = true;
            ++i;
        } else {
            throw UsageError{"Unknown options: " + args[i]};
        }
    }
    if (g.help) {
        print_stats_help();
        return kExitOk;
    }
    OutputFormat format = g.output_given ? g.output : OutputFormat::Table;
    install_stop_handlers();
    Connection conn(g.conn);
    bool tty = isatty(STDOUT_FILENO);
    do {
        Result r = conn.exec("SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.function_name, s.uuid), '[]') "
                             "FROM streams.event_source_mapping_stats s");
        json rows = json::parse(r.value(0, 0));
        if (format == OutputFormat::Table) {
            json narrow = json::array();
            for (const auto &row : rows) {
                json n = json::object();
                for (const char *c : kTableColumns)
                    n[c] = row.contains(c) && !row[c].is_null() ? row[c] : json("");
                narrow.push_back(n);
            }
            rows = narrow;
        }
        if (g.query)
            rows = apply_query(rows, *g.query);
        if (watch && tty)
            std::cout << "\033[H\033[2J";
        if (watch) {
            std::time_t now = std::time(nullptr);
            char stamp[64];
            std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
            std::cout << "Every " << watch << "s: streams.event_source_mapping_stats  " << stamp << "\n";
        }
        if (format == OutputFormat::Table && rows.is_array() && rows.empty())
            std::cout << "(no event source mappings)\n";
        else
            print_document(std::cout, rows, format, "EventSourceMappingStats",
                           std::vector<std::string>(std::begin(kTableColumns), std::end(kTableColumns)));
        std::cout.flush();
    } while (watch && sleep_unless_stopped(watch * 1000));
    return kExitOk;
}

}  // namespace pgs::cli
