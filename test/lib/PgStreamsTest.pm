# Shared set-up for the pg_streams TAP tests.
package PgStreamsTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Exporter 'import';

our @EXPORT = qw(new_streams_node wait_for_worker stream_count);

# A started node with pg_streams preloaded and logical decoding on.
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
log_min_messages = log
CONF
	$node->append_conf('postgresql.conf', $opts{extra_conf}) if $opts{extra_conf};
	$node->start;
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

1;
