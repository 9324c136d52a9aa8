# Kafka targets against librdkafka's mock cluster (test/kafka/kafka_mock.cpp,
# 3 brokers on loopback): message key, value and headers, per-key order
# across partitions, broker errors retried (and seen to happen), brokers
# down without using up retries, a message too large to OnFailure on a
# Kafka topic, kill -9 of the dispatcher (at least once, no loss),
# kafka_allowed_brokers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Encode;
use Time::HiRes qw(sleep);
use PgStreamsTest;
use KafkaMock;

my $node = new_streams_node('kafka');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');

my $kafka = KafkaMock->start(3);
my $bootstrap = $kafka->{bootstrap};
like($bootstrap, qr/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/, 'mock cluster of 3 brokers on loopback');
for my $t ([ 'orders', 3 ], [ 'retry', 1 ], [ 'down', 1 ], [ 'small', 1 ], [ 'dlq', 1 ], [ 'crash', 3 ])
{
	is($kafka->cmd("topic $t->[0] $t->[1]"), 'ok', "topic $t->[0] with $t->[1] partitions");
}

sub kfn
{
	my ($name, $topic, $opts) = @_;
	$opts //= '{}';
	$node->safe_psql($db, qq{SELECT streams.create_kafka_function('$name', '$bootstrap', '$topic', '$opts')});
}

sub esm
{
	my ($json) = @_;
	return $node->safe_psql($db, qq{SELECT streams.create_event_source_mapping('$json')->>'UUID'});
}

sub wait_delivery
{
	my ($uuid, $secs) = @_;
	$secs //= 120;
	my ($rc, $out, $err) = $node->psql($db, qq{SELECT streams.wait_for_delivery('$uuid', '${secs}s')});
	return $rc == 0 ? 'true' : $err;
}

# A key's records in the order the topic holds them (offsets within one partition).
sub by_key
{
	my ($msgs) = @_;
	my %k;
	push @{ $k{ $_->{key} } }, $_ for sort { $a->{p} <=> $b->{p} || $a->{o} <=> $b->{o} } @$msgs;
	return \%k;
}

# --- Key, value, headers; per-key order across partitions ----------------
$node->safe_psql($db, q{
CREATE TABLE t_orders (id int PRIMARY KEY, region text, n int);
SELECT streams.enable_stream('t_orders', 'NEW_AND_OLD_IMAGES', 2);
});
kfn('k_orders', 'orders', '{"linger.ms": 5, "Description": "orders to Kafka"}');
my $u_orders = esm(qq{{"EventSourceArn": "t_orders", "FunctionName": "k_orders", "StartingPosition": "TRIM_HORIZON", "BatchSize": 50}});
# 30 keys, each inserted then updated 4 times, the keys interleaved over 5 transactions.
$node->safe_psql($db, q{INSERT INTO t_orders SELECT i, 'r' || (i % 3), 0 FROM generate_series(1, 30) i});
$node->safe_psql($db, qq{UPDATE t_orders SET n = n + 1 WHERE id % 2 = $_}) for (0, 1, 0, 1);
$node->safe_psql($db, q{UPDATE t_orders SET n = n + 1});
$node->safe_psql($db, q{UPDATE t_orders SET n = n + 1});
like(wait_delivery($u_orders), qr/^true$/i, 'the mapping delivered every record');
my $msgs = $kafka->consume('orders');
my $expected = $node->safe_psql($db, q{SELECT count(*) FROM streams.record r JOIN streams.stream s USING (stream_id) WHERE s.relid = 't_orders'::regclass});
is(scalar(@$msgs), $expected, "one message per record ($expected)");
my %records = map { split /\t/, $_, 2 } split /\n/, $node->safe_psql($db, q{
	SELECT streams._seq(r.lsn, r.idx) || E'\t' || r.record FROM streams.record r JOIN streams.stream s USING (stream_id)
	WHERE s.relid = 't_orders'::regclass});
my ($stream_arn, $shard_ids) = split /\|/, $node->safe_psql($db, q{
	SELECT s.stream_arn, string_agg(streams._shard_id(s, g), ',' ORDER BY g) FROM streams.stream s, generate_series(0, s.shard_count - 1) g
	WHERE s.relid = 't_orders'::regclass GROUP BY s.stream_arn});
my %shard_ok = map { $_ => 1 } split /,/, $shard_ids;
my ($bad_value, $bad_key, $bad_headers) = (0, 0, 0);
for my $m (@$msgs)
{
	my $h = $m->{headers};
	my $rec = $records{ $h->{SequenceNumber} // '' };
	$bad_value++ unless defined $rec && $rec eq $m->{value};
	my $doc = decode_json(Encode::encode('UTF-8', $m->{value}));
	$bad_key++ unless $m->{key} eq sprintf('{"id":{"N":"%d"}}', $doc->{dynamodb}{Keys}{id}{N});
	$bad_headers++ unless $h->{eventID} eq $doc->{eventID} && $h->{eventName} eq $doc->{eventName}
	  && $h->{SequenceNumber} eq $doc->{dynamodb}{SequenceNumber} && $h->{eventSourceARN} eq $stream_arn
	  && $shard_ok{ $h->{shardId} // '' } && scalar(keys %$h) == 5;
}
is($bad_value, 0, 'every message value is its record text, byte for byte');
is($bad_key, 0, 'every message key is the record\'s Keys as canonical JSON');
is($bad_headers, 0, 'headers eventID, SequenceNumber, eventName, eventSourceARN, shardId');
my $keys = by_key($msgs);
my ($split, $unordered) = (0, 0);
my %partitions;
for my $k (keys %$keys)
{
	my @m = @{ $keys->{$k} };
	my %p = map { $_->{p} => 1 } @m;
	$partitions{$_} = 1 for keys %p;
	$split++ if keys %p > 1;
	for my $i (1 .. $#m) { $unordered++ if $m[$i]{headers}{SequenceNumber} le $m[ $i - 1 ]{headers}{SequenceNumber}; }
}
is(scalar(keys %$keys), 30, '30 keys');
is($split, 0, 'every key\'s records are in one partition');
is(scalar(keys %partitions), 3, 'the keys are spread over the 3 partitions');
is($unordered, 0, 'each key\'s records are in order');
my $st = $node->safe_psql($db, qq{SELECT messages_produced, produce_errors, avg_delivery_latency_ms > 0,
	last_batch_max_latency_ms > 0 FROM streams.kafka_stats WHERE uuid = '$u_orders'});
is($st, "$expected|0|t|t", 'kafka_stats: messages produced, no produce errors, delivery latency');

# --- A broker error is retried: the record arrives once -------------------
is($kafka->cmd('leader retry 0 1'), 'ok', 'broker 1 leads topic retry');
$node->safe_psql($db, q{
CREATE TABLE t_retry (id int PRIMARY KEY);
SELECT streams.enable_stream('t_retry', 'KEYS_ONLY', 1);
});
kfn('k_retry', 'retry');
my $u_retry = esm(qq{{"EventSourceArn": "t_retry", "FunctionName": "k_retry", "StartingPosition": "TRIM_HORIZON", "MaximumRetryAttempts": 0}});
# Produce the first record, so that the producer knows the leader; then
# three NOT_ENOUGH_REPLICAS answers (19) for the next Produce requests.
$node->safe_psql($db, q{INSERT INTO t_retry VALUES (0)});
like(wait_delivery($u_retry), qr/^true$/i, 'first record delivered');
is($kafka->cmd('errors 1 3 19'), 'ok', 'broker 1 will answer 3 Produce requests with NOT_ENOUGH_REPLICAS');
$node->safe_psql($db, q{INSERT INTO t_retry SELECT generate_series(1, 10)});
like(wait_delivery($u_retry), qr/^true$/i, 'records after the broker errors delivered');
is($kafka->cmd('pending 1'), 'ok 0', 'the broker returned all 3 errors (the fault happened)');
my $retry_msgs = $kafka->consume('retry');
my %seen;
$seen{ $_->{key} }++ for @$retry_msgs;
is(scalar(keys %seen), 11, 'every record in the topic');
is(scalar(grep { $_ > 1 } values %seen), 0, 'none twice (idempotent producer)');
is($node->safe_psql($db, q{SELECT count(*) FROM streams.event_source_mapping_stats WHERE failed_batches > 0 OR discarded_batches > 0}),
	'0', 'nothing given up');

# --- Brokers down: no retry used up, delivered once they are back -------
$node->safe_psql($db, q{
CREATE TABLE t_down (id int PRIMARY KEY);
SELECT streams.enable_stream('t_down', 'KEYS_ONLY', 1);
CREATE TABLE down_fails (record jsonb);
});
kfn('k_down', 'down', '{"Timeout": 2}');
my $u_down = esm(qq{{"EventSourceArn": "t_down", "FunctionName": "k_down", "StartingPosition": "TRIM_HORIZON", "MaximumRetryAttempts": 0, "DestinationConfig": {"OnFailure": {"Destination": "down_fails"}}}});
is($kafka->cmd("down $_"), 'ok', "broker $_ down") for 1 .. 3;
$node->safe_psql($db, q{INSERT INTO t_down SELECT generate_series(1, 5)});
ok($node->poll_query_until($db, qq{
	SELECT throttles >= 2 FROM streams.event_source_mapping_stats WHERE uuid = '$u_down'}),
	'brokers down: the batch waits and is tried again (counted as throttles)');
like($node->safe_psql($db, qq{SELECT last_error FROM streams.kafka_stats WHERE uuid = '$u_down'}),
	qr/timed out/i, 'kafka_stats shows the delivery timeout');
cmp_ok($node->safe_psql($db, qq{SELECT produce_errors FROM streams.kafka_stats WHERE uuid = '$u_down'}), '>=', 5,
	'kafka_stats counts the produce errors');
is($node->safe_psql($db, q{SELECT count(*) FROM down_fails}), '0',
	'MaximumRetryAttempts 0 is not used up by brokers that are down');
is($kafka->cmd("up $_"), 'ok', "broker $_ up") for 1 .. 3;
like(wait_delivery($u_down), qr/^true$/i, 'delivered once the brokers are back');
is(scalar(@{ $kafka->consume('down') }) >= 5, 1, 'every record in the topic');
is($node->safe_psql($db, q{SELECT count(*) FROM down_fails}), '0', 'nothing sent to OnFailure');

# --- A message too large goes to the OnFailure destination (a Kafka topic)
$node->safe_psql($db, q{
CREATE TABLE t_small (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('t_small', 'NEW_IMAGE', 1);
});
kfn('k_small', 'small', '{"message.max.bytes": 4000}');
kfn('k_dlq', 'dlq');
my $u_small = esm(qq{{"EventSourceArn": "t_small", "FunctionName": "k_small", "StartingPosition": "TRIM_HORIZON", "BatchSize": 10, "MaximumRetryAttempts": 1, "BisectBatchOnFunctionError": true, "DestinationConfig": {"OnFailure": {"Destination": "k_dlq"}}}});
$node->safe_psql($db, q{INSERT INTO t_small VALUES (1, 'a'), (2, repeat('x', 10000)), (3, 'c')});
like(wait_delivery($u_small), qr/^true$/i, 'the mapping got past the large record');
my @small = map { decode_json($_->{key})->{id}{N} } @{ $kafka->consume('small') };
is(join(',', @small), '1,3', 'the records around it are in the topic, in order');
my $dlq = $kafka->consume('dlq');
is(scalar(@$dlq), 1, 'one failure record in the OnFailure topic');
my $fail = decode_json(Encode::encode('UTF-8', $dlq->[0]{value}));
is($fail->{requestContext}{condition}, 'RetryAttemptsExhausted', 'condition RetryAttemptsExhausted');
is($fail->{DDBStreamBatchInfo}{batchSize}, 1, 'the failure record holds the one large record');
is($fail->{payload}{Records}[0]{dynamodb}{Keys}{id}{N}, '2', 'it is record 2');
like($node->safe_psql($db, qq{SELECT last_error FROM streams.kafka_stats WHERE uuid = '$u_small'}),
	qr/too large/i, 'the error says the message is too large');

# --- kill -9 of the dispatcher: at least once, no loss, keys in order ----
$kafka->cmd("rtt $_ 30") for 1 .. 3;    # slow acknowledgements: the kill lands mid-stream
$node->safe_psql($db, q{
CREATE TABLE t_crash (id int PRIMARY KEY, n int);
SELECT streams.enable_stream('t_crash', 'NEW_IMAGE', 1);
INSERT INTO t_crash SELECT i, 0 FROM generate_series(1, 100) i;
UPDATE t_crash SET n = 1; UPDATE t_crash SET n = 2; UPDATE t_crash SET n = 3;
});
kfn('k_crash', 'crash');
my $u_crash = esm(qq{{"EventSourceArn": "t_crash", "FunctionName": "k_crash", "StartingPosition": "TRIM_HORIZON", "BatchSize": 10}});
ok($node->poll_query_until($db, qq{SELECT messages_produced >= 50 FROM streams.kafka_stats WHERE uuid = '$u_crash'}),
	'delivery under way');
my $dpid = $node->safe_psql($db, qq{SELECT max(pid) FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch'});
like($dpid, qr/^\d+$/, 'a dispatcher was running to be killed');
my $log_offset = -s $node->logfile;
is(kill('KILL', $dpid), 1, 'kill -9 reached the dispatcher');
is(count_log_lines($node, qr/terminated by signal 9/, $log_offset, 1), 1, 'the postmaster saw it die of kill -9');
ok(wait_for_worker($node, $db), 'capture worker back after the restart');
like(wait_delivery($u_crash, 180), qr/^true$/i, 'delivery resumed and completed');
$kafka->cmd("rtt $_ 0") for 1 .. 3;
my $crash = $kafka->consume('crash');
my %crash_seqs = map { $_->{headers}{SequenceNumber} => 1 } @$crash;
is(scalar(keys %crash_seqs), 400, 'every one of the 400 records is in the topic (none lost)');
# Each key's records: taking the last copy of each, they are in order.
my $ck = by_key($crash);
my $bad = 0;
for my $k (keys %$ck)
{
	my %last;
	my @m = @{ $ck->{$k} };
	$last{ $m[$_]{headers}{SequenceNumber} } = $_ for 0 .. $#m;
	my @order = sort { $last{$a} <=> $last{$b} } keys %last;
	$bad++ if join(',', @order) ne join(',', sort @order);
}
is($bad, 0, 'for every key, the last copies of its records are in order');
note('copies in the topic after the kill: ' . scalar(@$crash));

# --- pg_streams.kafka_allowed_brokers -------------------------------------
$node->safe_psql($db, q{ALTER SYSTEM SET pg_streams.kafka_allowed_brokers = 'kafka.example.com, 10.0.0.1:9092'; SELECT pg_reload_conf()});
ok($node->poll_query_until($db, q{SELECT current_setting('pg_streams.kafka_allowed_brokers') <> ''}), 'setting reloaded');
my ($rc, $out, $err) = $node->psql($db, qq{SELECT streams.create_kafka_function('k_refused', '$bootstrap', 'orders')});
like($err, qr/is not in pg_streams\.kafka_allowed_brokers/, 'a broker not in the list is refused');
($rc, $out, $err) = $node->psql($db, q{SELECT streams.create_kafka_function('k_ok', 'kafka.example.com:9093,10.0.0.1:9092', 'orders')});
is($rc, 0, 'brokers in the list (any port for a host entry, the port given otherwise) are accepted');
($rc, $out, $err) = $node->psql($db, q{SELECT streams.create_kafka_function('k_port', '10.0.0.1:9093', 'orders')});
like($err, qr/kafka_allowed_brokers/, 'another port of a host:port entry is refused');
# A mapping whose function's brokers were allowed when it was created waits
# (no retry used) once they are not.
$node->safe_psql($db, q{INSERT INTO t_retry VALUES (100)});
ok($node->poll_query_until($db, qq{
	SELECT last_error LIKE '%is not in pg_streams.kafka_allowed_brokers%' FROM streams.event_source_mapping_stats WHERE uuid = '$u_retry'}),
	'a mapping to brokers no longer allowed waits, saying why');
$node->safe_psql($db, q{ALTER SYSTEM RESET pg_streams.kafka_allowed_brokers; SELECT pg_reload_conf()});
like(wait_delivery($u_retry), qr/^true$/i, 'delivered once they are allowed again');

$kafka->stop;
done_testing();
