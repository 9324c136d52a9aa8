# Worker lifecycle: start after CREATE EXTENSION, stop on DROP EXTENSION and
# DROP DATABASE, and retention trimming.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgStreamsTest;

my $node = new_streams_node('workers');

# No worker stays in a database without the extension. A restart makes the
# launcher start a capture worker in every database (postgres and d1 here);
# each finds no extension and stops, quietly: at DEBUG1, not LOG.
$node->safe_psql('postgres', 'CREATE DATABASE d1');
$node->append_conf('postgresql.conf', 'log_min_messages = debug1');
my $offset = -s $node->logfile;
$node->restart;
my $quiet_re = qr/DEBUG:  pg_streams: extension not installed in this database; capture worker stops/;
my $stops = count_log_lines($node, $quiet_re, $offset, 2);
ok($stops >= 2, 'after a restart a capture worker started in each database without the extension and stopped');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_streams capture'}),
	'no capture worker stays without the extension');
unlike(slurp_file($node->logfile, $offset), qr/LOG:  pg_streams: extension not installed/,
	'databases without the extension leave no LOG line');
$node->append_conf('postgresql.conf', 'log_min_messages = log');
$node->reload;

# CREATE EXTENSION in a new database starts its worker and slot.
$node->safe_psql('d1', 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, 'd1'), 'worker and slot appear after CREATE EXTENSION');

$node->safe_psql('d1', 'CREATE TABLE t (id int PRIMARY KEY, v text)');
$node->safe_psql('d1', q{SELECT streams.enable_stream('t', 'NEW_IMAGE', 2)});
$node->safe_psql('d1', q{INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5) g});
ok($node->poll_query_until('d1', q{SELECT count(*) = 5 FROM streams.record}),
	'committed rows reach the stream');

# DROP EXTENSION stops the worker and drops its slot and origin.
$node->safe_psql('d1', 'DROP EXTENSION pg_streams');
ok($node->poll_query_until('d1', q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_streams capture'}),
	'worker stops after DROP EXTENSION');
ok($node->poll_query_until('d1', q{SELECT count(*) = 0 FROM pg_replication_slots}),
	'slot dropped with the extension');
is($node->safe_psql('d1', q{SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'pg_streams_%'}),
	'0', 'replication origin dropped with the extension');

# Again, then DROP DATABASE while the worker runs.
$node->safe_psql('d1', 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, 'd1'), 'worker back after CREATE EXTENSION');
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE d1');
is($ret, 0, 'DROP DATABASE succeeds while the worker runs') or diag($stderr);
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_streams capture'}),
	'worker gone with its database');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_replication_slots}), '0',
	'slot gone with its database');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_replication_origin}), '0',
	'origin gone with its database');

# A worker also starts for a database created from a template that has the
# extension, and CREATE DATABASE ... TEMPLATE works while that worker runs.
$node->safe_psql('postgres', 'CREATE DATABASE d2');
$node->safe_psql('d2', 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, 'd2'), 'worker in d2');
($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE DATABASE d3 TEMPLATE d2');
is($ret, 0, 'CREATE DATABASE ... TEMPLATE of a database with a worker') or diag($stderr);
ok(wait_for_worker($node, 'd2'), 'template database worker restarted');
ok(wait_for_worker($node, 'd3'), 'worker in the copied database');

# Retention: segments older than the retention period are dropped in bulk.
$node->safe_psql('d2', 'CREATE TABLE r (id int PRIMARY KEY)');
$node->safe_psql('d2', q{SELECT streams.enable_stream('r', 'KEYS_ONLY', 1, '2 seconds')});
$node->safe_psql('d2', q{INSERT INTO r SELECT generate_series(1, 100)});
ok($node->poll_query_until('d2', q{SELECT count(*) = 100 FROM streams.record}), 'records captured');
ok($node->poll_query_until('d2', q{
	SELECT count(*) = 0 FROM streams.record r JOIN streams.stream s USING (stream_id)
	 WHERE s.relid = 'r'::regclass}),
	'records trimmed after the retention period');
is($node->safe_psql('d2', q{
	SELECT count(*) FROM pg_inherits i JOIN streams.stream s ON i.inhparent = ('streams.record_' || s.stream_id)::regclass
	 WHERE s.relid = 'r'::regclass}),
	'0', 'expired segments dropped as tables');
my $arn = $node->safe_psql('d2', q{SELECT streams.list_streams('r')->'Streams'->0->>'StreamArn'});
my $shard = $node->safe_psql('d2', qq{SELECT streams.describe_stream('$arn')->'StreamDescription'->'Shards'->0->>'ShardId'});
is($node->safe_psql('d2', qq{
	SELECT jsonb_array_length(streams.get_records(streams.get_shard_iterator('$arn', '$shard', 'TRIM_HORIZON'))->'Records')}),
	'0', 'TRIM_HORIZON starts after trimmed records');

# An open transaction that has read the stream does not hold up capture:
# new storage segments (1 s wide here) are attached without waiting for it.
my $reader = $node->background_psql('d2');
$reader->query_safe('BEGIN');
$reader->query_safe('SELECT count(*) FROM streams.record');
$node->safe_psql('d2', q{INSERT INTO r VALUES (1001)});
sleep 1.5;
$node->safe_psql('d2', q{INSERT INTO r VALUES (1002)});
ok($node->poll_query_until('d2', q{
	SELECT count(*) = 2 FROM streams.record r JOIN streams.stream s USING (stream_id)
	 WHERE s.relid = 'r'::regclass AND r.arrival > now() - interval '1 minute'}),
	'capture goes on while a reader transaction is open');
$reader->query_safe('COMMIT');
$reader->quit;

# A disabled stream disappears once its retention has passed.
$node->safe_psql('d2', q{SELECT streams.disable_stream('r')});
ok($node->poll_query_until('d2', q{SELECT jsonb_array_length(streams.list_streams('r')->'Streams') = 0}),
	'disabled stream removed after retention');

# DROP and CREATE EXTENSION in quick succession: the worker may go on with
# its slot and decode WAL written before the drop; that must not stop it.
$node->safe_psql('d2', q{INSERT INTO r SELECT generate_series(101, 110)});
$node->safe_psql('d2', 'DROP EXTENSION pg_streams CASCADE');
$node->safe_psql('d2', 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, 'd2'), 'worker runs after DROP and CREATE EXTENSION');
$node->safe_psql('d2', 'CREATE TABLE q (id int PRIMARY KEY)');
$node->safe_psql('d2', q{SELECT streams.enable_stream('q', 'KEYS_ONLY', 1)});
$node->safe_psql('d2', q{INSERT INTO q SELECT generate_series(1, 3)});
ok($node->poll_query_until('d2', q{SELECT count(*) = 3 FROM streams.record}),
	'new stream captured after the extension was re-created');

# Packed storage: 1,000 records of one transaction in one shard are stored as
# rows of at most 256 records, compressed, and read back in order by paging.
$node->safe_psql('d2', q{
CREATE TABLE pk (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('pk', 'NEW_IMAGE', 1);
INSERT INTO pk SELECT g, repeat('payload ', 20) || g FROM generate_series(1, 1000) g;
});
ok($node->poll_query_until('d2', q{
	SELECT count(*) = 1000 FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'pk'::regclass}),
	'1,000 records captured');
is($node->safe_psql('d2', q{
	SELECT count(*) || ',' || max(n_records) || ',' || sum(n_records) || ',' || bool_and(n_records = cardinality(records))
	FROM streams.record_batch b JOIN streams.stream s USING (stream_id) WHERE s.relid = 'pk'::regclass}),
	'4,256,1000,true', 'stored as 4 rows of at most 256 records');
ok($node->safe_psql('d2', q{
	SELECT sum(pg_column_size(records)) * 3 < sum(octet_length(array_to_string(records, '')))
	FROM streams.record_batch b JOIN streams.stream s USING (stream_id) WHERE s.relid = 'pk'::regclass}) eq 't',
	'the stored records are compressed');
# The appender writes each stored row into its segment itself, not through
# the partitioned table: the row must lie within that segment's bounds, and
# the position index must have an entry for it.
is($node->safe_psql('d2', q{
	SELECT count(*) FILTER (WHERE b.arrival >= g.lower_bound AND b.arrival < g.upper_bound
	         AND (SELECT bool_and(a >= g.lower_bound AND a < g.upper_bound) FROM unnest(b.arrivals) a))
	       || ',' || count(*)
	FROM streams.record_batch b JOIN streams.stream s USING (stream_id)
	JOIN streams.segment g ON g.stream_id = b.stream_id AND b.tableoid = format('streams.%I', g.relname)::regclass
	WHERE s.relid = 'pk'::regclass}),
	'4,4', 'every stored row lies in the segment of its commit time');
my $pk_id = $node->safe_psql('d2', q{SELECT stream_id FROM streams.stream WHERE relid = 'pk'::regclass});
like($node->safe_psql('d2', qq{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	EXPLAIN (COSTS OFF) SELECT * FROM streams.record_batch WHERE stream_id = $pk_id AND shard = 0 AND last_lsn > 0;
	}), qr/Index Scan/, 'rows are looked up through the position index');
is($node->safe_psql('d2', qq{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT sum(n_records) FROM streams.record_batch WHERE stream_id = $pk_id AND shard = 0 AND last_lsn > 0;
	}), '1000', 'and the index has an entry for every stored row');
# Records are stored without eventID and SequenceNumber; readers splice them
# back in, byte for byte as the output plugin writes them (also with a column
# named SizeBytes and a value that quotes the envelope's tail).
$node->safe_psql('d2', q{SELECT pg_create_logical_replication_slot('splice_check', 'pg_streams')});
$node->safe_psql('d2', q|
CREATE TABLE sz (id int PRIMARY KEY, "SizeBytes" int, v text);
SELECT streams.enable_stream('sz', 'NEW_AND_OLD_IMAGES', 2);
INSERT INTO sz VALUES (1, 5, ',"SizeBytes":7,"StreamViewType":"x"}'), (2, NULL, 'b');
UPDATE sz SET v = 'c' WHERE id = 2;
DELETE FROM sz WHERE id = 1;
|);
ok($node->poll_query_until('d2', q{
	SELECT count(*) = 4 FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'sz'::regclass}),
	'records of sz captured');
my $from_plugin = $node->safe_psql('d2', q{
	SELECT string_agg(data, E'\n' ORDER BY n)
	FROM pg_logical_slot_get_changes('splice_check', NULL, NULL) WITH ORDINALITY AS c(lsn, xid, data, n)});
$node->safe_psql('d2', q{SELECT pg_drop_replication_slot('splice_check')});
my $from_stream = $node->safe_psql('d2', q{
	SELECT string_agg(r.record, E'\n' ORDER BY r.lsn, r.idx)
	FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'sz'::regclass});
is($from_stream, $from_plugin, 'records read from the stream are the output plugin\'s records, byte for byte');
like($from_stream, qr/"eventID":"[0-9a-f]{32}".*"SequenceNumber":"\d{31}","SizeBytes":\d+,"StreamViewType"/,
	'with their eventID and SequenceNumber');
is($node->safe_psql('d2', q~
	SELECT count(*) FILTER (WHERE t LIKE '{"eventName":%' AND t NOT LIKE '%"eventID"%' AND t NOT LIKE '%"SequenceNumber"%')
	       || ',' || count(*)
	FROM streams.record_batch b JOIN streams.stream s USING (stream_id), unnest(b.records) t
	WHERE s.relid = 'sz'::regclass~),
	'4,4', 'which are not stored');
# A row of one small record (under TOAST's 2 kB threshold) is compressed too,
# kept in the row itself, and reads back as it was written.
$node->safe_psql('d2', q{
CREATE TABLE small (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('small', 'NEW_IMAGE', 1);
INSERT INTO small VALUES (1, 'abc abc abc abc abc abc abc abc abc abc');
});
ok($node->poll_query_until('d2', q{
	SELECT count(*) = 1 FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'small'::regclass}),
	'small record captured');
is($node->safe_psql('d2', q{
	SELECT pg_column_compression(records) IS NOT NULL AND pg_column_size(records) < octet_length(records[1])
	       AND records[1]::jsonb #>> '{dynamodb,NewImage,v,S}' = 'abc abc abc abc abc abc abc abc abc abc'
	FROM streams.record_batch b JOIN streams.stream s USING (stream_id) WHERE s.relid = 'small'::regclass}),
	't', 'a one-record row is stored compressed and reads back intact');
is($node->safe_psql('d2', q{
	SELECT sum(pg_relation_size(c.reltoastrelid)) FROM streams.segment g JOIN pg_class c
	    ON c.oid = format('streams.%I', g.relname)::regclass
	 WHERE g.stream_id = (SELECT stream_id FROM streams.stream WHERE relid = 'small'::regclass)}),
	'0', 'and stays in the row, not in the TOAST table');
my $pk_arn = $node->safe_psql('d2', q{SELECT stream_arn FROM streams.stream WHERE relid = 'pk'::regclass});
my $pk_shard = $node->safe_psql('d2', qq{
	SELECT streams.describe_stream('$pk_arn')->'StreamDescription'->'Shards'->0->>'ShardId'});
$node->safe_psql('d2', q{
CREATE FUNCTION read_all(arn text, shard text, page_size int) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
    it   text := streams.get_shard_iterator(arn, shard, 'TRIM_HORIZON');
    page jsonb;
    ids  int[] := '{}';
BEGIN
    LOOP
        page := streams.get_records(it, page_size);
        EXIT WHEN jsonb_array_length(page->'Records') = 0;
        ids := ids || ARRAY(SELECT (r #>> '{dynamodb,Keys,id,N}')::int FROM jsonb_array_elements(page->'Records') r);
        it := page->>'NextShardIterator';
    END LOOP;
    RETURN ids;
END $$;
});
is($node->safe_psql('d2', qq{SELECT read_all('$pk_arn', '$pk_shard', 7) = ARRAY(SELECT generate_series(1, 1000))}), 't',
	'get_records pages of 7 read the 1,000 records in order, across stored rows, once each');

$node->stop;
done_testing();
