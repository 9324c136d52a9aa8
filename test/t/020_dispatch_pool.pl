# The dispatcher pool: 40 mappings served by the default two dispatcher
# workers (all deliver, the number of processes does not grow), slow SQL
# handlers of two mappings running side by side on the two workers while a
# slow handler on one worker does not stop the mappings of the other,
# disable/enable/delete on a shared worker, and kill -9 of a pool worker in
# the middle of a backlog (its mappings go on, every record's effects once).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use PgStreamsTest;

my $node = new_streams_node("pool");
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

sub dispatchers
{
	return $node->safe_psql($db,
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch' AND datname = current_database()});
}

# Four streams, ten mappings each; mapping i writes (i, id) for every record.
$node->safe_psql($db, q{
CREATE TABLE out (m int, id int);
DO $$
BEGIN
    FOR t IN 1..4 LOOP
        EXECUTE format('CREATE TABLE src%s (id int PRIMARY KEY, v int)', t);
        PERFORM streams.enable_stream(format('src%s', t)::regclass, 'NEW_IMAGE', 2);
    END LOOP;
END $$;
});
$node->safe_psql($db, q{
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXECUTE format($f$CREATE FUNCTION h%s(e jsonb) RETURNS void LANGUAGE sql AS
            'INSERT INTO out SELECT %s, (r->''dynamodb''->''Keys''->''id''->>''N'')::int FROM jsonb_array_elements(e->''Records'') r'$f$, i, i);
        PERFORM streams.create_function(format('h%s', i), format('h%s(jsonb)', i)::regprocedure);
        PERFORM streams.create_event_source_mapping(jsonb_build_object(
            'EventSourceArn', format('src%s', (i - 1) / 10 + 1), 'FunctionName', format('h%s', i),
            'StartingPosition', 'TRIM_HORIZON', 'BatchSize', 10));
    END LOOP;
END $$;
});
ok($node->poll_query_until($db, q{SELECT count(*) = 40 FROM streams.event_source_mapping WHERE state = 'Enabled'}),
	'all 40 mappings reach Enabled');
is(dispatchers(), '2', 'two dispatcher processes serve them');
is($node->safe_psql($db, q{SELECT string_agg(mappings::text, ',' ORDER BY worker) FROM streams.dispatch_worker_stats}),
	'20,20', 'the mappings are spread evenly over the pool');

$node->safe_psql($db, q{
INSERT INTO src1 SELECT g, 0 FROM generate_series(1, 25) g;
INSERT INTO src2 SELECT g, 0 FROM generate_series(1, 25) g;
INSERT INTO src3 SELECT g, 0 FROM generate_series(1, 25) g;
INSERT INTO src4 SELECT g, 0 FROM generate_series(1, 25) g;
});
ok($node->poll_query_until($db, q{SELECT count(*) = 1000 FROM out}), 'every mapping delivers every record of its stream');
is($node->safe_psql($db, q{SELECT count(DISTINCT (m, id)) || ' ' || count(DISTINCT m) FROM out}), '1000 40',
	'each (mapping, record) once, from all 40 mappings');
is(dispatchers(), '2', 'still two dispatcher processes after delivering');
is($node->safe_psql($db, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_streams %' AND datname = current_database()}),
	'4', 'the database has four pg_streams processes: capture, appender, two dispatchers');

# --- Slow handlers ----------------------------------------------------------
# Two more mappings whose handlers sleep: the least busy worker takes each.
$node->safe_psql($db, q{
CREATE TABLE slow_out (m int, id int);
CREATE TABLE slow1 (id int PRIMARY KEY);
CREATE TABLE slow2 (id int PRIMARY KEY);
SELECT streams.enable_stream('slow1', 'NEW_IMAGE', 1);
SELECT streams.enable_stream('slow2', 'NEW_IMAGE', 1);
CREATE FUNCTION s1(e jsonb) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(8); INSERT INTO slow_out VALUES (1, 1) $$;
CREATE FUNCTION s2(e jsonb) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(8); INSERT INTO slow_out VALUES (2, 1) $$;
SELECT streams.create_function('s1', 's1(jsonb)', 60);
SELECT streams.create_function('s2', 's2(jsonb)', 60);
});
my $u1 = $node->safe_psql($db, q{SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"slow1","FunctionName":"s1","StartingPosition":"TRIM_HORIZON"}')->>'UUID'});
my $u2 = $node->safe_psql($db, q{SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"slow2","FunctionName":"s2","StartingPosition":"TRIM_HORIZON"}')->>'UUID'});
ok($node->poll_query_until($db, qq{SELECT count(*) = 2 FROM streams.event_source_mapping WHERE uuid IN ('$u1', '$u2') AND state = 'Enabled'}),
	'the slow mappings are enabled');
my $w1 = $node->safe_psql($db, qq{SELECT worker FROM streams.dispatch_worker_stats WHERE '$u1' = ANY (mapping_uuids)});
my $w2 = $node->safe_psql($db, qq{SELECT worker FROM streams.dispatch_worker_stats WHERE '$u2' = ANY (mapping_uuids)});
isnt($w1, $w2, 'the two slow mappings are on different workers');
my $p1 = $node->safe_psql($db, qq{SELECT pid FROM streams.dispatch_worker_stats WHERE worker = $w1});

# One slow handler runs: the other worker's mappings go on meanwhile.
$node->safe_psql($db, q{INSERT INTO slow1 VALUES (1)});
ok($node->poll_query_until($db, qq{SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $p1}),
	'the slow handler of one mapping runs');
my @other = split /\n/, $node->safe_psql($db, qq{
	SELECT substr(m.function_name, 2) FROM streams.event_source_mapping m
	JOIN streams.dispatch_worker_stats w ON m.uuid = ANY (w.mapping_uuids)
	WHERE w.worker <> $w1 AND m.function_name ~ '^h[0-9]+\$' AND substr(m.function_name, 2)::int <= 10});
ok(scalar(@other) > 0, 'mappings of src1 run on the other worker');
$node->safe_psql($db, q{INSERT INTO src1 VALUES (100, 0)});
my $others = join(',', @other);
ok($node->poll_query_until($db, qq{SELECT count(*) = ${\ scalar(@other)} FROM out WHERE id = 100 AND m IN ($others)}),
	"the other worker's mappings deliver while it sleeps");
is($node->safe_psql($db, qq{SELECT wait_event FROM pg_stat_activity WHERE pid = $p1}), 'PgSleep',
	'the slow handler was still running then');
is($node->safe_psql($db, q{SELECT count(*) FROM slow_out}), '0', 'and had not finished');

# Both slow handlers at once, one on each worker.
$node->safe_psql($db, q{INSERT INTO slow2 VALUES (1)});
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM pg_stat_activity
	WHERE backend_type = 'pg_streams dispatch' AND wait_event = 'PgSleep'}),
	'two slow handlers run side by side');
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM slow_out}), 'both finish');
ok($node->poll_query_until($db, q{SELECT count(*) = 10 FROM out WHERE id = 100}), 'every mapping of src1 delivered the record');

# --- Disable, enable and delete on shared workers ---------------------------
my $u3 = $node->safe_psql($db, q{SELECT uuid FROM streams.event_source_mapping WHERE function_name = 'h3'});
my $u4 = $node->safe_psql($db, q{SELECT uuid FROM streams.event_source_mapping WHERE function_name = 'h4'});
$node->safe_psql($db, qq{SELECT streams.update_event_source_mapping('$u3', '{"Enabled": false}')});
$node->safe_psql($db, qq{SELECT streams.delete_event_source_mapping('$u4')});
ok($node->poll_query_until($db, qq{SELECT state = 'Disabled' FROM streams.event_source_mapping WHERE uuid = '$u3'}),
	'a disabled mapping becomes Disabled');
ok($node->poll_query_until($db, q{SELECT sum(mappings) = 40 FROM streams.dispatch_worker_stats}),
	'the pool lets go of the disabled and the deleted mapping');
$node->safe_psql($db, q{INSERT INTO src1 VALUES (101, 0)});
ok($node->poll_query_until($db, q{SELECT count(*) = 8 FROM out WHERE id = 101}), 'the other mappings of the stream deliver');
is($node->safe_psql($db, q{SELECT count(*) FROM out WHERE id = 101 AND m IN (3, 4)}), '0',
	'the disabled and the deleted mapping do not');
$node->safe_psql($db, qq{SELECT streams.update_event_source_mapping('$u3', '{"Enabled": true, "BatchSize": 1}')});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM out WHERE id = 101 AND m = 3}),
	're-enabled, it delivers what it missed');
is(dispatchers(), '2', 'still two dispatcher processes');

# --- A deadlock or serialization failure does not use up retries ----------
# The handler fails with 40P01 twice, then with 40001 twice (a sequence
# counts calls: nextval is not rolled back), then works; with
# MaximumRetryAttempts 0 any ordinary error would send the batch to OnFailure.
$node->safe_psql($db, q{
CREATE TABLE dl (id int PRIMARY KEY);
CREATE TABLE dl_out (id int);
CREATE TABLE dl_failed (record jsonb);
CREATE SEQUENCE dl_calls;
SELECT streams.enable_stream('dl', 'KEYS_ONLY', 1);
CREATE FUNCTION dl_h(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE n bigint := nextval('dl_calls');
BEGIN
    IF n <= 2 THEN RAISE EXCEPTION 'deadlock detected (test)' USING ERRCODE = '40P01'; END IF;
    IF n <= 4 THEN RAISE EXCEPTION 'could not serialize access (test)' USING ERRCODE = '40001'; END IF;
    INSERT INTO dl_out SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r;
END $$;
SELECT streams.create_function('dl_h', 'dl_h(jsonb)');
SELECT streams.create_event_source_mapping('{"EventSourceArn":"dl","FunctionName":"dl_h","StartingPosition":"TRIM_HORIZON",
    "MaximumRetryAttempts":0,"DestinationConfig":{"OnFailure":{"Destination":"dl_failed"}}}');
INSERT INTO dl VALUES (1), (2);
});
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM dl_out}, 't', 60),
	'a handler failing with 40P01 and 40001 is retried until it works');
is($node->safe_psql($db, q{SELECT count(*) FROM dl_failed}), '0', 'without using up MaximumRetryAttempts (0): nothing sent to OnFailure');
is($node->safe_psql($db, q{SELECT last_value FROM dl_calls}), '5', 'four failed calls, then one that worked');
is($node->safe_psql($db, q{SELECT throttles || ' ' || retries || ' ' || failed_batches FROM streams.event_source_mapping_stats WHERE function_name = 'dl_h'}),
	'4 0 0', 'counted as throttles, not as retries');

# --- kill -9 of a pool worker in the middle of a backlog --------------------
$node->safe_psql($db, q{INSERT INTO src2 SELECT g, 0 FROM generate_series(1000, 1299) g});
ok($node->poll_query_until($db, q{SELECT count(*) > 300 FROM out WHERE id >= 1000}), 'delivery of a backlog under way');
my $victim = $node->safe_psql($db, q{SELECT pid FROM streams.dispatch_worker_stats WHERE worker = 0});
like($victim, qr/^\d+$/, 'a pool worker to kill');
my $at = -s $node->logfile;
is(kill('KILL', $victim), 1, 'kill -9 reached the pool worker');
ok($node->wait_for_log(qr/\(PID $victim\) was terminated by signal 9/, $at), 'the postmaster saw it die of kill -9');
ok($node->poll_query_until($db, q{SELECT count(*) = 3000 FROM out WHERE id >= 1000}, 't', 180),
	'all ten mappings of the stream delivered the backlog after the crash');
sleep(1);
is($node->safe_psql($db, q{SELECT count(*) || ' ' || count(DISTINCT (m, id)) FROM out WHERE id >= 1000}), '3000 3000',
	'kill -9 of a pool worker: every record\'s effects exactly once');
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch'}),
	'the pool is two workers again');

$node->stop;
done_testing();
