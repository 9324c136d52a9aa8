# User code against the dispatcher (issue 13 rows 1, 2, 7, 8 and 13), with two
# unprivileged roles: handlers are checked before every call, run as a
# security-restricted operation whose settings are rolled back, cannot outlive
# their timeout by catching its cancel, and a handler feeding its own stream
# crashes nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgStreamsTest;

my $node = new_streams_node('handler_security');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');
my $log_start = -s $node->logfile;

$node->safe_psql($db, q{
CREATE ROLE app_owner LOGIN;
CREATE ROLE intruder LOGIN;
CREATE SCHEMA app AUTHORIZATION app_owner;
CREATE SCHEMA intr AUTHORIZATION intruder;
});

sub as_role
{
	my ($role, $sql) = @_;
	return $node->psql($db, "SET ROLE $role; $sql");
}

sub mapping_field
{
	my ($uuid, $field) = @_;
	return $node->safe_psql($db, qq{SELECT streams.get_event_source_mapping('$uuid')->>'$field'});
}

sub last_error
{
	my ($uuid) = @_;
	return $node->safe_psql($db,
		qq{SELECT coalesce(last_error, '') FROM streams.event_source_mapping_stats WHERE uuid = '$uuid'});
}

sub create_mapping
{
	my ($role, $request) = @_;
	my ($rc, $out, $err) = as_role($role,
		qq{SELECT streams.create_event_source_mapping('$request')->>'UUID'});
	die "create_event_source_mapping failed: $err" if $rc != 0;
	return (split /\n/, $out)[-1];
}

# --- Row 1: handlers are checked when registered and before every call ----
my ($rc, $out, $err) = as_role('intruder', q{SELECT streams.create_function('f0', 0::regprocedure)});
like($err, qr/handler 0 does not exist\n.*InvalidParameterValueException/, 'row 1: 0::regprocedure is refused');
($rc, $out, $err) = as_role('intruder',
	q{SELECT streams.create_function('f1', ((SELECT max(oid)::int8 FROM pg_proc) + 1000)::oid::regprocedure)});
like($err, qr/handler \d+ does not exist\n.*InvalidParameterValueException/,
	'row 1: the oid of a function that does not exist yet is refused');

$node->safe_psql($db, q{
SET ROLE intruder;
CREATE TABLE intr.t1 (id int PRIMARY KEY);
CREATE TABLE intr.seen1 (id int);
SELECT streams.enable_stream('intr.t1', 'NEW_IMAGE', 1);
CREATE FUNCTION intr.h1(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO intr.seen1 SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('h1', 'intr.h1(jsonb)');
});
my $m1 = create_mapping('intruder',
	'{"EventSourceArn":"intr.t1","FunctionName":"h1","StartingPosition":"TRIM_HORIZON","BatchSize":10}');
$node->safe_psql($db, q{INSERT INTO intr.t1 VALUES (1)});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.seen1}), 'row 1: the handler works as registered');

# The function behind the registered oid changes its signature (as when an oid
# is reused by a new function): the call is a function error, not a crash.
$node->safe_psql($db, q{UPDATE pg_proc SET proargtypes = '3614'::oidvector WHERE oid = 'intr.h1(jsonb)'::regprocedure});
$node->safe_psql($db, q{INSERT INTO intr.t1 VALUES (2)});
ok($node->poll_query_until($db,
	qq{SELECT last_error LIKE '%must be a function taking one jsonb (or json) argument%'
	     FROM streams.event_source_mapping_stats WHERE uuid = '$m1'}),
	'row 1: a handler whose signature changed fails the call with a clear error');
is(mapping_field($m1, 'LastProcessingResult'), 'PROBLEM: Function call failed', 'row 1: and the mapping shows it');
$node->safe_psql($db, q{UPDATE pg_proc SET proargtypes = '3802'::oidvector WHERE oid = 'intr.h1(tsvector)'::regprocedure});
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM intr.seen1}), 'row 1: delivery resumes once it is a handler again');

# A dropped handler: the same, no crash.
$node->safe_psql($db, q{DROP FUNCTION intr.h1(jsonb)});
$node->safe_psql($db, q{INSERT INTO intr.t1 VALUES (3)});
ok($node->poll_query_until($db,
	qq{SELECT last_error ~ 'does not exist' FROM streams.event_source_mapping_stats WHERE uuid = '$m1'}),
	'row 1: a dropped handler is a function error');
as_role('intruder', qq{SELECT streams.delete_event_source_mapping('$m1')});

# A json (not jsonb) argument is a handler too.
$node->safe_psql($db, q{
SET ROLE intruder;
CREATE FUNCTION intr.hj(e json) RETURNS void LANGUAGE sql AS $$
    INSERT INTO intr.seen1 SELECT 100 + (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM json_array_elements(e->'Records') r
$$;
SELECT streams.create_function('hj', 'intr.hj(json)');
});
my $mj = create_mapping('intruder',
	'{"EventSourceArn":"intr.t1","FunctionName":"hj","StartingPosition":"LATEST","BatchSize":10}');
$node->poll_query_until($db, qq{SELECT streams.get_event_source_mapping('$mj')->>'State' = 'Enabled'});
$node->safe_psql($db, q{INSERT INTO intr.t1 VALUES (4)});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.seen1 WHERE id = 104}),
	'a handler taking json receives the event');
as_role('intruder', qq{SELECT streams.delete_event_source_mapping('$mj')});

# --- Row 2: settings do not outlive a handler; restricted operation --------
$node->safe_psql($db, q{
SET ROLE intruder;
CREATE TABLE intr.t2 (id int PRIMARY KEY);
CREATE TABLE intr.seen2 (id int, search_path text, work_mem text);
CREATE TABLE intr.pwned (what text);
GRANT INSERT ON intr.pwned TO PUBLIC;
SELECT streams.enable_stream('intr.t2', 'NEW_IMAGE', 1);
-- Functions that shadow what the dispatcher's own SQL calls, if its
-- search_path were the handler's.
CREATE FUNCTION intr.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO intr.pwned VALUES ('clock_timestamp as ' || current_user);
    BEGIN ALTER ROLE intruder SUPERUSER; EXCEPTION WHEN OTHERS THEN NULL; END;
    RETURN pg_catalog.clock_timestamp();
END $$;
CREATE FUNCTION intr.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO intr.pwned VALUES ('now as ' || current_user);
    RETURN pg_catalog.now();
END $$;
CREATE FUNCTION intr.evil(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO intr.seen2 SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int,
           current_setting('search_path'), current_setting('work_mem')
      FROM jsonb_array_elements(e->'Records') r;
    PERFORM set_config('search_path', 'intr, pg_catalog', false);
    PERFORM set_config('work_mem', '77MB', false);
    PERFORM set_config('application_name', 'owned', false);
END $$;
SELECT streams.create_function('evil', 'intr.evil(jsonb)');
CREATE FUNCTION intr.tmp(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE intr_tmp (x int);
END $$;
SELECT streams.create_function('tmp', 'intr.tmp(jsonb)');
});
my $m2 = create_mapping('intruder',
	'{"EventSourceArn":"intr.t2","FunctionName":"evil","StartingPosition":"TRIM_HORIZON","BatchSize":1}');
$node->safe_psql($db, q{INSERT INTO intr.t2 SELECT g FROM generate_series(1, 5) g});
ok($node->poll_query_until($db, q{SELECT count(*) = 5 FROM intr.seen2}), 'row 2: the handler ran for every record');
is($node->safe_psql($db, q{SELECT count(*) FROM intr.seen2 WHERE work_mem = '77MB' OR search_path LIKE 'intr%'}),
	'0', 'row 2: every call starts with the settings of before the previous call');
is($node->safe_psql($db, q{SELECT count(*) FROM intr.pwned}), '0',
	"row 2: the dispatcher's own SQL never called intruder's functions");
is($node->safe_psql($db, q{SELECT rolsuper FROM pg_roles WHERE rolname = 'intruder'}), 'f',
	'row 2: intruder is not a superuser');
is($node->safe_psql($db, q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'owned'}), '0',
	'row 2: application_name did not outlive the handler');
as_role('intruder', qq{SELECT streams.delete_event_source_mapping('$m2')});

my $m2t = create_mapping('intruder',
	'{"EventSourceArn":"intr.t2","FunctionName":"tmp","StartingPosition":"TRIM_HORIZON","BatchSize":1}');
ok($node->poll_query_until($db,
	qq{SELECT last_error LIKE '%cannot create temporary table within security-restricted operation%'
	     FROM streams.event_source_mapping_stats WHERE uuid = '$m2t'}),
	'row 2: a handler runs as a security-restricted operation (no temporary tables)');
as_role('intruder', qq{SELECT streams.delete_event_source_mapping('$m2t')});

# --- Row 8: a handler cannot catch its timeout away ------------------------
$node->safe_psql($db, q{
SET ROLE intruder;
CREATE TABLE intr.t8 (id int PRIMARY KEY);
CREATE TABLE intr.effects8 (id int);
CREATE TABLE intr.failed8 (record jsonb);
SELECT streams.enable_stream('intr.t8', 'NEW_IMAGE', 1);
-- Catches every cancel and goes on forever.
CREATE FUNCTION intr.stubborn(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO intr.effects8 SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r;
    LOOP
        BEGIN
            PERFORM pg_sleep(10);
        EXCEPTION WHEN query_canceled THEN
            NULL;
        END;
    END LOOP;
END $$;
SELECT streams.create_function('stubborn', 'intr.stubborn(jsonb)', 1);
-- Catches the cancel once and returns as if all went well.
CREATE FUNCTION intr.sly(e jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO intr.effects8 SELECT 1000 + (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r;
    BEGIN
        PERFORM pg_sleep(10);
    EXCEPTION WHEN query_canceled THEN
        RETURN '{"batchItemFailures": []}';
    END;
    RETURN '{}';
END $$;
SELECT streams.create_function('sly', 'intr.sly(jsonb)', 1);
});
my $log8 = -s $node->logfile;
my $m8 = create_mapping('intruder', q{{"EventSourceArn":"intr.t8","FunctionName":"stubborn","StartingPosition":"TRIM_HORIZON",
	"BatchSize":10,"MaximumRetryAttempts":1,"DestinationConfig":{"OnFailure":{"Destination":"intr.failed8"}}}});
my $d8 = '';
$node->poll_query_until($db, qq{SELECT pid IS NOT NULL FROM streams.dispatch_worker_stats WHERE '$m8' = ANY (mapping_uuids)});
$d8 = $node->safe_psql($db, qq{SELECT pid FROM streams.dispatch_worker_stats WHERE '$m8' = ANY (mapping_uuids)});
$node->safe_psql($db, q{INSERT INTO intr.t8 VALUES (1), (2)});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.failed8}),
	'row 8: a handler that catches its timeout in a loop ends at it: after its retries the batch is sent to OnFailure');
is($node->safe_psql($db, q{SELECT record->'requestContext'->>'condition' || ' ' || (record->'requestContext'->>'approximateInvokeCount')
	FROM intr.failed8}), 'RetryAttemptsExhausted 2', 'row 8: each timed-out call counted as an attempt');
is($node->safe_psql($db, q{SELECT count(*) FROM intr.effects8}), '0', "row 8: the timed-out calls' work was rolled back");
my $ended = count_log_lines($node, qr/the handler went on after its timeout of 1000 ms canceled it, and its dispatcher was ended/, $log8, 2);
is($ended, 2, 'row 8: each such call ended its dispatcher (logged)');
like($d8, qr/^\d+$/, 'row 8: the dispatcher was running before');
is($node->safe_psql($db, "SELECT count(*) FROM pg_stat_activity WHERE pid = $d8"), '0',
	'row 8: and that process was ended');
like(last_error($m8), qr/statement timeout/, 'row 8: last_error says it timed out');
as_role('intruder', qq{SELECT streams.delete_event_source_mapping('$m8')});

$node->safe_psql($db, q{TRUNCATE intr.failed8});
my $m8b = create_mapping('intruder', q{{"EventSourceArn":"intr.t8","FunctionName":"sly","StartingPosition":"TRIM_HORIZON",
	"BatchSize":10,"MaximumRetryAttempts":0,"FunctionResponseTypes":["ReportBatchItemFailures"],
	"DestinationConfig":{"OnFailure":{"Destination":"intr.failed8"}}}});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.failed8}),
	'row 8: a handler that catches its timeout and returns success has failed');
is($node->safe_psql($db, q{SELECT count(*) FROM intr.effects8}), '0', 'row 8: and its work was rolled back');
like(last_error($m8b), qr/statement timeout/, 'row 8: as a timeout');
as_role('intruder', qq{SELECT streams.delete_event_source_mapping('$m8b')});

# --- Row 13: a handler that writes to its own source table -----------------
$node->safe_psql($db, q{
SET ROLE intruder;
CREATE TABLE intr.t13 (id serial PRIMARY KEY, gen int);
SELECT streams.enable_stream('intr.t13', 'NEW_IMAGE', 1);
CREATE FUNCTION intr.loop(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO intr.t13 (gen) SELECT (r->'dynamodb'->'NewImage'->'gen'->>'N')::int + 1 FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('loop', 'intr.loop(jsonb)');
});
my $m13 = create_mapping('intruder',
	'{"EventSourceArn":"intr.t13","FunctionName":"loop","StartingPosition":"TRIM_HORIZON","BatchSize":10}');
$node->safe_psql($db, q{INSERT INTO intr.t13 (gen) VALUES (0)});
ok($node->poll_query_until($db, q{SELECT max(gen) >= 20 FROM intr.t13}),
	'row 13: a handler feeding its own stream loops (20 generations)');
as_role('intruder', qq{SELECT streams.update_event_source_mapping('$m13', '{"Enabled": false}')});
ok($node->poll_query_until($db, qq{SELECT streams.get_event_source_mapping('$m13')->>'State' = 'Disabled'}),
	'row 13: disabling the mapping stops it');
my $gen = $node->safe_psql($db, q{SELECT max(gen) FROM intr.t13});
$node->safe_psql($db, q{SELECT pg_sleep(1)});
is($node->safe_psql($db, q{SELECT max(gen) FROM intr.t13}), $gen, 'row 13: the loop stopped');

# --- Row 7: one role cannot take every worker slot ---------------------------
# (the dispatcher pool and the 6 MB response cap of
# row 6 are tested in 011_runtime_faults and 004_http)
$node->safe_psql($db, q{
ALTER SYSTEM SET pg_streams.max_mappings_per_role = 2;
SELECT pg_reload_conf();
SET ROLE intruder;
CREATE TABLE intr.t7 (id int PRIMARY KEY);
SELECT streams.enable_stream('intr.t7', 'KEYS_ONLY', 1);
CREATE FUNCTION intr.h7(e jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT streams.create_function('h7_' || g, 'intr.h7(jsonb)') FROM generate_series(1, 40) g;
SET ROLE app_owner;
CREATE TABLE app.t7 (id int PRIMARY KEY);
CREATE TABLE app.seen7 (id int);
SELECT streams.enable_stream('app.t7', 'NEW_IMAGE', 1);
CREATE FUNCTION app.h7(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO app.seen7 SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('a7', 'app.h7(jsonb)');
});
$node->poll_query_until($db, q{SELECT current_setting('pg_streams.max_mappings_per_role') = '2'});
my $refused = 0;
for my $i (1 .. 40)
{
	($rc, $out, $err) = as_role('intruder', qq{SELECT streams.create_event_source_mapping(
		'{"EventSourceArn":"intr.t7","FunctionName":"h7_$i","StartingPosition":"LATEST"}')});
	$refused++ if $err =~ /TooManyRequestsException/;
}
is($refused, 38, 'row 7: intruder gets 2 of its 40 mappings, the rest are refused with TooManyRequestsException');
create_mapping('app_owner', '{"EventSourceArn":"app.t7","FunctionName":"a7","StartingPosition":"LATEST"}');
ok($node->poll_query_until($db,
	q{SELECT count(*) = 1 FROM streams.event_source_mapping WHERE function_name = 'a7' AND state = 'Enabled'}),
	"row 7: another role's mapping still gets a dispatcher");
$node->safe_psql($db, q{INSERT INTO app.t7 VALUES (7)});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM app.seen7}), 'row 7: and delivers');

my $log = slurp_file($node->logfile, $log_start);
unlike($log, qr/terminated by signal|server process .* was terminated|terminating any other active server processes/,
	'no process crashed');
$node->stop;
done_testing();
