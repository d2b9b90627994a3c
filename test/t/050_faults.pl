# Fault injection: the TVIEWs equal their definitions after every kind of
# crash, at random moments of a write load.
#
# A node with the test settings and the schema of PgTviews::Workload: three
# base tables (tb_user, tb_post, tb_comment) and five TVIEWs of different
# shapes -- a join with a parent rule (tv_post), a jsonb_agg child
# (tv_post_comments), a parent through another column (tv_comment), an
# aggregate (tv_user_stats) and a TVIEW on a TVIEW (tv_user_feed).
# A pg_recvlogical streams a second slot (plugin pg_tviews_decoder), so
# that a walsender exists.
#
# 1. Trials.  Each trial starts a pgbench write load (custom script:
#    inserts, updates that move rows between keys, deletes, multi-statement
#    transactions) and, after a random delay, injects one fault:
#      engine_kill9      SIGKILL of the engine worker
#      walsender_kill9   SIGKILL of pg_recvlogical's walsender
#      postmaster_kill9  SIGKILL of the postmaster itself; its children
#                        notice and exit, the stale postmaster.pid is
#                        removed (as PostgreSQL's own 017_shm.pl does) and
#                        the node is started again
#      immediate_stop    pg_ctl stop -m immediate, then start
#    A SIGKILL of any backend makes the postmaster reinitialize (crash
#    recovery of the whole server): that is expected.  Half of the trials
#    (at random) write again right after recovery, while the engine
#    replays.  Then, writes stopped, pg_tviews_wait() must return true and
#    every TVIEW must equal its definition (oracle_count == 0 against
#    <tview>_def), with no parked key and no last_error.
#    The kinds are drawn from shuffled rounds of all four, so the default
#    four trials cover each kind once.
# 2. A crash with work queued while the engine is switched off (041 covers
#    a clean restart of a paused engine with nothing queued; 030 a clean
#    restart with work queued): the engine has decoded writes whose refresh
#    is held by a lock on tv_post (so they sit in the shared-memory queue),
#    pg_tviews_system_disable() is called, more writes follow, and the
#    server crashes (immediate stop).  After the start the engine is still
#    paused, the queue is gone with shared memory, and the slot's confirmed
#    position is not past the first queued write; more writes come, then
#    pg_tviews_system_enable() while pgbench writes: everything converges.
# 3. A long-running transaction holds back the slot: a session writes to
#    the base tables and stays open; committed writes meanwhile (pgbench)
#    must reach the TVIEWs (pg_tviews_wait, oracle), also across a
#    restart of the engine (pg_terminate_backend) that makes it decode
#    again from the slot's restart_lsn; then the long transaction commits
#    and its writes must be applied.  What the status tables show during
#    the long transaction is printed (note), not asserted.
#
# Timings are printed as diagnostics, never asserted.
#
# Environment:
#   PGTV_FAULT_SEED    seed to replay (printed at the start): the kinds,
#                      delays, write durations and pgbench seeds of every trial
#   PGTV_FAULT_TRIALS  number of trials (default 4; PGTV_LONG=1: 20;
#                      20 or more is the real soak of this test)
#   PGTV_FAULT_KINDS   comma-separated subset of the kinds above (default all)
#   PGTV_LONG=1        20 trials and a heavier write load
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::Differential qw(oracle_count oracle_rows);
use PgTviews::TestUtil qw(new_node parse_json_lines);
use PgTviews::Workload;
use Test::More;
use Time::HiRes qw(time usleep);

my $long = $ENV{PGTV_LONG} ? 1 : 0;
my $seed = $ENV{PGTV_FAULT_SEED} // (int(time() * 1000) ^ $$) % 2_000_000_000;
my $ntrials = $ENV{PGTV_FAULT_TRIALS} // ($long ? 20 : 4);
die "PGTV_FAULT_SEED must be a non-negative integer\n" unless $seed =~ /^\d+$/;
die "PGTV_FAULT_TRIALS must be a non-negative integer\n" unless $ntrials =~ /^\d+$/;
my @all_kinds = qw(engine_kill9 walsender_kill9 postmaster_kill9 immediate_stop);
my @kinds = $ENV{PGTV_FAULT_KINDS} ? split(/\s*,\s*/, $ENV{PGTV_FAULT_KINDS}) : @all_kinds;
for my $k (@kinds)
{
	die "PGTV_FAULT_KINDS: unknown kind '$k' (known: @all_kinds)\n"
	  unless grep { $_ eq $k } @all_kinds;
}
srand($seed);
my $replay = "PGTV_FAULT_SEED=$seed PGTV_FAULT_TRIALS=$ntrials"
  . ($ENV{PGTV_FAULT_KINDS} ? " PGTV_FAULT_KINDS=$ENV{PGTV_FAULT_KINDS}" : '')
  . ($long ? ' PGTV_LONG=1' : '');
diag "seed $seed; $ntrials fault trials (replay: $replay)";

# pgbench's target rate (both clients together)
my $write_rate = $long ? 800 : 400;
my $db = 'postgres';

sub rint { return int(rand($_[0])); }
sub chance { return rand() < $_[0]; }

sub shuffled
{
	my @a = @_;
	for (my $i = $#a; $i > 0; $i--)
	{
		my $j = rint($i + 1);
		@a[ $i, $j ] = @a[ $j, $i ];
	}
	return @a;
}

# The whole schedule is drawn now, so that a seed replays the same
# trials whatever happens at run time.
my @trials;
{
	my @pool;
	for my $i (1 .. $ntrials)
	{
		@pool = shuffled(@kinds) unless @pool;
		my $duration = 3 + rint(4);    # seconds of writes: 3..6
		push @trials, {
			n => $i,
			kind => shift(@pool),
			duration => $duration,
			delay => 0.4 + rand($duration - 1.2),    # fault this long after the writes start
			after => chance(0.5) ? 1 + rint(3) : 0,  # seconds of writes right after recovery
			pgbench_seed => rint(1_000_000_000),
			pgbench_seed_after => rint(1_000_000_000),
		};
	}
}
my $pgbench_seed_misc = rint(1_000_000_000);

my $t_start = time;

# ---------------------------------------------------------------------
# the node, the schema, the TVIEWs
# ---------------------------------------------------------------------
my $node = new_node('faults');
$node->append_conf('postgresql.conf', q{
pg_tviews.restart_interval = 1
shared_buffers = 64MB
# the default, spelt out: the SIGKILL of any backend makes the postmaster
# reinitialize
restart_after_crash = on
});
$node->start;

my @names = PgTviews::Workload::setup($node, $db);
is($node->safe_psql($db, 'SELECT count(*) FROM tviews.tview'), scalar(@names),
	scalar(@names) . ' TVIEWs created');
note "lineage rules:\n" . $node->safe_psql($db, q{
	SELECT format('  %-17s %-11s %s', tview, source, string_agg(DISTINCT rule, ','))
	FROM tviews.source GROUP BY tview, source ORDER BY 1});

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

sub query { return $node->safe_psql($db, $_[0]); }

# A query that may fail (the server may be down): its output, or '?'.
sub try_query
{
	my ($sql, $timeout) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $rc = eval {
		$node->psql($db, $sql, stdout => \$out, stderr => \$err,
			timeout => $timeout // 60, timed_out => \$timed_out);
	};
	return (defined $rc && $rc == 0 && !$timed_out) ? $out : '?';
}

# pid of this database's engine worker, '' if none (or no connection)
sub engine_pid
{
	my $pid = try_query(q{
		SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'pg_tviews engine' AND datname = current_database()});
	return $pid eq '?' ? '' : $pid;
}

# Wait until an engine other than $old runs: (pid, seconds), or ('', seconds).
sub wait_for_engine
{
	my ($old, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my $pid = engine_pid();
		return ($pid, time - $start)
		  if $pid ne '' && (!defined $old || $pid ne $old);
		usleep(100_000);
	}
	return ('', time - $start);
}

sub wait_for_connections
{
	my $start = time;
	$node->poll_query_until($db, 'SELECT true')
	  or die "the server did not accept connections again";
	return time - $start;
}

# What the status tables say, in one line per table (for the report).
sub status_snapshot
{
	my $workers = try_query(q{
		SELECT format('engine %s pid %s restarts %s queued %s last_error %s',
		              state, coalesce(pid::text, '-'), restarts, queued,
		              coalesce(nullif(last_error, ''), '-'))
		FROM pg_tviews_workers WHERE worker_type = 'engine' AND database = current_database()});
	my $slot = try_query(q{
		SELECT format('slot active %s lag_bytes %s lag_seconds %s restart_lsn %s confirmed %s wal_status %s paused %s',
		              active, lag_bytes, lag_seconds, restart_lsn, confirmed_flush_lsn, wal_status,
		              engine_paused)
		FROM pg_tviews_slots WHERE database = current_database()});
	# (with a lock timeout: pg_tviews_metadata may wait behind a lock on a
	# TVIEW, see part 2)
	my $meta = try_query(q{
		SET lock_timeout = '5s';
		SELECT format('metadata pending %s failed %s max lag_bytes %s states %s errors %s',
		              sum(pending_count), sum(failed_count), max(lag_bytes),
		              string_agg(DISTINCT state, ','), count(last_error))
		FROM pg_tviews_metadata});
	my $health = try_query(q{
		SELECT 'health ' || string_agg(component || '=' || status, ' ' ORDER BY component)
		FROM pg_tviews_health_check()});
	my $health_detail = try_query(q{
		SELECT string_agg(component || ': ' || detail, '; ' ORDER BY component)
		FROM pg_tviews_health_check() WHERE status <> 'ok'});
	return join("\n    ", $workers, $slot, $meta,
		$health . ($health_detail ne '' && $health_detail ne '?' ? " ($health_detail)" : ''));
}

my $script = PgTviews::Workload::pgbench_script();

# Start the writes in the background for $secs seconds.
sub start_writes
{
	my ($secs, $pgseed) = @_;
	return PgTviews::Workload::start_pgbench($node, $db, $script,
		seconds => $secs, rate => $write_rate, seed => $pgseed);
}

sub finish_writes { return PgTviews::Workload::finish_pgbench($_[0]); }

sub write_for
{
	my ($secs, $pgseed) = @_;
	return finish_writes(start_writes($secs, $pgseed));
}

# Waits for the engine and compares every TVIEW with its definition.
my $mismatches = 0;
sub check_converged
{
	my ($label) = @_;
	my $start = time;
	my $caught_up = try_query(q{SELECT pg_tviews_wait('120s')}, 180);
	is($caught_up, 't', "$label: pg_tviews_wait says the engine caught up")
	  or diag("$label (seed $seed): status\n    " . status_snapshot());
	my $secs = time - $start;
	my @bad;
	for my $tv (@names)
	{
		my $n = eval { oracle_count($node, $db, $tv, "${tv}_def") } // "error: $@";
		push @bad, $tv if $n ne '0';
		is($n, '0', "$label: $tv equals its definition")
		  or diag("$label (seed $seed): $tv differs from ${tv}_def:\n"
			  . (eval { oracle_rows($node, $db, $tv, "${tv}_def", 20) } // $@)
			  . "\nqueue entries of $tv:\n"
			  . try_query("SELECT format('  key %s full %s status %s lsn %s attempts %s %s',"
				  . " key, full_refresh, status, source_lsn, attempts, coalesce(error, ''))"
				  . " FROM pg_tviews_queue_entries() WHERE tview = '$tv'::regclass LIMIT 20"));
	}
	$mismatches += @bad;
	is(query(q{
		SELECT coalesce(string_agg(format('%s key %s: %s', tview, key, error), '; '), '')
		FROM tviews.failed_key}), '', "$label: no key is parked");
	is(query(q{
		SELECT coalesce(string_agg(format('%s: %s', tview, last_error), '; '), '')
		FROM tviews.tview WHERE last_error IS NOT NULL}), '', "$label: no TVIEW has a last_error");
	return $secs;
}

# the children of a process (from /proc)
sub children_of
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $d, '/proc') or return ();
	for my $pid (grep { /^\d+$/ } readdir($d))
	{
		open(my $f, '<', "/proc/$pid/stat") or next;
		my $stat = <$f>;
		close $f;
		next unless defined $stat && $stat =~ /.*\)\s+\S\s+(\d+)/s;
		push @kids, $pid if $1 == $ppid;
	}
	closedir($d);
	return @kids;
}

# alive and not a zombie (PID 1 in a container may not reap orphans)
sub alive
{
	my ($pid) = @_;
	open(my $f, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$f>;
	close $f;
	return 0 unless defined $stat && $stat =~ /.*\)\s+(\S)/s;
	return $1 ne 'Z' && $1 ne 'X';
}

sub cmdline
{
	my ($pid) = @_;
	open(my $f, '<', "/proc/$pid/cmdline") or return '?';
	local $/;
	my $c = <$f> // '';
	close $f;
	$c =~ s/\0/ /g;
	return $c;
}

# PostgreSQL's 017_shm.pl poll_start(): start, retrying while the old
# server's processes still hold its shared memory
sub poll_start
{
	for my $attempt (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		return 1 if $node->start(fail_ok => 1);
		usleep(100_000);
		$node->stop('fast', fail_ok => 1);
	}
	return $node->start;
}

# ---------------------------------------------------------------------
# pg_recvlogical on a slot of its own: a walsender to kill
# ---------------------------------------------------------------------
query(q{SELECT 'ok' FROM pg_create_logical_replication_slot('fault_recv', 'pg_tviews_decoder')});
my $recv_file = PostgreSQL::Test::Utils::tempdir() . '/recvlogical.json';
my ($recv_h, $recv_err);

sub start_recvlogical
{
	$recv_err = '';
	$recv_h = IPC::Run::start(
		[
			'pg_recvlogical', '-d', $node->connstr($db), '--slot', 'fault_recv',
			'--start', '-s', '1', '-f', $recv_file,
			'-o', 'include-tables=public.tb_*', '-o', 'include-timestamp=false'
		],
		'<', \undef, '>', \my $out, '2>', \$recv_err);
}

# The pid of the walsender streaming fault_recv, restarting
# pg_recvlogical if it does not come back (it reconnects every 5 s).
sub walsender_pid
{
	for my $round (1 .. 2)
	{
		my $start = time;
		while (time - $start < 20)
		{
			my $pid = try_query(q{
				SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'fault_recv'});
			return $pid if $pid =~ /^\d+$/;
			usleep(200_000);
		}
		diag "pg_recvlogical is not streaming; restarting it (stderr: $recv_err)";
		eval { $recv_h->kill_kill; };
		start_recvlogical();
	}
	return '';
}

start_recvlogical();
isnt(walsender_pid(), '', 'pg_recvlogical streams the slot fault_recv through a walsender');

{
	my ($pid, $secs) = wait_for_engine(undef, 60);
	isnt($pid, '', 'the engine worker runs');
}
check_converged('initial');
note "initial status:\n    " . status_snapshot();

# ---------------------------------------------------------------------
# 1. the trials
# ---------------------------------------------------------------------
my %outcome;
for my $t (@trials)
{
	my $label = "trial $t->{n}/$ntrials ($t->{kind})";
	diag sprintf('%s: fault %.2f s into %d s of writes (pgbench seed %d)%s', $label,
		$t->{delay}, $t->{duration}, $t->{pgbench_seed},
		$t->{after} ? ", then $t->{after} s of writes during the catch-up" : '');

	# the target, found before the writes start
	my $victim = '';
	if ($t->{kind} eq 'walsender_kill9')
	{
		$victim = walsender_pid();
		isnt($victim, '', "$label: a walsender streams fault_recv");
	}
	elsif ($t->{kind} eq 'engine_kill9')
	{
		($victim) = wait_for_engine(undef, 30);
		isnt($victim, '', "$label: the engine runs");
	}
	my $old_engine = engine_pid();
	my $trial_log_start = -s $node->logfile;

	my $w = start_writes($t->{duration}, $t->{pgbench_seed});
	usleep(int($t->{delay} * 1_000_000));
	my $lag_before = try_query(q{
		SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots
		WHERE slot_name = pg_tviews_slot_name()});
	my $t_fault = time;
	my $log_offset = -s $node->logfile;

	if ($t->{kind} eq 'engine_kill9' || $t->{kind} eq 'walsender_kill9')
	{
		# a walsender may have moved on (pg_recvlogical reconnected): take
		# the current one
		$victim = walsender_pid() if $t->{kind} eq 'walsender_kill9';
		$victim = engine_pid() if $t->{kind} eq 'engine_kill9' && !alive($victim);
		ok(kill('KILL', $victim), "$label: SIGKILL sent to pid $victim");
		ok( eval {
				$node->wait_for_log(qr/all server processes terminated; reinitializing/,
					$log_offset);
				1;
			},
			"$label: the postmaster reinitialized (crash recovery)");
		wait_for_connections();
	}
	elsif ($t->{kind} eq 'postmaster_kill9')
	{
		my $pm = $node->{_pid};
		my @kids = children_of($pm);
		$node->kill9;
		# the children notice the postmaster's death and exit; the new
		# postmaster cannot start while any of them holds shared memory
		my $deadline = time + 90;
		my @left = @kids;
		while (@left && time < $deadline)
		{
			usleep(100_000);
			@left = grep { alive($_) } @left;
		}
		is(scalar(@left), 0,
			"$label: every server process exited after the postmaster died (" . scalar(@kids) . ')')
		  or diag("still running:\n" . join("\n", map { "  $_: " . cmdline($_) } @left));
		# The killed postmaster left its postmaster.pid and its socket's
		# lock file; in a container whose init does not reap orphans, a
		# zombie with that pid may linger, which the new postmaster would
		# take for a running one.  Both files are stale: remove them (the
		# data directory's as PostgreSQL's 017_shm.pl does).
		unlink($node->data_dir . '/postmaster.pid');
		my $socket_lock = $node->host . '/.s.PGSQL.' . $node->port . '.lock';
		if (open(my $f, '<', $socket_lock))
		{
			my $owner = <$f>;
			close $f;
			chomp $owner if defined $owner;
			unlink($socket_lock) if defined $owner && $owner eq $pm;
		}
		poll_start();
	}
	else
	{
		$node->stop('immediate');
		$node->start;
	}
	my $t_up = time;
	my $processed = finish_writes($w);
	my $just_after = status_snapshot();

	my $after_w = $t->{after} ? start_writes($t->{after}, $t->{pgbench_seed_after}) : undef;
	my ($new_engine, $secs) = wait_for_engine($t->{kind} eq 'engine_kill9' ? $victim : undef, 60);
	isnt($new_engine, '', "$label: the engine runs again after recovery");
	my $processed_after = $after_w ? finish_writes($after_w) : 0;

	my $wait_secs = check_converged($label);
	diag sprintf('%s: %d transactions before the fault (slot lag then %s bytes), %d after;'
		  . ' server up %.1f s after the fault, engine (pid %s -> %s) %.1f s later,'
		  . ' converged %.1f s after the fault',
		$label, $processed, $lag_before, $processed_after, $t_up - $t_fault,
		$old_engine || '-', $new_engine || '-', $secs, time - $t_fault);
	note "$label: status right after recovery:\n    $just_after\n"
	  . "  after convergence:\n    " . status_snapshot();
	$outcome{ $t->{kind} }{trials}++;

	# a crash we did not cause, during this trial
	my @crashes = grep { /terminated by signal (?!9:)\d+|\bPANIC:|TRAP:/ }
	  split /\n/, slurp_file($node->logfile, $trial_log_start);
	diag "$label (seed $seed): UNEXPECTED CRASH:\n" . join("\n", @crashes) if @crashes;
}
diag 'trials per kind: '
  . join(', ', map { "$_ " . ($outcome{$_}{trials} // 0) } @all_kinds);

# ---------------------------------------------------------------------
# 2. a crash with work queued, while the engine is switched off
# ---------------------------------------------------------------------
{
	my $label = 'queued work, paused, crash';
	# the engine decodes the writes below, queues their keys and blocks
	# refreshing tv_post: the keys stay queued
	my $holder = $node->background_psql($db);
	$holder->query_safe('BEGIN; LOCK TABLE tv_post IN ACCESS EXCLUSIVE MODE;');

	query(q{UPDATE tb_post SET title = title || ' (queued)' WHERE pk_post % 9 = 0});
	my $after_first = query('SELECT pg_current_wal_lsn()');
	query(q{
		INSERT INTO tb_comment SELECT nextval('comment_seq'), p, 'queued comment' FROM generate_series(1, 60) p;
		UPDATE tb_user SET name = name || ' (queued)' WHERE pk_user IN (2, 3);
		UPDATE tb_post SET fk_user = 1 + (pk_post + 3) % 20 WHERE pk_post % 31 = 0 AND pk_post < 900000;
	});
	write_for(1, $pgbench_seed_misc);
	ok( $node->poll_query_until($db, q{
			SELECT count(*) > 0 FROM pg_tviews_queue_entries() WHERE status IN ('pending', 'retrying')}),
		"$label: keys are queued while tv_post is locked");
	note "$label: before pg_tviews_system_disable():\n    " . status_snapshot();
	note "$label: queue by TVIEW: " . query(q{
		SELECT string_agg(tview::text || ' ' || n, ', ' ORDER BY tview::text)
		FROM (SELECT tview, count(*) AS n FROM pg_tviews_queue_entries()
		      WHERE status IN ('pending', 'retrying') GROUP BY tview) q});
	# The status tables are what a DBA reads when something is stuck: they
	# must answer, not wait behind the lock on tv_post.  (A lock timeout
	# turns a wait into an error: this asserts no wait, not a duration.)
	for my $table (qw(pg_tviews_metadata pg_tviews_queue pg_tviews_workers pg_tviews_slots
		pg_tviews_dependencies))
	{
		my ($rc, $out, $err) = $node->psql($db,
			"SET lock_timeout = '10s'; SELECT count(*) FROM $table");
		is($rc, 0, "$label: $table answers while a TVIEW is locked")
		  or diag("$table: $err\n(it waited for the ACCESS EXCLUSIVE lock on tv_post: e.g."
			  . " pg_get_viewdef() of a backing view takes ACCESS SHARE locks on the relations"
			  . " the view reads, here tv_post through tv_user_feed_def)");
	}
	{
		my ($rc, $out, $err) = $node->psql($db,
			"SET lock_timeout = '10s'; SELECT count(*) FROM pg_tviews_health_check()");
		is($rc, 0, "$label: pg_tviews_health_check() answers while a TVIEW is locked")
		  or diag($err);
	}
	like(query(q{SELECT pg_tviews_system_disable('tap 050: crash with work queued')}),
		qr/disabled/, "$label: pg_tviews_system_disable()");
	query(q{
		UPDATE tb_post SET score = score + 100 WHERE pk_post % 13 = 0;
		DELETE FROM tb_comment WHERE pk_comment % 97 = 0;
	});
	write_for(1, $pgbench_seed_misc + 1);
	note "$label: paused, with the queue, before the crash:\n    " . status_snapshot();

	$node->stop('immediate');
	eval { $holder->quit; };
	$node->start;

	ok( $node->poll_query_until($db, q{
			SELECT state FROM pg_tviews_workers
			WHERE worker_type = 'engine' AND database = current_database()}, 'paused'),
		"$label: after the crash the engine is still paused");
	my $confirmed = query(q{
		SELECT confirmed_flush_lsn FROM pg_tviews_slots WHERE database = current_database()});
	is(query(qq{SELECT '$confirmed'::pg_lsn < '$after_first'::pg_lsn}), 't',
		"$label: the slot's confirmed position ($confirmed) is not past the first queued write ($after_first)");
	is(query(q{SELECT pg_tviews_wait('1s')}), 'f', "$label: pg_tviews_wait times out while paused");
	note "$label: after the crash, paused:\n    " . status_snapshot();

	write_for(1, $pgbench_seed_misc + 2);
	my $w = start_writes(3, $pgbench_seed_misc + 3);
	usleep(800_000);
	like(query(q{SELECT pg_tviews_system_enable()}), qr/enabled/,
		"$label: pg_tviews_system_enable() while writes go on");
	finish_writes($w);
	check_converged($label);
	is(query(q{SELECT count(*) FROM tv_post WHERE title LIKE '%(queued)'}),
		query(q{SELECT count(*) FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user
		        WHERE p.title LIKE '%(queued)'}),
		"$label: the queued title changes reached tv_post");
	note "$label: converged:\n    " . status_snapshot();
}

# ---------------------------------------------------------------------
# 3. a long-running transaction holding back the slot
# ---------------------------------------------------------------------
{
	my $label = 'long transaction';
	my $slot_sql = q{
		SELECT format('restart_lsn %s confirmed_flush_lsn %s lag_bytes %s active_pid %s',
		              restart_lsn, confirmed_flush_lsn, lag_bytes, active_pid)
		FROM pg_tviews_slots WHERE database = current_database()};
	note "$label: before: " . query($slot_sql);

	my $long_txn = $node->background_psql($db);
	my $lsn_begin = query('SELECT pg_current_wal_lsn()');
	$long_txn->query_safe(q{
		BEGIN;
		UPDATE tb_post SET title = 'long txn ' || pk_post, score = 1000 WHERE pk_post > 900000;
		INSERT INTO tb_comment SELECT 5000000 + p, p, 'long txn comment' FROM generate_series(1, 50) p;
		UPDATE tb_user SET name = 'long txn user' WHERE pk_user = 999;
		INSERT INTO tb_post VALUES (5000001, 7, 'long txn post', 5);
	});
	my $xid = $long_txn->query_safe('SELECT pg_current_xact_id()');
	note "$label: transaction $xid open since $lsn_begin";

	write_for(3, $pgbench_seed_misc + 4);
	query(q{UPDATE tb_user SET name = 'committed meanwhile' WHERE pk_user = 5});
	check_converged("$label, open");
	is(query(q{SELECT name FROM tv_user_feed WHERE pk_user = 5}), 'committed meanwhile',
		"$label, open: a write committed meanwhile is in the TVIEWs");
	is(query(q{SELECT count(*) FROM tv_post WHERE title LIKE 'long txn%'}), '0',
		"$label, open: nothing of the open transaction is in the TVIEWs");
	note "$label, open: " . query($slot_sql)
	  . "\n  restart_lsn still before the transaction's start: "
	  . query(qq{SELECT restart_lsn <= '$lsn_begin'::pg_lsn FROM pg_tviews_slots WHERE database = current_database()})
	  . "\n  pg_replication_slots: " . query(q{
		SELECT format('%s restart_lsn %s confirmed_flush_lsn %s', slot_name, restart_lsn, confirmed_flush_lsn)
		FROM pg_replication_slots WHERE slot_name = pg_tviews_slot_name()})
	  . "\n  status:\n    " . status_snapshot();

	# a new engine decodes again from the slot's restart_lsn, before the
	# open transaction's first change
	my $old = engine_pid();
	is(query("SELECT pg_terminate_backend($old)"), 't',
		"$label, open: pg_terminate_backend() of the engine");
	my ($new) = wait_for_engine($old, 60);
	isnt($new, '', "$label, open: a new engine runs");
	write_for(2, $pgbench_seed_misc + 5);
	check_converged("$label, open, after an engine restart");
	note "$label, open, after an engine restart: " . query($slot_sql)
	  . "\n  status:\n    " . status_snapshot();

	my $w = start_writes(3, $pgbench_seed_misc + 6);
	usleep(1_000_000);
	$long_txn->query_safe('COMMIT');
	$long_txn->quit;
	finish_writes($w);
	check_converged("$label, committed");
	is(query(q{SELECT count(*) FROM tv_post WHERE title LIKE 'long txn%' AND score = 1000}), '10',
		"$label, committed: its post updates are in tv_post");
	is(query(q{SELECT count(*) FROM tv_comment WHERE body = 'long txn comment'}),
		query(q{SELECT count(*) FROM tb_comment c JOIN tb_post p ON p.pk_post = c.fk_post
		        WHERE c.body = 'long txn comment'}),
		"$label, committed: its comments are in tv_comment");
	is(query(q{SELECT name FROM tv_user_feed WHERE pk_user = 999}), 'long txn user',
		"$label, committed: its user update is in tv_user_feed");
	note "$label, committed: " . query($slot_sql)
	  . "\n  restart_lsn moved past the transaction's start: "
	  . query(qq{SELECT restart_lsn > '$lsn_begin'::pg_lsn FROM pg_tviews_slots WHERE database = current_database()});
}

# ---------------------------------------------------------------------
# the end: the decoder's stream, the server log
# ---------------------------------------------------------------------
eval { $recv_h->signal('TERM'); $recv_h->finish; };
eval { $recv_h->kill_kill; } if $@;
{
	# every line one JSON object; a sample of them (the whole file is tens
	# of MB in long runs, too much for JSON::PP) parsed as JSON
	my @lines = -e $recv_file ? split(/\n/, slurp_file($recv_file)) : ();
	my @torn = grep { !/^\{.*\}$/ } @lines;
	is(scalar(@torn), 0, "every line pg_recvlogical wrote across the crashes is one object ("
		  . scalar(@lines) . ' lines)')
	  or diag(join("\n", map { substr($_, 0, 200) } @torn[ 0 .. ($#torn < 5 ? $#torn : 4) ]));
	my $step = @lines > 5000 ? int(@lines / 5000) : 1;
	my @sample = @lines[ grep { $_ % $step == 0 } 0 .. $#lines ];
	my @docs = eval { parse_json_lines(join("\n", @sample)) };
	is($@, '', 'a sample of ' . scalar(@sample) . ' of those lines is valid JSON');
}
query(q{SELECT pg_drop_replication_slot('fault_recv')});

# Crashes we did not cause: a process ending on a signal other than our
# SIGKILLs, a PANIC, an assertion failure; and the background workers'
# errors (log lines without an application name), beyond the ones a
# crash restart produces.
{
	my $log = slurp_file($node->logfile);
	my @crashes = grep {
		/\bPANIC:|TRAP:|terminated by signal (?!9:)\d+|was terminated by exception/
	} split /\n/, $log;
	is(scalar(@crashes), 0, 'no crash other than the injected ones in the server log')
	  or diag(join("\n", @crashes[ 0 .. ($#crashes < 20 ? $#crashes : 19) ]));
	my @bg = grep {
		!/terminating connection because of crash of another server process/
		  && !/terminating connection due to (unexpected postmaster exit|administrator command)/
		  && !/terminating background worker .* due to administrator command/
	} ($log =~ /^\S+ \S+ \S+ \[\d+\] ((?:ERROR|WARNING|FATAL|PANIC):\s+.*)$/mg);
	is(scalar(@bg), 0, 'no unexpected error or warning from the background workers')
	  or diag(join("\n", @bg[ 0 .. ($#bg < 20 ? $#bg : 19) ]));
}

diag sprintf('seed %d: %d trials, %d TVIEW mismatches; run time %.1f s (replay: %s)',
	$seed, $ntrials, $mismatches, time - $t_start, $replay);

$node->stop;
done_testing();
