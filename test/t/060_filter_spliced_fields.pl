# Filters on the fields the dispatcher adds to a stored record when it reads
# it (eventID and dynamodb.SequenceNumber): the dispatcher matches a filter
# that names neither against the record as stored, and any other filter
# against the record as the target receives it. Both must give what
# streams.test_event_pattern gives for the record the target receives.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgStreamsTest;

my $node = new_streams_node("filter_spliced");
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

$node->safe_psql($db, q{
CREATE TABLE t_s (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_s', 'NEW_AND_OLD_IMAGES', 2);
CREATE TABLE got_s (fn text, id int, event_id text, seq text);
CREATE FUNCTION h_s(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO got_s SELECT 'h_s', (r #>> '{dynamodb,Keys,id,N}')::int, r->>'eventID', r #>> '{dynamodb,SequenceNumber}'
    FROM jsonb_array_elements(e->'Records') r
$$;
SELECT streams.create_function('h_s', 'h_s(jsonb)');
INSERT INTO t_s SELECT g, 'v' || g FROM generate_series(1, 20) g;
});
ok($node->poll_query_until($db, q{SELECT count(*) = 20 FROM streams.record}), '20 records in the stream');
my ($eid, $seq) = split /\|/, $node->safe_psql($db,
	q{SELECT record::jsonb->>'eventID', record::jsonb #>> '{dynamodb,SequenceNumber}' FROM streams.record
	  WHERE record::jsonb #>> '{dynamodb,Keys,id,N}' = '7'});
like($eid, qr/^[0-9a-f]{32}$/, 'record 7 has an eventID');
like($seq, qr/^1[0-9]{30}$/, 'record 7 has a SequenceNumber');

my %mappings = (
	by_seq => qq({"dynamodb":{"SequenceNumber":["$seq"]}}),
	by_eid => qq({"eventID":["$eid"],"dynamodb":{"NewImage":{"v":{"S":[{"prefix":"v"}]}}}}),
	no_eid => q({"eventID":[{"exists":false}]}),
	seq_prefix => q({"dynamodb.SequenceNumber":[{"prefix":"1"}],"eventName":["INSERT"]}),
);
my %uuid;
for my $name (sort keys %mappings) {
	(my $pattern = $mappings{$name}) =~ s/"/\\"/g;
	$uuid{$name} = $node->safe_psql($db, qq{
		SELECT streams.create_event_source_mapping('{"EventSourceArn":"t_s","FunctionName":"h_s",
		  "StartingPosition":"TRIM_HORIZON","BatchSize":5,
		  "FilterCriteria":{"Filters":[{"Pattern":"$pattern"}]}}')->>'UUID'});
	ok($node->poll_query_until($db, qq{
		SELECT backlog = 0 AND records_read = 20 FROM streams.event_source_mapping_stats WHERE uuid = '$uuid{$name}'}),
		"$name: the backlog drains")
	  or diag($node->safe_psql($db, qq{SELECT to_jsonb(s) FROM streams.event_source_mapping_stats s WHERE uuid = '$uuid{$name}'}));
	my ($delivered, $filtered) = split /\|/, $node->safe_psql($db, qq{
		SELECT records_delivered, records_filtered FROM streams.event_source_mapping_stats WHERE uuid = '$uuid{$name}'});
	my $ids = $node->safe_psql($db, q{SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM got_s});
	# What test_event_pattern says of the records the target receives.
	my $expected = $node->safe_psql($db, qq{
		SELECT coalesce(string_agg((record::jsonb #>> '{dynamodb,Keys,id,N}'), ',' ORDER BY (record::jsonb #>> '{dynamodb,Keys,id,N}')::int), '')
		FROM streams.record WHERE streams.test_event_pattern('$mappings{$name}', record)});
	is($ids, $expected, "$name: delivered what test_event_pattern matches ($expected)");
	my @matched = split /,/, $expected;
	my $n = scalar @matched;
	is("$delivered/$filtered", "$n/" . (20 - $n), "$name: stats count $n delivered, " . (20 - $n) . " filtered");
	$node->safe_psql($db, qq{SELECT streams.delete_event_source_mapping('$uuid{$name}'); TRUNCATE got_s});
}
is($node->safe_psql($db, qq{SELECT streams.test_event_pattern('$mappings{by_eid}', record) FROM streams.record
	WHERE record::jsonb #>> '{dynamodb,Keys,id,N}' = '7'}), 't', 'the eventID filter matches record 7 (not vacuous)');

$node->stop;
done_testing();
