# Exactly-once capture across kill -9 of the capture worker and an immediate
# shutdown, under concurrent writes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep);
use PgStreamsTest;

my $node = new_streams_node('crash');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, 'postgres'), 'worker running');

$node->safe_psql('postgres', q{
	CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL);
	INSERT INTO counters SELECT g, 0 FROM generate_series(1, 8) g;
	CREATE TABLE events (id bigserial PRIMARY KEY, counter int, payload text);
});
$node->safe_psql('postgres', q{SELECT streams.enable_stream('counters', 'NEW_IMAGE', 4)});
$node->safe_psql('postgres', q{SELECT streams.enable_stream('events', 'KEYS_ONLY', 2)});

my $script = $node->basedir . '/writes.sql';
open my $fh, '>', $script or die;
print $fh <<'SQL';
\set c random(1, 8)
BEGIN;
UPDATE counters SET v = v + 1 WHERE id = :c;
INSERT INTO events (counter, payload) VALUES (:c, repeat('x', 200));
COMMIT;
SQL
close $fh;

sub start_writers
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds, '-f', $script,
		  '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	return $h;
}

sub capture_pid
{
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams capture'});
}

# Round 1: kill -9 the capture worker while writers run.
my $w = start_writers(6);
sleep 2;
my $pid = capture_pid();
ok($pid =~ /^\d+$/, 'capture worker pid found');
kill 'KILL', $pid;
$w->finish;
$node->poll_query_until('postgres', 'SELECT true') or die;
ok(wait_for_worker($node, 'postgres'), 'worker back after kill -9');

# Round 2: immediate shutdown while writers run.
$w = start_writers(6);
sleep 2;
$node->stop('immediate');
$w->finish;
$node->start;
ok(wait_for_worker($node, 'postgres'), 'worker back after immediate shutdown');

# Round 3: kill -9 the appender while writers run, then a clean round.
$w = start_writers(3);
sleep 1;
my $appender = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams append'});
ok($appender =~ /^\d+$/, 'appender pid found');
kill 'KILL', $appender;
$w->finish;
$node->poll_query_until('postgres', 'SELECT true') or die;
$w = start_writers(2);
$w->finish;

my $committed_updates = $node->safe_psql('postgres', 'SELECT sum(v) FROM counters');
my $committed_events = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
cmp_ok($committed_updates, '>', 0, "writers committed $committed_updates updates");

ok($node->poll_query_until('postgres', qq{
	SELECT (SELECT count(*) FROM streams.record r JOIN streams.stream s USING (stream_id)
	         WHERE s.relid = 'counters'::regclass) >= $committed_updates
	   AND (SELECT count(*) FROM streams.record r JOIN streams.stream s USING (stream_id)
	         WHERE s.relid = 'events'::regclass) >= $committed_events}),
	'capture caught up');
# Give a duplicate, if any, time to show up.
sleep 2;

is(stream_count($node, 'postgres', 'counters'), $committed_updates,
	'one record per committed counter update');
is(stream_count($node, 'postgres', 'events'), $committed_events,
	'one record per committed event insert');

# Per item, the values are 1, 2, 3, ... in stream order: no gap, no duplicate.
is($node->safe_psql('postgres', q{
	WITH r AS (
	  SELECT (rec::jsonb->'dynamodb'->'Keys'->'id'->>'N')::int AS id,
	         (rec::jsonb->'dynamodb'->'NewImage'->'v'->>'N')::int AS v,
	         row_number() OVER (PARTITION BY rec::jsonb->'dynamodb'->'Keys'->'id' ORDER BY lsn, idx) AS n
	    FROM (SELECT r.record AS rec, r.lsn, r.idx FROM streams.record r JOIN streams.stream s USING (stream_id)
	           WHERE s.relid = 'counters'::regclass) x)
	SELECT count(*) FROM r WHERE v <> n}),
	'0', 'each counter item streamed in commit order without gaps or duplicates');
is($node->safe_psql('postgres', q{
	WITH s AS (
	  SELECT (r.record::jsonb->'dynamodb'->'Keys'->'id'->>'N')::bigint AS id, count(*) AS c
	    FROM streams.record r JOIN streams.stream st USING (stream_id)
	   WHERE st.relid = 'events'::regclass GROUP BY 1)
	SELECT count(*) FROM events e FULL JOIN s USING (id) WHERE e.id IS NULL OR s.c IS DISTINCT FROM 1}),
	'0', 'each committed event row streamed exactly once');
is($node->safe_psql('postgres', q{
	SELECT count(DISTINCT record::jsonb->>'eventID') = count(*) FROM streams.record}),
	't', 'event ids are unique');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT shard, lsn, idx, lag(lsn) OVER w AS plsn, lag(idx) OVER w AS pidx
	    FROM streams.record WINDOW w AS (PARTITION BY stream_id, shard ORDER BY lsn, idx)) x
	 WHERE (lsn, idx) <= (plsn, pidx)}),
	'0', 'sequence numbers strictly increase within each shard');

# Appends commit asynchronously. An append that is not flushed when the
# server stops is lost with its origin progress: the slot must not have moved
# past its source transaction, and the record comes back after the restart.
# The WAL writer flushes every 10 s here and the capture worker flushes an
# append itself after pg_streams.append_delay (1 s here) without commits, so
# an append stays unflushed for about a second; an attempt whose append got
# flushed anyway is repeated.
$node->safe_psql('postgres', q{
	CREATE TABLE late (id int PRIMARY KEY, note text);
	CREATE TABLE nudge (id int);
	ALTER SYSTEM SET wal_writer_delay = '10s';
	ALTER SYSTEM SET pg_streams.append_delay = '1s';
	SELECT pg_reload_conf();
});
$node->safe_psql('postgres', q{SELECT streams.enable_stream('late', 'NEW_IMAGE', 1)});
my $late_record = q{
	SELECT r.record::jsonb->>'eventID'
	  FROM streams.record r JOIN streams.stream s USING (stream_id)
	 WHERE s.relid = 'late'::regclass AND (r.record::jsonb->'dynamodb'->'Keys'->'id'->>'N')::int = %d};
my ($lost, $slot_behind) = (0, 0);
for my $k (1 .. 6)
{
	# An asynchronous commit: the WAL writer wakes and flushes it, and then
	# waits wal_writer_delay before it flushes again.
	$node->safe_psql('postgres', 'SET synchronous_commit = off; INSERT INTO nudge VALUES (1)');
	my $before = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	$node->safe_psql('postgres', "INSERT INTO late VALUES ($k, 'row $k')");
	$node->poll_query_until('postgres', sprintf($late_record, $k) =~ s/SELECT .*?FROM/SELECT count(*) = 1 FROM/sr)
		or die "record $k not captured";
	sleep 0.2;    # time for the capture worker to confirm what it may
	my $id1 = $node->safe_psql('postgres', sprintf($late_record, $k));
	my $slot = $node->safe_psql('postgres', qq{
		SELECT confirmed_flush_lsn <= '$before' FROM pg_replication_slots WHERE slot_name LIKE 'pg_streams_%'});
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	$node->start;
	# Where capture starts again: the end of the last source transaction in a
	# durable append.
	my $started;
	for (1 .. 1800)    # up to 3 minutes on a loaded machine
	{
		last if ($started) = slurp_file($node->logfile, $offset) =~ /capture started from ([0-9A-F]+\/[0-9A-F]+)/;
		sleep 0.1;
	}
	die 'capture did not start again' unless defined $started;
	$node->poll_query_until('postgres', sprintf($late_record, $k) =~ s/SELECT .*?FROM/SELECT count(*) >= 1 FROM/sr)
		or die "record $k not back after restart";
	my $id2 = $node->safe_psql('postgres', sprintf($late_record, $k));
	# The append was flushed before the stop: try again.
	next if $node->safe_psql('postgres', "SELECT '$started'::pg_lsn > '$before'::pg_lsn") eq 't';
	$lost = $k;
	$slot_behind = $slot eq 't';
	is($id2, $id1, 'a lost append is appended again with the same eventID');
	last;
}
ok($lost, 'an append was lost in an immediate shutdown (test precondition)');
ok($slot_behind, 'the slot had not moved past the source transaction of an unflushed append');
sleep 1;
is($node->safe_psql('postgres', q{
	SELECT count(*) = count(DISTINCT r.record::jsonb->>'eventID') AND count(*) = (SELECT count(*) FROM late)
	  FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'late'::regclass}),
	't', 'each committed row of late is in the stream exactly once');

$node->stop;
done_testing();
