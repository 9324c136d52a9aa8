# Event source mappings to SQL function targets: exact invocation counts for
# partial failures, response forms, bisect, record age, timeouts, discards,
# disable/enable, starting positions, owner identity and kill -9.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use PgStreamsTest;

my $node = new_streams_node("mappings");
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams; CREATE EXTENSION dblink');
ok(wait_for_worker($node, $db), 'capture worker runs');

# Every invocation is logged through dblink, outside the invocation's
# transaction, so that rolled-back invocations are counted too.
my $connstr = $node->connstr($db);
$node->safe_psql($db, qq{
CREATE TABLE invocations (n bigserial, tag text, ids int[]);
CREATE FUNCTION log_seen(tag text, e jsonb) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    IF NOT 'log' = ANY (coalesce(dblink_get_connections(), '{}')) THEN
        PERFORM dblink_connect('log', \$c\$$connstr\$c\$);
    END IF;
    PERFORM dblink_exec('log', format('INSERT INTO invocations (tag, ids) VALUES (%L, %L)', tag,
        ARRAY(SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r)));
END \$\$;
CREATE FUNCTION ids(e jsonb) RETURNS int[] LANGUAGE sql AS \$\$
    SELECT ARRAY(SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r)
\$\$;
CREATE FUNCTION seq_of(e jsonb, id int) RETURNS text LANGUAGE sql AS \$\$
    SELECT r->'dynamodb'->>'SequenceNumber' FROM jsonb_array_elements(e->'Records') r
    WHERE (r->'dynamodb'->'Keys'->'id'->>'N')::int = id
\$\$;
CREATE TABLE fails (record jsonb);
});

sub esm
{
	my ($json) = @_;
	return $node->safe_psql($db, qq{SELECT streams.create_event_source_mapping('$json')->>'UUID'});
}

sub seen_count
{
	my ($tag, $id) = @_;
	return $node->safe_psql($db,
		qq{SELECT count(*) FROM invocations, unnest(ids) i WHERE tag = '$tag' AND i = $id});
}

# Record-age test data first: it must be older than 60 s when the mapping starts.
$node->safe_psql($db, q{
CREATE TABLE t_age (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_age', 'NEW_IMAGE', 1);
INSERT INTO t_age VALUES (1, 'old');
});
my $age_start = time();

# --- ReportBatchItemFailures: BatchSize 3, MRA 3, the 6th of 6 fails -----
$node->safe_psql($db, q{
CREATE TABLE t_pf (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_pf', 'NEW_IMAGE', 1);
CREATE FUNCTION h_pf(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_seen('pf', e);
    IF seq_of(e, 6) IS NULL THEN
        RETURN '{"batchItemFailures": []}';
    END IF;
    RETURN jsonb_build_object('batchItemFailures', jsonb_build_array(jsonb_build_object('itemIdentifier', seq_of(e, 6))));
END $$;
SELECT streams.create_function('h_pf', 'h_pf(jsonb)');
});
esm('{"EventSourceArn":"t_pf","FunctionName":"h_pf","StartingPosition":"TRIM_HORIZON","BatchSize":3,'
	. '"MaximumRetryAttempts":3,"FunctionResponseTypes":["ReportBatchItemFailures"],'
	. '"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
$node->safe_psql($db, q{INSERT INTO t_pf SELECT g, 'v' || g FROM generate_series(1, 6) g});

# --- Response forms: one stream, one mapping per form, MRA 1 ------------
my @failure_forms = ('{"batchItemFailures":[{"itemIdentifier":123}]}',
	'{"batchItemFailures":[{"itemIdentifier":""}]}', '{"batchItemFailures":[{"itemIdentifier":null}]}',
	'{"batchItemFailures":[{"foo":123}]}', '{"batchItemFailures":[{"foo":null}]}',
	'{"batchItemFailures":[{"itemIdentifier":"10000000000000000000000000000"}]}');
my @success_forms = ('[]', 'null', '{}', '{"batchItemFailures":[]}', '{"batchItemFailures":null}');
$node->safe_psql($db, q{
CREATE TABLE t_forms (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_forms', 'NEW_IMAGE', 1);
});
my $i = 0;
for my $form (@failure_forms, @success_forms)
{
	$i++;
	my $ret = $form eq 'null' ? 'NULL' : "'$form'::jsonb";
	$node->safe_psql($db, qq{
CREATE FUNCTION h_form$i(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM log_seen('form$i', e);
    RETURN $ret;
END \$\$;
SELECT streams.create_function('h_form$i', 'h_form$i(jsonb)');
});
	esm(qq({"EventSourceArn":"t_forms","FunctionName":"h_form$i","StartingPosition":"TRIM_HORIZON",)
		. qq("MaximumRetryAttempts":1,"FunctionResponseTypes":["ReportBatchItemFailures"],)
		. qq("DestinationConfig":{"OnFailure":{"Destination":"fails"}}}));
}
$node->safe_psql($db, q{INSERT INTO t_forms VALUES (1, 'x')});

# --- Bisect: one poison record among 100 --------------------------------
$node->safe_psql($db, q{
CREATE TABLE t_bis (id int PRIMARY KEY, v text);
CREATE TABLE t_bis_out (id int);
SELECT streams.enable_stream('t_bis', 'NEW_IMAGE', 1);
CREATE FUNCTION h_bis(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_seen('bis', e);
    INSERT INTO t_bis_out SELECT unnest(ids(e));
    IF 37 = ANY (ids(e)) THEN
        RAISE EXCEPTION 'poison record 37';
    END IF;
END $$;
SELECT streams.create_function('h_bis', 'h_bis(jsonb)');
});
esm('{"EventSourceArn":"t_bis","FunctionName":"h_bis","StartingPosition":"TRIM_HORIZON","BatchSize":100,'
	. '"MaximumRetryAttempts":0,"BisectBatchOnFunctionError":true,'
	. '"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
$node->safe_psql($db, q{INSERT INTO t_bis SELECT g, 'v' || g FROM generate_series(1, 100) g});

# --- Timeout, and a discard without destination -------------------------
$node->safe_psql($db, q{
CREATE TABLE t_slow (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_slow', 'NEW_IMAGE', 1);
CREATE FUNCTION h_slow(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_seen('slow', e);
    PERFORM pg_sleep(5);
END $$;
SELECT streams.create_function('h_slow', 'h_slow(jsonb)', timeout => 1);
CREATE FUNCTION h_boom(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_seen('boom', e);
    RAISE EXCEPTION 'boom';
END $$;
SELECT streams.create_function('h_boom', 'h_boom(jsonb)');
});
esm('{"EventSourceArn":"t_slow","FunctionName":"h_slow","StartingPosition":"TRIM_HORIZON",'
	. '"MaximumRetryAttempts":0,"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
my $boom = esm('{"EventSourceArn":"t_slow","FunctionName":"h_boom","StartingPosition":"TRIM_HORIZON",'
	. '"MaximumRetryAttempts":0}');
$node->safe_psql($db, q{INSERT INTO t_slow VALUES (1, 'x')});

# --- Runs as the mapping's owner ----------------------------------------
$node->safe_psql($db, q{
CREATE ROLE alice LOGIN;
CREATE TABLE t_own (id int PRIMARY KEY, v text);
CREATE TABLE t_own_out (who text, super boolean);
GRANT SELECT ON t_own TO alice;
GRANT INSERT ON t_own_out TO alice;
SELECT streams.enable_stream('t_own', 'NEW_IMAGE', 1);
CREATE FUNCTION h_own(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO t_own_out SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
$$;
SET ROLE alice;
SELECT streams.create_function('h_own', 'h_own(jsonb)');
SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_own","FunctionName":"h_own","StartingPosition":"TRIM_HORIZON"}');
RESET ROLE;
INSERT INTO t_own VALUES (1, 'x');
});

# --- Checks --------------------------------------------------------------
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_pf'}),
	'partial failure: one failure record');
is(join(',', map { seen_count('pf', $_) } 1 .. 6), '1,1,1,1,1,5', 'records 1-5 seen once, record 6 five times');
is($node->safe_psql($db, q{
	SELECT concat_ws(',', record->'DDBStreamBatchInfo'->>'batchSize', record->'requestContext'->>'approximateInvokeCount',
	                 record->'responseContext'->'functionError', record->'requestContext'->>'condition',
	                 record->'responseContext'->>'statusCode',
	                 record->'DDBStreamBatchInfo'->>'startSequenceNumber' = record->'DDBStreamBatchInfo'->>'endSequenceNumber',
	                 jsonb_array_length(record->'payload'->'Records'), ids(record->'payload')::text)
	FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_pf'}),
	'1,4,null,RetryAttemptsExhausted,200,t,1,{6}',
	'failure record: batchSize 1, approximateInvokeCount 4, functionError null, the batch as payload');
is($node->safe_psql($db, q{
	SELECT string_agg(k, ',' ORDER BY k) FROM fails, jsonb_object_keys(record) k
	WHERE record->'requestContext'->>'functionArn' LIKE '%:h_pf'}),
	'DDBStreamBatchInfo,payload,requestContext,responseContext,timestamp,version', 'failure record keys');
like($node->safe_psql($db, q{SELECT record->>'timestamp' FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_pf'}),
	qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'timestamp with milliseconds');
like($node->safe_psql($db, q{SELECT record->'DDBStreamBatchInfo'->>'approximateArrivalOfFirstRecord' FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_pf'}),
	qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'arrival times with seconds');

my $nf = scalar @failure_forms;
ok($node->poll_query_until($db, qq{SELECT count(*) = $nf FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_form%'}),
	'every failure form produced a failure record');
for my $k (1 .. $nf)
{
	is(seen_count("form$k", 1) . ' ' . $node->safe_psql($db, qq{
		SELECT concat_ws(',', record->'requestContext'->>'approximateInvokeCount', record->'responseContext'->'functionError')
		FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_form$k'}),
		'2 2,null', "failure form $failure_forms[$k-1]: invoked 1 + 1 retry, then failed with functionError null");
}
for my $k ($nf + 1 .. $nf + @success_forms)
{
	my $form = $success_forms[$k - $nf - 1];
	ok($node->poll_query_until($db, qq{
		SELECT records_delivered = 1 FROM streams.event_source_mapping_stats WHERE function_name = 'h_form$k'}),
		"success form $form: delivered");
	is(seen_count("form$k", 1) . ' ' . $node->safe_psql($db, qq{
		SELECT count(*) FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_form$k'}),
		'1 0', "success form $form: one invocation, no failure record");
}

ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_bis'}),
	'bisect: one failure record');
ok($node->poll_query_until($db, q{
	SELECT records_delivered = 99 FROM streams.event_source_mapping_stats WHERE function_name = 'h_bis'}),
	'bisect: the 99 good records delivered');
is($node->safe_psql($db, q{
	SELECT concat_ws(',', ids(record->'payload')::text, record->'DDBStreamBatchInfo'->>'batchSize',
	                 record->'requestContext'->>'approximateInvokeCount', record->'responseContext'->>'functionError')
	FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_bis'}),
	'{37},1,1,Unhandled', 'bisect isolates exactly the poison record');
is($node->safe_psql($db, q{SELECT count(*) || ',' || count(DISTINCT id) || ',' || bool_and(id <> 37) FROM t_bis_out}),
	'99,99,true', 'bisect: target effects exactly once, the failed invocations rolled back');
ok($node->safe_psql($db, q{SELECT bisects > 0 AND retries = 0 FROM streams.event_source_mapping_stats WHERE function_name = 'h_bis'}) eq 't',
	'bisect: splits counted, no retries used');

ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_slow'}),
	'timeout: failure record');
is($node->safe_psql($db, q{SELECT record->'responseContext'->>'functionError' FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_slow'}),
	'Unhandled', 'timeout is a function error');
like($node->safe_psql($db, q{SELECT last_error FROM streams.event_source_mapping_stats WHERE function_name = 'h_slow'}),
	qr/statement timeout/, 'timeout reported in the stats');
ok($node->poll_query_until($db, q{SELECT discarded_batches = 1 FROM streams.event_source_mapping_stats WHERE function_name = 'h_boom'}),
	'without destination the discard is counted');
ok($node->log_contains(qr/event source mapping $boom discarded 1 records/), 'and logged');

ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM t_own_out}), 'owner mapping delivered');
is($node->safe_psql($db, q{SELECT who || ',' || super FROM t_own_out}), 'alice,false', 'handler runs as the mapping owner');

# --- Disable / enable resumes after the last processed record -----------
$node->safe_psql($db, q{
CREATE TABLE t_de (id int PRIMARY KEY, v text);
CREATE TABLE t_de_out (id int);
SELECT streams.enable_stream('t_de', 'NEW_IMAGE', 2);
CREATE FUNCTION h_de(e jsonb) RETURNS void LANGUAGE sql AS $$ INSERT INTO t_de_out SELECT unnest(ids(e)) $$;
SELECT streams.create_function('h_de', 'h_de(jsonb)');
});
my $de = esm('{"EventSourceArn":"t_de","FunctionName":"h_de","StartingPosition":"TRIM_HORIZON","BatchSize":2}');
$node->safe_psql($db, q{INSERT INTO t_de SELECT g, 'v' FROM generate_series(1, 5) g});
ok($node->poll_query_until($db, q{SELECT count(*) = 5 FROM t_de_out}), 'delivered before disabling');
is($node->safe_psql($db, qq{SELECT streams.update_event_source_mapping('$de', '{"Enabled": false}')->>'State'}),
	'Disabling', 'Enabled=false returns Disabling');
ok($node->poll_query_until($db, qq{SELECT streams.get_event_source_mapping('$de')->>'State' = 'Disabled'}), 'then Disabled');
$node->safe_psql($db, q{INSERT INTO t_de SELECT g, 'v' FROM generate_series(6, 10) g});
ok($node->poll_query_until($db, q{SELECT count(*) = 10 FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 't_de'::regclass}),
	'records captured while disabled');
sleep(1.5);
is($node->safe_psql($db, q{SELECT count(*) FROM t_de_out}), '5', 'nothing delivered while disabled');
is($node->safe_psql($db, qq{SELECT streams.update_event_source_mapping('$de', '{"Enabled": true}')->>'State'}),
	'Enabling', 'Enabled=true returns Enabling');
ok($node->poll_query_until($db, q{SELECT count(*) = 10 FROM t_de_out}), 'resumed');
is($node->safe_psql($db, q{SELECT count(DISTINCT id) || ',' || min(id) || ',' || max(id) FROM t_de_out}), '10,1,10',
	'every record exactly once across disable/enable');
is($node->safe_psql($db, qq{SELECT streams.get_event_source_mapping('$de')->>'State'}), 'Enabled', 'Enabled again');

# --- Starting positions ---------------------------------------------------
$node->safe_psql($db, q{
CREATE TABLE t_sp (id int PRIMARY KEY, v text);
CREATE TABLE t_sp_out (tag text, id int);
SELECT streams.enable_stream('t_sp', 'NEW_IMAGE', 2);
INSERT INTO t_sp SELECT g, 'v' FROM generate_series(1, 3) g;
});
ok($node->poll_query_until($db, q{SELECT count(*) = 3 FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 't_sp'::regclass}),
	'first records captured');
sleep(1.1);
my $ts = $node->safe_psql($db, q{SELECT extract(epoch FROM clock_timestamp())});
sleep(1.1);
$node->safe_psql($db, q{INSERT INTO t_sp SELECT g, 'v' FROM generate_series(4, 6) g});
ok($node->poll_query_until($db, q{SELECT count(*) = 6 FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 't_sp'::regclass}),
	'second records captured');
for my $pos ('TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP')
{
	my $fn = lc "h_sp_$pos";
	$node->safe_psql($db, qq{
CREATE FUNCTION $fn(e jsonb) RETURNS void LANGUAGE sql AS \$\$ INSERT INTO t_sp_out SELECT '$pos', unnest(ids(e)) \$\$;
SELECT streams.create_function('$fn', '$fn(jsonb)');
});
	my $extra = $pos eq 'AT_TIMESTAMP' ? qq(,"StartingPositionTimestamp":$ts) : '';
	esm(qq({"EventSourceArn":"t_sp","FunctionName":"$fn","StartingPosition":"$pos"$extra}));
}
$node->safe_psql($db, q{INSERT INTO t_sp SELECT g, 'v' FROM generate_series(7, 8) g});
ok($node->poll_query_until($db, q{SELECT count(*) = 8 + 2 + 5 FROM t_sp_out}), 'starting positions delivered');
sleep(0.5);
is($node->safe_psql($db, q{
	SELECT string_agg(tag || ':' || ids, ' ' ORDER BY tag) FROM (
	    SELECT tag, string_agg(id::text, ',' ORDER BY id) AS ids FROM t_sp_out GROUP BY tag) x}),
	'AT_TIMESTAMP:4,5,6,7,8 LATEST:7,8 TRIM_HORIZON:1,2,3,4,5,6,7,8',
	'TRIM_HORIZON reads everything, LATEST only new records, AT_TIMESTAMP from the timestamp');

# --- Batching window and the 6 MB payload cap ------------------------------
$node->safe_psql($db, q{
CREATE TABLE t_win (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_win', 'NEW_IMAGE', 1);
CREATE FUNCTION h_win(e jsonb) RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM log_seen('win', e); END $$;
SELECT streams.create_function('h_win', 'h_win(jsonb)');
CREATE TABLE t_big (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_big', 'NEW_IMAGE', 1);
CREATE FUNCTION h_big(e jsonb) RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM log_seen('big', e); END $$;
SELECT streams.create_function('h_big', 'h_big(jsonb)');
});
esm('{"EventSourceArn":"t_win","FunctionName":"h_win","StartingPosition":"TRIM_HORIZON","BatchSize":100,'
	. '"MaximumBatchingWindowInSeconds":3}');
for my $k (1 .. 3)
{
	$node->safe_psql($db, "INSERT INTO t_win VALUES ($k, 'x')");
	sleep(0.3);
}
ok($node->poll_query_until($db, q{SELECT count(*) > 0 FROM invocations WHERE tag = 'win'}), 'window: invoked');
sleep(0.5);
is($node->safe_psql($db, q{SELECT string_agg(ids::text, ' ' ORDER BY n) FROM invocations WHERE tag = 'win'}),
	'{1,2,3}', 'records committed within the batching window arrive in one batch');
# Records of 1.1 MB: five fit in 6 MB, six do not.
$node->safe_psql($db, q{INSERT INTO t_big SELECT g, repeat(md5(g::text), 34375) FROM generate_series(1, 8) g});
esm('{"EventSourceArn":"t_big","FunctionName":"h_big","StartingPosition":"TRIM_HORIZON","BatchSize":100}');
ok($node->poll_query_until($db, q{SELECT count(*) = 8 FROM invocations, unnest(ids) WHERE tag = 'big'}), '6 MB: all delivered');
is($node->safe_psql($db, q{SELECT string_agg(cardinality(ids)::text, ',' ORDER BY n) FROM invocations WHERE tag = 'big'}),
	'5,3', 'batches are cut at 6 MB of payload');

# --- Record age: the expired prefix goes to the destination ---------------
my $left = 61 - (time() - $age_start);
sleep($left) if $left > 0;
$node->safe_psql($db, q{
INSERT INTO t_age SELECT g, 'fresh' FROM generate_series(2, 6) g;
CREATE FUNCTION h_age(e jsonb) RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM log_seen('age', e); END $$;
SELECT streams.create_function('h_age', 'h_age(jsonb)');
});
ok($node->poll_query_until($db, q{SELECT count(*) = 6 FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 't_age'::regclass}),
	'age records captured');
esm('{"EventSourceArn":"t_age","FunctionName":"h_age","StartingPosition":"TRIM_HORIZON","BatchSize":10,'
	. '"MaximumRetryAttempts":0,"MaximumRecordAgeInSeconds":60,"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM invocations WHERE tag = 'age'}), 'fresh records invoked');
is($node->safe_psql($db, q{SELECT ids::text FROM invocations WHERE tag = 'age'}), '{2,3,4,5,6}',
	'the function received only the fresh records, in one batch');
is($node->safe_psql($db, q{
	SELECT concat_ws(',', record->'requestContext'->>'condition', record->'requestContext'->>'approximateInvokeCount',
	                 record->'DDBStreamBatchInfo'->>'batchSize', record ? 'responseContext', ids(record->'payload')::text)
	FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_age'}),
	'RecordAgeExceeded,1,1,f,{1}', 'the old record: RecordAgeExceeded, no responseContext');

# --- chained streams: a handler writes a streamed table, whose mapping runs on --
$node->safe_psql($db, q{
CREATE TABLE t_ch1 (id int PRIMARY KEY, v text);
CREATE TABLE t_ch2 (id int PRIMARY KEY, src text);
CREATE TABLE t_ch3 (id int, src text);
SELECT streams.enable_stream('t_ch1', 'NEW_IMAGE', 2);
SELECT streams.enable_stream('t_ch2', 'NEW_IMAGE', 2);
CREATE FUNCTION h_ch1(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO t_ch2 SELECT (r #>> '{dynamodb,Keys,id,N}')::int, r #>> '{dynamodb,NewImage,v,S}'
    FROM jsonb_array_elements(e->'Records') r
$$;
CREATE FUNCTION h_ch2(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO t_ch3 SELECT (r #>> '{dynamodb,Keys,id,N}')::int, r #>> '{dynamodb,NewImage,src,S}'
    FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('h_ch1', 'h_ch1(jsonb)');
SELECT streams.create_function('h_ch2', 'h_ch2(jsonb)');
});
esm('{"EventSourceArn":"t_ch1","FunctionName":"h_ch1","StartingPosition":"TRIM_HORIZON","BatchSize":7}');
esm('{"EventSourceArn":"t_ch2","FunctionName":"h_ch2","StartingPosition":"TRIM_HORIZON","BatchSize":7}');
$node->safe_psql($db, q{INSERT INTO t_ch1 SELECT g, 'v' || g FROM generate_series(1, 40) g});
ok($node->poll_query_until($db, q{SELECT count(*) = 40 FROM t_ch3}), 'chained streams: the second mapping delivers what the first handler wrote');
is($node->safe_psql($db, q{SELECT count(DISTINCT id) || ',' || count(*) FILTER (WHERE src = 'v' || id) FROM t_ch3}), '40,40',
	'chained streams: each row once, with the image the first handler wrote');

# --- kill -9 of the dispatcher during invocations: effects exactly once --
$node->safe_psql($db, q{
CREATE TABLE t_k (id int PRIMARY KEY, v text);
CREATE TABLE t_k_out (id int);
SELECT streams.enable_stream('t_k', 'NEW_IMAGE', 2);
CREATE FUNCTION h_k(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO t_k_out SELECT unnest(ids(e));
    PERFORM pg_sleep(0.02);
END $$;
SELECT streams.create_function('h_k', 'h_k(jsonb)');
});
esm('{"EventSourceArn":"t_k","FunctionName":"h_k","StartingPosition":"TRIM_HORIZON","BatchSize":5}');
$node->safe_psql($db, q{INSERT INTO t_k SELECT g, 'v' FROM generate_series(1, 600) g});
ok($node->poll_query_until($db, q{SELECT count(*) > 50 FROM t_k_out}), 'delivery under way');
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
ok($node->poll_query_until($db, q{SELECT count(*) = 600 FROM t_k_out}, 't', 120), 'all records delivered after the crash');
sleep(1);
is($node->safe_psql($db, q{SELECT count(*) || ',' || count(DISTINCT id) FROM t_k_out}), '600,600',
	'kill -9 of the dispatcher: every record\'s effects exactly once');

$node->stop;
done_testing();
