# Large transactions through a walsender (pg_recvlogical):
#
# 1. One transaction of 1,000,000 inserted rows is decoded completely (every
#    row, once) while the walsender's memory stays bounded: the plugin
#    writes change by change and keeps nothing across changes.
#
# 2. A long transaction whose changes are all filtered out (include-tables)
#    does not let wal_sender_timeout fire: the plugin reports progress to
#    the walsender while it skips changes, and the connection survives to
#    deliver the next change of an included table.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node parse_json_lines);
use Test::More;
use Time::HiRes qw(time usleep);

my $NROWS = 1_000_000;
my $MB = 1024;    # /proc/<pid>/status counts kB

my $node = new_node('large_txn');
# logical_decoding_work_mem is pinned (it is the default, 64MB) because the
# memory bounds below are reasoned from it: the reorder buffer keeps up to
# that much of a transaction's changes in memory, then spills to disk.
# The other settings only make a million-row insert quicker than with the
# 1MB of shared_buffers PostgreSQL::Test::Cluster gives streaming nodes.
$node->append_conf('postgresql.conf', q{
logical_decoding_work_mem = 64MB
shared_buffers = 32MB
wal_buffers = 16MB
max_wal_size = 2GB
});
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

sub connstr_app
{
	my ($app) = @_;
	return $node->connstr('postgres') . " application_name=$app";
}

sub recvlogical_ok
{
	my ($app, @args) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'pg_recvlogical', '-d', connstr_app($app), @args ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	ok($ok, "pg_recvlogical @args") or diag($err);
}

# pid of the walsender serving application_name $app, or undef
sub walsender_pid
{
	my ($app) = @_;
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_replication WHERE application_name = '$app'");
	return $pid eq '' ? undef : $pid;
}

# VmRSS, RssAnon and VmHWM (kB) of a process, or undef once it is gone
sub proc_mem
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	my %m;
	while (<$fh>)
	{
		$m{$1} = $2 if /^(VmRSS|RssAnon|VmHWM):\s+(\d+) kB/;
	}
	close $fh;
	return (defined $m{VmRSS} && defined $m{RssAnon}) ? \%m : undef;
}

# =====================================================================
# 1. one transaction of a million rows, decoded in bounded memory
# =====================================================================
$node->safe_psql('postgres', 'CREATE TABLE big (id int)');
recvlogical_ok('pgtv_setup', '--slot', 'large_slot', '--create-slot',
	'--plugin=pg_tviews_decoder');

my $t0 = time;
$node->safe_psql('postgres',
	"INSERT INTO big SELECT g FROM generate_series(1, $NROWS) g");
diag(sprintf 'inserting %d rows in one transaction: %.1fs', $NROWS, time - $t0);
my $endpos = $node->lsn('insert');

# Decode the whole transaction to a file, sampling the walsender's memory
# every 0.2s meanwhile.  Short lines (no xid, lsn, timestamp or types)
# keep the file at about 100MB.
my $out_file = "$tmp/large.out";
my ($rl_out, $rl_err) = ('', '');
$t0 = time;
my $rl = IPC::Run::start(
	[
		'pg_recvlogical', '-d', connstr_app('pgtv_large_txn'),
		'--slot', 'large_slot', '--start', '-f', $out_file,
		"--endpos=$endpos", '--no-loop',
		map { ('-o', $_) }
		  qw(include-xids=false include-lsn=false include-timestamp=false
		  include-types=false)
	],
	'>', \$rl_out, '2>', \$rl_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

my ($ws_pid, @samples);
while ($rl->pumpable)
{
	$ws_pid //= walsender_pid('pgtv_large_txn');
	if (defined $ws_pid)
	{
		my $m = proc_mem($ws_pid);
		push @samples, { %$m, out => (-s $out_file) // 0, t => time - $t0 }
		  if $m;
	}
	usleep(200_000);
	$rl->pump_nb;
}
ok($rl->finish, 'pg_recvlogical decoded up to the end of the transaction')
  or diag("pg_recvlogical stderr: $rl_err");
my $decode_secs = time - $t0;
diag(sprintf 'decoding %d rows through pg_recvlogical: %.1fs, %d memory samples',
	$NROWS, $decode_secs, scalar @samples);

# --- every row, once, in a well-formed line ---
{
	open my $fh, '<', $out_file or die "cannot open $out_file: $!";
	my ($n_ins, $n_begin, $n_commit, $sum, $next_id, $in_order) = (0, 0, 0, 0, 1, 1);
	my @other;
	my @sample_lines;
	while (my $line = <$fh>)
	{
		chomp $line;
		if ($line =~ /^\{"action":"I","schema":"public","table":"big","relid":\d+,"key":\[\],"columns":\[\{"name":"id","value":(\d+)\}\]\}$/)
		{
			$n_ins++;
			$sum += $1;
			$in_order = 0 if $1 != $next_id++;
			push @sample_lines, $line if $n_ins % 50_000 == 1;
		}
		elsif ($line eq '{"action":"B"}') { $n_begin++; }
		elsif ($line eq '{"action":"C"}') { $n_commit++; }
		else { push @other, $line; }
	}
	close $fh;
	is($n_ins, $NROWS, 'one I line per inserted row');
	is($sum, $NROWS * ($NROWS + 1) / 2, 'each id exactly once (sum of ids)');
	ok($in_order, 'rows in insertion order');
	is($n_begin,  1, 'one BEGIN');
	is($n_commit, 1, 'one COMMIT');
	is_deeply(\@other, [], 'no other line') or diag("first: $other[0]");
	# the strict pattern above is the shape; JSON::PP confirms it parses
	my @docs = parse_json_lines(join "\n", @sample_lines);
	is(scalar(@docs), scalar(@sample_lines), 'sampled lines parse as JSON');
	is($docs[0]{columns}[0]{value}, 1, 'first sampled row is id 1');
}

# --- walsender memory ---
# Two phases show in the samples (each run prints its figures with diag):
#  a) reading the transaction's WAL: the reorder buffer holds up to
#     logical_decoding_work_mem (64MB) of changes, then spills them to
#     disk; RssAnon reaches about 100MB at most (allocator overhead on the
#     64MB PostgreSQL accounts), and drops after each spill.
#  b) replaying it at commit, through the plugin, into the output: the
#     reorder buffer restores spilled changes a few thousand at a time, and
#     the plugin resets its memory after every change, so memory is flat.
# A plugin that kept anything per change for the whole transaction (its
# output, or allocations it never freed) would grow in phase b by ~100
# bytes per row at the very least: 100MB for a million rows.  Hence:
#  - from the first output (early in phase b) to the end, RSS grows by less
#    than 16MB (observed: no growth at all; a plugin leaking just its two
#    per-row arrays, ~43 bytes a row, grew by 42MB);
#  - over the whole session the peak RSS (VmHWM, which no sampling gap can
#    miss) exceeds RSS at connection by less than 160MB: room for the
#    reorder buffer's 64MB of changes and its overhead (observed ~95MB),
#    while a million changes held in memory at once would take about 200MB.
cmp_ok(scalar(@samples), '>=', 2, 'walsender memory was sampled');
my ($first_out) = grep { $samples[$_]{out} > 0 } 0 .. $#samples;
ok(defined $first_out, 'samples were taken while output was being written');
SKIP:
{
	skip 'no sample during output', 3 unless defined $first_out;
	my @replay = @samples[ $first_out .. $#samples ];
	cmp_ok(scalar(@replay), '>=', 3,
		'at least 3 samples while the transaction was being written out');
	my $early = $replay[0];
	my ($max_rss, $max_anon) = (0, 0);
	for my $s (@replay)
	{
		$max_rss  = $s->{VmRSS}   if $s->{VmRSS} > $max_rss;
		$max_anon = $s->{RssAnon} if $s->{RssAnon} > $max_anon;
	}
	diag(sprintf 'walsender while writing out: RSS %d -> max %d kB, RssAnon %d -> max %d kB, %d samples',
		$early->{VmRSS}, $max_rss, $early->{RssAnon}, $max_anon, scalar @replay);
	cmp_ok($max_rss - $early->{VmRSS}, '<', 16 * $MB,
		'walsender RSS grows by less than 16MB while the transaction is written out');
	cmp_ok($max_anon - $early->{RssAnon}, '<', 16 * $MB,
		'walsender anonymous memory grows by less than 16MB while the transaction is written out');
}
SKIP:
{
	skip 'no memory sample', 1 unless @samples;
	my $peak = 0;
	for my $s (@samples)
	{
		$peak = $s->{VmHWM} if ($s->{VmHWM} // 0) > $peak;
		$peak = $s->{VmRSS} if $s->{VmRSS} > $peak;
	}
	diag(sprintf 'walsender RSS at connection %d kB, peak %d kB',
		$samples[0]{VmRSS}, $peak);
	cmp_ok($peak - $samples[0]{VmRSS}, '<', 160 * $MB,
		'walsender peak RSS stays within logical_decoding_work_mem and its overhead');
}

recvlogical_ok('pgtv_setup', '--slot', 'large_slot', '--drop-slot');
unlink $out_file;

# =====================================================================
# 2. no replication timeout during a long, filtered-out transaction
# =====================================================================
# pg_recvlogical runs with --status-interval=0: it sends no status updates
# of its own and only answers the walsender's keepalive requests.  A
# walsender busy replaying a transaction sends those only when the plugin
# reports progress (OutputPluginUpdateProgress); without that it would be
# silent for the whole replay, then find no reply for longer than
# wal_sender_timeout and terminate.  (With periodic status updates the
# client's replies would queue up and hide the problem.)
#
# The excluded transaction has 4 million rows: replaying them takes
# several times wal_sender_timeout (2s) on a 2-core machine, so a plugin
# that does not report progress reliably trips the timeout.  (Checked by
# hand with a build whose progress calls were removed: the walsender was
# terminated in every run.  With 1 million rows the replay took about 1s
# and did not always trip it.)
#
# logical_decoding_work_mem is lowered to 4MB for this part.  While it
# reads the transaction, PostgreSQL spills the buffered changes to disk in
# one go, answering no keepalive meanwhile: spilling 64MB at once on a busy
# 2-core machine took long enough to trip a 2s timeout with the real
# plugin, before the plugin saw a single change; spilling 4MB cannot.  It
# also has the whole transaction read back from disk at commit, which makes
# the replay longer, as wanted here.
my $NEXCL = 4_000_000;

$node->safe_psql('postgres', q{
	ALTER SYSTEM SET wal_sender_timeout = '2s';
	ALTER SYSTEM SET logical_decoding_work_mem = '4MB';
	SELECT pg_reload_conf();
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 2 FROM pg_settings
	WHERE (name, setting) IN (('wal_sender_timeout', '2000'),
	                          ('logical_decoding_work_mem', '4096'))})
  or die 'settings not reloaded';

$node->safe_psql('postgres', q{
	CREATE TABLE excl (id int);
	CREATE TABLE incl (id int PRIMARY KEY, v text);
});
recvlogical_ok('pgtv_setup', '--slot', 'timeout_slot', '--create-slot',
	'--plugin=pg_tviews_decoder');

my $log_offset = -s $node->logfile;
my $to_file = "$tmp/timeout.out";
my ($to_out, $to_err) = ('', '');
my $to = IPC::Run::start(
	[
		'pg_recvlogical', '-d', connstr_app('pgtv_timeout'),
		'--slot', 'timeout_slot', '--start', '-f', $to_file,
		'--no-loop', '--status-interval=0', '--fsync-interval=0',
		'-o', 'include-tables=public.incl', '-o', 'include-timestamp=false'
	],
	'>', \$to_out, '2>', \$to_err);

$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_replication
	  WHERE application_name = 'pgtv_timeout' AND state = 'streaming'})
  or die 'pg_recvlogical did not connect';
my $pid_before = walsender_pid('pgtv_timeout');

$t0 = time;
$node->safe_psql('postgres',
	"INSERT INTO excl SELECT g FROM generate_series(1, $NEXCL) g");
diag(sprintf 'inserting %d excluded rows: %.1fs', $NEXCL, time - $t0);
$node->safe_psql('postgres',
	q{INSERT INTO incl VALUES (1, 'after the big transaction')});

# wait for the included change (or for pg_recvlogical to die)
my $got = '';
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$to->pump_nb;
	$got = -e $to_file ? slurp_file($to_file) : '';
	last if $got =~ /"table":"incl"/ && $got =~ /\{"action":"C"/;
	last unless $to->pumpable;
	usleep(100_000);
}
diag(sprintf 'included change received %.1fs after the big insert started',
	time - $t0);

ok($to->pumpable, 'pg_recvlogical is still connected after the long transaction');
is(walsender_pid('pgtv_timeout'), $pid_before,
	'the same walsender serves it (no reconnection)');

# (stopping pg_recvlogical with SIGINT makes PostgreSQL 15's pg_recvlogical
# print an error of its own, so its stderr is judged before that)
my $err_before_stop = $to_err;
$to->signal('INT') if $to->pumpable;
$to->finish;

my @d = parse_json_lines($got);
is(join(' ', map { $_->{action} } @d), 'B I C',
	'only the included change is received; the excluded transaction produces nothing');
is_deeply($d[1]{columns},
	[
		{ name => 'id', type => 'integer', value => 1 },
		{ name => 'v',  type => 'text',    value => 'after the big transaction' }
	],
	'the included row');

my $log = slurp_file($node->logfile, $log_offset);
my @timeouts =
  grep { /terminating walsender process due to replication timeout/ }
  split /\n/, $log;
is_deeply(\@timeouts, [], 'no replication timeout in the server log');
is($err_before_stop, '', 'pg_recvlogical reported nothing while connected');

recvlogical_ok('pgtv_setup', '--slot', 'timeout_slot', '--drop-slot');

$node->stop;
done_testing();
