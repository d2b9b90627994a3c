# PgTviews::Differential -- helpers of the randomized differential test
# (test/t/020_differential.pl).
#
#   my $s = PgTviews::Differential::Session->new($node, 'postgres', 'A');
#   my ($out, $err, $sqlstate) = $s->query('UPDATE ...');
#   $s->quit;
#
# A Session is one long-lived psql process fed through IPC::Run, like
# PostgreSQL::Test::BackgroundPsql, but made for tens of thousands of
# statements: no note() per query, errors do not stop psql
# (ON_ERROR_STOP=0), stderr is cleared before every statement, and the
# SQLSTATE of an error is returned (VERBOSITY=verbose).  Several sessions
# let one single-threaded driver interleave the statements of concurrent
# transactions; a statement that would wait for a lock held by another
# session must fail instead (the driver sets lock_timeout), or the driver
# would wait forever.
#
#   oracle_count($node, $db, $tview, $view)  -- number of differing rows:
#       (TVIEW EXCEPT ALL view) plus (view EXCEPT ALL TVIEW)
#   oracle_rows($node, $db, $tview, $view [, $limit])  -- those rows
package PgTviews::Differential;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(oracle_count oracle_rows);

# Rows that differ between a TVIEW and the query that defines it.
sub oracle_sql
{
	my ($a, $b) = @_;
	return "(TABLE $a EXCEPT ALL TABLE $b) UNION ALL (TABLE $b EXCEPT ALL TABLE $a)";
}

sub oracle_count
{
	my ($node, $db, $tview, $view) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) FROM (" . oracle_sql($tview, $view) . ") d");
}

# The differing rows, marked with the side they are on, ordered by the
# first column (the key, in the TVIEWs of the test).
sub oracle_rows
{
	my ($node, $db, $tview, $view, $limit) = @_;
	$limit //= 40;
	return $node->safe_psql(
		$db, qq{
		SELECT * FROM (
			SELECT 'only in TVIEW' AS side, a.* FROM (TABLE $tview EXCEPT ALL TABLE $view) a
			UNION ALL
			SELECT 'only in view', b.* FROM (TABLE $view EXCEPT ALL TABLE $tview) b) d
		ORDER BY 2, 1
		LIMIT $limit});
}

package PgTviews::Differential::Session;

use strict;
use warnings;

use Carp;
use IPC::Run;

# Seconds a single statement may take before the test dies.
my $statement_timeout = $ENV{PGTV_DIFF_STATEMENT_TIMEOUT} // 180;

sub new
{
	my ($class, $node, $db, $name) = @_;
	my $self = bless {
		name => $name,
		stdin => '',
		stdout => '',
		stderr => '',
		n => 0,
	}, $class;
	$self->{timer} = IPC::Run::timer($statement_timeout);
	local $ENV{PGAPPNAME} = "differential $name";
	$self->{run} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq',
			'-v', 'ON_ERROR_STOP=0',
			'-v', 'VERBOSITY=verbose',
			'-d', $node->connstr($db),
			'-f', '-'
		],
		'<', \$self->{stdin},
		'>', \$self->{stdout},
		'2>', \$self->{stderr},
		$self->{timer});
	my ($out, $err) = $self->query('SELECT 1');
	croak "session $name could not connect: $err" if $out ne '1';
	return $self;
}

# Run one statement (or several; psql runs them in turn).  Returns
# (stdout, stderr, sqlstate of the first error or undef).
sub query
{
	my ($self, $sql) = @_;
	$self->send($sql);
	return $self->collect;
}

# Send a statement without waiting for its result (collect() it later):
# for a statement that blocks until the driver does something elsewhere.
sub send
{
	my ($self, $sql) = @_;
	croak "session $self->{name}: a statement is still pending" if $self->{pending};
	my $n = ++$self->{n};
	$self->{pending} = $sql;
	$self->{banner} = "pgtv_diff_separator_$n";
	$self->{stdout} = '';
	$self->{stderr} = '';
	$self->{stdin} .= "$sql\n;\n\\echo '$self->{banner}'\n\\warn '$self->{banner}'\n";
	$self->{run}->pump_nb;
	return;
}

# Wait for the result of the statement sent last.
sub collect
{
	my ($self) = @_;
	my $sql = $self->{pending};
	my $banner = $self->{banner};
	croak "session $self->{name}: nothing to collect" unless defined $sql;
	$self->{timer}->start($statement_timeout);
	$self->{run}->pump
	  until ($self->{stdout} =~ /^$banner\n/m && $self->{stderr} =~ /^$banner\n/m)
	  || $self->{timer}->is_expired;
	croak "session $self->{name}: statement timed out after ${statement_timeout}s: $sql"
	  if $self->{timer}->is_expired;
	$self->{pending} = undef;

	my $out = $self->{stdout};
	my $err = $self->{stderr};
	$out =~ s/\n?^$banner\n//m;
	$err =~ s/^$banner\n//m;
	my ($sqlstate) = $err =~ /^(?:psql:[^\n]*?)?ERROR:\s+([0-9A-Z]{5}):/m;
	return ($out, $err, $sqlstate);
}

sub quit
{
	my ($self) = @_;
	$self->{stdin} .= "\\q\n";
	$self->{timer}->start($statement_timeout);
	return $self->{run}->finish;
}

1;
