# pg-streams, the command-line client (issue 19): the installed binary against
# a cluster. Every command, AWS shorthand and --cli-input-json input, output
# formats, errors with their exit codes (252 parameters, 254 service, 255
# connection), secrets that are never echoed, and tail receiving records
# written after it started.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(sleep);
use PgStreamsTest;

# The binary make install put next to the server's programs.
my $bindir = `pg_config --bindir`;
chomp $bindir;
my $cli = "$bindir/pg-streams";
ok(-x $cli, "pg-streams is installed in pg_config --bindir ($bindir)");

my $node = new_streams_node('cli');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');
my $conn = $node->connstr($db);
my $tmp = $PostgreSQL::Test::Utils::tmp_check;

# Runs pg-streams with the node's connection; returns (exit code, stdout, stderr).
sub cli
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $cli, '-d', $conn, @args ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(120));
	return ($? >> 8, $out, $err);
}

# Runs a command that must succeed; returns its JSON output decoded.
sub cli_json
{
	my ($name, @args) = @_;
	my ($rc, $out, $err) = cli(@args);
	is($rc, 0, "$name: exit 0") or diag("stderr: $err");
	my $doc = eval { decode_json($out) };
	ok(defined $doc, "$name: JSON output") or diag("stdout: $out");
	return $doc // {};
}

# A command that must fail with exit code $code and an stderr matching $re.
sub cli_fails
{
	my ($name, $code, $re, @args) = @_;
	my ($rc, $out, $err) = cli(@args);
	is($rc, $code, "$name: exit $code");
	like($err, $re, "$name: message") or diag("stderr: $err");
	is($out, '', "$name: nothing on stdout");
}

sub write_file
{
	my ($path, $text) = @_;
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $text;
	close($fh);
}

# Help at every level, no server needed -------------------------------------
{
	my ($rc, $out) = cli('--help');
	is($rc, 0, '--help: exit 0');
	like($out, qr/dynamodbstreams.*dynamodb.*lambda.*tail.*stats/s, '--help lists the services');
	($rc, $out) = cli('lambda', 'help');
	like($out, qr/create-event-source-mapping/, 'lambda help lists its commands');
	($rc, $out) = cli('lambda', 'create-event-source-mapping', '--help');
	is($rc, 0, 'command --help: exit 0');
	like($out, qr/--maximum-batching-window-in-seconds.*--no-bisect-batch-on-function-error/s,
		'command --help lists the AWS parameter names');
	($rc, $out) = cli('dynamodbstreams', 'get-records', '--generate-cli-skeleton');
	is_deeply(decode_json($out), { ShardIterator => '', Limit => 0 }, '--generate-cli-skeleton');
}

# Connection and command-line errors ----------------------------------------
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $cli, '-h', "$tmp/nowhere", '-p', '5', 'lambda', 'list-functions' ],
		'>', \$out, '2>', \$err);
	is($? >> 8, 255, 'connection failure: exit 255');
	like($err, qr{Could not connect.*nowhere/\.s\.PGSQL\.5}s, 'connection failure names the socket that failed');
}
cli_fails('unknown service', 252, qr/Invalid choice: 'kinesis'/, 'kinesis', 'list-streams');
cli_fails('unknown command', 252, qr/Invalid choice: 'get-item'/, 'dynamodb', 'get-item');
cli_fails('unknown option', 252, qr/Unknown options: --bogus/, 'lambda', 'list-functions', '--bogus');
cli_fails('missing required', 252, qr/the following arguments are required: --event-source-arn, --function-name/,
	'lambda', 'create-event-source-mapping');
cli_fails('integer parameter', 252, qr/Invalid type for parameter BatchSize, value: ten/,
	'lambda', 'create-event-source-mapping', '--event-source-arn', 'x', '--function-name', 'f',
	'--batch-size', 'ten');
cli_fails('bad shorthand', 252, qr/Error parsing parameter '--destination-config'/,
	'lambda', 'create-event-source-mapping', '--event-source-arn', 'x', '--function-name', 'f',
	'--destination-config', 'OnFailure={Destination');
cli_fails('--output', 252, qr/argument --output: Invalid choice/, '--output', 'yaml', 'lambda', 'list-functions');
cli_fails('missing file://', 252, qr{Unable to load paramfile file://\S+/missing\.json},
	'lambda', 'create-event-source-mapping', '--cli-input-json', "file://$tmp/missing.json");

# dynamodb / dynamodbstreams -----------------------------------------------
$node->safe_psql($db, q{
CREATE TABLE orders (order_id int PRIMARY KEY, customer text, total numeric);
CREATE TABLE got (n int);
CREATE FUNCTION h(e jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO got SELECT jsonb_array_length(e->'Records') $$;
CREATE FUNCTION h2(e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
});
cli_fails('enable-stream StreamEnabled=false', 252, qr/use disable-stream/,
	'dynamodb', 'enable-stream', '--table-name', 'orders', '--stream-specification', 'StreamEnabled=false');
cli_fails('shorthand boolean', 252, qr/Invalid type for parameter StreamSpecification, value: maybe/,
	'dynamodb', 'enable-stream', '--table-name', 'orders', '--stream-specification', 'StreamEnabled=maybe');
cli_fails('missing table', 254,
	qr/An error occurred \(ResourceNotFoundException\) when calling the UpdateTable operation: relation "nope" does not exist/,
	'dynamodb', 'enable-stream', '--table-name', 'nope');
my $doc = cli_json('enable-stream', 'dynamodb', 'enable-stream', '--table-name', 'orders',
	'--stream-specification', 'StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES', '--shard-count', '2');
is_deeply($doc->{StreamSpecification}, { StreamEnabled => JSON::PP::true, StreamViewType => 'NEW_AND_OLD_IMAGES' },
	'enable-stream: StreamSpecification from shorthand');
my $arn = $doc->{LatestStreamArn};
like($arn, qr{^arn:aws:dynamodb:.*:table/public\.orders/stream/}, 'enable-stream: LatestStreamArn');

my ($rc, $out, $err) = cli('dynamodb', 'describe-table', '--table-name', 'orders',
	'--query', 'Table.LatestStreamArn', '--output', 'text');
is($out, "$arn\n", 'describe-table --query Table.LatestStreamArn --output text');
($rc, $out) = cli('dynamodbstreams', 'list-streams', '--table-name', 'orders', '--query', 'Streams[0].StreamArn',
	'--output', 'text');
is($out, "$arn\n", 'list-streams --table-name, --query Streams[0].StreamArn');
$doc = cli_json('describe-stream', 'dynamodbstreams', 'describe-stream', '--stream-arn', $arn);
my @shards = map { $_->{ShardId} } @{ $doc->{StreamDescription}{Shards} };
is(scalar @shards, 2, 'describe-stream: --shard-count 2 gave two shards');
($rc, $out) = cli('dynamodbstreams', 'describe-stream', '--stream-arn', $arn, '--output', 'table');
like($out, qr/\|\s+StreamDescription\s+\|.*\| StreamStatus\s+\| ENABLED\s+\|/s, 'describe-stream --output table');
cli_fails('describe-stream of an unknown ARN', 254, qr/\(ResourceNotFoundException\) when calling the DescribeStream/,
	'dynamodbstreams', 'describe-stream', '--stream-arn', "$arn-x");

$node->safe_psql($db, q{INSERT INTO orders SELECT g, 'c' || g, g FROM generate_series(1, 20) g});
$node->safe_psql($db, 'SELECT streams.wait_for_capture()');
my $total = 0;
my $an_iterator;
for my $shard (@shards)
{
	my ($rc2, $it) = cli('dynamodbstreams', 'get-shard-iterator', '--stream-arn', $arn, '--shard-id', $shard,
		'--shard-iterator-type', 'TRIM_HORIZON', '--query', 'ShardIterator', '--output', 'text');
	chomp $it;
	is($rc2, 0, "get-shard-iterator $shard");
	$an_iterator = $it;
	my $page = cli_json('get-records', 'dynamodbstreams', 'get-records', '--shard-iterator', $it);
	$total += scalar @{ $page->{Records} };
	next unless @{ $page->{Records} };
	$page = cli_json('get-records --limit 1', 'dynamodbstreams', 'get-records', '--shard-iterator', $it,
		'--limit', '1');
	is(scalar @{ $page->{Records} }, 1, 'get-records --limit 1: one record');
	ok($page->{NextShardIterator}, 'get-records: NextShardIterator');
	($rc2, $out) = cli('dynamodbstreams', 'get-records', '--shard-iterator', $it, '--limit', '1', '--output', 'text');
	like($out, qr/^RECORDS\tus-east-1\t[0-9a-f]{32}\tINSERT\taws:dynamodb\t1\.1$/m, 'get-records --output text');
}
is($total, 20, 'get-records over both shards: every row');
cli_fails('get-shard-iterator AT_SEQUENCE_NUMBER without one', 254,
	qr/\(ValidationException\) when calling the GetShardIterator operation: SequenceNumber is required/,
	'dynamodbstreams', 'get-shard-iterator', '--stream-arn', $arn, '--shard-id', $shards[0],
	'--shard-iterator-type', 'AT_SEQUENCE_NUMBER');
cli_fails('get-records --limit 0', 254, qr/\(ValidationException\).*Member must have value between 1 and 1000/,
	'dynamodbstreams', 'get-records', '--shard-iterator', $an_iterator, '--limit', '0');

# lambda: functions -----------------------------------------------------------
$doc = cli_json('create-function', 'lambda', 'create-function', '--function-name', 'h', '--handler', 'h(jsonb)',
	'--timeout', '5', '--description', 'counts');
is_deeply([ @$doc{qw(FunctionName Handler Timeout Description)} ], [ 'h', 'public.h(jsonb)', 5, 'counts' ],
	'create-function: the configuration');
cli_fails('create-function again', 254,
	qr/An error occurred \(ResourceConflictException\) when calling the CreateFunction operation: Function already exist: h/,
	'lambda', 'create-function', '--function-name', 'h', '--handler', 'h(jsonb)');
cli_fails('create-function, bad name', 254, qr/\(ValidationException\)/,
	'lambda', 'create-function', '--function-name', 'bad name', '--handler', 'h(jsonb)');
write_file("$tmp/h2.json", '{"FunctionName": "h2", "Handler": "h2(jsonb)", "Timeout": 9}');
$doc = cli_json('create-function --cli-input-json file://', 'lambda', 'create-function',
	'--cli-input-json', "file://$tmp/h2.json", '--description', 'from options');
is_deeply([ @$doc{qw(FunctionName Timeout Description)} ], [ 'h2', 9, 'from options' ],
	'--cli-input-json file://, options added to it');
cli_fails('--cli-input-json with an unknown member', 252, qr/Unknown parameter in input: "Runtime"/,
	'lambda', 'create-function', '--cli-input-json', '{"FunctionName":"x","Handler":"h(jsonb)","Runtime":"python3.7"}');
($rc, $out) = cli('lambda', 'list-functions', '--query', 'Functions[*].FunctionName', '--output', 'text');
is($out, "h\th2\n", 'list-functions --query Functions[*].FunctionName --output text');
($rc, $out) = cli('lambda', 'get-function', '--function-name', 'h2', '--output', 'table');
like($out, qr/\|\s+Configuration\s+\|.*\| Timeout\s+\| 9\s+\|/s, 'get-function --output table');
$doc = cli_json('update-function-configuration', 'lambda', 'update-function-configuration',
	'--function-name', 'h2', '--timeout', '7');
is($doc->{Timeout}, 7, 'update-function-configuration --timeout');
cli_fails('update-function-configuration --timeout 0', 254, qr/\(ValidationException\)/,
	'lambda', 'update-function-configuration', '--function-name', 'h2', '--timeout', '0');
($rc, $out) = cli('lambda', 'invoke', '--function-name', 'h', '--payload', '{"Records":[{"x":1}]}');
is($rc, 0, 'invoke: exit 0');
is($node->safe_psql($db, 'SELECT n FROM got'), '1', 'invoke: the handler ran with the payload');
$node->safe_psql($db, 'TRUNCATE got');

# create-http-function: secrets from a file and the environment, never echoed.
my $secret_header = 'Bearer s3cr3t-token-from-file';
my $signing = 'signing-secret-from-environment';
write_file("$tmp/secret_headers", "Authorization=$secret_header\n");
{
	local $ENV{PGS_TEST_SIGNING} = $signing;
	($rc, $out, $err) = cli('lambda', 'create-http-function', '--function-name', 'hook', '--url',
		'http://127.0.0.1:9/hook', '--headers', 'X-Tenant=acme', '--secret-headers', "file://$tmp/secret_headers",
		'--signing-secret', 'env:PGS_TEST_SIGNING', '--no-verify-tls', '--max-concurrency', '2');
	is($rc, 0, 'create-http-function: exit 0') or diag($err);
	unlike("$out$err", qr/s3cr3t|signing-secret-from/, 'create-http-function: no secret in its output');
	$doc = decode_json($out);
	is_deeply([ $doc->{Headers}, $doc->{SecretHeaders}, $doc->{Signed}, $doc->{VerifyTls}, $doc->{MaxConcurrency} ],
		[ { 'X-Tenant' => 'acme' }, ['Authorization'], JSON::PP::true, JSON::PP::false, 2 ],
		'create-http-function: headers, secret header names, signed, options');
	is($node->safe_psql($db, q{SELECT secret_headers->>'Authorization' = 'Bearer s3cr3t-token-from-file'
		AND signing_secret = 'signing-secret-from-environment' FROM streams.function_secret}), 't',
		'create-http-function: the secrets were stored');
	($rc, $out, $err) = cli('lambda', 'create-http-function', '--function-name', 'hook2', '--url', 'http://h/',
		'--secret-headers', '{"Authorization": "s3cr3t-broken', '--signing-secret', 'env:PGS_TEST_UNSET');
	is($rc, 252, 'create-http-function, secret not JSON: exit 252');
	unlike("$out$err", qr/s3cr3t/, 'create-http-function, secret not JSON: not echoed');
	($rc, $out, $err) = cli('lambda', 'create-http-function', '--function-name', 'hook2', '--url', 'http://h/',
		'--signing-secret', 'env:PGS_TEST_UNSET');
	is($rc, 252, 'create-http-function, unset environment variable: exit 252');
	like($err, qr/environment variable PGS_TEST_UNSET is not set/, 'names the variable');
	($rc, $out, $err) = cli('lambda', 'create-http-function', '--function-name', 'hook2', '--url', 'http://h/',
		'--signing-secret', 'short-s3cr3t');
	is($rc, 254, 'create-http-function, short signing secret: exit 254');
	unlike("$out$err", qr/s3cr3t/, 'create-http-function, refused secret: not echoed');
}
cli_json('get-function of an HTTP function', 'lambda', 'get-function', '--function-name', 'hook');

# lambda: event source mappings ----------------------------------------------
$doc = cli_json('create-event-source-mapping', 'lambda', 'create-event-source-mapping',
	'--event-source-arn', $arn, '--function-name', 'h', '--starting-position', 'TRIM_HORIZON',
	'--batch-size', '7', '--maximum-batching-window-in-seconds', '0', '--maximum-retry-attempts', '3',
	'--no-bisect-batch-on-function-error', '--function-response-types', 'ReportBatchItemFailures',
	'--destination-config', 'OnFailure={Destination=streams.failed_batches}', '--enabled');
my $uuid = $doc->{UUID};
like($uuid, qr/^[0-9a-f-]{36}$/, 'create-event-source-mapping: UUID');
is_deeply([ @$doc{qw(BatchSize MaximumRetryAttempts BisectBatchOnFunctionError FunctionResponseTypes DestinationConfig)} ],
	[ 7, 3, JSON::PP::false, ['ReportBatchItemFailures'], { OnFailure => { Destination => 'streams.failed_batches' } } ],
	'create-event-source-mapping: parameters from options and shorthand');
cli_fails('a second mapping of the same function and stream', 254,
	qr/\(ResourceConflictException\) when calling the CreateEventSourceMapping operation: The event source arn/,
	'lambda', 'create-event-source-mapping', '--event-source-arn', 'orders', '--function-name', 'h',
	'--starting-position', 'LATEST');
cli_fails('--batch-size 0', 254, qr/\(ValidationException\).*batchSize/i,
	'lambda', 'create-event-source-mapping', '--event-source-arn', 'orders', '--function-name', 'h2',
	'--starting-position', 'LATEST', '--batch-size', '0');
write_file("$tmp/esm.json", encode_json({ EventSourceArn => 'orders', FunctionName => 'h2',
	StartingPosition => 'LATEST', BatchSize => 50, DestinationConfig => { OnFailure => {} },
	FilterCriteria => { Filters => [ { Pattern => '{"eventName":["INSERT"]}' } ] } }));
$doc = cli_json('create-event-source-mapping --cli-input-json', 'lambda', 'create-event-source-mapping',
	'--cli-input-json', "file://$tmp/esm.json", '--function-response-types', '["ReportBatchItemFailures"]');
is_deeply([ @$doc{qw(BatchSize StartingPosition FunctionResponseTypes FilterCriteria)} ],
	[ 50, 'LATEST', ['ReportBatchItemFailures'], { Filters => [ { Pattern => '{"eventName":["INSERT"]}' } ] } ],
	'create-event-source-mapping: --cli-input-json with a JSON list option');
my $uuid2 = $doc->{UUID};

$node->safe_psql($db, "SELECT streams.wait_for_delivery('$uuid')");
is($node->safe_psql($db, 'SELECT sum(n) FROM got'), '20', 'the mapping made by pg-streams delivered every row');
$doc = cli_json('get-event-source-mapping', 'lambda', 'get-event-source-mapping', '--uuid', $uuid);
is($doc->{FunctionArn}, 'arn:aws:lambda:us-east-1:000000000000:function:h', 'get-event-source-mapping: FunctionArn');
cli_fails('get-event-source-mapping of an unknown UUID', 254, qr/\(ResourceNotFoundException\)/,
	'lambda', 'get-event-source-mapping', '--uuid', '00000000-0000-0000-0000-000000000000');
cli_fails('get-event-source-mapping, not a UUID', 254, qr/\(ValidationException\)/,
	'lambda', 'get-event-source-mapping', '--uuid', 'nope');
$doc = cli_json('update-event-source-mapping --no-enabled', 'lambda', 'update-event-source-mapping',
	'--uuid', $uuid, '--no-enabled');
is($doc->{State}, 'Disabling', 'update-event-source-mapping --no-enabled: Disabling');
$doc = cli_json('update-event-source-mapping --enabled', 'lambda', 'update-event-source-mapping',
	'--uuid', $uuid, '--enabled', '--batch-size', '20', '--maximum-retry-attempts', '5');
is_deeply([ @$doc{qw(State BatchSize MaximumRetryAttempts)} ], [ 'Enabling', 20, 5 ],
	'update-event-source-mapping --enabled --batch-size 20');
($rc, $out) = cli('lambda', 'list-event-source-mappings', '--function-name', 'h', '--query',
	'EventSourceMappings[*].UUID', '--output', 'text');
is($out, "$uuid\n", 'list-event-source-mappings --function-name');
$doc = cli_json('list-event-source-mappings --event-source-arn', 'lambda', 'list-event-source-mappings',
	'--event-source-arn', 'orders');
is(scalar @{ $doc->{EventSourceMappings} }, 2, 'list-event-source-mappings --event-source-arn TABLE');

# stats
$doc = cli_json('stats --output json', 'stats', '--output', 'json');
my ($row) = grep { $_->{uuid} eq $uuid } @$doc;
is($row->{records_delivered}, 20, 'stats --output json: records_delivered');
($rc, $out) = cli('stats');
like($out, qr/\| function_name \| uuid\s+\| state\s+\|.*\| h\s+\| $uuid \|/s, 'stats: a table of the mappings');

$doc = cli_json('delete-event-source-mapping', 'lambda', 'delete-event-source-mapping', '--uuid', $uuid2);
is($doc->{State}, 'Deleting', 'delete-event-source-mapping: Deleting');
cli_fails('get-event-source-mapping after delete', 254, qr/\(ResourceNotFoundException\)/,
	'lambda', 'get-event-source-mapping', '--uuid', $uuid2);
($rc, $out, $err) = cli('lambda', 'delete-function', '--function-name', 'h2');
is("$rc|$out", '0|', 'delete-function: exit 0, no output');
cli_fails('get-function after delete', 254,
	qr/An error occurred \(ResourceNotFoundException\) when calling the GetFunction operation: Function not found/,
	'lambda', 'get-function', '--function-name', 'h2');

# tail -----------------------------------------------------------------------
# Started before the writes: it gets exactly the records committed after it
# started, in order per item (so per shard), one JSON record per line.
$node->safe_psql($db, q{
CREATE TABLE items (id int PRIMARY KEY, v int);
INSERT INTO items SELECT g, 0 FROM generate_series(1, 3) g;});
cli_json('enable-stream items', 'dynamodb', 'update-table', '--table-name', 'items',
	'--stream-specification', 'StreamEnabled=true,StreamViewType=NEW_IMAGE');
$node->safe_psql($db, q{INSERT INTO items VALUES (100, 0)});   # before tail: not seen
$node->safe_psql($db, 'SELECT streams.wait_for_capture()');
my ($tail_out, $tail_err) = ('', '');
my $tail = IPC::Run::start([ $cli, '-d', $conn, 'tail', 'items' ], '>', \$tail_out, '2>', \$tail_err,
	IPC::Run::timeout(180));
$tail->pump until $tail_err =~ /following/;
$node->safe_psql($db, qq{INSERT INTO items SELECT g, 0 FROM generate_series(4, 6) g}) ;
$node->safe_psql($db, qq{UPDATE items SET v = v + 1 WHERE id <= 6}) for 1 .. 3;
my $want = 3 + 6 * 3;
for (1 .. 600)
{
	$tail->pump_nb;
	last if (() = $tail_out =~ /\n/g) >= $want;
	sleep 0.1;
}
my @lines = split /\n/, $tail_out;
is(scalar @lines, $want, 'tail: every record written after it started, one per line');
my %seen;
my $in_order = 1;
for my $line (@lines)
{
	my $r = decode_json($line);
	my $id = $r->{dynamodb}{Keys}{id}{N};
	my $v = $r->{dynamodb}{NewImage}{v}{N};
	$in_order = 0 if exists $seen{$id} && $v != $seen{$id} + 1;
	$seen{$id} = $v;
}
ok($in_order, 'tail: the records of an item come in order');
is_deeply(\%seen, { map { $_ => 3 } 1 .. 6 }, 'tail: every item up to its last update, nothing from before');
$tail->signal('INT');
my $finished = eval { $tail->finish; 1 };
ok($finished && $tail->result == 0, 'tail: stops cleanly on SIGINT with exit 0');

# --from trim-horizon and a single shard.
($out, $err) = ('', '');
my $ta = IPC::Run::start([ $cli, '-d', $conn, 'tail', 'items', '--from', 'trim-horizon' ], '>', \$out, '2>', \$err,
	IPC::Run::timeout(180));
for (1 .. 600)
{
	$ta->pump_nb;
	last if (() = $out =~ /\n/g) >= $want + 1;
	sleep 0.1;
}
$ta->signal('TERM');
eval { $ta->finish };
is(scalar(() = $out =~ /\n/g), $want + 1, 'tail --from trim-horizon: the records from before it too; stops on SIGTERM');
cli_fails('tail --shard unknown', 254, qr/\(ResourceNotFoundException\).*Shard: nope/, 'tail', 'items', '--shard', 'nope');
cli_fails('tail --from bad', 252, qr/argument --from/, 'tail', 'items', '--from', 'yesterday');

# disable-stream, and update-table StreamEnabled=false
$doc = cli_json('disable-stream', 'dynamodb', 'disable-stream', '--table-name', 'orders');
$doc = cli_json('update-table StreamEnabled=false', 'dynamodb', 'update-table', '--table-name', 'items',
	'--stream-specification', 'StreamEnabled=false');
($rc, $out) = cli('dynamodbstreams', 'describe-stream', '--stream-arn', $arn, '--query',
	'StreamDescription.StreamStatus', '--output', 'text');
is($out, "DISABLED\n", 'disable-stream: the stream is DISABLED');

$node->stop;
done_testing();
