# pg_upgrade: a cluster with a stream, a SQL function and a mapping is
# upgraded with pg_upgrade (to the same major version: the check and the
# copy are what newer versions do too). pg_upgrade keeps the database,
# table and role OIDs but not the functions' OIDs nor the replication slot:
# the handler is found again by its name, the capture worker creates a new
# slot, the stored records and the mapping's position are kept, and rows
# written after the upgrade are delivered once, after the earlier ones.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgStreamsTest;

my $old = new_streams_node('upg_old');
$old->safe_psql('postgres', 'CREATE DATABASE app');
$old->safe_psql('app', 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($old, 'app'), 'capture worker runs in the old cluster');

$old->safe_psql('app', q{
CREATE ROLE alice LOGIN;
CREATE TABLE public.t (id int PRIMARY KEY, v text);
CREATE TABLE public.sink (id int, seq text);
ALTER TABLE public.t OWNER TO alice;
ALTER TABLE public.sink OWNER TO alice;
-- Functions created before the handler take the OIDs it would get in the
-- new cluster, so that its old OID names another function there.
CREATE FUNCTION public.filler1() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION public.h(e jsonb) RETURNS jsonb LANGUAGE sql AS $$
    INSERT INTO public.sink
    SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int, r->'dynamodb'->>'SequenceNumber'
    FROM jsonb_array_elements(e->'Records') r
    RETURNING '{}'::jsonb
$$;
ALTER FUNCTION public.h(jsonb) OWNER TO alice;
SET ROLE alice;
SELECT streams.enable_stream('public.t', 'NEW_IMAGE', 1);
SELECT streams.create_function('fn', 'public.h(jsonb)');
SELECT streams.create_event_source_mapping(
    '{"EventSourceArn": "public.t", "FunctionName": "fn", "StartingPosition": "TRIM_HORIZON"}');
INSERT INTO public.t SELECT g, 'before' FROM generate_series(1, 5) g;
});
ok($old->poll_query_until('app', 'SELECT count(*) = 5 FROM public.sink'), 'old cluster delivers its rows');
my $arn = $old->safe_psql('app', 'SELECT stream_arn FROM streams.stream');
my $handler_oid = $old->safe_psql('app', q{SELECT 'public.h(jsonb)'::regprocedure::oid});

# Rows captured but not yet delivered when the cluster stops: the mapping is
# disabled, the rows are written and captured, the cluster stops cleanly.
$old->safe_psql('app', q{
SELECT streams.update_event_source_mapping(
    (SELECT uuid FROM streams.event_source_mapping), '{"Enabled": false}');
INSERT INTO public.t SELECT g, 'pending' FROM generate_series(6, 8) g;
SELECT streams.wait_for_capture();
});
is(stream_count($old, 'app', 'public.t'), '8', 'the old stream holds 8 records');
$old->stop;

my $new = new_streams_node('upg_new', no_start => 1);
my $bindir = $old->config_data('--bindir');
chdir $PostgreSQL::Test::Utils::tmp_check;
my ($out, $err) = run_command([
	'pg_upgrade', '--no-sync',
	'-d', $old->data_dir, '-D', $new->data_dir,
	'-b', $bindir, '-B', $bindir,
	'-s', $new->host, '-p', $old->port, '-P', $new->port ]);
like($out, qr/Upgrade Complete/, 'pg_upgrade completes') or diag("$out\n$err");

$new->start;
ok(wait_for_worker($new, 'app'), 'capture worker runs after the upgrade (new slot)');
# The handler's OID changed: another function may have the old one now.
my $new_oid = $new->safe_psql('app', q{SELECT 'public.h(jsonb)'::regprocedure::oid});
note("handler oid before $handler_oid, after $new_oid");
is($new->safe_psql('app', q{SELECT streams.get_function('fn')->'Configuration'->>'Handler'}),
	'public.h(jsonb)', 'the SQL function still names its handler');
is($new->safe_psql('app', 'SELECT stream_arn FROM streams.stream'), $arn, 'the stream keeps its ARN');
is(stream_count($new, 'app', 'public.t'), '8', 'the stored records are kept');

$new->safe_psql('app', q{
SELECT streams.update_event_source_mapping(
    (SELECT uuid FROM streams.event_source_mapping), '{"Enabled": true}');
INSERT INTO public.t SELECT g, 'after' FROM generate_series(9, 12) g;
});
ok($new->poll_query_until('app', 'SELECT count(*) >= 12 FROM public.sink'), 'the mapping delivers after the upgrade');
$new->safe_psql('app', 'SELECT streams.wait_for_delivery((SELECT uuid FROM streams.event_source_mapping))');
is($new->safe_psql('app', 'SELECT count(*), count(DISTINCT id), min(id), max(id) FROM public.sink'),
	'12|12|1|12', 'every row delivered exactly once (pending and new rows included)');
is($new->safe_psql('app', q{
	SELECT bool_and(prev IS NULL OR seq::numeric > prev::numeric) FROM (
	    SELECT seq, lag(seq) OVER (ORDER BY id) AS prev FROM public.sink) s}),
	't', 'sequence numbers keep increasing across the upgrade');
unlike(slurp_file($new->logfile), qr/terminated by signal/, 'no process died');

done_testing();
