# streams.redrive_failed_batches: failed batches delivered again to a SQL
# handler exactly once and in stream order, across a kill -9 of the
# redriving session; a poison record is isolated by bisect and gets a new
# failure record; a table of one's own with a record column works too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use PgStreamsTest;

my $node = new_streams_node('redrive');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

$node->safe_psql($db, q{
CREATE TABLE src (id int PRIMARY KEY);
CREATE TABLE got (n serial, id int);
CREATE TABLE mode (poison int[], delay float8);
INSERT INTO mode VALUES ('{}', 0);
CREATE FUNCTION h(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r jsonb;
  p int[] := (SELECT poison FROM mode);
BEGIN
  PERFORM pg_sleep((SELECT delay FROM mode));
  FOR r IN SELECT * FROM jsonb_array_elements(event->'Records') LOOP
    IF (r->'dynamodb'->'Keys'->'id'->>'N')::int = ANY (p) THEN
      RAISE EXCEPTION 'poison %', r->'dynamodb'->'Keys'->'id'->>'N';
    END IF;
    INSERT INTO got (id) VALUES ((r->'dynamodb'->'Keys'->'id'->>'N')::int);
  END LOOP;
END $$;
SELECT streams.enable_stream('src', 'KEYS_ONLY', 1);
SELECT streams.create_function('h', 'h(jsonb)');
});
my $uuid = $node->safe_psql($db, q{
SELECT streams.create_event_source_mapping('{"EventSourceArn":"src","FunctionName":"h","StartingPosition":"TRIM_HORIZON",
  "BatchSize":4,"MaximumRetryAttempts":0,"BisectBatchOnFunctionError":true,
  "DestinationConfig":{"OnFailure":{"Destination":"streams.failed_batches"}}}')->>'UUID'});

# Everything fails: 40 records, one at a time in their own transactions so
# that batches are cut the same way whatever the timing.
$node->safe_psql($db, q{UPDATE mode SET poison = ARRAY(SELECT generate_series(1, 40))});
$node->safe_psql($db, "INSERT INTO src VALUES ($_)") for 1 .. 40;
$node->safe_psql($db, "SELECT streams.wait_for_delivery('$uuid', '120 s')");
my $failed = $node->safe_psql($db, q{SELECT count(*) FROM streams.failed_batches});
cmp_ok($failed, '>=', 10, "the failed records are in streams.failed_batches ($failed rows)");
is($node->safe_psql($db, q{SELECT sum((record->'DDBStreamBatchInfo'->>'batchSize')::int) FROM streams.failed_batches}),
	'40', 'they hold the 40 records');

# The handler is fixed but slow; redrive, and kill -9 the session midway.
$node->safe_psql($db, q{UPDATE mode SET poison = '{}', delay = 0.3});
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr($db), '-c', q{SET application_name = 'redriver'},
	  '-c', q{CALL streams.redrive_failed_batches()} ],
	'>', \$out, '2>', \$err);
ok($node->poll_query_until($db, q{SELECT count(*) >= 8 FROM got}), 'the redrive delivers batches');
my $pid = $node->safe_psql($db, q{SELECT pid FROM pg_stat_activity WHERE application_name = 'redriver'});
ok($pid =~ /^\d+$/, "found the redriving session ($pid)");
kill 'KILL', $pid;
$h->finish;
$node->poll_query_until($db, 'SELECT true') or die;
ok(wait_for_worker($node, $db), 'server back after kill -9');
my ($got1, $left1) = split /\|/, $node->safe_psql($db,
	q{SELECT (SELECT count(*) FROM got), (SELECT count(*) FROM streams.failed_batches)});
cmp_ok($got1, '<', 40, "the kill came before the end ($got1 records delivered)");
is($node->safe_psql($db, q{SELECT sum((record->'DDBStreamBatchInfo'->>'batchSize')::int) FROM streams.failed_batches}),
	40 - $got1, 'every batch delivered before the kill was removed with it, the others are still there');

$node->safe_psql($db, q{UPDATE mode SET delay = 0});
my $summary = $node->safe_psql($db, q{CALL streams.redrive_failed_batches()});
like($summary, qr/"BatchesRedriven": $left1\b/, "the second redrive takes the $left1 rows left");
is($node->safe_psql($db, q{SELECT count(*) || ':' || count(DISTINCT id) || ':' || min(id) || ':' || max(id) FROM got}),
	'40:40:1:40', 'across the kill every record was delivered exactly once');
is($node->safe_psql($db, q{SELECT bool_and(ok) FROM (SELECT id > lag(id, 1, 0) OVER (ORDER BY n) AS ok FROM got) x}),
	't', 'in stream order');
is($node->safe_psql($db, q{SELECT count(*) FROM streams.failed_batches}), '0', 'the failure table is empty');

# A poison record: bisect isolates it, the rest is delivered, and it gets a
# new failure record in the mapping's destination (a table of our own).
$node->safe_psql($db, q{
TRUNCATE got;
CREATE TABLE my_failures (id bigserial, record jsonb);
UPDATE mode SET poison = ARRAY(SELECT generate_series(41, 60));
});
$node->safe_psql($db, qq{SELECT streams.update_event_source_mapping('$uuid',
	'{"DestinationConfig":{"OnFailure":{"Destination":"my_failures"}}}')});
$node->safe_psql($db, "INSERT INTO src VALUES ($_)") for 41 .. 60;
$node->safe_psql($db, "SELECT streams.wait_for_delivery('$uuid', '120 s')");
is($node->safe_psql($db, q{SELECT sum((record->'DDBStreamBatchInfo'->>'batchSize')::int) FROM my_failures}),
	'20', 'the 20 failed records are in my_failures');
$node->safe_psql($db, q{UPDATE mode SET poison = '{47}'});
$summary = $node->safe_psql($db, q{CALL streams.redrive_failed_batches('my_failures', '{"Limit": 1000}')});
like($summary, qr/"RecordsDelivered": 19\b/, 'the redrive delivered 19 records');
like($summary, qr/"RecordsFailedAgain": 1\b/, 'one failed again');
is($node->safe_psql($db, q{SELECT count(*) || ':' || count(DISTINCT id) FROM got}), '19:19', 'each once');
is($node->safe_psql($db, q{
	SELECT record->'DDBStreamBatchInfo'->>'batchSize' || ':' || (record->'payload'->'Records'->0->'dynamodb'->'Keys'->'id'->>'N')
	       || ':' || (record->'requestContext'->>'condition')
	FROM my_failures}), '1:47:RetryAttemptsExhausted', 'bisect isolated the poison record in a new failure record');

# User code runs as its owner: a superuser redriving an unprivileged role's
# failed batch runs the handler as the mapping's owner, security-restricted.
$node->safe_psql($db, q{
CREATE ROLE carol LOGIN;
CREATE TABLE csrc (id int PRIMARY KEY);
CREATE TABLE cgot (who text, restricted text);
CREATE TABLE cmode (fail boolean);
INSERT INTO cmode VALUES (true);
ALTER TABLE csrc OWNER TO carol;
ALTER TABLE cgot OWNER TO carol;
ALTER TABLE cmode OWNER TO carol;
CREATE FUNCTION ch(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  restricted text := 'no';
BEGIN
  IF (SELECT fail FROM public.cmode) THEN RAISE EXCEPTION 'not yet'; END IF;
  BEGIN
    CREATE TEMP TABLE probe (x int);  -- refused in a security-restricted operation
  EXCEPTION WHEN insufficient_privilege THEN restricted := 'yes';
  END;
  INSERT INTO public.cgot VALUES (current_user, restricted);
END $$;
ALTER FUNCTION ch(jsonb) OWNER TO carol;
SET ROLE carol;
SELECT streams.enable_stream('csrc', 'KEYS_ONLY', 1);
SELECT streams.create_function('ch', 'public.ch(jsonb)');
});
my $cuuid = $node->safe_psql($db, q{
SET ROLE carol;
SELECT streams.create_event_source_mapping('{"EventSourceArn":"csrc","FunctionName":"ch","StartingPosition":"TRIM_HORIZON",
  "MaximumRetryAttempts":0,"DestinationConfig":{"OnFailure":{"Destination":"streams.failed_batches"}}}')->>'UUID'});
$node->safe_psql($db, q{INSERT INTO csrc VALUES (1)});
$node->safe_psql($db, "SELECT streams.wait_for_delivery('$cuuid', '120 s')");
is($node->safe_psql($db, q{SELECT count(*) FROM streams.failed_batches}), '1', "carol's batch failed");
$node->safe_psql($db, q{UPDATE cmode SET fail = false});
$summary = $node->safe_psql($db, q{CALL streams.redrive_failed_batches()});
like($summary, qr/"RecordsDelivered": 1\b/, "a superuser redrove carol's batch");
is($node->safe_psql($db, q{SELECT who || ':' || restricted FROM cgot}), 'carol:yes',
	"the handler ran as carol, the mapping's owner, security-restricted");

$node->stop;
done_testing();
