#include "cli/command.hpp"

namespace pgs::cli {

using nlohmann::json;

namespace {

// A request member as a bound parameter (NULL when absent).
Param member(const json &req, const std::string &key)
{
    if (!req.contains(key) || req[key].is_null())
        return std::nullopt;
    const json &v = req[key];
    return v.is_string() ? v.get<std::string>() : v.dump();
}

// The request without some members, as JSON text.
Param rest_of(const json &req, std::initializer_list<const char *> drop)
{
    json out = req;
    for (const char *k : drop)
        out.erase(k);
    return out.dump();
}

// Mapping parameters shared by create- and update-event-source-mapping.
std::vector<ParamSpec> mapping_params(bool create)
{
    std::vector<ParamSpec> p;
    if (create)
        p.push_back({"event-source-arn", "EventSourceArn", ParamType::String, true,
                     "The stream's ARN, or a table name (its enabled stream)."});
    p.push_back({"function-name", "FunctionName", ParamType::String, create, "The function's name or ARN."});
    p.push_back({"enabled", "Enabled", ParamType::Boolean, false,
                 "--enabled (default) or --no-enabled: pause or resume delivery."});
    p.push_back({"batch-size", "BatchSize", ParamType::Integer, false, "Records per batch, 1..10000 (100)."});
    p.push_back({"maximum-batching-window-in-seconds", "MaximumBatchingWindowInSeconds", ParamType::Integer, false,
                 "0..300 (0)."});
    if (create) {
        p.push_back({"starting-position", "StartingPosition", ParamType::String, false,
                     "TRIM_HORIZON, LATEST or AT_TIMESTAMP (required)."});
        p.push_back({"starting-position-timestamp", "StartingPositionTimestamp", ParamType::String, false,
                     "With AT_TIMESTAMP: epoch seconds or an ISO 8601 time."});
    }
    p.push_back({"maximum-record-age-in-seconds", "MaximumRecordAgeInSeconds", ParamType::Integer, false,
                 "-1 or 60..604800 (-1)."});
    p.push_back({"bisect-batch-on-function-error", "BisectBatchOnFunctionError", ParamType::Boolean, false,
                 "--bisect-batch-on-function-error or --no-bisect-batch-on-function-error."});
    p.push_back({"maximum-retry-attempts", "MaximumRetryAttempts", ParamType::Integer, false, "-1..10000 (-1)."});
    p.push_back({"parallelization-factor", "ParallelizationFactor", ParamType::Integer, false, "1 (validated 1..10)."});
    p.push_back({"tumbling-window-in-seconds", "TumblingWindowInSeconds", ParamType::Integer, false,
                 "0 (validated 0..900)."});
    p.push_back({"function-response-types", "FunctionResponseTypes", ParamType::StringList, false,
                 "ReportBatchItemFailures"});
    p.push_back({"destination-config", "DestinationConfig", ParamType::Structure, false,
                 "OnFailure={Destination=streams.failed_batches} (a table or a function), or JSON."});
    p.push_back({"filter-criteria", "FilterCriteria", ParamType::Structure, false, "JSON: {\"Filters\":[{\"Pattern\":\"{\\\"eventName\\\":[\\\"INSERT\\\"]}\"}]}."});
    return p;
}

std::vector<CommandSpec> build_table()
{
    std::vector<CommandSpec> t;

    // dynamodbstreams ------------------------------------------------------
    t.push_back({"dynamodbstreams", "list-streams", "ListStreams", "Lists the enabled and retained streams.",
                 {{"table-name", "TableName", ParamType::String, false, "Only the streams of this table."}},
                 [](const json &r) {
                     return Call{"SELECT streams.list_streams($1::regclass)", {member(r, "TableName")}};
                 }});
    t.push_back({"dynamodbstreams", "describe-stream", "DescribeStream", "Describes a stream and its shards.",
                 {{"stream-arn", "StreamArn", ParamType::String, true, "The stream's ARN."}},
                 [](const json &r) { return Call{"SELECT streams.describe_stream($1)", {member(r, "StreamArn")}}; }});
    t.push_back({"dynamodbstreams", "get-shard-iterator", "GetShardIterator", "Returns an iterator into one shard.",
                 {{"stream-arn", "StreamArn", ParamType::String, true, "The stream's ARN."},
                  {"shard-id", "ShardId", ParamType::String, true, "A ShardId of describe-stream."},
                  {"shard-iterator-type", "ShardIteratorType", ParamType::String, true,
                   "TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER."},
                  {"sequence-number", "SequenceNumber", ParamType::String, false,
                   "With AT_/AFTER_SEQUENCE_NUMBER."}},
                 [](const json &r) {
                     return Call{"SELECT jsonb_build_object('ShardIterator', streams.get_shard_iterator($1, $2, $3, $4))",
                                 {member(r, "StreamArn"), member(r, "ShardId"), member(r, "ShardIteratorType"),
                                  member(r, "SequenceNumber")}};
                 }});
    t.push_back({"dynamodbstreams", "get-records", "GetRecords", "Reads records from a shard iterator.",
                 {{"shard-iterator", "ShardIterator", ParamType::String, true, "From get-shard-iterator or NextShardIterator."},
                  {"limit", "Limit", ParamType::Integer, false, "1..1000 records (1000)."}},
                 [](const json &r) {
                     return Call{"SELECT streams.get_records($1, coalesce($2::integer, 1000))",
                                 {member(r, "ShardIterator"), member(r, "Limit")}};
                 }});

    // dynamodb ---------------------------------------------------------------
    ParamSpec spec{"stream-specification", "StreamSpecification", ParamType::Structure, false,
                   "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES|NEW_IMAGE|OLD_IMAGE|KEYS_ONLY",
                   false, {"StreamEnabled"}};
    ParamSpec shards{"shard-count", "ShardCount", ParamType::Integer, false, "pg_streams: shards of the stream (4)."};
    ParamSpec retention{"retention-period", "RetentionPeriod", ParamType::String, false,
                        "pg_streams: how long records are kept, an interval ('24 hours')."};
    auto enable_call = [](const json &r) {
        Param view = std::nullopt;
        if (r.contains("StreamSpecification") && r["StreamSpecification"].is_object())
            view = member(r["StreamSpecification"], "StreamViewType");
        return Call{"SELECT streams.enable_stream($1::regclass, coalesce($2, 'NEW_AND_OLD_IMAGES'), "
                    "coalesce($3::integer, 4), coalesce($4::interval, '24 hours'))",
                    {member(r, "TableName"), view, member(r, "ShardCount"), member(r, "RetentionPeriod")}};
    };
    auto disable_call = [](const json &r) {
        return Call{"SELECT streams.disable_stream($1::regclass)", {member(r, "TableName")}};
    };
    t.push_back({"dynamodb", "enable-stream", "UpdateTable", "Turns a table's stream on.",
                 {{"table-name", "TableName", ParamType::String, true, "The table (schema-qualified or on search_path)."},
                  spec, shards, retention},
                 enable_call});
    t.push_back({"dynamodb", "disable-stream", "UpdateTable", "Turns a table's stream off (it stays readable).",
                 {{"table-name", "TableName", ParamType::String, true, "The table."}}, disable_call});
    ParamSpec spec_required = spec;
    spec_required.required = true;
    t.push_back({"dynamodb", "update-table", "UpdateTable",
                 "Turns a table's stream on (StreamEnabled=true) or off (StreamEnabled=false).",
                 {{"table-name", "TableName", ParamType::String, true, "The table."}, spec_required, shards, retention},
                 [enable_call, disable_call](const json &r) {
                     json s = r.value("StreamSpecification", json::object());
                     bool on = s.is_object() && s.contains("StreamEnabled") && s["StreamEnabled"].is_boolean() &&
                               s["StreamEnabled"].get<bool>();
                     return on ? enable_call(r) : disable_call(r);
                 }});
    t.push_back({"dynamodb", "describe-table", "DescribeTable",
                 "The table's latest stream: Table.LatestStreamArn and Table.LatestStreamLabel.",
                 {{"table-name", "TableName", ParamType::String, true, "The table."}},
                 [](const json &r) {
                     return Call{"SELECT jsonb_build_object('Table', jsonb_strip_nulls(jsonb_build_object("
                                 "'TableName', $1::regclass::text, 'LatestStreamArn', l->>'StreamArn', "
                                 "'LatestStreamLabel', l->>'StreamLabel'))) "
                                 "FROM (SELECT streams.list_streams($1::regclass)->'Streams'->-1 AS l) x",
                                 {member(r, "TableName")}};
                 }});

    // lambda: functions ------------------------------------------------------
    t.push_back({"lambda", "create-function", "CreateFunction",
                 "Registers a SQL function handler(event jsonb) as a target.",
                 {{"function-name", "FunctionName", ParamType::String, true, "[a-zA-Z0-9-_]{1,64}"},
                  {"handler", "Handler", ParamType::String, true, "The SQL function, e.g. 'orders_to_search(jsonb)'."},
                  {"timeout", "Timeout", ParamType::Integer, false, "Seconds, 1..900 (3)."},
                  {"description", "Description", ParamType::String, false, "Free text."}},
                 [](const json &r) {
                     return Call{"SELECT streams.create_function($1, $2::regprocedure, coalesce($3::integer, 3), "
                                 "coalesce($4, ''))",
                                 {member(r, "FunctionName"), member(r, "Handler"), member(r, "Timeout"),
                                  member(r, "Description")}};
                 }});
    t.push_back({"lambda", "create-http-function", "CreateHttpFunction",
                 "Registers an HTTP endpoint as a target (needs EXECUTE on streams.create_http_function).",
                 {{"function-name", "FunctionName", ParamType::String, true, "[a-zA-Z0-9-_]{1,64}"},
                  {"url", "Url", ParamType::String, true, "http:// or https:// URL."},
                  {"timeout", "Timeout", ParamType::Integer, false, "Seconds, 1..900 (3)."},
                  {"description", "Description", ParamType::String, false, "Free text."},
                  {"headers", "Headers", ParamType::Structure, false, "Name=Value,... or JSON."},
                  {"secret-headers", "SecretHeaders", ParamType::Structure, false,
                   "Name=Value,... or JSON; best from file://PATH or env:NAME. Never shown.", true},
                  {"signing-secret", "SigningSecret", ParamType::String, false,
                   "HMAC-SHA256 key (16+ characters); best from file://PATH or env:NAME. Never shown.", true},
                  {"verify-tls", "VerifyTls", ParamType::Boolean, false, "--verify-tls (default) or --no-verify-tls."},
                  {"ca-file", "CaFile", ParamType::String, false, "CA bundle on the server."},
                  {"max-concurrency", "MaxConcurrency", ParamType::Integer, false, "Requests in flight, 1..1000."}},
                 [](const json &r) {
                     return Call{"SELECT streams.create_http_function($1, $2, $3::jsonb)",
                                 {member(r, "FunctionName"), member(r, "Url"), rest_of(r, {"FunctionName", "Url"})}};
                 }});
    t.push_back({"lambda", "get-function", "GetFunction", "Describes a target.",
                 {{"function-name", "FunctionName", ParamType::String, true, "Name or ARN."}},
                 [](const json &r) { return Call{"SELECT streams.get_function($1)", {member(r, "FunctionName")}}; }});
    t.push_back({"lambda", "list-functions", "ListFunctions", "Lists the targets.", {},
                 [](const json &) { return Call{"SELECT streams.list_functions()", {}}; }});
    t.push_back({"lambda", "update-function-configuration", "UpdateFunctionConfiguration",
                 "Changes a target's Timeout and/or Description.",
                 {{"function-name", "FunctionName", ParamType::String, true, "Name or ARN."},
                  {"timeout", "Timeout", ParamType::Integer, false, "Seconds, 1..900."},
                  {"description", "Description", ParamType::String, false, "Free text."}},
                 [](const json &r) {
                     return Call{"SELECT streams.update_function_configuration($1, $2::jsonb)",
                                 {member(r, "FunctionName"), rest_of(r, {"FunctionName"})}};
                 }});
    t.push_back({"lambda", "delete-function", "DeleteFunction", "Deletes a target (its mappings stay).",
                 {{"function-name", "FunctionName", ParamType::String, true, "Name or ARN."}},
                 [](const json &r) { return Call{"SELECT streams.delete_function($1)", {member(r, "FunctionName")}}; }});
    t.push_back({"lambda", "invoke", "Invoke",
                 "Calls a SQL function once with an event, as a mapping would (prints its response).",
                 {{"function-name", "FunctionName", ParamType::String, true, "Name or ARN."},
                  {"payload", "Payload", ParamType::Structure, true, "The event, JSON (e.g. file://event.json)."}},
                 [](const json &r) {
                     return Call{"SELECT streams.invoke($1, $2::jsonb)", {member(r, "FunctionName"), member(r, "Payload")}};
                 }});

    // lambda: event source mappings --------------------------------------------
    t.push_back({"lambda", "create-event-source-mapping", "CreateEventSourceMapping",
                 "Maps a stream to a target.", mapping_params(true), [](const json &r) {
                     return Call{"SELECT streams.create_event_source_mapping($1::jsonb)", {Param(r.dump())}};
                 }});
    std::vector<ParamSpec> upd = mapping_params(false);
    upd.insert(upd.begin(), {"uuid", "UUID", ParamType::String, true, "The mapping's UUID."});
    t.push_back({"lambda", "update-event-source-mapping", "UpdateEventSourceMapping",
                 "Changes a mapping (--no-enabled pauses it, --enabled resumes it).", upd, [](const json &r) {
                     return Call{"SELECT streams.update_event_source_mapping($1::uuid, $2::jsonb)",
                                 {member(r, "UUID"), rest_of(r, {"UUID"})}};
                 }});
    t.push_back({"lambda", "get-event-source-mapping", "GetEventSourceMapping", "Describes a mapping.",
                 {{"uuid", "UUID", ParamType::String, true, "The mapping's UUID."}},
                 [](const json &r) {
                     return Call{"SELECT streams.get_event_source_mapping($1::uuid)", {member(r, "UUID")}};
                 }});
    t.push_back({"lambda", "list-event-source-mappings", "ListEventSourceMappings", "Lists mappings.",
                 {{"event-source-arn", "EventSourceArn", ParamType::String, false, "Only of this stream (ARN or table)."},
                  {"function-name", "FunctionName", ParamType::String, false, "Only of this function."}},
                 [](const json &r) {
                     return Call{"SELECT streams.list_event_source_mappings($1, $2)",
                                 {member(r, "EventSourceArn"), member(r, "FunctionName")}};
                 }});
    t.push_back({"lambda", "delete-event-source-mapping", "DeleteEventSourceMapping", "Deletes a mapping.",
                 {{"uuid", "UUID", ParamType::String, true, "The mapping's UUID."}},
                 [](const json &r) {
                     return Call{"SELECT streams.delete_event_source_mapping($1::uuid)", {member(r, "UUID")}};
                 }});
    return t;
}

}  // namespace

const std::vector<CommandSpec> &command_table()
{
    static const std::vector<CommandSpec> table = build_table();
    return table;
}

const CommandSpec *find_command(const std::string &service, const std::string &name)
{
    for (const auto &c : command_table())
        if (c.service == service && c.name == name)
            return &c;
    return nullptr;
}

const std::vector<std::pair<std::string, std::string>> &service_list()
{
    static const std::vector<std::pair<std::string, std::string>> services{
        {"dynamodbstreams", "Read streams: list-streams, describe-stream, get-shard-iterator, get-records."},
        {"dynamodb", "Turn a table's stream on and off: enable-stream, disable-stream, update-table, describe-table."},
        {"lambda", "Targets and event source mappings: create-function, create-event-source-mapping, ..."},
        {"tail", "pg-streams tail TABLE_OR_ARN [--from trim-horizon|latest|SEQ] [--shard ID]: follow a stream."},
        {"stats", "pg-streams stats [--watch [SECONDS]]: streams.event_source_mapping_stats as a table."},
    };
    return services;
}

}  // namespace pgs::cli
