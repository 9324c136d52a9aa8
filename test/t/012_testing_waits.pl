# streams.wait_for_capture / wait_for_delivery under load and across a
# restart of the capture worker: when a wait returns, every row committed
# before the call has been captured / delivered.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use POSIX ();
use PgStreamsTest;

my $node = new_streams_node('testing_waits');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');
$node->safe_psql($db, q{
CREATE TABLE src (id bigserial PRIMARY KEY, pad text);
CREATE TABLE got (id bigint);
SELECT streams.enable_stream('src', 'NEW_IMAGE', 2);
CREATE FUNCTION h(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO got SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::bigint FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('h', 'h(jsonb)');
SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"src","FunctionName":"h","StartingPosition":"TRIM_HORIZON","BatchSize":100}');
});

# A writer commits all along.
my $stop = "$PostgreSQL::Test::Utils::tmp_check/writer_stop";
my $connstr = $node->connstr($db);
my $writer = fork();
die "fork: $!" unless defined $writer;
if ($writer == 0)
{
	open(STDOUT, '>', '/dev/null');
	open(STDERR, '>', '/dev/null');
	system('psql', '-X', '-q', '-d', $connstr, '-c',
		'INSERT INTO src (pad) SELECT repeat(\'x\', 100) FROM generate_series(1, 50)') until -e $stop;
	POSIX::_exit(0);
}

my ($missed_capture, $missed_delivery, $rounds) = (0, 0, 0);
for my $round (1 .. 8)
{
	my $max = $node->safe_psql($db, 'SELECT coalesce(max(id), 0) FROM src');
	$node->safe_psql($db, 'SELECT streams.wait_for_capture()');
	$missed_capture += $node->safe_psql($db, qq{
		SELECT count(*) FROM src WHERE id <= $max AND id NOT IN (
			SELECT (r.record::jsonb->'dynamodb'->'Keys'->'id'->>'N')::bigint
			  FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 'src'::regclass)});
	$max = $node->safe_psql($db, 'SELECT coalesce(max(id), 0) FROM src');
	$node->safe_psql($db, 'SELECT streams.wait_for_delivery()');
	$missed_delivery += $node->safe_psql($db,
		qq{SELECT count(*) FROM src WHERE id <= $max AND id NOT IN (SELECT id FROM got)});
	$rounds++;
}
my $rows = $node->safe_psql($db, 'SELECT count(*) FROM src');
ok($rows > 400, "the writer committed during the waits ($rows rows)");
is($missed_capture, 0, "under load, wait_for_capture returned only once every earlier commit was in the stream ($rounds rounds)");
is($missed_delivery, 0, 'under load, wait_for_delivery returned only once every earlier commit was delivered');

# Across a restart of the capture worker: the wait outlasts it.
my $pid = $node->safe_psql($db, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams capture'});
like($pid, qr/^\d+$/, 'capture worker pid found');
my $max = $node->safe_psql($db, 'SELECT coalesce(max(id), 0) FROM src');
my $summary = $node->safe_psql($db,
	"SELECT pg_terminate_backend($pid); SELECT streams.wait_for_delivery(NULL, '60 s')->>'Mappings'");
like($summary, qr/1$/, 'wait_for_delivery returned across the restart of the capture worker');
isnt($node->safe_psql($db, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams capture'}), $pid,
	'the capture worker had been restarted');
is($node->safe_psql($db, qq{SELECT count(*) FROM src WHERE id <= $max AND id NOT IN (SELECT id FROM got)}), '0',
	'and everything committed before the call was delivered');

open(my $fh, '>', $stop) or die;
close($fh);
waitpid($writer, 0);
$node->safe_psql($db, 'SELECT streams.wait_for_delivery()');
is($node->safe_psql($db, q{SELECT count(*) - count(DISTINCT id) FROM got}), '0', 'exactly once');
is($node->safe_psql($db, q{SELECT count(*) FROM src WHERE id NOT IN (SELECT id FROM got)}), '0',
	'after the writer stopped, one wait delivers the rest');
$node->stop;
done_testing();
