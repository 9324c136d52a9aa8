# Faults in the dispatcher's own work: an ERROR in its bookkeeping SQL ends
# it cleanly (logged, restarted, no crash), and kill -9 / immediate shutdowns
# with HTTP requests in flight never change a record's Idempotency-Key.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use PgStreamsTest;

my $node = new_streams_node('runtime_faults');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

# --- An ERROR in the dispatcher's own SQL ---------------------------------
# A CHECK constraint makes the dispatcher's UPDATE of its shard row fail once
# 20 records are delivered: the step's transaction (handler effects included)
# is rolled back, the dispatcher logs the ERROR and exits, and the capture
# worker starts it again; nothing crashes.
$node->safe_psql($db, q{
CREATE TABLE t_e (id int PRIMARY KEY);
CREATE TABLE t_e_out (id int);
SELECT streams.enable_stream('t_e', 'NEW_IMAGE', 1);
CREATE FUNCTION h_e(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO t_e_out SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('h_e', 'h_e(jsonb)');
ALTER TABLE streams.mapping_shard ADD CONSTRAINT pgs_test_fault CHECK (records_delivered < 20);
});
my $offset = -s $node->logfile;
$node->safe_psql($db, q{SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"t_e","FunctionName":"h_e","StartingPosition":"TRIM_HORIZON","BatchSize":5}')});
$node->safe_psql($db, q{INSERT INTO t_e SELECT g FROM generate_series(1, 50) g});
# Raised outside any handler of the worker, PostgreSQL logs it as FATAL.
my $err_re = qr/(?:ERROR|FATAL):  new row for relation "mapping_shard" violates check constraint "pgs_test_fault"/;
my $errors = count_log_lines($node, $err_re, $offset, 2);
ok($errors >= 2, "the dispatcher logs the ERROR of its own SQL and is started again ($errors times)");
is($node->safe_psql($db, q{SELECT count(*) BETWEEN 1 AND 19 FROM t_e_out}), 't',
	'the failed steps are rolled back with their handler effects');
$node->safe_psql($db, q{ALTER TABLE streams.mapping_shard DROP CONSTRAINT pgs_test_fault});
ok($node->poll_query_until($db, q{SELECT count(*) = 50 FROM t_e_out}), 'delivery resumes once the fault is gone');
is($node->safe_psql($db, q{SELECT count(*) || ',' || count(DISTINCT id) FROM t_e_out}), '50,50',
	'every record delivered exactly once');
my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/terminated by signal|server process .* was terminated|terminating any other active server processes/,
	'no crash: the error path is clean');

# --- kill -9 and immediate shutdowns with requests in flight ---------------
my ($sink, $base) = start_sink();
ok(defined $base, 'sink is up');

sub requests { return decode_json(`curl -s '$base/_requests?path=/kk'`); }

$node->safe_psql($db, qq{
CREATE TABLE t_kk (id int PRIMARY KEY);
SELECT streams.enable_stream('t_kk', 'NEW_IMAGE', 1);
SELECT streams.create_http_function('h_kk', '$base/kk?delay=0.25', '{}');
SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"t_kk","FunctionName":"h_kk","StartingPosition":"TRIM_HORIZON","BatchSize":10}');
});
$node->safe_psql($db, q{INSERT INTO t_kk SELECT g FROM generate_series(1, 300) g});
my $faults = 0;
for my $round (1 .. 5)
{
	my $before = scalar(@{ requests() });
	for (1 .. 300) { last if scalar(@{ requests() }) > $before; sleep 0.05; }
	if ($round == 5)
	{
		$node->stop('immediate');
		$node->start;
		$faults++;
		next;
	}
	my $pid = $node->safe_psql($db,
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch' LIMIT 1});
	next unless $pid =~ /^\d+$/;
	my $at = -s $node->logfile;
	next unless kill('KILL', $pid) == 1;
	$faults++ if $node->wait_for_log(qr/\(PID $pid\) was terminated by signal 9/, $at);
	$node->poll_query_until($db, 'SELECT 1', '1');
}
ok($faults >= 4, "faults happened with requests in flight ($faults)");
my (%keys_of, %sends);
for (1 .. 1200)
{
	(%keys_of, %sends) = ();
	for my $r (@{ requests() })
	{
		for my $rec (@{ decode_json($r->{body})->{Records} })
		{
			my $id = $rec->{dynamodb}{Keys}{id}{N};
			$keys_of{$id}{ $r->{headers}{'idempotency-key'} } = 1;
			$sends{$id}++;
		}
	}
	last if scalar(keys %sends) == 300;
	sleep 0.1;
}
is(scalar(keys %sends), 300, 'every record delivered at least once');
my $resent = grep { $sends{$_} > 1 } keys %sends;
ok($resent > 0, "records were sent again after the faults ($resent)");
is(scalar(grep { scalar(keys %{ $keys_of{$_} }) > 1 } keys %keys_of), 0,
	'every send of a record carries the same Idempotency-Key');

# --- Limits: enabled mappings per role; the dispatcher pool ---------------
$node->safe_psql($db, q{
ALTER SYSTEM SET pg_streams.max_mappings_per_role = 1;
SELECT pg_reload_conf();
CREATE ROLE r1 LOGIN;
GRANT CREATE ON SCHEMA public TO r1;
CREATE TABLE r1_t (id int PRIMARY KEY);
SELECT streams.enable_stream('r1_t', 'NEW_IMAGE', 1);
GRANT SELECT ON r1_t TO r1;
SET ROLE r1;
CREATE FUNCTION r1_h1(e jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION r1_h2(e jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT streams.create_function('r1_h1', 'r1_h1(jsonb)');
SELECT streams.create_function('r1_h2', 'r1_h2(jsonb)');
SELECT streams.create_event_source_mapping('{"EventSourceArn":"r1_t","FunctionName":"r1_h1","StartingPosition":"LATEST"}');
});
my ($rc, $out, $err) = $node->psql($db, q{SET ROLE r1; SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"r1_t","FunctionName":"r1_h2","StartingPosition":"LATEST"}')});
like($err, qr/Limit exceeded: role r1 already has 1 enabled event source mappings in this database \(pg_streams.max_mappings_per_role = 1\)/,
	'a second enabled mapping of the role is refused with the limit');
like($err, qr/TooManyRequestsException/, 'as TooManyRequestsException');
my $u2 = $node->safe_psql($db, q{SET ROLE r1; SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"r1_t","FunctionName":"r1_h2","StartingPosition":"LATEST","Enabled":false}')->>'UUID'});
($rc, $out, $err) = $node->psql($db, qq{SET ROLE r1; SELECT streams.update_event_source_mapping('$u2', '{"Enabled": true}')});
like($err, qr/Limit exceeded: role r1/, 'enabling a disabled mapping counts against the limit too');

# The pool follows pg_streams.dispatch_workers on reload: its workers serve
# every mapping, new ones included, however many there are.
is($node->safe_psql($db, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch' AND datname = current_database()}),
	'2', 'the default pool: two dispatcher workers');
$node->safe_psql($db, q{
ALTER SYSTEM SET pg_streams.dispatch_workers = 1;
SELECT pg_reload_conf();
});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch' AND datname = current_database()}),
	'dispatch_workers = 1: one dispatcher worker is left');
$node->safe_psql($db, q{
CREATE TABLE t_cap (id int PRIMARY KEY);
CREATE TABLE t_cap_out (id int);
SELECT streams.enable_stream('t_cap', 'NEW_IMAGE', 1);
CREATE FUNCTION h_cap(e jsonb) RETURNS void LANGUAGE sql AS $$ INSERT INTO t_cap_out VALUES (1) $$;
SELECT streams.create_function('h_cap', 'h_cap(jsonb)');
SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_cap","FunctionName":"h_cap","StartingPosition":"TRIM_HORIZON"}');
INSERT INTO t_cap VALUES (1);
});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM t_cap_out}), 'a new mapping runs on the one worker');
is($node->safe_psql($db, q{SELECT count(*) || ' ' || sum(mappings) FROM streams.dispatch_worker_stats}),
	'1 ' . $node->safe_psql($db, q{SELECT count(*) FROM streams.event_source_mapping WHERE enabled}),
	'dispatch_worker_stats: one worker with every enabled mapping');
$node->safe_psql($db, q{ALTER SYSTEM RESET pg_streams.dispatch_workers; SELECT pg_reload_conf();});
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch' AND datname = current_database()}),
	'back to two workers after a reset');
ok($node->poll_query_until($db, q{SELECT min(mappings) > 0 AND max(mappings) - min(mappings) <= 1 FROM streams.dispatch_worker_stats}),
	'the mappings are spread over both again');
$node->safe_psql($db, q{INSERT INTO t_cap VALUES (2)});
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM t_cap_out}), 'and still delivered');

# --- A shard retrying one batch too long: WARNING once, blocked_since ------
$node->safe_psql($db, q{
ALTER SYSTEM SET pg_streams.blocked_shard_warning = 2;
SELECT pg_reload_conf();
CREATE TABLE t_blk (id int PRIMARY KEY);
CREATE TABLE t_blk_out (id int);
CREATE TABLE t_blk_switch (broken boolean);
INSERT INTO t_blk_switch VALUES (true);
SELECT streams.enable_stream('t_blk', 'NEW_IMAGE', 1);
CREATE FUNCTION h_blk(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT broken FROM t_blk_switch) THEN RAISE EXCEPTION 'downstream is down'; END IF;
    INSERT INTO t_blk_out SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r;
END $$;
SELECT streams.create_function('h_blk', 'h_blk(jsonb)');
});
$offset = -s $node->logfile;
$node->safe_psql($db, q{SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_blk","FunctionName":"h_blk","StartingPosition":"TRIM_HORIZON"}');
	INSERT INTO t_blk VALUES (1)});
my $warn_re = qr/WARNING:  pg_streams: event source mapping [0-9a-f-]+: shard shardId-\S+ has been retrying the same batch since \S+ \(\d+ attempts\): downstream is down/;
is(count_log_lines($node, $warn_re, $offset, 1), 1, 'a shard retrying one batch past pg_streams.blocked_shard_warning logs a WARNING');
is($node->safe_psql($db, q{SELECT blocked_since IS NOT NULL AND blocked_since < now() FROM streams.event_source_mapping_stats WHERE function_name = 'h_blk'}),
	't', 'the stats view shows since when it is blocked');
sleep 3;
is(count_log_lines($node, $warn_re, $offset, 2), 1, 'the WARNING is logged once per batch');
$node->safe_psql($db, q{UPDATE t_blk_switch SET broken = false});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM t_blk_out}), 'the batch goes through once the function works');
ok($node->poll_query_until($db, q{SELECT blocked_since IS NULL FROM streams.event_source_mapping_stats WHERE function_name = 'h_blk'}),
	'blocked_since is cleared when the shard moves on');

$sink->kill_kill;
$node->stop;
done_testing();
