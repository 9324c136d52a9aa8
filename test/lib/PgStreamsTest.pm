# Shared set-up for the pg_streams TAP tests.
package PgStreamsTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Exporter 'import';
use IPC::Run;

our @EXPORT = qw(new_streams_node wait_for_worker stream_count start_sink count_log_lines);

# A started node with pg_streams preloaded and logical decoding on
# (not started with no_start => 1).
sub new_streams_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
	$node->append_conf('postgresql.conf', <<'CONF');
shared_preload_libraries = 'pg_streams'
wal_level = logical
output_plugin_libraries = 'pgoutput, test_decoding, pg_streams'
max_replication_slots = 10
max_wal_senders = 10
max_worker_processes = 40
restart_after_crash = on
CONF
	$node->append_conf('postgresql.conf', $opts{extra_conf}) if $opts{extra_conf};
	$node->start unless $opts{no_start};
	return $node;
}

# Waits until the capture worker of $db runs and its slot exists.
sub wait_for_worker
{
	my ($node, $db) = @_;
	return $node->poll_query_until($db, qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'pg_streams capture' AND datname = current_database()
	}) && $node->poll_query_until($db, qq{
		SELECT count(*) = 1 FROM pg_replication_slots
		 WHERE slot_name = 'pg_streams_' || (SELECT oid FROM pg_database WHERE datname = current_database())
	});
}

# Number of records in the stream of table $tbl.
sub stream_count
{
	my ($node, $db, $tbl) = @_;
	return $node->safe_psql($db, qq{
		SELECT count(*) FROM streams.record r JOIN streams.stream s USING (stream_id)
		 WHERE s.relid = '$tbl'::regclass
	});
}

# Sinks started by this test file: stopped when it ends, however it ends.
my @sinks;
END { my $rc = $?; for my $s (@sinks) { eval { $s->kill_kill if $s->pumpable; 1 }; } $? = $rc; }

# Starts the loopback HTTP sink (test/sink/sink.py); returns its IPC::Run
# handle and base URL once it answers (the URL is undef if it never did).
sub start_sink
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $root = $ENV{PGS_ROOT} // '.';
	my $sink = IPC::Run::start([ 'python3', "$root/test/sink/sink.py", '--port', $port ],
		'>', "$PostgreSQL::Test::Utils::tmp_check/sink.out", '2>&1');
	push @sinks, $sink;
	my $base = "http://127.0.0.1:$port";
	for (1 .. 50)
	{
		return ($sink, $base) if system("curl -sf $base/_health >/dev/null") == 0;
		select(undef, undef, undef, 0.1);
	}
	return ($sink, undef);
}

# Waits (up to 60 s) until the server log after $offset has $want lines
# matching $re; returns how many it has.
sub count_log_lines
{
	my ($node, $re, $offset, $want) = @_;
	my $n = 0;
	for (1 .. 600)
	{
		$n = () = slurp_file($node->logfile, $offset) =~ /$re/g;
		last if $n >= $want;
		select(undef, undef, undef, 0.1);
	}
	return $n;
}

1;
