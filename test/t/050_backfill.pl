# streams.backfill: with writers changing, deleting and re-keying the same
# rows meanwhile, the state derived from the stream equals the table and no
# backfilled image follows a newer change of its key; cancel, a killed
# session and resume (each row once); a SQL mapping receives the backfilled
# records and a filter on userIdentity tells them apart; the backfilling
# session's memory does not grow with the table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use PgStreamsTest;

my $node = new_streams_node('backfill');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

my $identity = '{"type":"Service","principalId":"pg_streams.backfill"}';

# --- 1. Concurrent writers --------------------------------------------------
$node->safe_psql($db, q{
CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, pad text);
INSERT INTO t SELECT g, 0, repeat('p', 50) FROM generate_series(1, 20000) g;
SELECT streams.enable_stream('t', 'NEW_AND_OLD_IMAGES', 4);
});

my $script = "${PostgreSQL::Test::Utils::tmp_check}/writers.sql";
open my $fh, '>', $script or die;
print $fh <<'SQL';
\set k random(1, 22000)
\set op random(1, 10)
\if :op <= 2
DELETE FROM t WHERE id = :k;
\elif :op = 3
BEGIN;
DELETE FROM t WHERE id = -:k;
UPDATE t SET id = -id WHERE id = :k;
COMMIT;
\else
INSERT INTO t VALUES (:k, 0, 'new') ON CONFLICT (id) DO UPDATE SET v = t.v + 1;
\endif
SQL
close $fh;

my ($wout, $werr) = ('', '');
my $writers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '3', '-j', '3', '-T', '6', '-f', $script,
	  '-h', $node->host, '-p', $node->port, $db ],
	'>', \$wout, '2>', \$werr);
sleep 1;
my ($rc, $out, $err) = $node->psql($db, q{CALL streams.backfill('t', 200)});
is($rc, 0, 'backfill with concurrent writers completes') or diag($err);
like($err, qr/backfill of t \(job \d+\) done: \d+ rows/, 'a NOTICE reports the end with the rows done');
$writers->finish;
like($wout, qr/number of transactions actually processed: [1-9]/, 'writers ran') or diag("$wout $werr");
$node->safe_psql($db, 'SELECT streams.wait_for_capture()');

my $recs = q{(SELECT r.lsn, r.idx, r.record::jsonb AS record, r.record::jsonb->'dynamodb'->'Keys' AS k,
                     r.record::jsonb->'userIdentity' IS NOT NULL AS bf
              FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 't'::regclass)};
my $during = $node->safe_psql($db, qq{
	WITH r AS $recs
	SELECT count(*) FROM r WHERE NOT bf
	   AND lsn > (SELECT min(lsn) FROM r WHERE bf) AND lsn < (SELECT max(lsn) FROM r WHERE bf)});
cmp_ok($during, '>', 0, "changes by writers were captured between backfilled records ($during)");

is($node->safe_psql($db, qq{
	WITH r AS $recs,
	last AS (SELECT DISTINCT ON (k) record FROM r ORDER BY k, lsn DESC, idx DESC),
	derived AS (SELECT (record->'dynamodb'->'NewImage'->'id'->>'N')::int AS id,
	                   (record->'dynamodb'->'NewImage'->'v'->>'N')::int AS v,
	                   record->'dynamodb'->'NewImage'->'pad'->>'S' AS pad
	            FROM last WHERE record->>'eventName' <> 'REMOVE')
	SELECT (SELECT count(*) FROM (SELECT * FROM derived EXCEPT SELECT * FROM t) a)
	     + (SELECT count(*) FROM (SELECT * FROM t EXCEPT SELECT * FROM derived) b)}),
	'0', 'the state derived from the stream equals the table');

# For every backfilled record: the last earlier record of its key (if any)
# is not a REMOVE and shows the same image.
is($node->safe_psql($db, qq{
	WITH r AS $recs,
	w AS (SELECT bf, record, lag(record) OVER (PARTITION BY k ORDER BY lsn, idx) AS prev FROM r)
	SELECT count(*) FROM w
	WHERE bf AND prev IS NOT NULL AND (prev->>'eventName' = 'REMOVE'
	                                   OR prev->'dynamodb'->'NewImage' IS DISTINCT FROM record->'dynamodb'->'NewImage')}),
	'0', 'no backfilled image follows a newer change of its key');
my ($bf_records, $bf_keys) = split /\|/, $node->safe_psql($db, qq{
	WITH r AS $recs SELECT count(*), count(DISTINCT k) FROM r WHERE bf});
cmp_ok($bf_records, '>', 10000, "most rows were backfilled ($bf_records)");
is($bf_records, $bf_keys, 'no key was backfilled twice');
is($node->safe_psql($db, qq{
	WITH r AS $recs SELECT count(*) FROM r WHERE bf AND (record->>'eventName' <> 'INSERT'
	   OR record->'userIdentity' <> '$identity' OR record->'dynamodb' ? 'OldImage')}),
	'0', 'backfilled records are INSERT records with the backfill userIdentity');

# --- 2. Cancel, kill, resume -------------------------------------------------
$node->safe_psql($db, q{
CREATE TABLE big (id bigint PRIMARY KEY, v text);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 30000) g;
SELECT streams.enable_stream('big', 'NEW_IMAGE', 2);
CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
});

sub start_backfill
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-d', $node->connstr($db), '-c', q{CALL streams.backfill('big', 50)} ],
		'>', \$out, '2>', \$err);
	return ($h, \$err);
}

sub wait_progress
{
	my ($more_than) = @_;
	return $node->poll_query_until($db, qq{
		SELECT rows_done > $more_than FROM streams.backfill_progress WHERE table_name = 'public.big' AND status = 'RUNNING'});
}

# Another session holds row 10000 locked: the backfill waits at the chunk
# that holds it, with the chunks before it committed.
my $locker = $node->background_psql($db);
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT * FROM big WHERE id = 10000 FOR UPDATE');
sub wait_lock
{
	return $node->poll_query_until($db, q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'CALL streams.backfill%'});
}
my ($h, $errref) = start_backfill();
ok(wait_lock(), 'the backfill waits for the locked row');
ok(wait_progress(0), 'the chunks before it are done');
is($node->safe_psql($db, q{SELECT active FROM streams.backfill_progress WHERE table_name = 'public.big'}), 't',
	'the view shows it active');
my ($rc2, $o2, $e2) = $node->psql($db, q{CALL streams.backfill('big')});
like($e2, qr/a backfill of public.big is running in process \d+/, 'a second backfill of the same table is refused');
is($node->safe_psql($db, q{SELECT streams.cancel_backfill('big')}), 'CANCELLING', 'cancel_backfill asks it to stop');
$locker->query_safe('COMMIT');
$h->finish;
like($$errref, qr/cancelled after \d+ of 30000 rows/, 'the backfill stops with a NOTICE after its current chunk');
my ($status, $done) = split /\|/, $node->safe_psql($db,
	q{SELECT status, rows_done FROM streams.backfill_progress WHERE table_name = 'public.big'});
is($status, 'CANCELLED', 'status CANCELLED');
cmp_ok($done, '>=', 10000, "it stopped after the chunk with the locked row ($done rows)");
cmp_ok($done, '<', 30000, 'and before the end');

# Resume, then kill the session while it waits for another locked row.
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT * FROM big WHERE id = 20000 FOR UPDATE');
($h, $errref) = start_backfill();
ok(wait_lock(), 'the resumed backfill waits for the next locked row');
my $bf_pid;
($bf_pid, $done) = split /\|/, $node->safe_psql($db,
	q{SELECT pid, rows_done FROM streams.backfill_progress WHERE table_name = 'public.big'});
cmp_ok($done, '>=', 19900, "it went on up to the locked row ($done rows)");
is($node->safe_psql($db, "SELECT pg_terminate_backend($bf_pid)"), 't', 'backfilling session terminated');
$h->finish;
like($$errref, qr/resuming the backfill of public.big \(job \d+\) after \d+ rows/, 'that call had resumed the job');
$locker->query_safe('COMMIT');
$locker->quit;
my $after;
($status, $after) = split /\|/, $node->safe_psql($db,
	q{SELECT status || ':' || active, rows_done FROM streams.backfill_progress WHERE table_name = 'public.big'});
is($status, 'RUNNING:false', 'a killed backfill stays resumable, not active');
is($after, $done, 'its last chunk was rolled back with the session');
($rc2, $o2, $e2) = $node->psql($db, q{CALL streams.backfill('big', 5000)});
is($rc2, 0, 'the next call completes') or diag($e2);
like($e2, qr/resuming the backfill of public.big \(job \d+\) after $done rows/, 'it resumed where the killed one stopped');
$node->safe_psql($db, 'SELECT streams.wait_for_capture()');
is($node->safe_psql($db, q{
	SELECT count(*) || ':' || count(DISTINCT record::jsonb->'dynamodb'->'Keys')
	FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'big'::regclass}),
	'30000:30000', 'across cancel, kill and resume: every row once');
is($node->safe_psql($db, q{SELECT status, rows_done, rows_total FROM streams.backfill_progress WHERE table_name = 'public.big'}),
	'DONE|30000|30000', 'the job is DONE with every row');

# --- 3. Mappings receive the records ----------------------------------------
$node->safe_psql($db, q{
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g;
SELECT streams.enable_stream('items', 'NEW_IMAGE', 2);
CREATE TABLE seen (mapping text, id int, principal text);
CREATE FUNCTION h_all(event jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO seen SELECT 'all', (r->'dynamodb'->'Keys'->'id'->>'N')::int, r->'userIdentity'->>'principalId'
  FROM jsonb_array_elements(event->'Records') r $$;
CREATE FUNCTION h_bf(event jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO seen SELECT 'bf', (r->'dynamodb'->'Keys'->'id'->>'N')::int, r->'userIdentity'->>'principalId'
  FROM jsonb_array_elements(event->'Records') r $$;
SELECT streams.create_function('h_all', 'h_all(jsonb)');
SELECT streams.create_function('h_bf', 'h_bf(jsonb)');
SELECT streams.create_event_source_mapping('{"EventSourceArn":"items","FunctionName":"h_all","StartingPosition":"TRIM_HORIZON","BatchSize":100}');
SELECT streams.create_event_source_mapping('{"EventSourceArn":"items","FunctionName":"h_bf","StartingPosition":"TRIM_HORIZON",
  "FilterCriteria":{"Filters":[{"Pattern":"{\"userIdentity\":{\"principalId\":[\"pg_streams.backfill\"]}}"}]}}');
INSERT INTO items VALUES (501, 'new');
});
$node->safe_psql($db, q{CALL streams.backfill('items')});
$node->safe_psql($db, q{UPDATE items SET name = 'changed' WHERE id = 1});
$node->safe_psql($db, q{SELECT streams.wait_for_delivery(NULL, '120 s')});
is($node->safe_psql($db, q{
	SELECT count(*) FILTER (WHERE principal = 'pg_streams.backfill') || ':' || count(*) FROM seen WHERE mapping = 'all'}),
	'501:503', 'the SQL mapping received the 501 backfilled records and the two changes');
is($node->safe_psql($db, q{
	SELECT count(*) || ':' || count(*) FILTER (WHERE principal = 'pg_streams.backfill') FROM seen WHERE mapping = 'bf'}),
	'501:501', 'a filter on userIdentity receives only the backfilled records');

# --- 4. Memory --------------------------------------------------------------
$node->safe_psql($db, q{
CREATE TABLE wide (id int PRIMARY KEY, v text);
INSERT INTO wide SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 100000) g;
SELECT streams.enable_stream('wide', 'NEW_IMAGE', 1);
});
my ($bo, $be) = ('', '');
my $bh = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr($db), '-c', q{SET application_name = 'wide_backfill'},
	  '-c', q{CALL streams.backfill('wide', 2000)} ],
	'>', \$bo, '2>', \$be);
my $bpid;
for (1 .. 600)
{
	$bpid = $node->safe_psql($db, q{SELECT pid FROM pg_stat_activity WHERE application_name = 'wide_backfill'});
	last if $bpid =~ /^\d+$/;
	sleep 0.05;
}
# Anonymous memory of the backfilling session (shared buffers not counted),
# sampled while it runs.
my ($peak, $samples) = (0, 0);
while ($bpid =~ /^\d+$/ && open my $st, '<', "/proc/$bpid/status")
{
	while (<$st>) { if (/^RssAnon:\s+(\d+) kB/) { $peak = $1 if $1 > $peak; $samples++; } }
	close $st;
	sleep 0.05;
}
$bh->finish;
like($be, qr/done: 100000 rows/, 'backfill of 100,000 rows (100 MB of records) finished') or diag($be);
cmp_ok($samples, '>', 3, "the session's memory was sampled while it ran ($samples samples)");
cmp_ok($peak, '<', 40 * 1024, "peak anonymous memory of the backfilling session stays small (${peak} kB)");
$node->safe_psql($db, 'SELECT streams.wait_for_capture()');
is($node->safe_psql($db, q{SELECT count(*) FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'wide'::regclass}),
	'100000', 'every row of wide is in the stream');

$node->stop;
done_testing();
