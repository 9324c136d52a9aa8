# Tumbling windows (TumblingWindowInSeconds): a counting SQL handler gets the
# right per-window totals exactly once across a kill -9 mid-window; the
# final invocation comes by the clock, also with no records; a handler that
# returns no state fails and is retried; a state over 1 MB terminates the
# window early; an HTTP target receives the windowed envelope.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use PgStreamsTest;

my $node = new_streams_node('windows');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams; CREATE EXTENSION dblink');
ok(wait_for_worker($node, $db), 'capture worker runs');

my $connstr = $node->connstr($db);
# Invocations are logged through dblink, outside the invocation's
# transaction: rolled-back invocations are logged too.
$node->safe_psql($db, qq{
CREATE TABLE calls (n bigserial, tag text, pid int, event jsonb);
CREATE FUNCTION log_call(tag text, e jsonb) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    IF NOT 'log' = ANY (coalesce(dblink_get_connections(), '{}')) THEN
        PERFORM dblink_connect('log', \$c\$$connstr\$c\$);
    END IF;
    PERFORM dblink_exec('log', format('INSERT INTO calls (tag, pid, event) VALUES (%L, %s, %L)', tag,
        pg_backend_pid(), e));
END \$\$;
CREATE TABLE fails (record jsonb);
});

sub esm
{
	my ($json) = @_;
	return $node->safe_psql($db, qq{SELECT streams.create_event_source_mapping('$json')->>'UUID'});
}

sub q1 { return $node->safe_psql($db, $_[0]); }

# Waits for the start of a window of $size seconds (plus a margin), so that
# what is inserted next commits well inside one window.
sub at_window_start
{
	my ($size) = @_;
	my $t = time();
	my $into = $t - int($t / $size) * $size;
	sleep($size - $into + 0.1);
}

# --- A counting handler over 3 windows of 2 s, kill -9 mid-window --------
# totals_out gets each window's totals from its final invocation; oracle_out
# gets every record with its ApproximateCreationDateTime from a mapping
# without a window: the totals it implies are the expected ones.
$node->safe_psql($db, q{
CREATE TABLE t_cnt (id int PRIMARY KEY, grp text);
SELECT streams.enable_stream('t_cnt', 'NEW_IMAGE', 1);
CREATE TABLE totals_out (window_start timestamptz, grp text, n int);
CREATE TABLE oracle_out (id int, grp text, created bigint);
CREATE FUNCTION h_cnt(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    st jsonb := e->'state';
    r jsonb;
    g text;
BEGIN
    PERFORM log_call('cnt', e);
    FOR r IN SELECT * FROM jsonb_array_elements(e->'Records') LOOP
        g := r->'dynamodb'->'NewImage'->'grp'->>'S';
        st := st || jsonb_build_object(g, coalesce((st->>g)::int, 0) + 1);
    END LOOP;
    PERFORM pg_sleep(0.05);
    IF (e->>'isFinalInvokeForWindow')::boolean THEN
        INSERT INTO totals_out SELECT (e->'window'->>'start')::timestamptz, key, value::int FROM jsonb_each_text(st);
    END IF;
    RETURN jsonb_build_object('state', st);
END $$;
SELECT streams.create_function('h_cnt', 'h_cnt(jsonb)');
CREATE FUNCTION h_oracle(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO oracle_out SELECT (r->'dynamodb'->'NewImage'->'id'->>'N')::int, r->'dynamodb'->'NewImage'->'grp'->>'S',
        floor((r->'dynamodb'->>'ApproximateCreationDateTime')::numeric)::bigint FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('h_oracle', 'h_oracle(jsonb)');
});
my $u_cnt = esm('{"EventSourceArn":"t_cnt","FunctionName":"h_cnt","StartingPosition":"TRIM_HORIZON",'
	. '"BatchSize":2,"TumblingWindowInSeconds":2}');
esm('{"EventSourceArn":"t_cnt","FunctionName":"h_oracle","StartingPosition":"TRIM_HORIZON","BatchSize":100}');

# Rows of window $w: 24 in 8 transactions (one session), groups a and b.
sub insert_window
{
	my ($w) = @_;
	my $sql = '';
	for my $tx (0 .. 7)
	{
		my $from = $w * 100 + $tx * 3;
		$sql .= qq{INSERT INTO t_cnt SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END FROM generate_series($from, $from + 2) g;\n};
	}
	$node->safe_psql($db, $sql);
}

at_window_start(2);
insert_window(1);
ok($node->poll_query_until($db, q{SELECT open_windows = 1 FROM streams.event_source_mapping_stats WHERE function_name = 'h_cnt'}),
	'the stats view shows the open window');
at_window_start(2);
insert_window(2);
# Mid-window: an invocation of the second window has happened, more follow.
ok($node->poll_query_until($db, q{
	SELECT count(*) >= 1 FROM calls WHERE tag = 'cnt'
	AND (event->'window'->>'start')::timestamptz = (SELECT max((event->'window'->>'start')::timestamptz) FROM calls WHERE tag = 'cnt')
	AND EXISTS (SELECT 1 FROM jsonb_array_elements(event->'Records') r WHERE (r->'dynamodb'->'NewImage'->'id'->>'N')::int >= 200)
	AND NOT (event->>'isFinalInvokeForWindow')::boolean}), 'the second window is being aggregated');
my $dpid = q1(q{SELECT pid FROM calls WHERE tag = 'cnt' ORDER BY n DESC LIMIT 1});
like($dpid, qr/^\d+$/, 'the process running the handler is known');
my $log_offset = -s $node->logfile;
is(kill('KILL', $dpid), 1, 'kill -9 reached the process running the windowed mapping');
ok($node->wait_for_log(qr/\(PID $dpid\) was terminated by signal 9/, $log_offset),
	'the postmaster saw it die of kill -9');
ok($node->poll_query_until($db, 'SELECT 1', '1'), 'the server accepts connections again');
at_window_start(2);
insert_window(3);
# Every window's final invocation has run once the oracle's windows all have totals.
my $expected_sql = q{SELECT string_agg(w || ' ' || grp || ' ' || n, ', ' ORDER BY w, grp) FROM (
	SELECT created / 2 * 2 AS w, grp, count(*) AS n FROM oracle_out GROUP BY 1, 2) x};
my $got_sql = q{SELECT string_agg(w || ' ' || grp || ' ' || n, ', ' ORDER BY w, grp) FROM (
	SELECT extract(epoch FROM window_start)::bigint AS w, grp, sum(n) AS n FROM totals_out GROUP BY 1, 2) x};
ok($node->poll_query_until($db, q{SELECT count(*) = 72 FROM oracle_out}), 'the oracle has every record');
ok($node->poll_query_until($db, q{SELECT (SELECT count(DISTINCT window_start) FROM totals_out)
	= (SELECT count(DISTINCT created / 2) FROM oracle_out)}), 'every window has had its final invocation');
sleep(1);
my $expected = q1($expected_sql);
# Each insert_window commits within a second or so: three windows at least
# (more when the machine is slow and a window's inserts cross a boundary).
cmp_ok(q1(q{SELECT count(DISTINCT created / 2) FROM oracle_out}), '>=', 3, 'the records fell into three windows or more');
is(q1($got_sql), $expected, 'per-window totals are right, exactly once, across the kill -9');
is(q1(q{SELECT count(*) FROM (SELECT window_start, grp FROM totals_out GROUP BY 1, 2 HAVING count(*) > 1) d}), '0',
	'each window\'s totals were written once');
is(q1(q{SELECT count(*) FROM calls WHERE tag = 'cnt' AND jsonb_array_length(event->'Records') > 1
	AND (SELECT count(DISTINCT floor((r->'dynamodb'->>'ApproximateCreationDateTime')::numeric)::bigint / 2)
	     FROM jsonb_array_elements(event->'Records') r) > 1}), '0', 'no batch spans two windows');
ok($node->poll_query_until($db, q{SELECT open_windows = 0 FROM streams.event_source_mapping_stats WHERE function_name = 'h_cnt'}),
	'no window stays open once they are over');

# --- The envelope, and the final invocation with no records --------------
$node->safe_psql($db, q{
CREATE TABLE t_fin (id int PRIMARY KEY);
SELECT streams.enable_stream('t_fin', 'KEYS_ONLY', 1);
CREATE FUNCTION h_fin(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_call('fin', e);
    RETURN jsonb_build_object('state', jsonb_build_object('n', coalesce((e->'state'->>'n')::int, 0)
                                                             + jsonb_array_length(e->'Records')));
END $$;
SELECT streams.create_function('h_fin', 'h_fin(jsonb)');
});
esm('{"EventSourceArn":"t_fin","FunctionName":"h_fin","StartingPosition":"TRIM_HORIZON","TumblingWindowInSeconds":3}');
at_window_start(3);
$node->safe_psql($db, q{INSERT INTO t_fin VALUES (1), (2), (3)});
ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM calls WHERE tag = 'fin' AND (event->>'isFinalInvokeForWindow')::boolean}),
	'a final invocation came by the clock');
my $first = decode_json(q1(q{SELECT event FROM calls WHERE tag = 'fin' ORDER BY n LIMIT 1}));
my $final = decode_json(q1(q{SELECT event FROM calls WHERE tag = 'fin' AND (event->>'isFinalInvokeForWindow')::boolean ORDER BY n LIMIT 1}));
is(scalar(@{ $first->{Records} }), 3, 'the first invocation has the three records');
is_deeply($first->{state}, {}, 'a window starts with the state {}');
ok(!$first->{isFinalInvokeForWindow} && !$first->{isWindowTerminatedEarly}, 'the first invocation is neither final nor terminated early');
is(join(',', sort keys %$first), 'Records,eventSourceARN,isFinalInvokeForWindow,isWindowTerminatedEarly,shardId,state,window',
	'the windowed envelope has AWS\'s keys');
like($first->{window}{start}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'window start: ISO 8601 in seconds, Z');
like($first->{shardId}, qr/^shardId-/, 'shardId is the shard\'s id');
like($first->{eventSourceARN}, qr/^arn:aws:dynamodb:.*t_fin\/stream\//, 'eventSourceARN is the stream\'s ARN');
is(scalar(@{ $final->{Records} }), 0, 'the final invocation has no records (all were sent)');
is_deeply($final->{state}, { n => 3 }, 'the final invocation gets the state the previous one returned');
is_deeply($final->{window}, $first->{window}, 'of the same window');
is(q1(qq{SELECT (extract(epoch FROM '$first->{window}{end}'::timestamptz) - extract(epoch FROM '$first->{window}{start}'::timestamptz))::int}),
	'3', 'the window is TumblingWindowInSeconds long');
is(q1(qq{SELECT extract(epoch FROM '$first->{window}{start}'::timestamptz)::bigint % 3}), '0', 'aligned to the epoch');
sleep(1);
is(q1(q{SELECT count(*) FROM calls WHERE tag = 'fin' AND (event->>'isFinalInvokeForWindow')::boolean}), '1',
	'one final invocation per window, none for windows without records');

# --- No state in the response: the invocation fails and is retried ------
$node->safe_psql($db, q{
CREATE TABLE t_ns (id int PRIMARY KEY);
SELECT streams.enable_stream('t_ns', 'KEYS_ONLY', 1);
CREATE TABLE ns_out (id int);
CREATE FUNCTION h_ns(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_call('ns', e);
    INSERT INTO ns_out SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r;
    -- The first attempt answers without state, as does every attempt for id 99.
    IF (SELECT count(*) FROM calls WHERE tag = 'ns') = 1
       OR e->'Records' @> '[{"dynamodb": {"Keys": {"id": {"N": "99"}}}}]' THEN
        RETURN '{"batchItemFailures": []}';
    END IF;
    RETURN '{"state": {}}';
END $$;
SELECT streams.create_function('h_ns', 'h_ns(jsonb)');
});
esm('{"EventSourceArn":"t_ns","FunctionName":"h_ns","StartingPosition":"TRIM_HORIZON","TumblingWindowInSeconds":60,'
	. '"MaximumRetryAttempts":1,"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
$node->safe_psql($db, q{INSERT INTO t_ns VALUES (1)});
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM calls WHERE tag = 'ns'}), 'a response without state is retried');
ok($node->poll_query_until($db, q{SELECT retries >= 1 FROM streams.event_source_mapping_stats WHERE function_name = 'h_ns'}),
	'counted as a retry');
is(q1(q{SELECT last_error FROM streams.event_source_mapping_stats WHERE function_name = 'h_ns'}),
	'a function of a mapping with TumblingWindowInSeconds must return a top-level state object', 'last_error says why');
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM ns_out}), 'the handler\'s work is kept once it returns a state');
$node->safe_psql($db, q{INSERT INTO t_ns VALUES (99)});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails}), 'always no state: the batch goes to OnFailure after its retries');
is(q1(q{SELECT count(*) FROM calls WHERE tag = 'ns' AND event->'Records' @> '[{"dynamodb": {"Keys": {"id": {"N": "99"}}}}]'}),
	'2', 'MaximumRetryAttempts 1: two invocations');
is(q1(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM ns_out}), '1', 'failed invocations left no work behind');
is(q1(q{SELECT record->'requestContext'->>'condition' FROM fails}), 'RetryAttemptsExhausted', 'OnFailure record condition');

# --- State over 1 MB terminates the window early -------------------------
$node->safe_psql($db, q{
CREATE TABLE t_big (id int PRIMARY KEY);
SELECT streams.enable_stream('t_big', 'KEYS_ONLY', 1);
CREATE FUNCTION h_big(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_call('big', e);
    IF jsonb_array_length(e->'Records') > 0 THEN
        RETURN jsonb_build_object('state', jsonb_build_object('blob', repeat('x', 1100000)));
    END IF;
    RETURN '{"state": {"small": true}}';
END $$;
SELECT streams.create_function('h_big', 'h_big(jsonb)');
});
esm('{"EventSourceArn":"t_big","FunctionName":"h_big","StartingPosition":"TRIM_HORIZON","TumblingWindowInSeconds":3}');
at_window_start(3);
$node->safe_psql($db, q{INSERT INTO t_big VALUES (1)});
ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM calls WHERE tag = 'big' AND (event->>'isFinalInvokeForWindow')::boolean}),
	'the window still ends with a final invocation');
my @big = map { decode_json($_) } split /\n/, q1(q{SELECT event FROM calls WHERE tag = 'big' ORDER BY n});
is(scalar(@big), 2, 'two invocations: the records, then the final one');
ok(!$big[0]{isWindowTerminatedEarly}, 'the first was not terminated early');
ok($big[1]{isWindowTerminatedEarly}, 'after a state over 1 MB the window is terminated early');
is_deeply($big[1]{state}, {}, 'and goes on with the state {}');
is_deeply($big[1]{window}, $big[0]{window}, 'in the same window');
is(q1(q{SELECT count(*) FROM streams.mapping_shard ms JOIN streams.event_source_mapping m USING (mapping_id)
	WHERE m.function_name = 'h_big' AND pg_column_size(ms.window_state) > 1048576}), '0', 'no state over 1 MB is kept');

# --- A failing final invocation: retried, then the window is closed ------
$node->safe_psql($db, q{
CREATE TABLE t_ff (id int PRIMARY KEY);
SELECT streams.enable_stream('t_ff', 'KEYS_ONLY', 1);
CREATE FUNCTION h_ff(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_call('ff', e);
    IF (e->>'isFinalInvokeForWindow')::boolean THEN
        RAISE EXCEPTION 'the final invocation fails';
    END IF;
    RETURN '{"state": {"seen": true}}';
END $$;
SELECT streams.create_function('h_ff', 'h_ff(jsonb)');
});
esm('{"EventSourceArn":"t_ff","FunctionName":"h_ff","StartingPosition":"TRIM_HORIZON","TumblingWindowInSeconds":2,'
	. '"MaximumRetryAttempts":1,"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
my $ff_offset = -s $node->logfile;
at_window_start(2);
$node->safe_psql($db, q{INSERT INTO t_ff VALUES (1)});
ok($node->wait_for_log(qr/the final invocation of window \S+ of \S+ failed 2 times; the window is closed without it/, $ff_offset),
	'a final invocation without records that fails 1 + MaximumRetryAttempts times closes the window (logged)');
is(q1(q{SELECT count(*) FROM calls WHERE tag = 'ff' AND (event->>'isFinalInvokeForWindow')::boolean}), '2',
	'the final invocation was retried once');
is(q1(q{SELECT string_agg(DISTINCT event->>'state', ',') FROM calls WHERE tag = 'ff' AND (event->>'isFinalInvokeForWindow')::boolean}),
	'{"seen": true}', 'each attempt got the window\'s state');
ok($node->poll_query_until($db, q{SELECT open_windows = 0 FROM streams.event_source_mapping_stats WHERE function_name = 'h_ff'}),
	'the window is closed');
$node->safe_psql($db, q{INSERT INTO t_ff VALUES (2)});
ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM calls WHERE tag = 'ff' AND event->'state' = '{}' AND jsonb_array_length(event->'Records') = 1
	AND event->'Records' @> '[{"dynamodb": {"Keys": {"id": {"N": "2"}}}}]'}), 'the next window starts with {}');

# --- Bisect within a window ---------------------------------------------
$node->safe_psql($db, q{
CREATE TABLE t_bis (id int PRIMARY KEY);
SELECT streams.enable_stream('t_bis', 'KEYS_ONLY', 1);
CREATE TABLE bis_fails (record jsonb);
CREATE FUNCTION h_bis(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_call('bis', e);
    IF e->'Records' @> '[{"dynamodb": {"Keys": {"id": {"N": "3"}}}}]' THEN
        RAISE EXCEPTION 'record 3 fails';
    END IF;
    RETURN jsonb_build_object('state', jsonb_build_object('n', coalesce((e->'state'->>'n')::int, 0)
                                                             + jsonb_array_length(e->'Records')));
END $$;
SELECT streams.create_function('h_bis', 'h_bis(jsonb)');
});
esm('{"EventSourceArn":"t_bis","FunctionName":"h_bis","StartingPosition":"TRIM_HORIZON","TumblingWindowInSeconds":4,'
	. '"BatchSize":4,"BisectBatchOnFunctionError":true,"MaximumRetryAttempts":0,'
	. '"DestinationConfig":{"OnFailure":{"Destination":"bis_fails"}}}');
at_window_start(4);
$node->safe_psql($db, q{INSERT INTO t_bis SELECT generate_series(1, 4)});
ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM calls WHERE tag = 'bis' AND (event->>'isFinalInvokeForWindow')::boolean
	AND NOT event->'Records' @> '[{"dynamodb": {"Keys": {"id": {"N": "3"}}}}]'}), 'the bisected window ends');
is(q1(q{SELECT event->'state'->>'n' FROM calls WHERE tag = 'bis' AND (event->>'isFinalInvokeForWindow')::boolean
	AND NOT event->'Records' @> '[{"dynamodb": {"Keys": {"id": {"N": "3"}}}}]' ORDER BY n LIMIT 1})
	+ q1(q{SELECT jsonb_array_length(event->'Records') FROM calls WHERE tag = 'bis' AND (event->>'isFinalInvokeForWindow')::boolean
	AND NOT event->'Records' @> '[{"dynamodb": {"Keys": {"id": {"N": "3"}}}}]' ORDER BY n LIMIT 1}), 3,
	'the window\'s aggregate counts the three records that succeeded, once');
is(q1(q{SELECT string_agg(r->'dynamodb'->'Keys'->'id'->>'N', ',') FROM bis_fails, jsonb_array_elements(record->'payload'->'Records') r}),
	'3', 'bisect within the window isolated record 3 for OnFailure');
is(q1(q{SELECT count(DISTINCT event->'window') FROM calls WHERE tag = 'bis'}), '1', 'every invocation was of the one window');

# --- HTTP target: the windowed envelope through the loopback sink --------
my ($sink, $base) = start_sink();
ok(defined $base, 'sink is up');
sub requests
{
	my ($path) = @_;
	return decode_json(`curl -s '$base/_requests?path=$path'`);
}
$node->safe_psql($db, qq{
CREATE TABLE t_http (id int PRIMARY KEY);
SELECT streams.enable_stream('t_http', 'KEYS_ONLY', 1);
SELECT streams.create_http_function('h_http', '$base/win?body=%7B%22state%22%3A%7B%22k%22%3A1%7D%7D', '{}');
SELECT streams.create_http_function('h_http_ns', '$base/nostate?body=%7B%7D', '{}');
});
esm('{"EventSourceArn":"t_http","FunctionName":"h_http","StartingPosition":"TRIM_HORIZON","TumblingWindowInSeconds":3}');
esm('{"EventSourceArn":"t_http","FunctionName":"h_http_ns","StartingPosition":"TRIM_HORIZON","TumblingWindowInSeconds":3}');
at_window_start(3);
$node->safe_psql($db, q{INSERT INTO t_http VALUES (1), (2)});
my $got_final = 0;
for (1 .. 600)
{
	$got_final = 1, last if grep { decode_json($_->{body})->{isFinalInvokeForWindow} } @{ requests('/win') };
	sleep(0.1);
}
ok($got_final, 'the HTTP target received a final invocation');
my @reqs = @{ requests('/win') };
my @ev = map { decode_json($_->{body}) } @reqs;
is(scalar(@{ $ev[0]{Records} }), 2, 'first request: the records');
is_deeply($ev[0]{state}, {}, 'first request: state {}');
ok(exists $ev[0]{window}{start} && exists $ev[0]{window}{end} && $ev[0]{shardId} && $ev[0]{eventSourceARN},
	'first request: window, shardId, eventSourceARN');
ok($ev[-1]{isFinalInvokeForWindow} && !$ev[-1]{isWindowTerminatedEarly}, 'last request: final');
is_deeply($ev[-1]{state}, { k => 1 }, 'last request: the state the target returned');
is(scalar(@{ $ev[-1]{Records} }), 0, 'last request: no records');
my %hdr0 = map { lc($_) => $reqs[0]{headers}{$_} } keys %{ $reqs[0]{headers} };
my %hdr1 = map { lc($_) => $reqs[-1]{headers}{$_} } keys %{ $reqs[-1]{headers} };
ok($hdr0{'idempotency-key'} && $hdr1{'idempotency-key'} && $hdr0{'idempotency-key'} ne $hdr1{'idempotency-key'},
	'the idempotency key tells the window\'s invocations apart');
ok(scalar(@{ requests('/nostate') }) >= 2, 'an HTTP answer without state is retried');

$node->stop;
done_testing();
