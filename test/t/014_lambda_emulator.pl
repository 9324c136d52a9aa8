# HTTP functions against an endpoint shaped like the AWS Lambda Runtime
# Interface Emulator (POST /2015-03-31/functions/function/invocations; a
# function error is 200 with X-Amz-Function-Error), and streams.invoke of
# HTTP functions.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use PgStreamsTest;

my $node = new_streams_node('lambda_emulator');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');
my ($sink, $base) = start_sink();
ok(defined $base, 'sink is up');
my $rie = "$base/2015-03-31/functions/function/invocations";
sub requests { my ($path) = @_; return decode_json(`curl -s '$base/_requests?path=$path'`); }

$node->safe_psql($db, qq{
CREATE TABLE t (id int PRIMARY KEY);
CREATE TABLE failed (record jsonb);
SELECT streams.enable_stream('t', 'NEW_IMAGE', 1);
SELECT streams.create_http_function('rie_ok', '$rie?body=%7B%22statusCode%22%3A200%7D', '{"SigningSecret": "a-secret-of-16-chars"}');
SELECT streams.create_http_function('rie_err', '$rie?lambda_error=1&error_message=handler%20exploded', '{}');
SELECT streams.create_http_function('rie_flaky', '$base/flaky?lambda_error=1&times=2', '{}');
});

# --- invoke ------------------------------------------------------------------
is($node->safe_psql($db, q{SELECT streams.invoke('rie_ok', '{"Records":[{"n":1}]}')}), '{"statusCode": 200}',
	'invoke of an HTTP function returns its answer');
my $sent = requests('/2015-03-31/functions/function/invocations')->[-1];
is($sent->{body}, '{"Records": [{"n": 1}]}', 'the event is posted as given');
like($sent->{headers}{'x-pgs-signature'} // '', qr/^v1=[0-9a-f]{64}$/, 'signed as a mapping signs');
ok(!exists $sent->{headers}{'x-pgs-event-source-mapping'}, 'with no mapping header');
my ($rc, $out, $err) = $node->psql($db, q{SELECT streams.invoke('rie_err', '{"Records":[]}')});
like($err, qr/ERROR:  handler exploded\nDETAIL:  FunctionError Unhandled: Error/,
	"invoke raises the function's error (errorMessage, X-Amz-Function-Error, errorType)");
$node->safe_psql($db, q{CREATE ROLE other LOGIN});
($rc, $out, $err) = $node->psql($db, q{SET ROLE other; SELECT streams.invoke('rie_ok', '{}')});
like($err, qr/must be a member of role \S+, the owner of function rie_ok, to invoke it/,
	'another role may not invoke the function');

# --- mappings: X-Amz-Function-Error is a function error ----------------------
my $before = scalar(@{ requests('/2015-03-31/functions/function/invocations') });
$node->safe_psql($db, q{
SELECT streams.create_event_source_mapping('{"EventSourceArn":"t","FunctionName":"rie_err","StartingPosition":"TRIM_HORIZON",
	"MaximumRetryAttempts":1,"DestinationConfig":{"OnFailure":{"Destination":"failed"}}}');
SELECT streams.create_event_source_mapping('{"EventSourceArn":"t","FunctionName":"rie_flaky","StartingPosition":"TRIM_HORIZON"}');
INSERT INTO t VALUES (1);
});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM failed}),
	'a 200 answer with X-Amz-Function-Error fails the batch: after its retry it goes to OnFailure');
is($node->safe_psql($db, q{SELECT record->'responseContext'->>'functionError' || ' ' || (record->'requestContext'->>'approximateInvokeCount') FROM failed}),
	'Unhandled 2', 'the failure record says Unhandled after 2 invocations');
like($node->safe_psql($db, q{SELECT last_error FROM streams.event_source_mapping_stats WHERE function_name = 'rie_err'}),
	qr/^function error \(X-Amz-Function-Error: Unhandled\): .*handler exploded/, 'last_error shows the function error and its body');
is(scalar(@{ requests('/2015-03-31/functions/function/invocations') }) - $before, 2, 'the emulator was called twice by the mapping');
ok($node->poll_query_until($db, q{SELECT records_delivered = 1 AND function_errors = 2
	FROM streams.event_source_mapping_stats WHERE function_name = 'rie_flaky'}),
	'a function that fails twice and then answers is retried and delivers');
is(scalar(@{ requests('/flaky') }), 3, 'after 3 invocations');

$sink->kill_kill;
$node->stop;
done_testing();
