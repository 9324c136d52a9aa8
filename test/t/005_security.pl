# Security between two unprivileged roles (issue 13 rows 3, 4, 5, 9, 10, 11,
# 12): app_owner owns a streamed table and functions, intruder starts with no
# grants. Replays each attack against running dispatchers and asserts the
# safe outcome.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgStreamsTest;

my $node = new_streams_node("security");
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

$node->safe_psql($db, q{
CREATE ROLE app_owner LOGIN;
CREATE ROLE intruder LOGIN;
CREATE SCHEMA app AUTHORIZATION app_owner;
CREATE SCHEMA intr AUTHORIZATION intruder;
SET ROLE app_owner;
CREATE TABLE app.t (id int PRIMARY KEY, v text);
CREATE TABLE app.seen (id int);
SELECT streams.enable_stream('app.t', 'NEW_IMAGE', 1);
CREATE FUNCTION app.h(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO app.seen SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('fa', 'app.h(jsonb)');
SET ROLE intruder;
CREATE TABLE intr.seen (tag text, id int);
CREATE FUNCTION intr.h(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO intr.seen SELECT 'fi', (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r
$$;
CREATE FUNCTION intr.steal(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO intr.seen SELECT 'stolen', (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(e->'Records') r
$$;
CREATE FUNCTION intr.fail(e jsonb) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
SELECT streams.create_function('fi', 'intr.h(jsonb)');
SELECT streams.create_function('fail', 'intr.fail(jsonb)');
});

sub as_role
{
	my ($role, $sql) = @_;
	return $node->psql($db, "SET ROLE $role; $sql");
}

# --- Row 11: mapping to another role's function is refused -------------
my ($rc, $out, $err) = as_role('intruder', q{CREATE TABLE intr.t (id int PRIMARY KEY);
	SELECT streams.enable_stream('intr.t', 'KEYS_ONLY', 1);
	SELECT streams.create_event_source_mapping('{"EventSourceArn":"intr.t","FunctionName":"fa","StartingPosition":"LATEST"}')});
like($err, qr/must be a member of role app_owner, the owner of function fa/,
	"row 11: intruder cannot map its stream to app_owner's function");

# --- Row 4: losing SELECT stops delivery, granting resumes it -----------
$node->safe_psql($db, q{GRANT USAGE ON SCHEMA app TO intruder; GRANT SELECT ON app.t TO intruder});
($rc, $out, $err) = as_role('intruder',
	q{SELECT streams.create_event_source_mapping('{"EventSourceArn":"app.t","FunctionName":"fi","StartingPosition":"TRIM_HORIZON"}')});
is($rc, 0, 'intruder may map the stream while it may read the table') or diag($err);
$node->safe_psql($db, q{INSERT INTO app.t VALUES (1, 'a')});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.seen WHERE tag = 'fi' AND id = 1}),
	'row 4: delivered while readable');
$node->safe_psql($db, q{REVOKE SELECT ON app.t FROM intruder; INSERT INTO app.t VALUES (2, 'b')});
ok($node->poll_query_until($db,
	q{SELECT last_processing_result = 'PROBLEM: Insufficient permissions' AND last_error LIKE '%SELECT on table app.t is required%'
	    FROM streams.event_source_mapping_stats WHERE function_name = 'fi'}),
	'row 4: revoking SELECT stops the mapping with a clear LastProcessingResult and last_error');
is($node->safe_psql($db, q{SELECT count(*) FROM intr.seen WHERE id = 2}), '0', 'row 4: nothing delivered after the revoke');
$node->safe_psql($db, q{GRANT SELECT ON app.t TO intruder});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.seen WHERE tag = 'fi' AND id = 2}),
	'row 4: granting again resumes delivery without losing the record');
$node->safe_psql($db, q{REVOKE USAGE ON SCHEMA app FROM intruder; INSERT INTO app.t VALUES (3, 'c')});
ok($node->poll_query_until($db,
	q{SELECT last_error LIKE '%USAGE on schema app is required%' FROM streams.event_source_mapping_stats WHERE function_name = 'fi'}),
	'row 4: revoking schema USAGE stops the mapping too');
$node->safe_psql($db, q{GRANT USAGE ON SCHEMA app TO intruder});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.seen WHERE tag = 'fi' AND id = 3}),
	'row 4: schema USAGE granted again: delivery resumes');

# --- Row 5: row-level security applying to the mapping owner -----------
$node->safe_psql($db, q{ALTER TABLE app.t ENABLE ROW LEVEL SECURITY; CREATE POLICY none ON app.t USING (false);
	INSERT INTO app.t VALUES (4, 'd')});
ok($node->poll_query_until($db,
	q{SELECT last_error LIKE '%row-level security that applies to role intruder%' FROM streams.event_source_mapping_stats WHERE function_name = 'fi'}),
	'row 5: a mapping whose owner is subject to RLS stops');
($rc, $out, $err) = as_role('intruder', q{SELECT streams.get_shard_iterator(s->>'StreamArn', sh->>'ShardId', 'TRIM_HORIZON')
	FROM jsonb_array_elements(streams.list_streams('app.t')->'Streams') s,
	     jsonb_array_elements(streams.describe_stream(s->>'StreamArn')->'StreamDescription'->'Shards') sh});
like($err, qr/row-level security that applies to role intruder/, 'row 5: get_shard_iterator is refused under RLS');
is($node->safe_psql($db, q{SELECT count(*) FROM intr.seen WHERE id = 4}), '0', 'row 5: nothing delivered under RLS');
$node->safe_psql($db, q{ALTER TABLE app.t DISABLE ROW LEVEL SECURITY});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM intr.seen WHERE tag = 'fi' AND id = 4}),
	'row 5: RLS disabled: delivery resumes');

# --- Row 3: function deleted and re-registered by another role ---------
as_role('app_owner',
	q{SELECT streams.create_event_source_mapping('{"EventSourceArn":"app.t","FunctionName":"fa","StartingPosition":"TRIM_HORIZON"}')});
ok($node->poll_query_until($db, q{SELECT count(*) = 4 FROM app.seen}), "row 3: app_owner's mapping delivers to fa");
as_role('app_owner', q{SELECT streams.delete_function('fa')});
($rc, $out, $err) = as_role('intruder', q{SELECT streams.create_function('fa', 'intr.steal(jsonb)')});
is($rc, 0, 'intruder registers a function named fa') or diag($err);
$node->safe_psql($db, q{INSERT INTO app.t VALUES (5, 'e')});
ok($node->poll_query_until($db,
	q{SELECT last_processing_result = 'PROBLEM: Function not found' AND last_error LIKE '%now registered by role intruder%'
	    FROM streams.event_source_mapping_stats WHERE function_name = 'fa'}),
	"row 3: app_owner's mapping reports Function not found");
is($node->safe_psql($db, q{SELECT count(*) FROM intr.seen WHERE tag = 'stolen'}), '0',
	"row 3: intruder's function of the same name received nothing");
as_role('intruder', q{SELECT streams.delete_function('fa')});
as_role('app_owner', q{SELECT streams.create_function('fa', 'app.h(jsonb)')});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM app.seen WHERE id = 5}),
	'row 3: app_owner registering fa again resumes delivery, record 5 included');

# --- Row 12: failure records are attributed to their writer -------------
($rc, $out, $err) = as_role('intruder', q{INSERT INTO streams.failed_batches (record)
	VALUES ('{"requestContext": {"functionArn": "arn:aws:lambda:us-east-1:000000000000:function:fa"}}')});
is($rc, 0, 'intruder may add a failure record') or diag($err);
is($node->safe_psql($db, q{SELECT owner::regrole FROM streams.failed_batches}), 'intruder',
	'row 12: the forged record is attributed to intruder');
($rc, $out, $err) = as_role('app_owner', q{SELECT count(*) FROM streams.failed_batches});
is($out, '0', 'row 12: app_owner does not see it');
$node->safe_psql($db, q{DELETE FROM streams.failed_batches});
as_role('intruder', q{SELECT streams.create_event_source_mapping('{"EventSourceArn":"intr.t","FunctionName":"fail",
	"StartingPosition":"TRIM_HORIZON","MaximumRetryAttempts":0,
	"DestinationConfig":{"OnFailure":{"Destination":"streams.failed_batches"}}}')});
$node->safe_psql($db, q{INSERT INTO intr.t VALUES (1)});
ok($node->poll_query_until($db, q{SELECT count(*) = 1 FROM streams.failed_batches WHERE owner = 'intruder'::regrole}),
	"row 12: the dispatcher's failure record is attributed to the mapping owner");
($rc, $out, $err) = as_role('intruder', q{SELECT count(*) FROM streams.failed_batches});
is($out, '1', 'row 12: the mapping owner reads its failure record');

# --- Rows 9 and 10: secrets in errors, the log and descriptions ---------
$node->safe_psql($db, q{GRANT EXECUTE ON FUNCTION streams.create_http_function(text, text, jsonb),
	streams.create_http_function(text, text, text) TO app_owner});
for my $call (
	q|SELECT streams.create_http_function('h1', 'https://x.example/', '{"SecretHeaders": {"Authorization": "Bearer t0p-s3cr3t-v4lue"}')|,
	q{SELECT streams.create_http_function('h1', 'ftp://x.example/?token=t0p-s3cr3t-v4lue')},
	q{SELECT streams.create_http_function('h1', 'https://x.example/', '{"SigningSecret": "t0p-s3cr3t-v4lue", "VerifyTls": "x"}')})
{
	# Without log_statement (the test clusters log every statement: the
	# documented caveat, as for CREATE ROLE ... PASSWORD).
	($rc, $out, $err) = $node->psql($db, "SET log_statement = 'none'; SET log_min_messages = 'error'; SET ROLE app_owner; $call");
	isnt($rc, 0, 'row 9: the failing call fails');
	unlike($err, qr/t0p-s3cr3t/, 'row 9: its error does not show the secret');
}
as_role('app_owner', q{SELECT streams.create_http_function('h2', 'https://hooks.example.com/path/q-t0ken?token=q-t0ken',
	'{"Headers": {"X-Key": "q-t0ken"}, "CaFile": "/q-t0ken.pem"}')});
($rc, $out, $err) = as_role('intruder', q{SELECT streams.get_function('h2')::text || streams.list_functions()::text});
unlike($out, qr/q-t0ken/, 'row 10: another role sees neither path, query, Headers nor CaFile');
like($out, qr{"Url": "https://hooks.example.com"}, 'row 10: it sees the host');
($rc, $out, $err) = as_role('app_owner', q{SELECT streams.get_function('h2')->'Configuration'->>'Url'});
is($out, 'https://hooks.example.com/path/q-t0ken?token=q-t0ken', 'row 10: the owner sees the full URL');

my $log = slurp_file($node->logfile);
like($log, qr/ERROR:  options must be a JSON object/, 'row 9: the failing calls were logged as errors');
unlike($log, qr/t0p-s3cr3t/, 'row 9: the secret is not in the server log (no STATEMENT: or CONTEXT: line)');
unlike($log, qr/terminated by signal/, 'no process died');

$node->stop;
done_testing();
