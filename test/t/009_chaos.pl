# Chaos: a writer commits rows all along while ~20 seeded random faults hit
# the cluster (kill -9 of the capture worker, the appender, a dispatcher or a
# client backend, and immediate shutdowns). Afterwards a SQL mapping has
# received every committed row exactly once and an HTTP mapping at least
# once, each record always under the same Idempotency-Key, each key's rows in
# commit order. PGS_CHAOS_SEED and PGS_CHAOS_FAULTS change the run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use POSIX ();
use PgStreamsTest;

my $seed = $ENV{PGS_CHAOS_SEED} // 20261202;
my $nfaults = $ENV{PGS_CHAOS_FAULTS} // 20;
srand($seed);
note("chaos seed $seed, $nfaults faults");

my $node = new_streams_node('chaos');
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_streams');
ok(wait_for_worker($node, $db), 'capture worker runs');
my ($sink, $base) = start_sink();
ok(defined $base, 'sink is up');

$node->safe_psql($db, qq{
CREATE TABLE ev (k int PRIMARY KEY, v int NOT NULL);
CREATE TABLE out_sql (ord bigserial PRIMARY KEY, k int NOT NULL, v int NOT NULL);
SELECT streams.enable_stream('ev', 'NEW_IMAGE', 2);
INSERT INTO ev SELECT g, 0 FROM generate_series(0, 19) g;
CREATE FUNCTION h(e jsonb) RETURNS void LANGUAGE sql AS \$\$
    INSERT INTO out_sql (k, v)
    SELECT (r->'dynamodb'->'NewImage'->'k'->>'N')::int, (r->'dynamodb'->'NewImage'->'v'->>'N')::int
      FROM jsonb_array_elements(e->'Records') WITH ORDINALITY AS x(r, n) ORDER BY n
\$\$;
SELECT streams.create_function('h', 'h(jsonb)');
SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"ev","FunctionName":"h","StartingPosition":"TRIM_HORIZON","BatchSize":50}');
SELECT streams.create_http_function('hh', '$base/chaos?delay=0.05', '{}');
SELECT streams.create_event_source_mapping(
	'{"EventSourceArn":"ev","FunctionName":"hh","StartingPosition":"TRIM_HORIZON","BatchSize":20}');
});
ok($node->poll_query_until($db, q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'pg_streams dispatch'}),
	'both dispatchers run');

# The writer: one transaction after another, each adding 1 to the counter v
# of 3 random items, as a separate process that carries on through the
# faults (a failed transaction changes nothing). Item k's records must then
# be v = 0 (its insert), 1, 2, ... up to its final v, each once, in order.
my $stop = "$PostgreSQL::Test::Utils::tmp_check/chaos_stop";
my $connstr = $node->connstr($db);
my $writer = fork();
die "fork: $!" unless defined $writer;
if ($writer == 0)
{
	open(STDOUT, '>', '/dev/null');
	open(STDERR, '>', '/dev/null');
	until (-e $stop)
	{
		system('psql', '-X', '-q', '-d', $connstr, '-c',
			'UPDATE ev SET v = v + 1 WHERE k IN (SELECT (random() * 19)::int FROM generate_series(1, 3))');
		sleep 0.01;
	}
	POSIX::_exit(0);    # not exit: the test's END blocks would stop the node
}

sub pid_of
{
	my ($type) = @_;
	my $pid = $node->safe_psql($db, qq{SELECT pid FROM pg_stat_activity WHERE backend_type = '$type' LIMIT 1});
	return $pid =~ /^\d+$/ ? $pid : undef;
}

my %done;
my @kinds = ('pg_streams capture', 'pg_streams append', 'pg_streams dispatch', 'client backend', 'immediate shutdown');
for my $i (1 .. $nfaults)
{
	sleep(0.3 + rand(1.2));
	my $kind = $kinds[ int(rand(@kinds)) ];
	if ($kind eq 'immediate shutdown')
	{
		$node->stop('immediate');
		$node->start;
		$done{$kind}++;
		next;
	}
	my ($pid, $victim);
	if ($kind eq 'client backend')
	{
		$victim = IPC::Run::start([ 'psql', '-X', '-q', '-d', $connstr, '-c', 'SELECT pg_sleep(60)' ],
			'>', '/dev/null', '2>', '/dev/null');
		for (1 .. 100)
		{
			my $p = $node->safe_psql($db,
				q{SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' LIMIT 1});
			if ($p =~ /^\d+$/) { $pid = $p; last; }
			sleep 0.05;
		}
	}
	else
	{
		for (1 .. 100) { last if defined($pid = pid_of($kind)); sleep 0.05; }
	}
	next unless defined $pid;
	my $at = -s $node->logfile;
	next unless kill('KILL', $pid) == 1;
	$done{$kind}++ if $node->wait_for_log(qr/\(PID $pid\) was terminated by signal 9/, $at);
	$node->poll_query_until($db, 'SELECT 1', '1');
	$victim->kill_kill if $victim;
}
open(my $fh, '>', $stop) or die;
close($fh);
waitpid($writer, 0);

my $faults = 0;
$faults += $_ for values %done;
note(join(', ', map { "$_: $done{$_}" } sort keys %done));
ok($faults >= $nfaults * 0.8, "the faults happened ($faults of $nfaults)");

my $rows = $node->safe_psql($db, 'SELECT sum(v + 1) FROM ev');
my $updates = $node->safe_psql($db, 'SELECT sum(v) FROM ev');
ok($updates > 50, "the writer committed updates through the faults ($updates)");

# --- SQL: exactly once, in order per item ------------------------------------
ok($node->poll_query_until($db, q{SELECT count(*) >= (SELECT sum(v + 1) FROM ev) FROM out_sql}),
	'SQL: as many records delivered as committed changes');
is($node->safe_psql($db, q{
	SELECT count(*) FROM ev, generate_series(0, ev.v) g
	 WHERE NOT EXISTS (SELECT 1 FROM out_sql o WHERE o.k = ev.k AND o.v = g)}), '0', 'SQL: 0 lost');
is($node->safe_psql($db, q{SELECT count(*) - count(DISTINCT (k, v)) FROM out_sql}), '0', 'SQL: 0 duplicated');
is($node->safe_psql($db, q{SELECT count(*) FROM out_sql o JOIN ev USING (k) WHERE o.v > ev.v}), '0',
	'SQL: nothing delivered that was not committed');
is($node->safe_psql($db, q{
	SELECT count(*) FROM (SELECT v, lag(v) OVER (PARTITION BY k ORDER BY ord) AS prev FROM out_sql) s
	 WHERE prev >= v}), '0', "SQL: each item's records in commit order");

# --- HTTP: at least once, same key on every resend, in order per item --------
my %final = split /[,\n]/, $node->safe_psql($db, q{SELECT k || ',' || v FROM ev});
my (%keys_of, %sends, %seen_k, $requests, $out_of_order);
for (1 .. 1800)
{
	(%keys_of, %sends, %seen_k) = ();
	$out_of_order = 0;
	my $reqs = decode_json(`curl -s '$base/_requests?path=/chaos'`);
	$requests = scalar(@$reqs);
	for my $r (@$reqs)
	{
		for my $rec (@{ decode_json($r->{body})->{Records} })
		{
			my ($k, $v) = ($rec->{dynamodb}{NewImage}{k}{N}, $rec->{dynamodb}{NewImage}{v}{N});
			unless ($sends{"$k/$v"}++)
			{
				# First send of this record: it must follow the item's earlier ones.
				$out_of_order++ if defined $seen_k{$k} && $seen_k{$k} != $v - 1;
				$seen_k{$k} = $v;
			}
			$keys_of{"$k/$v"}{ $r->{headers}{'idempotency-key'} } = 1;
		}
	}
	last if !grep { ($seen_k{$_} // -1) < $final{$_} } keys %final;
	sleep 0.1;
}
is(scalar(grep { ($seen_k{$_} // -1) != $final{$_} } keys %final), 0, 'HTTP: 0 lost (every item up to its final value)');
is(scalar(keys %sends), $rows, 'HTTP: nothing sent that was not committed');
is($out_of_order, 0, "HTTP: each item's records first sent in commit order, without gaps");
my $resent = grep { $sends{$_} > 1 } keys %sends;
is(scalar(grep { scalar(keys %{ $keys_of{$_} }) > 1 } keys %keys_of), 0,
	'HTTP: every send of a record carries the same Idempotency-Key');
note("committed changes $rows; HTTP requests $requests, records sent again $resent");

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal (?!9:)/, 'no process died of a signal other than the kill -9s');
$node->stop;
done_testing();
