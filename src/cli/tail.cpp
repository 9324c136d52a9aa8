// pg-streams tail: follows a stream live, like kcat -C for Kafka. Every shard
// is read from its own iterator, so records come in order per shard; each
// record is one line of JSON on stdout.
#include "cli/errors.hpp"
#include "cli/run.hpp"
#include "cli/signals.hpp"

#include <iostream>

namespace pgs::cli {

using nlohmann::json;

namespace {

struct ShardCursor {
    std::string shard_id;
    std::optional<std::string> iterator;  // nullopt: closed and read to its end
};

constexpr int kIdleNapMs = 200;

}  // namespace

int run_tail(const std::vector<std::string> &args, Globals &g)
{
    std::string source;
    std::string from = "latest";
    std::optional<std::string> only_shard;
    for (size_t i = 0; i < args.size();) {
        if (take_global(args, i, g))
            continue;
        const std::string &a = args[i];
        if (a == "--from" || a == "--shard") {
            if (i + 1 >= args.size())
                throw UsageError{"argument " + a + ": expected one argument"};
            (a == "--from" ? from : only_shard.emplace()) = args[i + 1];
            i += 2;
        } else if (a == "help") {
            g.help = true;
            ++i;
        } else if (a.compare(0, 2, "--") == 0 || !source.empty()) {
            throw UsageError{"Unknown options: " + a};
        } else {
            source = args[i++];
        }
    }
    if (g.help) {
        print_tail_help();
        return kExitOk;
    }
    if (source.empty())
        throw UsageError{"the following arguments are required: TABLE_OR_ARN"};
    std::string type;
    std::optional<std::string> seq;
    if (from == "trim-horizon" || from == "TRIM_HORIZON")
        type = "TRIM_HORIZON";
    else if (from == "latest" || from == "LATEST")
        type = "LATEST";
    else if (!from.empty() && from.find_first_not_of("0123456789") == std::string::npos) {
        type = "AT_SEQUENCE_NUMBER";
        seq = from;
    } else
        throw UsageError{"argument --from: expected trim-horizon, latest or a sequence number, got '" + from + "'"};

    install_stop_handlers();
    Connection conn(g.conn);
    std::string arn = source;
    if (source.compare(0, 4, "arn:") != 0) {
        Result r = conn.exec("SELECT streams.list_streams($1::regclass)->'Streams'->-1->>'StreamArn'", {source});
        if (r.is_null(0, 0))
            throw ServiceError{"42704", "Requested resource not found: table " + source + " has no stream",
                               "ResourceNotFoundException", ""};
        arn = r.value(0, 0);
    }
    json desc = json::parse(conn.exec("SELECT streams.describe_stream($1)", {arn}).value(0, 0));
    std::vector<ShardCursor> shards;
    for (const auto &s : desc["StreamDescription"]["Shards"]) {
        std::string id = s["ShardId"].get<std::string>();
        if (!only_shard || *only_shard == id)
            shards.push_back({id, std::nullopt});
    }
    if (shards.empty())
        throw ServiceError{"42704", "Requested resource not found: Shard: " + only_shard.value_or("") +
                                        " in Stream: " + arn + " not found",
                           "ResourceNotFoundException", ""};
    for (auto &s : shards)
        s.iterator = conn.exec("SELECT streams.get_shard_iterator($1, $2, $3, $4)", {arn, s.shard_id, type, seq})
                         .value(0, 0);
    std::cerr << "pg-streams: following " << arn << " (" << shards.size() << " shard"
              << (shards.size() == 1 ? "" : "s") << ", from " << from << "); Ctrl-C stops" << std::endl;

    size_t open = shards.size();
    while (!stop_requested() && open > 0) {
        bool got = false;
        for (auto &s : shards) {
            if (!s.iterator || stop_requested())
                continue;
            Result r = conn.exec("SELECT streams.get_records($1, 1000)", {*s.iterator});
            json page = json::parse(r.value(0, 0));
            for (const auto &rec : page["Records"])
                std::cout << rec.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
            if (!page["Records"].empty()) {
                got = true;
                std::cout.flush();
            }
            if (page["NextShardIterator"].is_null()) {
                s.iterator.reset();
                --open;
            } else {
                s.iterator = page["NextShardIterator"].get<std::string>();
            }
        }
        if (!got)
            sleep_unless_stopped(kIdleNapMs);
    }
    std::cout.flush();
    if (open == 0)
        std::cerr << "pg-streams: the stream is disabled and every shard has been read to its end" << std::endl;
    return kExitOk;
}

}  // namespace pgs::cli
