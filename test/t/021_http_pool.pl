# HTTP requests of a dispatcher worker in flight at once (one libcurl multi
# handle): the shards of one mapping, and the mappings of one worker, do not
# wait for each other's answers; MaxConcurrency and
# pg_streams.max_requests_per_worker cap them. One worker serves every
# mapping here (dispatch_workers = 1), so nothing runs side by side for
# having a process of its own.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP qw(decode_json);
use List::Util qw(max);
use PgStreamsTest;

my $node = new_streams_node("http_pool", extra_conf => "pg_streams.dispatch_workers = 1\n");
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');
my ($sink, $base) = start_sink();
ok(defined $base, 'sink runs');

sub requests
{
	my ($path) = @_;
	return decode_json(`curl -s '$base/_requests?path=$path'`);
}

sub wait_requests
{
	my ($path, $n) = @_;
	for (1 .. 600)
	{
		return 1 if scalar(@{ requests($path) }) >= $n;
		sleep(0.1);
	}
	return 0;
}

sub most_active { return max(0, map { $_->{active} } @{ requests($_[0]) }); }

sub mapping
{
	my ($table, $function, $batch) = @_;
	return $node->safe_psql($db, qq{SELECT streams.create_event_source_mapping(
		'{"EventSourceArn":"$table","FunctionName":"$function","StartingPosition":"TRIM_HORIZON","BatchSize":$batch}')->>'UUID'});
}

# --- The shards of one mapping: four requests in flight at once ------------
$node->safe_psql($db, qq{
CREATE TABLE four (id int PRIMARY KEY);
SELECT streams.enable_stream('four', 'KEYS_ONLY', 4);
SELECT streams.create_http_function('four', '$base/four?delay=1', '{"Timeout": 30}');
INSERT INTO four SELECT g FROM generate_series(1, 200) g;
});
is($node->safe_psql($db, q{SELECT count(DISTINCT shard) FROM streams.record r JOIN streams.stream s USING (stream_id)
	WHERE s.table_name = 'public.four'}), '4', 'the records are in four shards');
mapping('four', 'four', 10);
ok(wait_requests('/four', 12), 'requests arrive');
is(most_active('/four'), 4, 'a mapping with four shards has four requests in flight at once (one per shard)');
ok($node->poll_query_until($db, q{SELECT records_delivered = 200 FROM streams.event_source_mapping_stats WHERE function_name = 'four'}, 't', 120),
	'every record delivered');

# --- A slow endpoint delays only its own shards -----------------------------
$node->safe_psql($db, qq{
CREATE TABLE dead (id int PRIMARY KEY);
CREATE TABLE fast (id int PRIMARY KEY);
SELECT streams.enable_stream('dead', 'KEYS_ONLY', 1);
SELECT streams.enable_stream('fast', 'KEYS_ONLY', 1);
SELECT streams.create_http_function('dead', '$base/dead?delay=300', '{"Timeout": 600}');
SELECT streams.create_http_function('fast', '$base/fast', '{}');
});
mapping('dead', 'dead', 10);
mapping('fast', 'fast', 10);
$node->safe_psql($db, q{INSERT INTO dead VALUES (1)});
ok(wait_requests('/dead', 1), 'the slow endpoint has a request');
$node->safe_psql($db, q{INSERT INTO fast SELECT g FROM generate_series(1, 30) g});
ok($node->poll_query_until($db, q{SELECT records_delivered = 30 FROM streams.event_source_mapping_stats WHERE function_name = 'fast'}),
	'a mapping of the same worker delivers meanwhile');
is($node->safe_psql($db, q{SELECT records_delivered FROM streams.event_source_mapping_stats WHERE function_name = 'dead'}), '0',
	'while the slow request is still unanswered');
ok($node->safe_psql($db, q{SELECT in_flight FROM streams.dispatch_worker_stats}) >= 1,
	'dispatch_worker_stats shows it in flight');
is(scalar(@{ requests('/fast') }), 3, 'three batches of ten');

# --- MaxConcurrency caps one function's requests ----------------------------
$node->safe_psql($db, qq{
CREATE TABLE capped (id int PRIMARY KEY);
SELECT streams.enable_stream('capped', 'KEYS_ONLY', 4);
SELECT streams.create_http_function('capped', '$base/capped?delay=0.5', '{"MaxConcurrency": 2, "Timeout": 30}');
INSERT INTO capped SELECT g FROM generate_series(1, 200) g;
});
mapping('capped', 'capped', 10);
ok($node->poll_query_until($db, q{SELECT records_delivered = 200 FROM streams.event_source_mapping_stats WHERE function_name = 'capped'}, 't', 120),
	'a capped function gets every record');
is(most_active('/capped'), 2, 'MaxConcurrency 2: at most two requests in flight, and two at times');

# --- pg_streams.max_requests_per_worker caps the worker ---------------------
$node->safe_psql($db, qq{
ALTER SYSTEM SET pg_streams.max_requests_per_worker = 3;
SELECT pg_reload_conf();
});
sleep(0.5);
$node->safe_psql($db, qq{
CREATE TABLE wide (id int PRIMARY KEY);
SELECT streams.enable_stream('wide', 'KEYS_ONLY', 8);
SELECT streams.create_http_function('wide', '$base/wide?delay=0.5', '{"Timeout": 30}');
INSERT INTO wide SELECT g FROM generate_series(1, 200) g;
});
mapping('wide', 'wide', 10);
ok($node->poll_query_until($db, q{SELECT records_delivered = 200 FROM streams.event_source_mapping_stats WHERE function_name = 'wide'}, 't', 120),
	'a mapping with eight shards gets every record');
my $wide = most_active('/wide');
is($wide, 2, 'max_requests_per_worker 3, one taken by the slow endpoint: two at once');
is(scalar(@{ requests('/dead') }), 1, 'the slow request is still the only one to its endpoint');

$node->stop;
done_testing();
