# HTTP targets against the loopback sink (test/sink/sink.py): event bytes,
# headers, signing, partial failures, bisect, throttles, timeouts, resets,
# HTTP OnFailure destinations, secrets, privileges, kill -9 mid-request.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Encode;
use Digest::SHA qw(hmac_sha256_hex);
use Time::HiRes qw(sleep);
use PgStreamsTest;

my $node = new_streams_node('http');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

# The sink.
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $root = $ENV{PGS_ROOT} // '.';
my $sink = IPC::Run::start([ 'python3', "$root/test/sink/sink.py", '--port', $port ],
	'>', "$PostgreSQL::Test::Utils::tmp_check/sink.out", '2>&1');
my $base = "http://127.0.0.1:$port";
my $up = 0;
for (1 .. 50)
{
	$up = 1, last if system("curl -sf $base/_health >/dev/null") == 0;
	sleep(0.1);
}
ok($up, 'sink is up');

sub requests
{
	my ($path) = @_;
	my $json = `curl -s '$base/_requests?path=$path'`;
	return decode_json($json);
}

sub wait_requests
{
	my ($path, $n) = @_;
	for (1 .. 300)
	{
		return 1 if scalar(@{ requests($path) }) >= $n;
		sleep(0.1);
	}
	return 0;
}

sub ids_of
{
	my ($body) = @_;
	return join(',', map { $_->{dynamodb}{Keys}{id}{N} } @{ decode_json($body)->{Records} });
}

sub esm
{
	my ($json) = @_;
	return $node->safe_psql($db, qq{SELECT streams.create_event_source_mapping('$json')->>'UUID'});
}

sub http_fn
{
	my ($name, $url, $opts) = @_;
	$opts //= '{}';
	$node->safe_psql($db, qq{SELECT streams.create_http_function('$name', '$url', '$opts')});
}

$node->safe_psql($db, q{CREATE TABLE fails (record jsonb)});

# --- Event bytes, headers, signature -------------------------------------
$node->safe_psql($db, q{
CREATE TABLE t_ev (id int PRIMARY KEY, v text, n numeric, j jsonb);
SELECT streams.enable_stream('t_ev', 'NEW_AND_OLD_IMAGES', 1);
CREATE TABLE sql_events (event jsonb);
CREATE FUNCTION h_sql(e jsonb) RETURNS void LANGUAGE sql AS $$ INSERT INTO sql_events VALUES (e) $$;
SELECT streams.create_function('h_sql', 'h_sql(jsonb)');
});
my $secret = 'sign-me-please-0123456789';
http_fn('h_ev', "$base/ev", qq({"SigningSecret": "$secret", "Headers": {"X-Tenant": "t1"}, "SecretHeaders": {"Authorization": "Bearer sup3r-s3cret-t0ken"}}));
esm('{"EventSourceArn":"t_ev","FunctionName":"h_ev","StartingPosition":"TRIM_HORIZON","BatchSize":10}');
esm('{"EventSourceArn":"t_ev","FunctionName":"h_sql","StartingPosition":"TRIM_HORIZON","BatchSize":10}');
$node->safe_psql($db, q{
BEGIN;
INSERT INTO t_ev VALUES (1, 'héllo "quoted"', 1.50, '{"a":[1,2,{"b":null}]}'), (2, 'two', NULL, NULL);
UPDATE t_ev SET v = 'changed' WHERE id = 2;
DELETE FROM t_ev WHERE id = 1;
COMMIT;
});
ok(wait_requests('/ev', 1), 'HTTP target received the batch');
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM sql_events}), 'SQL target received the batch');
my $req = requests('/ev')->[0];
my $stored = $node->safe_psql($db, q{
	SELECT '{"Records":[' || string_agg(r.record, ',' ORDER BY r.lsn, r.idx) || ']}'
	FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 't_ev'::regclass});
my $body = Encode::encode_utf8($req->{body});
is($body, $stored, 'the POST body is the stream records, byte for byte');
my $q_body = $body;
$q_body =~ s/'/''/g;
is($node->safe_psql($db, qq{SELECT event = '$q_body'::jsonb FROM sql_events}), 't',
	'the SQL target got the same event');
is($req->{headers}{'content-type'}, 'application/json', 'Content-Type');
like($req->{headers}{'x-pgs-request-id'}, qr/^[0-9a-f-]{36}$/, 'request id');
like($req->{headers}{'idempotency-key'}, qr/^[0-9a-f]{64}$/, 'idempotency key');
is($req->{headers}{'x-tenant'}, 't1', 'extra header');
is($req->{headers}{'authorization'}, 'Bearer sup3r-s3cret-t0ken', 'secret header sent');
my $ts = $req->{headers}{'x-pgs-timestamp'};
is($req->{headers}{'x-pgs-signature'}, 'v1=' . hmac_sha256_hex("$ts.$body", $secret),
	'signature verifies: HMAC-SHA256(secret, timestamp.body)');

# Batch after batch to one URL travels over one kept-alive connection.
$node->safe_psql($db, q{
CREATE TABLE t_ka (id int PRIMARY KEY);
SELECT streams.enable_stream('t_ka', 'KEYS_ONLY', 1);
});
http_fn('h_ka', "$base/ka");
esm('{"EventSourceArn":"t_ka","FunctionName":"h_ka","StartingPosition":"TRIM_HORIZON","BatchSize":1}');
$node->safe_psql($db, q{INSERT INTO t_ka SELECT generate_series(1, 5)});
ok(wait_requests('/ka', 5), 'five batches of one record sent');
my %peers = map { $_->{peer} => 1 } @{ requests('/ka') };
is(scalar(keys %peers), 1, 'the dispatcher reused its connection for every request');

# Secrets are never shown.
my $shown = $node->safe_psql($db, q{
	SELECT streams.get_function('h_ev')::text || streams.list_functions()::text
	       || (SELECT json_agg(m)::text FROM streams.event_source_mapping_stats m)});
unlike($shown, qr/sup3r-s3cret|sign-me-please/, 'secrets absent from get/list/stats');
like($shown, qr/"SecretHeaders": \["Authorization"\]/, 'secret header names are listed');
# (The test's own CREATE statement is in the log: log_statement = all.)
my @leaks = grep { /sup3r-s3cret|sign-me-please/ && !/statement: SELECT streams.create_http_function/ }
	split /\n/, slurp_file($node->logfile);
is(scalar(@leaks), 0, 'secrets absent from the server log');
$node->safe_psql($db, q{CREATE ROLE mallory LOGIN});
my ($rc, $out, $err) = $node->psql($db,
	q{SET ROLE mallory; SELECT streams.create_http_function('evil', 'http://127.0.0.1:1/x')});
like($err, qr/permission denied for function create_http_function/, 'an unprivileged role cannot create HTTP targets');
$node->safe_psql($db, q{GRANT SELECT ON t_ev TO mallory});
($rc, $out, $err) = $node->psql($db, q{SET ROLE mallory;
	SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_ev","FunctionName":"h_ev","StartingPosition":"LATEST"}')});
like($err, qr/must be a member of role postgres, the owner of HTTP function h_ev/,
	'an unprivileged role cannot point a stream at an HTTP target it does not own');
# The table is readable (pg_dump reads it as the role that runs it), but
# row-level security shows its rows to superusers only.
cmp_ok($node->safe_psql($db, q{SELECT count(*) FROM streams.function_secret}), '>', 0, 'secrets are stored');
is($node->safe_psql($db, q{SET ROLE mallory; SELECT count(*) FROM streams.function_secret}), '0',
	'an unprivileged role cannot read secrets');

# --- Partial failures: same counts as the SQL test -----------------------
$node->safe_psql($db, q{
CREATE TABLE t_pf (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_pf', 'NEW_IMAGE', 1);
});
http_fn('h_pf', "$base/pf?fail_id=6");
esm('{"EventSourceArn":"t_pf","FunctionName":"h_pf","StartingPosition":"TRIM_HORIZON","BatchSize":3,'
	. '"MaximumRetryAttempts":3,"FunctionResponseTypes":["ReportBatchItemFailures"],'
	. '"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
$node->safe_psql($db, q{INSERT INTO t_pf SELECT g, 'v' FROM generate_series(1, 6) g});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_pf'}),
	'partial failure over HTTP: one failure record');
my %seen;
$seen{$_}++ for map { split /,/, ids_of($_->{body}) } @{ requests('/pf') };
is(join(',', map { $seen{$_} // 0 } 1 .. 6), '1,1,1,1,1,5', 'records 1-5 sent once, record 6 five times');
is($node->safe_psql($db, q{
	SELECT concat_ws(',', record->'DDBStreamBatchInfo'->>'batchSize', record->'requestContext'->>'approximateInvokeCount',
	                 record->'responseContext'->'functionError', record->'responseContext'->>'statusCode')
	FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_pf'}),
	'1,4,null,200', 'failure record: batchSize 1, approximateInvokeCount 4, functionError null');
my %keys;
$keys{ $_->{headers}{'idempotency-key'} }++ for grep { ids_of($_->{body}) eq '6' } @{ requests('/pf') };
is(scalar(keys %keys), 1, 'every retry of the same records carries the same idempotency key');

# --- Bisect, errors, throttles, timeouts, resets, bad bodies -------------
$node->safe_psql($db, q{
CREATE TABLE t_b (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_b', 'NEW_IMAGE', 1);
CREATE TABLE t_f (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_f', 'NEW_IMAGE', 1);
});
http_fn('h_bis', "$base/bis?error_id=37");
esm('{"EventSourceArn":"t_b","FunctionName":"h_bis","StartingPosition":"TRIM_HORIZON","BatchSize":100,'
	. '"MaximumRetryAttempts":0,"BisectBatchOnFunctionError":true,"DestinationConfig":{"OnFailure":{"Destination":"fails"}}}');
my %faults = (
	h_429 => [ "$base/t429?status=429&times=3", '{}' ],
	h_503 => [ "$base/t503?status=503&retry_after=1&times=2", '{}' ],
	# The error body echoes the secret header: last_error keeps the body, not the secret.
	h_500 => [ "$base/t500?status=500&body=%7B%22errorMessage%22%3A%22kaput%22%2C%22echo%22%3A%22k3y-in-body%22%7D",
		'{"SecretHeaders": {"X-Api-Key": "k3y-in-body"}}' ],
	h_slow => [ "$base/slow?delay=3", '{"Timeout": 1}' ],
	h_reset => [ "$base/reset?reset=1", '{}' ],
	h_badjson => [ "$base/badjson?bad_json=1", '{}' ],);
for my $f (sort keys %faults)
{
	http_fn($f, $faults{$f}[0], $faults{$f}[1]);
	my $rbif = $f eq 'h_badjson' ? ',"FunctionResponseTypes":["ReportBatchItemFailures"]' : '';
	esm(qq({"EventSourceArn":"t_f","FunctionName":"$f","StartingPosition":"TRIM_HORIZON","MaximumRetryAttempts":0$rbif,)
		. qq("DestinationConfig":{"OnFailure":{"Destination":"fails"}}}));
}
$node->safe_psql($db, q{INSERT INTO t_b SELECT g, 'v' FROM generate_series(1, 100) g; INSERT INTO t_f VALUES (1, 'x')});

ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_bis'}),
	'bisect over HTTP: one failure record');
ok($node->poll_query_until($db, q{SELECT records_delivered = 99 FROM streams.event_source_mapping_stats WHERE function_name = 'h_bis'}),
	'bisect over HTTP: 99 delivered');
is($node->safe_psql($db, q{
	SELECT concat_ws(',', record->'payload'->'Records'->0->'dynamodb'->'Keys'->'id'->>'N', record->'DDBStreamBatchInfo'->>'batchSize',
	                 record->'responseContext'->>'statusCode', record->'responseContext'->>'functionError')
	FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:h_bis'}),
	'37,1,500,Unhandled', 'bisect isolates the poison record; the failure record has the HTTP status');

for my $f ('h_429', 'h_503')
{
	ok($node->poll_query_until($db, qq{SELECT records_delivered = 1 FROM streams.event_source_mapping_stats WHERE function_name = '$f'}),
		"$f: delivered after the throttles");
	is($node->safe_psql($db, qq{
		SELECT throttles || ',' || retries || ',' || (SELECT count(*) FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:$f')
		FROM streams.event_source_mapping_stats WHERE function_name = '$f'}),
		($f eq 'h_429' ? '3' : '2') . ',0,0', "$f: throttles do not use up retries (MaximumRetryAttempts 0)");
}
my %expect = (h_500 => '500,Unhandled,HTTP 500: {"errorMessage":"kaput","echo":"[redacted]"}', h_slow => '0,Unhandled,timed out after 1000 ms',
	h_reset => '0,Unhandled,HTTP request failed', h_badjson => '200,,invalid batchItemFailures response');
for my $f (sort keys %expect)
{
	ok($node->poll_query_until($db, qq{SELECT count(*) = 1 FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:$f'}),
		"$f: batch sent to the destination");
	my $got = $node->safe_psql($db, qq{
		SELECT concat_ws(',', record->'responseContext'->>'statusCode', coalesce(record->'responseContext'->>'functionError', ''),
		                 (SELECT last_error FROM streams.event_source_mapping_stats WHERE function_name = '$f'))
		FROM fails WHERE record->'requestContext'->>'functionArn' LIKE '%:$f'});
	like($got, qr/^\Q$expect{$f}\E/, "$f: status, functionError and error text");
}

# --- An HTTP function as OnFailure destination --------------------------
$node->safe_psql($db, q{
CREATE TABLE t_d (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_d', 'NEW_IMAGE', 1);
CREATE FUNCTION h_fail(e jsonb) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'nope'; END $$;
SELECT streams.create_function('h_fail', 'h_fail(jsonb)');
});
http_fn('dlq', "$base/dlq");
esm('{"EventSourceArn":"t_d","FunctionName":"h_fail","StartingPosition":"TRIM_HORIZON","MaximumRetryAttempts":1,'
	. '"DestinationConfig":{"OnFailure":{"Destination":"dlq"}}}');
$node->safe_psql($db, q{INSERT INTO t_d VALUES (7, 'x')});
ok(wait_requests('/dlq', 1), 'the HTTP destination received the failure record');
my $dlq = decode_json(requests('/dlq')->[0]{body});
is(join(',', $dlq->{requestContext}{condition}, $dlq->{requestContext}{approximateInvokeCount},
	$dlq->{responseContext}{functionError}, $dlq->{payload}{Records}[0]{dynamodb}{Keys}{id}{N}),
	'RetryAttemptsExhausted,2,Unhandled,7', 'failure record sent over HTTP');

# --- Concurrency: mappings run side by side, MaxConcurrency caps a function --
$node->safe_psql($db, q{
CREATE TABLE t_c1 (id int PRIMARY KEY, v text); SELECT streams.enable_stream('t_c1', 'NEW_IMAGE', 1);
CREATE TABLE t_c2 (id int PRIMARY KEY, v text); SELECT streams.enable_stream('t_c2', 'NEW_IMAGE', 1);
CREATE TABLE t_c3 (id int PRIMARY KEY, v text); SELECT streams.enable_stream('t_c3', 'NEW_IMAGE', 1);
INSERT INTO t_c1 VALUES (1, 'x'); INSERT INTO t_c2 VALUES (2, 'x'); INSERT INTO t_c3 VALUES (3, 'x');
});
http_fn('h_free', "$base/free?delay=1");
http_fn('h_capped', "$base/capped?delay=1", '{"MaxConcurrency": 1}');
my @esms;
for my $t ('t_c1', 't_c2', 't_c3')
{
	for my $f ('h_free', 'h_capped')
	{
		push @esms, esm(qq({"EventSourceArn":"$t","FunctionName":"$f","StartingPosition":"TRIM_HORIZON","Enabled":false}));
	}
}
$node->safe_psql($db, join(';', map { qq{SELECT streams.update_event_source_mapping('$_', '{"Enabled": true}')} } @esms));
ok(wait_requests('/free', 3) && wait_requests('/capped', 3), 'all six mappings delivered');
my @free = sort { $a <=> $b } map { $_->{time} } @{ requests('/free') };
my @capped = sort { $a <=> $b } map { $_->{time} } @{ requests('/capped') };
ok($free[2] - $free[0] < 1.0, 'three mappings have requests to one endpoint in flight at once');
ok($capped[1] - $capped[0] >= 0.9 && $capped[2] - $capped[1] >= 0.9,
	'MaxConcurrency 1: one request in flight at a time across mappings');

# --- Response bodies are capped at 6 MB while read, whatever the framing --
$node->safe_psql($db, q{
CREATE TABLE t_big (id int PRIMARY KEY);
SELECT streams.enable_stream('t_big', 'NEW_IMAGE', 1);
});
my $big = 200_000_000;
for my $framing ('chunked', 'close', 'length')
{
	http_fn("h_big_$framing", "$base/big_$framing?big=$big&framing=$framing");
	esm(qq({"EventSourceArn":"t_big","FunctionName":"h_big_$framing","StartingPosition":"TRIM_HORIZON","BatchSize":1}));
}
$node->safe_psql($db, q{INSERT INTO t_big VALUES (1)});
for my $framing ('chunked', 'close', 'length')
{
	ok($node->poll_query_until($db, qq{
		SELECT last_error LIKE '%response body exceeds 6 MB%' AND next_attempt_at IS NOT NULL
		FROM streams.event_source_mapping_stats WHERE function_name = 'h_big_$framing'}),
		"$framing: a 200 MB response fails the batch as too big; next_attempt_at tells when it is retried");
	my $sent = decode_json(`curl -s '$base/_sent?path=/big_$framing'`)->{sent} // 0;
	ok($sent < 64 * 1024 * 1024, "$framing: reading stopped early ($sent of $big bytes sent)");
	$node->safe_psql($db, qq{SELECT streams.update_event_source_mapping(uuid, '{"Enabled": false}')
		FROM streams.event_source_mapping WHERE function_name = 'h_big_$framing'});
}

# --- kill -9 of the dispatcher mid-request: at least once, same keys -----
$node->safe_psql($db, q{
CREATE TABLE t_k (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_k', 'NEW_IMAGE', 1);
});
http_fn('h_k', "$base/k?delay=0.3");
esm('{"EventSourceArn":"t_k","FunctionName":"h_k","StartingPosition":"TRIM_HORIZON","BatchSize":10}');
$node->safe_psql($db, q{INSERT INTO t_k SELECT g, 'v' FROM generate_series(1, 100) g});
ok(wait_requests('/k', 3), 'requests under way');
# kill -9 of any backend makes the postmaster restart them all, the h_k
# dispatcher with its request in flight included.
my @dispatchers = split /\n/, $node->safe_psql($db,
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch'});
ok(scalar(@dispatchers) > 0 && $dispatchers[0] =~ /^\d+$/, 'a dispatcher was running to be killed');
my $log_offset = -s $node->logfile;
is(kill('KILL', $dispatchers[0]), 1, 'kill -9 reached a dispatcher');
ok($node->wait_for_log(qr/\(PID $dispatchers[0]\) was terminated by signal 9/, $log_offset),
	'the postmaster saw the dispatcher die of kill -9');
my %delivered;
for (1 .. 600)
{
	%delivered = ();
	$delivered{$_}++ for map { split /,/, ids_of($_->{body}) } @{ requests('/k') };
	last if scalar(keys %delivered) == 100;
	sleep(0.1);
}
is(scalar(keys %delivered), 100, 'every record delivered at least once after kill -9');
my %key_of;
my $consistent = 1;
for my $r (@{ requests('/k') })
{
	my $ids = ids_of($r->{body});
	$consistent = 0 if exists $key_of{$ids} && $key_of{$ids} ne $r->{headers}{'idempotency-key'};
	$key_of{$ids} = $r->{headers}{'idempotency-key'};
}
ok($consistent, 'a batch sent twice carries the same idempotency key');
# Per record: every send of a record carries one key (the batch's extent is
# on disk before its request leaves), and some record was sent again.
my (%keys_of_id, %sends_of_id);
for my $r (@{ requests('/k') })
{
	for my $id (split /,/, ids_of($r->{body}))
	{
		$keys_of_id{$id}{ $r->{headers}{'idempotency-key'} } = 1;
		$sends_of_id{$id}++;
	}
}
is(scalar(grep { scalar(keys %{ $keys_of_id{$_} }) > 1 } keys %keys_of_id), 0,
	'every record carries the same idempotency key on every send');
ok(scalar(grep { $sends_of_id{$_} > 1 } keys %sends_of_id) > 0, 'the kill made records be sent again');

$sink->kill_kill;
$node->stop;
done_testing();
