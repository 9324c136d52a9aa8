# A transaction with millions of records: the capture worker and the appender
# keep their memory bounded (the appender appends such a transaction in
# pieces), and the stream stays exactly once and in order, also when the
# appender is killed (kill -9) or the server stops (immediate shutdown) in the
# middle of appending one.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use PgStreamsTest;

my $db = 'postgres';
my $node = new_streams_node('big_transaction');
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

# About 130-byte rows, both images in every record (about 500 bytes each).
$node->safe_psql($db, q{
	CREATE TABLE big (id bigint PRIMARY KEY, a text, b int, c text);
	SELECT streams.enable_stream('big', 'NEW_AND_OLD_IMAGES', 4);
});

my $stored = q{SELECT coalesce(sum(n_records), 0) FROM streams.record_batch};

# Polls until at least $n records are stored.
sub wait_stored
{
	my ($n) = @_;
	return $node->poll_query_until($db, "SELECT ($stored) >= $n");
}

sub pid_of
{
	my ($type) = @_;
	return $node->safe_psql($db, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams $type'");
}

# Peak resident memory (VmHWM, kB) of a process, shared memory it touched included.
sub peak_kb
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	while (<$fh>) { return $1 if /^VmHWM:\s+(\d+) kB/; }
	return undef;
}

# --- Memory: one INSERT of 1,000,000 rows -----------------------------------
# An appender holding the whole transaction peaks at about 1.2 GB here (2.3 GB
# for 2,000,000 rows); the bound is the target for any transaction size.
my $rows = 1_000_000;
my $bound_kb = 300 * 1024;
my $capture = pid_of('capture');
my $appender = pid_of('append');
ok($capture =~ /^\d+$/ && $appender =~ /^\d+$/, 'capture worker and appender pids found');
$node->safe_psql($db, qq{
	INSERT INTO big SELECT g, md5(g::text), g, repeat('x', 60) FROM generate_series(1, $rows) g});
ok(wait_stored($rows), 'the big transaction is in the stream');
is(pid_of('capture') . '/' . pid_of('append'), "$capture/$appender",
	'the same capture worker and appender did all of it');
my ($capture_kb, $appender_kb) = (peak_kb($capture), peak_kb($appender));
note("peak RSS: capture worker $capture_kb kB, appender $appender_kb kB");
ok(defined $capture_kb && $capture_kb < $bound_kb, "capture worker peak RSS $capture_kb kB < 300 MB");
ok(defined $appender_kb && $appender_kb < $bound_kb, "appender peak RSS $appender_kb kB < 300 MB");

# --- Faults in the middle of appending a big transaction ----------------------
# An UPDATE of $upd rows (b = b + 1); once part of its records are in the
# stream and that part is on disk, the fault. Afterwards the records stored
# before the fault are kept and the rest follow: the log says how many were
# skipped when the transaction was decoded again.
my $upd = 200_000;

sub fault_mid_transaction
{
	my ($what, $fault) = @_;
	$node->safe_psql($db, 'CHECKPOINT');    # recovery after the fault replays little
	my $before = $node->safe_psql($db, $stored);
	my $offset = -s $node->logfile;
	# Committed before decoding of it begins.
	$node->safe_psql($db, "UPDATE big SET b = b + 1 WHERE id <= $upd");
	my $seen;
	for (1 .. 1200)
	{
		$seen = $node->safe_psql($db, $stored);
		last if $seen > $before;
		sleep 0.05;
	}
	# The pieces seen committed before this LSN: wait until it is on disk.
	my $lsn = $node->safe_psql($db, 'SELECT pg_current_wal_lsn()');
	$node->poll_query_until($db, "SELECT pg_current_wal_flush_lsn() >= '$lsn'") or die;
	ok($seen > $before && $seen < $before + $upd,
		"$what: part of the transaction is stored when the fault comes (" . ($seen - $before) . " of $upd)");
	$fault->();
	$node->poll_query_until($db, 'SELECT true') or die;
	ok(wait_for_worker($node, $db), "$what: capture worker back");
	my ($skipped) = count_log_lines($node, qr/partly appended before a restart; its first \d+ records/, $offset, 1);
	my ($n) = slurp_file($node->logfile, $offset) =~ /partly appended before a restart; its first (\d+) records/;
	ok($skipped && $n > 0 && $n < $upd, "$what: decoded again, the " . ($n // 0) . ' records stored before are skipped');
	ok(wait_stored($before + $upd), "$what: the rest of the transaction follows");
	return;
}

fault_mid_transaction('kill -9 of the appender', sub {
	my $pid = pid_of('append');
	ok($pid =~ /^\d+$/, 'appender pid found');
	kill 'KILL', $pid;
});
fault_mid_transaction('immediate shutdown', sub {
	$node->stop('immediate');
	$node->start;
});

# The processes that decoded an interrupted transaction again, skipping its
# first records, kept their memory bounded too.
for my $type ('capture', 'append')
{
	my $kb = peak_kb(pid_of($type));
	ok(defined $kb && $kb < $bound_kb, "after the faults: $type peak RSS " . ($kb // '?') . ' kB < 300 MB');
}

# --- Exactly once, in order ------------------------------------------------
$node->safe_psql($db, 'CHECKPOINT');
sleep 1;    # a duplicate, if any, has time to show up
my $total = $rows + 2 * $upd;
is($node->safe_psql($db, $stored), $total, "$total records: one per row changed");
# Per source transaction: each change index once, none missing.
is($node->safe_psql($db, q{
	SELECT string_agg(n || ':' || d || ':' || lo || ':' || hi, ' ' ORDER BY lsn)
	  FROM (SELECT lsn, count(*) n, count(DISTINCT idx) d, min(idx) lo, max(idx) hi
	          FROM streams.record_batch b, unnest(b.lsns, b.idxs) u(lsn, idx) GROUP BY lsn) t}),
	"$rows:$rows:0:" . ($rows - 1) . " $upd:$upd:0:" . ($upd - 1) . " $upd:$upd:0:" . ($upd - 1),
	'three transactions, every record of each stored once');
is($node->safe_psql($db, q{
	SELECT count(*) FROM (
	  SELECT lsn, idx, lag(lsn) OVER w AS plsn, lag(idx) OVER w AS pidx
	    FROM streams.record_batch b, unnest(b.lsns, b.idxs) WITH ORDINALITY u(lsn, idx, k)
	  WINDOW w AS (PARTITION BY b.stream_id, b.shard ORDER BY b.last_lsn, b.last_idx, u.k)) x
	 WHERE (lsn, idx) <= (plsn, pidx)}),
	'0', 'sequence numbers strictly increase within each shard');
# The records of the two interrupted transactions in shard 0 as users read
# them: unique eventIDs, each item twice, b going up by one each time.
is($node->safe_psql($db, qq{
	WITH r AS (
	  SELECT u.lsn, u.idx, streams._full_record(u.rec, u.lsn, u.idx)::jsonb AS rec
	    FROM streams.record_batch b, unnest(b.lsns, b.idxs, b.records) u(lsn, idx, rec)
	   WHERE b.shard = 0 AND b.first_lsn > (SELECT min(first_lsn) FROM streams.record_batch)),
	k AS (
	  SELECT (rec->'dynamodb'->'Keys'->'id'->>'N')::bigint AS id,
	         array_agg((rec->'dynamodb'->'OldImage'->'b'->>'N')::int || '>' || (rec->'dynamodb'->'NewImage'->'b'->>'N')::int
	                   ORDER BY lsn, idx) AS bs
	    FROM r GROUP BY 1)
	SELECT (SELECT count(DISTINCT rec->>'eventID') = count(*) AND count(*) = 2 * (SELECT count(*) FROM k) FROM r)
	       AND (SELECT count(*) FROM k) > $upd / 8
	       AND (SELECT count(*) FROM k WHERE bs <> ARRAY[id || '>' || id + 1, id + 1 || '>' || id + 2]) = 0}),
	't', 'the interrupted transactions: unique eventIDs, every item once per transaction, in commit order');

$node->stop;
done_testing();
