# Soak: a steady write load for a while; the engine keeps up, its memory
# does not grow, and at the end every TVIEW equals its definition.
#
# A node with the test settings and the schema of PgTviews::Workload (three
# base tables, five TVIEWs: a join, a jsonb_agg child, a parent through
# another column, an aggregate, a TVIEW on a TVIEW), in its steady variant:
# every key in a fixed range, the tables at their equilibrium size, so that
# the engine's work per second does not drift.  pgbench writes at a fixed
# rate (--rate) for PGTV_SOAK_SECONDS; every PGTV_SOAK_SAMPLE seconds the
# test samples
#   - the engine worker's memory: VmRSS and RssAnon (/proc/<pid>/status),
#     Private_Dirty (/proc/<pid>/smaps_rollup), and the private dirty
#     memory outside shared memory (/proc/<pid>/smaps without the main
#     shared memory segment, SysV and /dev/shm segments): a page of shared
#     buffers that only the engine has touched counts as Private_Dirty,
#     so smaps_rollup's figure grows with the TVIEWs' pages in
#     shared_buffers; the figure without shared memory is the engine's
#     own (heap) memory, the one a leak makes grow;
#   - the lag: pg_tviews_slots.lag_bytes and lag_seconds,
#     pg_tviews_workers.queued, sum(pg_tviews_metadata.pending_count),
#     and the WAL the slot keeps (current position - restart_lsn).
# Every sample is printed (note); a summary with diag.
#
# Asserted (never a timing):
#   - at the end, pg_tviews_wait() returns true (generous timeout) and
#     every TVIEW equals its definition (oracle_count == 0), no parked
#     key, no last_error;
#   - the engine was not restarted during the soak (same pid, same
#     restart counter) and the server log has no crash;
#   - the queue never held more entries than its capacity
#     (pg_tviews.queue_size);
#   - the slot's restart_lsn moved on during the soak (the slot does not
#     keep WAL forever; two CHECKPOINTs during the run and one at the end
#     make sure running_xacts records, from which logical decoding moves
#     it, are there even in a short run);
#   - the engine's private memory (outside shared memory) grew by less
#     than 64 MB between the first sample after the warm-up (a quarter of
#     the run, at least 10 s) and the last one;
#   - in runs of 5 minutes or more (PGTV_LONG=1): the least-squares slope
#     of that memory over the second half of the run is below 2 MB/min --
#     a leak of 100 bytes per written row at this rate is above it, the
#     caches' warm-up is over by then.
#
# Long mode (PGTV_LONG=1) then replays, one after the other, the seeds of
# the randomized differential driver (test/t/020_differential.pl) that
# found a mismatch before the TOAST/HOT fix, with the parameters they ran
# with (4 to 7 minutes each on two cores: the long mode takes 30 to 40
# minutes in all); each must pass.  Their logs are moved to
# tmp_check/log/060_soak_diff_<seed>_*.  By hand, one of them:
#   PGTV_DIFF_SEED=1912843791 PGTV_DIFF_TXNS=20000 PGTV_DIFF_CHECK_EVERY=500 \
#   PGTV_DIFF_SESSIONS=3 PGTV_DIFF_TOAST_RATE=0.2 \
#   PGTV_TAP_TESTS=test/t/020_differential.pl scripts/test.sh tap
#
# Environment:
#   PGTV_SOAK_SECONDS     duration of the writes (default 40; PGTV_LONG=1: 600)
#   PGTV_SOAK_RATE        pgbench's target rate, transactions per second
#                         (default 300)
#   PGTV_SOAK_SAMPLE      seconds between samples (default 4; long: 10)
#   PGTV_SOAK_DIFF_SEEDS  differential seeds to replay, comma-separated
#                         (default in long mode: the four above; "none": none);
#                         seeds not in the table below run with 020's defaults
#   PGTV_LONG=1           the long versions
use strict;
use warnings;

use IPC::Run;
use File::Basename qw(basename);
use File::Copy qw(move);
use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::Differential qw(oracle_count oracle_rows);
use PgTviews::TestUtil qw(new_node);
use PgTviews::Workload;
use Test::More;
use Time::HiRes qw(time usleep);

my $long = $ENV{PGTV_LONG} ? 1 : 0;
my $soak_seconds = $ENV{PGTV_SOAK_SECONDS} // ($long ? 600 : 40);
my $rate = $ENV{PGTV_SOAK_RATE} // 300;
my $sample_every = $ENV{PGTV_SOAK_SAMPLE} // ($long ? 10 : 4);
for ([ PGTV_SOAK_SECONDS => $soak_seconds ], [ PGTV_SOAK_RATE => $rate ],
	[ PGTV_SOAK_SAMPLE => $sample_every ])
{
	die "$_->[0] must be a positive integer\n" unless $_->[1] =~ /^\d+$/ && $_->[1] > 0;
}
my $warmup = $soak_seconds / 4 > 10 ? $soak_seconds / 4 : 10;
my $max_growth_mb = 64;
my $max_slope_mb_per_min = 2;
my $slope_from_seconds = 300;    # runs this long get the slope check

# the differential seeds of the long mode, with the parameters they ran with
my %diff_params = (
	1912843791 => { TXNS => 20000, CHECK_EVERY => 500, SESSIONS => 3, TOAST_RATE => 0.2 },
	1913383556 => { TXNS => 20000, CHECK_EVERY => 500, SESSIONS => 3, TOAST_RATE => 0.2 },
	1914555882 => { TXNS => 20000, CHECK_EVERY => 500, SESSIONS => 3, TOAST_RATE => 0.2 },
	1914036515 => { TXNS => 20000, CHECK_EVERY => 500, SESSIONS => 1, TOAST_RATE => 0.2 },
);
my @diff_seeds =
  defined $ENV{PGTV_SOAK_DIFF_SEEDS}
  ? ($ENV{PGTV_SOAK_DIFF_SEEDS} eq 'none' ? () : split(/\s*,\s*/, $ENV{PGTV_SOAK_DIFF_SEEDS}))
  : ($long ? (1912843791, 1913383556, 1914555882, 1914036515) : ());
for (@diff_seeds) { die "PGTV_SOAK_DIFF_SEEDS: '$_' is not a seed\n" unless /^\d+$/; }

diag "soak: ${soak_seconds} s of writes at $rate transactions/s, a sample every ${sample_every} s"
  . (@diff_seeds ? "; then differential replays of seeds @diff_seeds" : '');

my $db = 'postgres';
my $node = new_node('soak');
$node->append_conf('postgresql.conf', q{
shared_buffers = 64MB
# the TAP default (log_statement = all) would log every write
log_statement = none
});
$node->start;

my @names = PgTviews::Workload::setup($node, $db, steady => 1);
my $script = PgTviews::Workload::pgbench_script(steady => 1);

sub query { return $node->safe_psql($db, $_[0]); }

# ---------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------

# kB figures from /proc/<pid>/status and /proc/<pid>/smaps(_rollup);
# undef where unreadable
sub memory_of
{
	my ($pid) = @_;
	my %m;
	if (open(my $f, '<', "/proc/$pid/status"))
	{
		while (<$f>)
		{
			$m{$1} = $2 if /^(VmRSS|RssAnon|RssShmem):\s+(\d+) kB/;
		}
		close $f;
	}
	if (open(my $f, '<', "/proc/$pid/smaps_rollup"))
	{
		while (<$f>)
		{
			$m{Private_Dirty} = $1 if /^Private_Dirty:\s+(\d+) kB/;
		}
		close $f;
	}
	if (open(my $f, '<', "/proc/$pid/smaps"))
	{
		my ($shared_mapping, $own) = (0, 0);
		while (<$f>)
		{
			if (/^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/)
			{
				my $path = $1;
				# the main segment (an anonymous shared mapping shows as
				# /dev/zero), SysV segments, POSIX DSM segments, huge pages
				$shared_mapping = $path =~ m{^/dev/zero|^/SYSV|^/dev/shm/|anon_hugepage} ? 1 : 0;
			}
			elsif (/^Private_Dirty:\s+(\d+) kB/)
			{
				$own += $1 unless $shared_mapping;
			}
		}
		close $f;
		$m{Own_Private_Dirty} = $own;
	}
	return \%m;
}

sub engine_row
{
	my $row = query(q{
		SELECT pid, restarts, queued FROM pg_tviews_workers
		WHERE worker_type = 'engine' AND database = current_database()});
	my ($pid, $restarts, $queued) = split /\|/, $row;
	return ($pid // '', $restarts // '', $queued // 0);
}

sub lag_row
{
	my $row = query(q{
		SELECT s.lag_bytes, s.lag_seconds,
		       (SELECT coalesce(sum(pending_count), 0) FROM pg_tviews_metadata),
		       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, s.restart_lsn
		FROM pg_tviews_slots s WHERE s.database = current_database()});
	return split /\|/, $row;
}

sub mb { return defined $_[0] ? sprintf('%.1f', $_[0] / 1024) : '?'; }

# ---------------------------------------------------------------------
# the soak
# ---------------------------------------------------------------------
ok($node->poll_query_until($db, q{
	SELECT pid IS NOT NULL FROM pg_tviews_workers
	WHERE worker_type = 'engine' AND database = current_database()}),
	'the engine runs');
is(query(q{SELECT pg_tviews_wait('60s')}), 't', 'initially, the engine has caught up');
my $capacity = query('SHOW pg_tviews.queue_size');
my ($pid0, $restarts0) = engine_row();
diag "engine pid $pid0, queue capacity $capacity entries";

my $t0 = time;
my $w = PgTviews::Workload::start_pgbench($node, $db, $script,
	seconds => $soak_seconds, rate => $rate, seed => 1 + int(rand(1_000_000_000)));
my @samples;
my ($max_queued, $max_pending, $max_lag_bytes, $max_lag_seconds, $max_retained) = (0, 0, 0, 0, 0);
my @checkpoints;
my $restart_lsn0 = query(q{SELECT restart_lsn FROM pg_tviews_slots WHERE database = current_database()});
my $next = $t0 + 1;    # a first sample right after the start
while ($w->{h}->pumpable || time < $t0 + $soak_seconds)
{
	my $now = time;
	if ($now < $next)
	{
		usleep(int(1_000_000 * ($next - $now > 0.5 ? 0.5 : $next - $now)));
		$w->{h}->pump_nb if $w->{h}->pumpable;
		next;
	}
	$next += $sample_every;
	last if $now > $t0 + $soak_seconds + 60;    # pgbench overran: stop sampling
	# two checkpoints during the run: each logs a running_xacts record,
	# from which logical decoding moves the slot's restart_lsn on (the
	# bgwriter logs one every 15 s too, not enough in a short run)
	if (@checkpoints < 2 && $now - $t0 >= $soak_seconds * (@checkpoints + 1) / 3)
	{
		query('CHECKPOINT');
		push @checkpoints, $now - $t0;
	}
	my ($pid, $restarts, $queued) = engine_row();
	my ($lag_bytes, $lag_seconds, $pending, $retained, $restart_lsn) = lag_row();
	my $m = $pid ne '' ? memory_of($pid) : {};
	my $s = {
		t => $now - $t0, pid => $pid, restarts => $restarts, queued => $queued,
		lag_bytes => $lag_bytes, lag_seconds => $lag_seconds, pending => $pending,
		retained => $retained, restart_lsn => $restart_lsn, %$m
	};
	push @samples, $s;
	$max_queued = $queued if $queued > $max_queued;
	$max_pending = $pending if $pending > $max_pending;
	$max_lag_bytes = $lag_bytes if $lag_bytes > $max_lag_bytes;
	$max_lag_seconds = $lag_seconds if $lag_seconds > $max_lag_seconds;
	$max_retained = $retained if defined $retained && $retained > $max_retained;
	note sprintf(
		'%6.1f s: engine %s RSS %s MB, anon %s MB, shmem %s MB, Private_Dirty %s MB (own %s MB);'
		  . ' lag %s bytes, %s s; queued %s, pending %s; WAL kept by the slot %s MB',
		$s->{t}, $pid, mb($m->{VmRSS}), mb($m->{RssAnon}), mb($m->{RssShmem}),
		mb($m->{Private_Dirty}), mb($m->{Own_Private_Dirty}), $lag_bytes, $lag_seconds,
		$queued, $pending, mb(defined $retained ? $retained / 1024 : undef));
}
my $processed = PgTviews::Workload::finish_pgbench($w);
my $t_writes = time - $t0;
diag sprintf('pgbench: %d transactions in %.0f s (%.0f/s)', $processed, $t_writes,
	$processed / ($t_writes || 1));
cmp_ok($processed, '>', 0, 'pgbench wrote');

# ---------------------------------------------------------------------
# the end: caught up, equal, no restart
# ---------------------------------------------------------------------
{
	my $start = time;
	is(query(q{SELECT pg_tviews_wait('300s')}), 't',
		'after the writes, pg_tviews_wait says the engine caught up');
	diag sprintf('caught up %.1f s after the writes ended', time - $start);
}
for my $tv (@names)
{
	my $n = oracle_count($node, $db, $tv, "${tv}_def");
	is($n, '0', "$tv equals its definition")
	  or diag(oracle_rows($node, $db, $tv, "${tv}_def", 20));
}
is(query(q{SELECT count(*) FROM tviews.failed_key}), '0', 'no key is parked');
is(query(q{SELECT coalesce(string_agg(format('%s: %s', tview, last_error), '; '), '')
	FROM tviews.tview WHERE last_error IS NOT NULL}), '', 'no TVIEW has a last_error');
{
	my ($pid, $restarts) = engine_row();
	is("$pid/$restarts", "$pid0/$restarts0", 'the engine was not restarted during the soak (pid/restarts)');
	my @other = grep { $_->{pid} ne $pid0 } @samples;
	is(scalar(@other), 0, 'every sample saw the same engine');
}
cmp_ok($max_queued, '<=', $capacity,
	"the queue never held more than its capacity (max $max_queued of $capacity)");
diag "lag: max $max_lag_bytes bytes, max $max_lag_seconds s; queued max $max_queued, pending max $max_pending;"
  . sprintf(' WAL kept by the slot: max %s MB', mb($max_retained / 1024));
# The slot must not keep WAL forever: its restart_lsn moves on.  One more
# running_xacts record (a checkpoint) and a write the engine confirms past
# it, then look.
query('CHECKPOINT');
query('UPDATE tb_user SET name = name WHERE pk_user = 1');
is(query(q{SELECT pg_tviews_wait('60s')}), 't', 'the engine caught up after a last checkpoint');
{
	my $now = query(q{SELECT format('%s (%s MB behind the current position)', restart_lsn,
		round(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) / 1048576.0, 1))
		FROM pg_tviews_slots WHERE database = current_database()});
	diag "slot restart_lsn: $restart_lsn0 at the start, now $now; checkpoints at "
	  . join(', ', map { sprintf('%.0f s', $_) } @checkpoints);
	is(query(qq{SELECT restart_lsn > '$restart_lsn0'::pg_lsn FROM pg_tviews_slots
		WHERE database = current_database()}), 't',
		"the slot's restart_lsn moved on during the soak");
}
{
	my @crashes = grep { /terminated by signal|\bPANIC:|TRAP:/ } split /\n/, slurp_file($node->logfile);
	is(scalar(@crashes), 0, 'no crash in the server log') or diag(join("\n", @crashes));
}

# ---------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------
{
	my @mem = grep { defined $_->{Own_Private_Dirty} && $_->{pid} eq $pid0 } @samples;
	my ($base) = grep { $_->{t} >= $warmup } @mem;
	my $last = $mem[-1];
	ok(defined $base && defined $last && $last != $base,
		"memory samples after the warm-up of ${warmup} s (" . scalar(@mem) . ' samples in all)')
	  or diag('samples: ' . join(', ', map { sprintf('%.0f s', $_->{t}) } @mem));
	if (defined $base && defined $last)
	{
		my $growth = $last->{Own_Private_Dirty} - $base->{Own_Private_Dirty};
		diag sprintf(
			'engine memory from %.0f s to %.0f s: own private dirty %s -> %s MB (%+.1f MB),'
			  . ' Private_Dirty %s -> %s MB, RSS %s -> %s MB, anon %s -> %s MB',
			$base->{t}, $last->{t}, mb($base->{Own_Private_Dirty}), mb($last->{Own_Private_Dirty}),
			$growth / 1024, mb($base->{Private_Dirty}), mb($last->{Private_Dirty}),
			mb($base->{VmRSS}), mb($last->{VmRSS}), mb($base->{RssAnon}), mb($last->{RssAnon}));
		cmp_ok($growth / 1024, '<', $max_growth_mb,
			"the engine's private memory grew by less than $max_growth_mb MB after the warm-up");

		# least-squares slope over the second half
		my @half = grep { $_->{t} >= $t_writes / 2 } @mem;
		if (@half >= 3)
		{
			my $n = @half;
			my ($sx, $sy, $sxx, $sxy) = (0, 0, 0, 0);
			for (@half)
			{
				my ($x, $y) = ($_->{t} / 60, $_->{Own_Private_Dirty} / 1024);
				$sx += $x; $sy += $y; $sxx += $x * $x; $sxy += $x * $y;
			}
			my $den = $n * $sxx - $sx * $sx;
			my $slope = $den ? ($n * $sxy - $sx * $sy) / $den : 0;
			diag sprintf('own private dirty memory over the second half (%d samples): %+.2f MB/min',
				$n, $slope);
			if ($soak_seconds >= $slope_from_seconds)
			{
				cmp_ok($slope, '<', $max_slope_mb_per_min,
					"no steady growth of the engine's private memory over the second half"
					  . " (< $max_slope_mb_per_min MB/min)");
			}
		}
	}
}
$node->stop;

# ---------------------------------------------------------------------
# long mode: the differential driver's seeds
# ---------------------------------------------------------------------
for my $seed (@diff_seeds)
{
	my $p = $diff_params{$seed} // {};
	my $script020 = "$ENV{PGTV_REPO}/test/t/020_differential.pl";
	local %ENV = %ENV;
	delete $ENV{$_} for grep { /^PGTV_DIFF_/ } keys %ENV;
	delete $ENV{PGTV_LONG};
	$ENV{PGTV_DIFF_SEED} = $seed;
	$ENV{"PGTV_DIFF_$_"} = $p->{$_} for keys %$p;
	my $replay = join(' ', map { "$_=$ENV{$_}" } sort grep { /^PGTV_DIFF_/ } keys %ENV);
	diag "differential replay: $replay";
	# a data directory a failed replay left behind would stop the next one
	rmtree("$PostgreSQL::Test::Utils::tmp_check/t_020_differential_differential_data");
	my ($out, $err) = ('', '');
	my $start = time;
	my $ok = IPC::Run::run([ $^X, (map { "-I$_" } grep { !ref } @INC), $script020 ],
		'<', \undef, '>', \$out, '2>', \$err);
	my @failed = grep { /^not ok/ } split /\n/, $out;
	my @diags = grep { /MISMATCH|Failed test|totals \(seed|run time/ } split /\n/, $err;
	ok($ok && !@failed && $out =~ /^1\.\.\d+$/m,
		sprintf('020_differential.pl passes with seed %d (%.0f s)', $seed, time - $start))
	  or diag("replay: $replay\n" . join("\n", @failed, @diags[ 0 .. ($#diags < 30 ? $#diags : 29) ]));
	note join("\n", @diags);
	# its logs under names of their own: the next replay would append to
	# the server log (and find this one's shutdown in it) and overwrite
	# the others
	for my $f (glob("$PostgreSQL::Test::Utils::log_path/020_differential*"),
		glob("$PostgreSQL::Test::Utils::log_path/regress_log_020_differential"))
	{
		move($f, "$PostgreSQL::Test::Utils::log_path/060_soak_diff_${seed}_" . basename($f));
	}
}

done_testing();
