# FilterCriteria on event source mappings (issue 15, semantics 3.6): records
# are matched before batching (BatchSize counts matches), filtered records
# never reach the target or the OnFailure destination, the checkpoint passes
# them (also when a whole read is filtered out: no invocation, backlog
# drains), records_filtered counts them, an update of the filters applies to
# records not yet in a batch, and a kill -9 keeps delivery exactly once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgStreamsTest;

my $node = new_streams_node("filters");
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

$node->safe_psql($db, q{
CREATE TABLE t_f (id int PRIMARY KEY, kind text);
SELECT streams.enable_stream('t_f', 'NEW_AND_OLD_IMAGES', 1);
CREATE TABLE inv_f (n bigserial, ids int[], events text[]);
CREATE FUNCTION h_f(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO inv_f (ids, events)
    SELECT array_agg((r #>> '{dynamodb,Keys,id,N}')::int ORDER BY o), array_agg(r->>'eventName' ORDER BY o)
    FROM jsonb_array_elements(e->'Records') WITH ORDINALITY AS x(r, o)
$$;
SELECT streams.create_function('h_f', 'h_f(jsonb)');
-- 30 inserts, a third of them 'keep', then a delete: the backlog is there
-- before the mapping starts.
INSERT INTO t_f SELECT g, CASE WHEN g % 3 = 0 THEN 'keep' ELSE 'drop' END FROM generate_series(1, 30) g;
DELETE FROM t_f WHERE id = 1;
});
ok($node->poll_query_until($db, q{SELECT count(*) = 31 FROM streams.record}), '31 records in the stream');

# Two filters, ORed: kept rows, and every REMOVE.
my $criteria = '{"Filters":[{"Pattern":"{\"dynamodb\":{\"NewImage\":{\"kind\":{\"S\":[\"keep\"]}}}}"},'
	. '{"Pattern":"{\"eventName\":[\"REMOVE\"]}"}]}';
my $uuid = $node->safe_psql($db, qq{
	SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_f","FunctionName":"h_f",
	  "StartingPosition":"TRIM_HORIZON","BatchSize":3,"FilterCriteria":$criteria}')->>'UUID'});
is($node->safe_psql($db, qq{SELECT streams.get_event_source_mapping('$uuid')->'FilterCriteria' = '$criteria'::jsonb}),
	't', 'FilterCriteria is returned as given');

ok($node->poll_query_until($db, q{SELECT coalesce(sum(cardinality(ids)), 0) = 11 FROM inv_f}), '11 matching records delivered');
is($node->safe_psql($db, q{SELECT string_agg(array_to_string(ids, ','), ' | ' ORDER BY n) FROM inv_f}),
	'3,6,9 | 12,15,18 | 21,24,27 | 30,1', 'BatchSize counts matching records only, in order');
is($node->safe_psql($db, q{SELECT string_agg(DISTINCT e, ',') FROM inv_f, unnest(events) e}), 'INSERT,REMOVE',
	'the REMOVE came through the second filter');
ok($node->poll_query_until($db, qq{
	SELECT records_filtered = 20 AND records_delivered = 11 AND invocations = 4 AND backlog = 0
	FROM streams.event_source_mapping_stats WHERE uuid = '$uuid'}), 'stats: 20 filtered, 11 delivered, backlog drained')
  or diag($node->safe_psql($db, qq{SELECT to_jsonb(s) FROM streams.event_source_mapping_stats s WHERE uuid = '$uuid'}));

# A whole read filtered out: no invocation, the checkpoint still moves.
$node->safe_psql($db, q{INSERT INTO t_f SELECT g, 'drop' FROM generate_series(101, 150) g});
ok($node->poll_query_until($db, qq{
	SELECT records_filtered = 70 AND backlog = 0 FROM streams.event_source_mapping_stats WHERE uuid = '$uuid'}),
	'50 filtered records: the backlog drains');
is($node->safe_psql($db, qq{SELECT invocations FROM streams.event_source_mapping_stats WHERE uuid = '$uuid'}), '4',
	'no invocation for a read that was filtered out');

# An update of the filters on the running mapping: records written after it
# are matched against the new filters.
$node->safe_psql($db, qq{SELECT streams.update_event_source_mapping('$uuid',
	'{"FilterCriteria":{"Filters":[{"Pattern":"{\\"dynamodb\\":{\\"NewImage\\":{\\"kind\\":{\\"S\\":[\\"other\\"]}}}}"}]}}')});
$node->safe_psql($db, q{INSERT INTO t_f SELECT g, CASE WHEN g % 2 = 0 THEN 'other' ELSE 'keep' END FROM generate_series(201, 210) g});
ok($node->poll_query_until($db, qq{
	SELECT backlog = 0 AND records_filtered = 75 FROM streams.event_source_mapping_stats WHERE uuid = '$uuid'}),
	'after the update: 5 more filtered');
is($node->safe_psql($db, q{SELECT string_agg(i::text, ',' ORDER BY i) FROM inv_f, unnest(ids) i WHERE i > 200}),
	'202,204,206,208,210', 'after the update: only the records the new filter matches are delivered');

# Filters emptied: every record is delivered again, and FilterCriteria is left out.
$node->safe_psql($db, qq{SELECT streams.update_event_source_mapping('$uuid', '{"FilterCriteria":{"Filters":[]}}')});
is($node->safe_psql($db, qq{SELECT streams.get_event_source_mapping('$uuid') ? 'FilterCriteria'}), 'f',
	'empty Filters: FilterCriteria left out');
$node->safe_psql($db, q{INSERT INTO t_f VALUES (301, 'drop')});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM inv_f WHERE 301 = ANY (ids)}), 'without filters every record is delivered');

# OnFailure: a failed batch holds only matching records.
$node->safe_psql($db, q{
CREATE TABLE t_of (id int PRIMARY KEY, kind text);
SELECT streams.enable_stream('t_of', 'NEW_IMAGE', 1);
CREATE TABLE fails (record jsonb);
CREATE FUNCTION h_fail(e jsonb) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
SELECT streams.create_function('h_fail', 'h_fail(jsonb)');
INSERT INTO t_of SELECT g, CASE WHEN g % 2 = 0 THEN 'keep' ELSE 'drop' END FROM generate_series(1, 6) g;
});
$node->safe_psql($db, q{SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_of","FunctionName":"h_fail",
	"StartingPosition":"TRIM_HORIZON","BatchSize":10,"MaximumRetryAttempts":0,
	"DestinationConfig":{"OnFailure":{"Destination":"fails"}},
	"FilterCriteria":{"Filters":[{"Pattern":"{\"dynamodb\":{\"NewImage\":{\"kind\":{\"S\":[\"keep\"]}}}}"}]}}')});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails}), 'the failed batch went to the OnFailure table');
is($node->safe_psql($db, q{
	SELECT record #>> '{DDBStreamBatchInfo,batchSize}' || ':' ||
	       (SELECT string_agg(r #>> '{dynamodb,Keys,id,N}', ',') FROM jsonb_array_elements(record #> '{payload,Records}') r)
	FROM fails}), '3:2,4,6', 'filtered records never reach the OnFailure destination');

# kill -9 of the dispatcher while it delivers a filtered stream: exactly once.
$node->safe_psql($db, q{
CREATE TABLE t_k (id int PRIMARY KEY, v text);
CREATE TABLE t_k_out (id int);
SELECT streams.enable_stream('t_k', 'NEW_IMAGE', 2);
CREATE FUNCTION h_k(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO t_k_out SELECT (r #>> '{dynamodb,Keys,id,N}')::int FROM jsonb_array_elements(e->'Records') r;
    PERFORM pg_sleep(0.02);
END $$;
SELECT streams.create_function('h_k', 'h_k(jsonb)');
});
my $k_uuid = $node->safe_psql($db, q{SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_k","FunctionName":"h_k",
	"StartingPosition":"TRIM_HORIZON","BatchSize":5,
	"FilterCriteria":{"Filters":[{"Pattern":"{\"dynamodb\":{\"NewImage\":{\"v\":{\"S\":[\"even\"]}}}}"}]}}')->>'UUID'});
$node->safe_psql($db, q{INSERT INTO t_k SELECT g, CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 1200) g});
ok($node->poll_query_until($db, q{SELECT count(*) > 50 FROM t_k_out}), 'filtered delivery under way');
my $dpid = $node->safe_psql($db, q{
	SELECT s.pid FROM pg_stat_activity s WHERE s.backend_type = 'pg_streams dispatch'
	AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = s.pid AND l.relation = 't_k_out'::regclass) LIMIT 1});
$dpid = $node->safe_psql($db, q{SELECT max(pid) FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch'})
	if $dpid eq '';
like($dpid, qr/^\d+$/, 'a dispatcher was running to be killed');
my $log_offset = -s $node->logfile;
is(kill('KILL', $dpid), 1, 'kill -9 reached the dispatcher');
ok($node->wait_for_log(qr/\(PID $dpid\) was terminated by signal 9/, $log_offset),
	'the postmaster saw the dispatcher die of kill -9');
ok($node->poll_query_until($db, qq{
	SELECT backlog = 0 FROM streams.event_source_mapping_stats WHERE uuid = '$k_uuid'}, 't', 180),
	'the filtered backlog drained after the crash');
is($node->safe_psql($db, q{SELECT count(*) || ',' || count(DISTINCT id) || ',' || count(*) FILTER (WHERE id % 2 = 1) FROM t_k_out}),
	'600,600,0', 'kill -9: every matching record exactly once, no filtered record');

$node->stop;
done_testing();
