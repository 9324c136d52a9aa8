# streams.capture_lag: near zero while capture keeps up, idle or busy; grows
# in bytes and seconds while the capture worker is stopped; back near zero
# once it runs again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use PgStreamsTest;

my $node = new_streams_node('capture_lag');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');
$node->safe_psql($db, q{
CREATE TABLE t (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t', 'NEW_IMAGE', 1);
INSERT INTO t VALUES (1, 'a');
});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM streams.record}), 'the insert is captured');

is($node->safe_psql($db, q{
	SELECT slot_name = 'pg_streams_' || (SELECT oid FROM pg_database WHERE datname = current_database())
	       AND active AND wal_status IS NOT NULL AND retained_wal_bytes > 0
	FROM streams.capture_lag}), 't', 'one row: this database\'s slot, held by the capture worker');
ok($node->poll_query_until($db, q{
	SELECT last_captured_commit_at IS NOT NULL AND last_captured_commit_at <= now() FROM streams.capture_lag}),
	'commit time of the last captured transaction is shown');

# Idle: no new commits for a while, and the lag in seconds does not grow.
sleep 3;
my ($bytes, $secs) = split /\|/, $node->safe_psql($db, q{SELECT lag_bytes, lag_seconds FROM streams.capture_lag});
cmp_ok($secs, '<', 2.5, "idle for 3 s, caught up: lag_seconds stays small ($secs)");
cmp_ok($bytes, '<', 1024 * 1024, "idle: lag_bytes small ($bytes)");

# Stop the capture worker (SIGSTOP) and write: the lag grows.
my $pid = $node->safe_psql($db,
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams capture' AND datname = current_database()});
ok($pid =~ /^\d+$/, "found the capture worker ($pid)");
kill 'STOP', $pid;
$node->safe_psql($db, q{INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(2, 2000) g});
sleep 3;
($bytes, $secs) = split /\|/, $node->safe_psql($db, q{SELECT lag_bytes, lag_seconds FROM streams.capture_lag});
kill 'CONT', $pid;
cmp_ok($secs, '>=', 2.5, "capture stopped for 3 s: lag_seconds grows ($secs)");
cmp_ok($bytes, '>', 100 * 1999, "capture stopped: lag_bytes covers the writes ($bytes)");

ok($node->poll_query_until($db, q{SELECT count(*) = 2000 FROM streams.record}), 'capture resumes');
ok($node->poll_query_until($db, q{SELECT lag_seconds < 2 FROM streams.capture_lag}),
	'lag_seconds back near zero');

$node->stop;
done_testing();
