# pg_dump / pg_restore: a dump of a database with a stream, functions and a
# mapping restores into a new database of the same cluster (custom format,
# pg_restore) and of another cluster (plain format piped into psql). There
# the stream, the functions and the mapping exist, the restore's own data
# load is not captured, and a row inserted afterwards is delivered to the
# restored mapping's SQL function. Secrets are in a superuser's dump only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use PgStreamsTest;

my $secret = 'Bearer tok-7f3e9a2c55d1';
my $signing = 'sign-0123456789abcdef';

my $src_node = new_streams_node('dump_src');
my $other = new_streams_node('dump_other');

$src_node->safe_psql('postgres', 'CREATE DATABASE src');
$src_node->safe_psql('src', 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($src_node, 'src'), 'capture worker runs in the source database');

# alice owns the table, the handler, the SQL function and the mapping; the
# HTTP function with secrets is a superuser's.
my $setup = qq{
CREATE ROLE alice LOGIN;
CREATE TABLE public.t (id int PRIMARY KEY, v text);
CREATE TABLE public.sink (id int, event_name text, arn text);
CREATE TABLE public.u (id int PRIMARY KEY);
ALTER TABLE public.t OWNER TO alice;
ALTER TABLE public.u OWNER TO alice;
ALTER TABLE public.sink OWNER TO alice;
CREATE FUNCTION public.h(e jsonb) RETURNS jsonb LANGUAGE sql AS \$\$
    INSERT INTO public.sink
    SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int, r->>'eventName', r->>'eventSourceARN'
    FROM jsonb_array_elements(e->'Records') r
    RETURNING '{}'::jsonb
\$\$;
ALTER FUNCTION public.h(jsonb) OWNER TO alice;
SELECT streams.create_http_function('hook', 'http://127.0.0.1:9/in',
    '{"SecretHeaders": {"Authorization": "$secret"}, "SigningSecret": "$signing"}');
SET ROLE alice;
SELECT streams.enable_stream('public.t', 'NEW_IMAGE', 2);
SELECT streams.create_function('fn', 'public.h(jsonb)');
SELECT streams.create_event_source_mapping(
    '{"EventSourceArn": "public.t", "FunctionName": "fn", "StartingPosition": "TRIM_HORIZON"}');
INSERT INTO public.t VALUES (1, 'a'), (2, 'b'), (3, 'c');
};
$src_node->safe_psql('src', $setup);
ok($src_node->poll_query_until('src', 'SELECT count(*) = 3 FROM public.sink'), 'source delivers its rows');
my $src_arn = $src_node->safe_psql('src', q{SELECT stream_arn FROM streams.stream});

# Checks a restored database: the stream is rebound (a new stream of the
# restored table, empty), the functions and the mapping exist, the restored
# rows were not captured again, and a new row is delivered once.
sub check_restored
{
	my ($node, $db, $what) = @_;
	ok(wait_for_worker($node, $db), "$what: capture worker runs");
	ok( $node->poll_query_until($db, q{
			SELECT count(*) = 1 FROM streams.stream s
			WHERE to_regclass(format('streams.%I', 'record_' || s.stream_id)) IS NOT NULL}),
		"$what: the restored stream is rebound");
	my $streams = $node->safe_psql($db, q{SELECT streams.list_streams()->'Streams'});
	like($streams, qr/"TableName": "public.t"/, "$what: stream of public.t listed");
	my $arn = $node->safe_psql($db, q{SELECT stream_arn FROM streams.stream});
	isnt($arn, $src_arn, "$what: the restored stream has a new ARN");
	is($node->safe_psql($db, q{
			SELECT s.relid = 'public.t'::regclass AND s.owner = 'alice'::regrole AND s.view_type = 'NEW_IMAGE'
			       AND s.shard_count = 2 FROM streams.stream s}),
		't', "$what: stream bound to the restored table, owner and settings kept");
	is($node->safe_psql($db, q{SELECT streams.get_function('fn')->'Configuration'->>'Handler'}),
		'public.h(jsonb)', "$what: SQL function restored with its handler");
	is($node->safe_psql($db, q{SELECT streams.get_function('hook')->'Configuration'->>'SecretHeaders'}),
		'["Authorization"]', "$what: HTTP function restored with its secret header");
	is($node->safe_psql($db, q{SELECT signing_secret FROM streams.function_secret JOIN streams.function USING (function_id)
	                           WHERE function_name = 'hook'}),
		$signing, "$what: signing secret restored (superuser's dump)");
	is($node->safe_psql($db, q{
			SELECT count(*) FROM streams.event_source_mapping m JOIN streams.stream s USING (stream_id)
			WHERE m.function_name = 'fn' AND m.owner = 'alice'::regrole AND m.event_source_arn = s.stream_arn}),
		'1', "$what: mapping restored and pointing at the new stream");
	is($node->safe_psql($db, 'SELECT count(*) FROM public.sink'), '3', "$what: restored target rows");

	$node->safe_psql($db, q{INSERT INTO public.t VALUES (4, 'd')});
	ok($node->poll_query_until($db, 'SELECT count(*) = 1 FROM public.sink WHERE id = 4'),
		"$what: a new row is delivered to the restored mapping");
	is($node->safe_psql($db, q{SELECT event_name || ' ' || (arn = (SELECT stream_arn FROM streams.stream))
	                           FROM public.sink WHERE id = 4}),
		'INSERT true', "$what: delivered as an INSERT record of the new stream");
	is($node->safe_psql($db, 'SELECT count(*) FROM streams.record'), '1',
		"$what: only the new row is in the stream (the restore's data load was not captured)");
	is($node->safe_psql($db, 'SELECT count(*) FROM public.sink'), '4', "$what: nothing delivered twice");
	$node->safe_psql($db, q{SET ROLE alice; SELECT streams.enable_stream('public.u', 'KEYS_ONLY', 1)});
	is($node->safe_psql($db, q{SELECT count(DISTINCT stream_id) FROM streams.stream}), '2',
		"$what: a stream enabled after the restore gets an id of its own");
	is($node->safe_psql($db, q{SELECT relreplident FROM pg_class WHERE oid = 'public.t'::regclass}), 'f',
		"$what: the restored table keeps REPLICA IDENTITY FULL");
	$node->safe_psql($db, q{SET ROLE alice; SELECT streams.disable_stream('public.t')});
	is($node->safe_psql($db, q{SELECT relreplident FROM pg_class WHERE oid = 'public.t'::regclass}), 'd',
		"$what: disable_stream puts back the replica identity the table had before the stream");
}

# 1. Custom format into a new database of the same cluster.
my $dump_file = "$PostgreSQL::Test::Utils::tmp_check/src.dump";
my ($out, $err) = ('', '');
ok(IPC::Run::run([ 'pg_dump', '-Fc', '-f', $dump_file, '-d', $src_node->connstr('src') ], '>', \$out, '2>', \$err),
	'pg_dump -Fc as a superuser') or diag($err);
$src_node->safe_psql('postgres', 'CREATE DATABASE dst');
($out, $err) = ('', '');
ok(IPC::Run::run([ 'pg_restore', '-d', $src_node->connstr('dst'), $dump_file ], '>', \$out, '2>', \$err),
	'pg_restore into a new database succeeds');
is($err, '', 'pg_restore reports no error') or diag($err);
check_restored($src_node, 'dst', 'same cluster');
is($src_node->safe_psql('src', 'SELECT count(*) FROM public.sink'), '3', 'the source database is untouched');

# 2. Directory format, dumped and restored in parallel (pg_restore -j truncates
# each table it has just created before loading it: a restored stream must not
# refuse that).
my $dump_dir = "$PostgreSQL::Test::Utils::tmp_check/src.dir";
($out, $err) = ('', '');
ok(IPC::Run::run([ 'pg_dump', '-Fd', '-j', '2', '-f', $dump_dir, '-d', $src_node->connstr('src') ],
		'>', \$out, '2>', \$err),
	'pg_dump -Fd -j 2') or diag($err);
$src_node->safe_psql('postgres', 'CREATE DATABASE dst_parallel');
($out, $err) = ('', '');
ok(IPC::Run::run([ 'pg_restore', '-j', '3', '-d', $src_node->connstr('dst_parallel'), $dump_dir ],
		'>', \$out, '2>', \$err),
	'pg_restore -j 3 succeeds');
is($err, '', 'pg_restore -j 3 reports no error') or diag($err);
check_restored($src_node, 'dst_parallel', 'parallel restore');

# 3. Plain format into another cluster (roles come from pg_dumpall --globals-only).
$other->safe_psql('postgres', 'CREATE ROLE alice LOGIN');
$other->safe_psql('postgres', 'CREATE DATABASE copy');
($out, $err) = ('', '');
IPC::Run::run([ 'pg_dump', '-d', $src_node->connstr('src') ], '|',
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $other->connstr('copy') ], '>', \$out, '2>', \$err);
unlike($err, qr/ERROR/, 'pg_dump | psql into another cluster runs without errors') or diag($err);
check_restored($other, 'copy', 'other cluster');

# 4. A role that is not a superuser: pg_dump refuses without
# --enable-row-security (rows it may not see), and with it dumps its own
# configuration and no secrets.
($out, $err) = ('', '');
my $ok = IPC::Run::run([ 'pg_dump', '-U', 'alice', '-d', $src_node->connstr('src') ], '>', \$out, '2>', \$err);
ok(!$ok && $err =~ /row-level security/, "alice's pg_dump without --enable-row-security fails on row-level security")
  or diag($err);
($out, $err) = ('', '');
ok(IPC::Run::run([ 'pg_dump', '-U', 'alice', '--enable-row-security', '-d', $src_node->connstr('src') ],
		'>', \$out, '2>', \$err),
	"alice's pg_dump --enable-row-security succeeds") or diag($err);
like($out, qr/^COPY streams\.stream .*\n1\tpublic\.t\t/m, "alice's dump has the stream");
like($out, qr/^COPY streams\.function .*\n\d+\tfn\t/m, "alice's dump has her function");
unlike($out, qr/\thook\t/, "alice's dump leaves out the superuser's HTTP function");
unlike($out, qr/tok-7f3e9a2c55d1|sign-0123456789abcdef/, "alice's dump has no secrets");
like($out, qr/^COPY streams\.function_secret .*\n\\\.$/m, "alice's dump has no rows of function_secret");
($out, $err) = ('', '');
IPC::Run::run([ 'pg_dump', '-d', $src_node->connstr('src') ], '>', \$out, '2>', \$err);
like($out, qr/tok-7f3e9a2c55d1/, "a superuser's dump has the secrets");

$src_node->stop;
$other->stop;
done_testing();
