# Records that AWS's own SDKs read: a table with every supported column type
# (and the numbers that need DynamoDB's canonical text) is read through
# get_records and checked with botocore's GetRecords model and boto3's
# TypeDeserializer (test/sdk/check_records.py), and delivered to a Powertools
# BatchProcessor handler behind an HTTP function with ReportBatchItemFailures
# (test/sdk/handler_server.js: @aws-sdk/util-dynamodb's unmarshall). A record
# either SDK cannot read fails the test. setup.sh installs python3-boto3 and
# test/sdk's npm packages.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(sleep);
use PgStreamsTest;

my $root = $ENV{PGS_ROOT} // '.';
ok(-d "$root/test/sdk/node_modules/\@aws-sdk/util-dynamodb" && -d "$root/test/sdk/node_modules/\@aws-lambda-powertools/batch",
	'the npm packages are installed (setup.sh: npm ci in test/sdk)')
  or BAIL_OUT('test/sdk/node_modules is missing');
ok(system('python3', '-c', 'import boto3, botocore') == 0, 'boto3 is installed (python3-boto3)')
  or BAIL_OUT('python3-boto3 is missing');

my $node = new_streams_node('sdk');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

# The handler: Powertools' BatchProcessor on loopback.
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $handler = IPC::Run::start([ 'node', "$root/test/sdk/handler_server.js", $port ],
	'>', "$PostgreSQL::Test::Utils::tmp_check/handler.out", '2>&1');
my $base = "http://127.0.0.1:$port";
my $up = 0;
for (1 .. 100)
{
	$up = 1, last if system("curl -sf $base/_health >/dev/null") == 0;
	sleep(0.1);
}
ok($up, 'the Powertools handler is up');

# Every supported column type; the numbers include those PostgreSQL prints
# with an exponent, a scale or a sign DynamoDB never returns.
$node->safe_psql($db, q{
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TYPE pt AS (x int, f float8, n numeric, label text);
CREATE TABLE sdk (
    id int PRIMARY KEY, c_text text, c_varchar varchar(20), c_char char(4), c_int2 int2, c_int4 int4,
    c_int8 int8, c_oid oid, c_numeric numeric, c_float4 float4, c_float8 float8, c_bool bool, c_bytea bytea,
    c_json json, c_jsonb jsonb, c_int_arr int[], c_float_arr float8[], c_num_arr numeric[], c_text_arr text[],
    c_comp pt, c_comp_arr pt[], c_enum mood, c_date date, c_ts timestamp, c_tstz timestamptz, c_uuid uuid,
    c_inet inet, c_interval interval, poison bool);
SELECT streams.enable_stream('sdk', 'NEW_AND_OLD_IMAGES', 1);
});
$node->safe_psql($db, q{
INSERT INTO sdk VALUES
 (1, 'hello é€😀', 'v', 'ab', -32768, 2147483647, -9223372036854775808, 4294967295, 123.4500, 1.5, -0.1, true,
  '\xdeadbeef', '{"a": {"c": 2.50}, "b": [1, "two", null, false]}', '{"x": -1000, "y": {}, "z": [], "w": 1.0e3}',
  '{1,NULL,3}', '{1e16,-0,-1.5e-7}', '{1.5000,0.000,-0}', '{{a,NULL},{c,d}}', '(7,1e16,2.50,seven)',
  '{"(1,1.5e20,0.0,a)",NULL}', 'happy', '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 11:14:15+00',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '1 year 2 mons', false),
 (2, '', NULL, NULL, 0, 0, 0, 0, 0.0000, 1e16, 1e16, false, '', '"a string"', '1.50', '{}', '{}', '{}', '{}',
  NULL, '{}', 'sad', 'infinity', '-infinity', 'infinity', NULL, '::1', '-1 day', false),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1.5000000000000000000000000000000000000000, 3.4e38, 1.5e20,
  NULL, NULL, '42', '[1e-5, 1e125, 12345678901234567890123456789012345678]', NULL, '{9.007199254740992e15}', NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -0, -1.5e-07, 9.007199254740992e15, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false),
 (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 12345678901234567890123456789012345678, 1e-40, -0, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false),
 (6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1e-130, 'NaN', 'Infinity', NULL, NULL, NULL, NULL, NULL,
  '{NaN,-Infinity,1e300}', '{NaN,1234567890123456789012345678901234567890}', NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, false),
 (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', '-Infinity', 1.7976931348623157e308, NULL, NULL, NULL,
  '{"big": 1e200}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false),
 (8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1234567890123456789012345678901234567890, 0.1, 5e-324, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false),
 (100, 'to change', NULL, NULL, NULL, NULL, NULL, NULL, 1.10, 2.5, 2.50, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false),
 (101, 'to remove', NULL, NULL, NULL, NULL, NULL, NULL, 100.000, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false);
UPDATE sdk SET c_numeric = -0.00100, c_float8 = 1e-7, c_text = 'changed' WHERE id = 100;
DELETE FROM sdk WHERE id = 101;
});
my $n_records = 12;
ok($node->poll_query_until($db, qq{SELECT count(*) = $n_records FROM streams.record}), 'the changes are in the stream');

# GetRecords, page by page, until a page is empty.
my $arn = $node->safe_psql($db, q{SELECT streams.list_streams('sdk')->'Streams'->0->>'StreamArn'});
my $shard = $node->safe_psql($db, qq{SELECT streams.describe_stream('$arn')->'StreamDescription'->'Shards'->0->>'ShardId'});
my $it = $node->safe_psql($db, qq{SELECT streams.get_shard_iterator('$arn', '$shard', 'TRIM_HORIZON')});
my @pages;
for (1 .. 20)
{
	my $page = $node->safe_psql($db, qq{SELECT streams.get_records('$it', 5)});
	push @pages, $page;
	my $d = decode_json($page);
	last if !@{ $d->{Records} };
	$it = $d->{NextShardIterator};
}
my $tmp = $PostgreSQL::Test::Utils::tmp_check;
open(my $fh, '>', "$tmp/pages.json") or die;
print $fh '[' . join(',', @pages) . ']';
close $fh;
is(scalar(map { @{ decode_json($_)->{Records} } } @pages), $n_records, 'get_records reads every record');

# What PostgreSQL has, for the rows never changed (their NewImage is the row):
# numbers, strings, bytes, booleans, documents, arrays and composites.
my $expected = $node->safe_psql($db, q{
SELECT jsonb_object_agg(id::text, jsonb_strip_nulls(jsonb_build_object(
    'c_text', c_text, 'c_varchar', c_varchar, 'c_char', c_char, 'c_int2', c_int2, 'c_int4', c_int4,
    'c_int8', c_int8, 'c_oid', c_oid, 'c_numeric', c_numeric, 'c_float4', c_float4, 'c_float8', c_float8,
    'c_bool', c_bool, 'c_bytea', c_bytea, 'c_json', c_json, 'c_jsonb', c_jsonb, 'c_int_arr', c_int_arr,
    'c_float_arr', c_float_arr, 'c_num_arr', c_num_arr, 'c_text_arr', c_text_arr, 'c_comp', c_comp,
    'c_comp_arr', c_comp_arr, 'c_enum', c_enum, 'c_uuid', c_uuid, 'c_inet', c_inet, 'poison', poison)))
FROM sdk WHERE id < 100});
open($fh, '>', "$tmp/expected.json") or die;
print $fh $expected;
close $fh;

my ($out, $err) = ('', '');
my $rc = IPC::Run::run([ 'python3', "$root/test/sdk/check_records.py", "$tmp/pages.json", "$tmp/expected.json" ],
	'>', \$out, '2>', \$err);
note($out);
diag($err) if $err ne '';
ok($rc, 'boto3: every page is a GetRecords output botocore parses whole, every image deserializes to the row');
like($out, qr/^checked $n_records records, [1-9][0-9]* values$/m, 'boto3: every record and value was checked');

# The same records through Powertools behind an HTTP function: the last one,
# alone in its transaction, fails on purpose.
$node->safe_psql($db, qq{
SELECT streams.create_http_function('sdk_fn', '$base/batch');
CREATE TABLE fails (record jsonb);
SELECT streams.create_event_source_mapping('{"EventSourceArn":"sdk","FunctionName":"sdk_fn","StartingPosition":"TRIM_HORIZON",
    "BatchSize":4,"MaximumRetryAttempts":1,"FunctionResponseTypes":["ReportBatchItemFailures"],
    "DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
});
$node->safe_psql($db, q{INSERT INTO sdk (id, c_text, poison) VALUES (999, 'poison', true)});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails}), 'the poison record went to the OnFailure destination');

my $seen = decode_json(`curl -s $base/_seen`);
my %ok_ids = map { $_->{id} => 1 } @{ $seen->{ok} };
is(join(',', sort { $a <=> $b } keys %ok_ids), '1,2,3,4,5,6,7,8,100,101',
	'unmarshall read every record of every row (default options and wrapNumbers)');
is(join(',', sort(uniq(map { "$_->{id}: $_->{error}" } @{ $seen->{failed} }))), '999: poison record 999',
	'no record failed but the poison one');
is($node->safe_psql($db, q{
	SELECT concat_ws(',', record->'DDBStreamBatchInfo'->>'batchSize', record->'responseContext'->>'functionError')
	FROM fails}), '1,Unhandled', 'the failure record holds the poison record alone');
like($node->safe_psql($db, q{SELECT last_error FROM streams.event_source_mapping_stats WHERE function_name = 'sdk_fn'}),
	qr/^HTTP 500: \{"errorType":"FullBatchFailureError","errorMessage":"All records failed processing/,
	"last_error keeps the start of the handler's error body");

# Lambda's events carry eventSourceARN; GetRecords' records do not.
my ($with, $without) = (0, 0);
for my $page (@pages)
{
	for my $r (@{ decode_json($page)->{Records} }) { exists $r->{eventSourceARN} ? $with++ : $without++ }
}
is("$with,$without", "0,$n_records", 'no GetRecords record has eventSourceARN');
is($seen->{without_arn}, 0, 'every record sent to the function has eventSourceARN, as Lambda sends it');

$handler->kill_kill;
$node->stop;
done_testing();

sub uniq { my %s; return grep { !$s{$_}++ } @_ }
