# librdkafka's mock Kafka cluster for TAP tests (test/kafka/kafka_mock.cpp,
# compiled on first use): start it, send it commands, read a topic.
package KafkaMock;

use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;

my @started;
END { my $rc = $?; for my $m (@started) { eval { $m->{h}->kill_kill if $m->{h}->pumpable; 1 }; } $? = $rc; }

# Starts a cluster of $brokers brokers; ->{bootstrap} is its bootstrap.servers.
sub start
{
	my ($class, $brokers) = @_;
	my $root = $ENV{PGS_ROOT} // '.';
	my $bin = "$PostgreSQL::Test::Utils::tmp_check/kafka_mock";
	if (!-x $bin)
	{
		system('g++', '-std=c++17', '-O1', '-Wall', '-Wextra', '-Werror', "$root/test/kafka/kafka_mock.cpp",
			'-lrdkafka', '-o', $bin) == 0
		  or die "kafka_mock does not build";
	}
	my $self = bless { in => '', out => '', timer => IPC::Run::timer(120) }, $class;
	$self->{h} = IPC::Run::start([ $bin, $brokers ], '<', \$self->{in}, '>', \$self->{out},
		'2>', "$PostgreSQL::Test::Utils::tmp_check/kafka_mock.err", $self->{timer});
	push @started, $self;
	my $line = $self->_line;
	die "kafka_mock did not start" unless $line =~ /^bootstrap (\S+)/;
	$self->{bootstrap} = $1;
	return $self;
}

sub _line
{
	my ($self) = @_;
	$self->{timer}->start(120);
	$self->{h}->pump until $self->{out} =~ /\n/;
	$self->{out} =~ s/^([^\n]*)\n//;
	return $1;
}

# Sends one command; returns its answer ("ok ..." or "error ...").
sub cmd
{
	my ($self, $line) = @_;
	$self->{in} .= "$line\n";
	return $self->_line;
}

# Every message now in $topic: a list of {p, o, key, value, headers}.
sub consume
{
	my ($self, $topic) = @_;
	my $file = "$PostgreSQL::Test::Utils::tmp_check/consume_$topic.jsonl";
	my $answer = $self->cmd("consume $topic $file");
	die "consume $topic: $answer" unless $answer =~ /^ok/;
	my $json = JSON::PP->new->utf8(0);
	return [ map { $json->decode($_) } grep { length } split /\n/, slurp_file($file) ];
}

sub stop
{
	my ($self) = @_;
	$self->{in} .= "quit\n";
	$self->{h}->finish;
}

1;
