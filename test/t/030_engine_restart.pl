# The engine survives being stopped in every way, and loses no change.
#
# A node with the test settings, three base tables (tb_user, tb_post,
# tb_comment) and two TVIEWs:
#   tv_post  a join (post + author name, a parent rule) with the post's
#            comments as a jsonb_agg (a child rule);
#   tv_user  each user's posts, each with its comments: nested jsonb_agg
#            (tb_post is a child; tb_comment, two levels down, refreshes
#            tv_user whole).
# A pgbench script writes to all three tables (inserts, updates that move
# rows between keys, deletes, multi-statement transactions).  While it
# runs, the engine worker is
#   (a) terminated (pg_terminate_backend),
#   (b) cancelled (pg_cancel_backend),
#   (c) killed with SIGKILL, which makes the postmaster restart every
#       backend (crash recovery),
# then (d) the whole server is stopped in immediate mode (a crash) and
# started again, and (e) it is restarted cleanly while changes are known
# to be pending (the engine is held back by a lock on a TVIEW).
# Each time the engine must come back (a new pid in pg_stat_activity) and,
# once pg_tviews_wait() says it caught up, both TVIEWs must equal their
# definitions exactly: row counts, and EXCEPT ALL both ways empty.
# Restart and catch-up times are printed as diagnostics, never asserted.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use Test::More;
use Time::HiRes qw(time usleep);

# how long the engine may take to show up again after it stopped
my $engine_back_within = 10;

# pgbench's target rate of write transactions per second (both clients);
# PGTV_LONG=1 writes three times as fast
my $write_rate = $ENV{PGTV_LONG} ? 3000 : 1000;

my $node = new_node('engine_restart');
$node->append_conf('postgresql.conf', q{
pg_tviews.restart_interval = 1
shared_buffers = 64MB
# the default, spelt out: an abnormal exit of any backend (the SIGKILLed
# engine) makes the postmaster reinitialize
restart_after_crash = on
});
$node->start;

my %definition = (
	tv_post => q{
		SELECT p.pk_post, p.fk_user, p.title, p.score, u.name AS author,
		       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.pk_comment, 'body', c.body)
		                                  ORDER BY c.pk_comment), '[]'::jsonb)
		          FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
		FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user},
	tv_user => q{
		SELECT u.pk_user, u.name,
		       (SELECT coalesce(jsonb_agg(jsonb_build_object(
		                 'id', p.pk_post, 'title', p.title,
		                 'comments', (SELECT coalesce(jsonb_agg(c.body ORDER BY c.pk_comment), '[]'::jsonb)
		                                FROM tb_comment c WHERE c.fk_post = p.pk_post))
		               ORDER BY p.pk_post), '[]'::jsonb)
		          FROM tb_post p WHERE p.fk_user = u.pk_user) AS posts
		FROM tb_user u},
);

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_tviews;
	CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text NOT NULL);
	CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL,
	                      title text NOT NULL, score int NOT NULL DEFAULT 0);
	CREATE TABLE tb_comment (pk_comment int PRIMARY KEY, fk_post int NOT NULL,
	                         body text NOT NULL);
	CREATE INDEX ON tb_post (fk_user);
	CREATE INDEX ON tb_comment (fk_post);
	CREATE SEQUENCE post_seq START 1001;
	CREATE SEQUENCE comment_seq START 100001;
	INSERT INTO tb_user SELECT i, 'user ' || i FROM generate_series(1, 20) i;
	INSERT INTO tb_post SELECT i, 1 + i % 20, 'post ' || i FROM generate_series(1, 400) i;
	INSERT INTO tb_comment SELECT i, 1 + i % 400, 'comment ' || i FROM generate_series(1, 2000) i;
});

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

# pid of this database's engine worker, '' if none (or no connection)
sub engine_pid
{
	my ($rc, $out) = (0, '');
	$rc = $node->psql('postgres', q{
		SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'pg_tviews engine' AND datname = 'postgres'},
		stdout => \$out);
	return $rc == 0 ? $out : '';
}

# Wait until an engine other than $old_pid runs; returns (pid, seconds)
# or ('', seconds) when none came within $limit seconds.
sub wait_for_engine
{
	my ($old_pid, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my $pid = engine_pid();
		return ($pid, time - $start)
		  if $pid ne '' && (!defined $old_pid || $pid ne $old_pid);
		usleep(100_000);
	}
	return ('', time - $start);
}

# The server accepts connections (again, after a crash); returns seconds.
sub wait_for_connections
{
	my $start = time;
	$node->poll_query_until('postgres', 'SELECT true')
	  or die "the server did not accept connections again";
	return time - $start;
}

# Waits for the engine (pg_tviews_wait) and checks both TVIEWs against
# their definitions: row counts and EXCEPT ALL both ways.
sub check_converged
{
	my ($label) = @_;
	my $start = time;
	my $caught_up = $node->safe_psql('postgres', q{SELECT pg_tviews_wait('120s')});
	is($caught_up, 't', "$label: pg_tviews_wait says the engine caught up");
	diag(sprintf("%s: caught up %.2f s after the check began", $label, time - $start));

	for my $tv (sort keys %definition)
	{
		my $def = $definition{$tv};
		my $res = $node->safe_psql('postgres', qq{
			SELECT (SELECT count(*) FROM $tv),
			       (SELECT count(*) FROM ($def) d),
			       (SELECT count(*) FROM (TABLE $tv EXCEPT ALL SELECT * FROM ($def) d) x),
			       (SELECT count(*) FROM (SELECT * FROM ($def) d EXCEPT ALL TABLE $tv) x)});
		my ($rows, $expected_rows, $extra, $missing) = split /\|/, $res;
		is($rows, $expected_rows, "$label: $tv has as many rows as its definition ($expected_rows)");
		is("$extra|$missing", '0|0',
			"$label: $tv equals its definition (rows not in it | rows missing)");
	}
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM tviews.failed_key}), '0',
		"$label: no key was parked");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM tviews.tview WHERE last_error IS NOT NULL}), '0',
		"$label: no TVIEW has an error");
}

# the write load, as a pgbench script: every lineage rule, moves between
# keys, deletes, inserts, multi-statement transactions
my $script = PostgreSQL::Test::Utils::tempdir() . '/writes.pgbench';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set u random(1, 20)
\set p random(1, 1400)
\set c random(1, 103000)
\set r random(1, 100)
\if :r <= 25
INSERT INTO tb_comment VALUES (nextval('comment_seq'), :p, 'new comment ' || :c);
\elif :r <= 45
UPDATE tb_post SET score = score + 1, title = 'post ' || :p || ' v' || :c WHERE pk_post = :p;
\elif :r <= 55
UPDATE tb_comment SET fk_post = :p, body = body || '.' WHERE pk_comment = :c;
\elif :r <= 63
DELETE FROM tb_comment WHERE pk_comment = :c;
\elif :r <= 71
INSERT INTO tb_post VALUES (nextval('post_seq'), :u, 'new post ' || :c, 0);
\elif :r <= 79
UPDATE tb_post SET fk_user = :u WHERE pk_post = :p;
\elif :r <= 85
UPDATE tb_user SET name = 'user ' || :u || ' v' || :c WHERE pk_user = :u;
\elif :r <= 89
DELETE FROM tb_post WHERE pk_post = :p;
\else
BEGIN;
INSERT INTO tb_post VALUES (nextval('post_seq'), :u, 'batch post', 0);
INSERT INTO tb_comment SELECT nextval('comment_seq'), currval('post_seq'), 'batch comment ' || i
  FROM generate_series(1, 5) i;
UPDATE tb_comment SET fk_post = currval('post_seq') WHERE pk_comment = :c;
UPDATE tb_user SET name = name || '+' WHERE pk_user = :u;
COMMIT;
\endif
});

# Start the writes in the background for $secs seconds.
sub start_writes
{
	my ($secs) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-h', $node->host, '-p', $node->port,
			'-c', '2', '-j', '2', '-T', $secs,
			'-R', $write_rate,
			'-f', $script, 'postgres'
		],
		'<', \undef, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err, start => time };
}

# Wait for the writes to end; returns the number of transactions that
# pgbench reports as processed (those cut off by a crash may have failed).
sub finish_writes
{
	my ($w, $label, $expect_ok) = @_;
	my $ok = $w->{h}->finish;
	my $out = ${ $w->{out} };
	my ($n) = $out =~ /number of transactions actually processed: (\d+)/;
	$n //= 0;
	if ($expect_ok)
	{
		ok($ok, "$label: the writes ran without error")
		  or diag("pgbench stdout:\n$out\nstderr:\n${ $w->{err} }");
	}
	diag("$label: pgbench processed $n transactions");
	return $n;
}

# How far the slot's confirmed position is behind the WAL, in bytes.
sub engine_lag
{
	my ($rc, $out) = (0, '');
	$rc = $node->psql('postgres', q{
		SELECT pg_current_wal_lsn() - confirmed_flush_lsn
		FROM pg_replication_slots WHERE slot_name = pg_tviews_slot_name()},
		stdout => \$out);
	return $rc == 0 ? $out : '?';
}

# ---------------------------------------------------------------------
# the TVIEWs, and the engine running
# ---------------------------------------------------------------------
{
	my ($pid, $secs) = wait_for_engine(undef, 60);
	isnt($pid, '', 'the engine worker runs after CREATE EXTENSION');
	diag(sprintf("engine running %.2f s after CREATE EXTENSION", $secs));
}

for my $tv (sort keys %definition)
{
	$node->safe_psql('postgres',
		"SELECT pg_tviews_create('$tv', \$q\$$definition{$tv}\$q\$)");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM tviews.tview'), '2',
	'two TVIEWs created');
{
	my $rules = $node->safe_psql('postgres', q{
		SELECT string_agg(tview::text || ':' || rule, ' ' ORDER BY tview::text, rule)
		FROM (SELECT DISTINCT tview, source::text || '=' || rule AS rule FROM tviews.source) s});
	like($rules, qr/^tv_post:tb_comment=child tv_post:tb_post=root tv_post:tb_user=parent /,
		'tv_post: a root, a parent and a child rule');
	diag("lineage rules: $rules");
}
check_converged('initial');

# ---------------------------------------------------------------------
# (a) pg_terminate_backend, (b) pg_cancel_backend, while writes flow
# ---------------------------------------------------------------------
for my $case (['terminate', 'pg_terminate_backend'], ['cancel', 'pg_cancel_backend'])
{
	my ($label, $func) = @$case;
	my $w = start_writes(5);
	usleep(1_500_000);

	my $old = engine_pid();
	isnt($old, '', "$label: the engine runs before");
	diag("$label: engine lag before: " . engine_lag() . " bytes");
	is($node->safe_psql('postgres', "SELECT $func($old)"), 't',
		"$label: $func() of the engine");
	my ($new, $secs) = wait_for_engine($old, $engine_back_within);
	isnt($new, '', "$label: a new engine worker runs within $engine_back_within s");
	diag(sprintf("%s: engine back after %.2f s (pid %s -> %s)", $label, $secs, $old, $new));

	finish_writes($w, $label, 1);
	check_converged($label);
}

# ---------------------------------------------------------------------
# (c) SIGKILL of the engine: crash recovery of the whole server
# ---------------------------------------------------------------------
{
	my $label = 'kill -9';
	my $w = start_writes(6);
	usleep(1_500_000);

	my $old = engine_pid();
	isnt($old, '', "$label: the engine runs before");
	diag("$label: engine lag before: " . engine_lag() . " bytes");
	my $log_offset = -s $node->logfile;
	my $start = time;
	ok(kill('KILL', $old), "$label: SIGKILL sent to the engine (pid $old)");

	# the postmaster notices the crash and reinitializes; only then is a
	# successful connection one to the recovered server
	ok( eval {
			$node->wait_for_log(qr/all server processes terminated; reinitializing/,
				$log_offset);
			1;
		},
		"$label: the postmaster reinitialized (crash recovery)");
	wait_for_connections();
	my $up_at = time;
	my ($new, $secs) = wait_for_engine($old, $engine_back_within);
	isnt($new, '', "$label: a new engine worker runs within $engine_back_within s of recovery");
	diag(sprintf("%s: connections accepted %.2f s after the kill, engine back after %.2f s more",
			$label, $up_at - $start, $secs));

	# pgbench's connections died with the crash: its clients abort
	finish_writes($w, $label, 0);
	check_converged($label);
	diag(sprintf("%s: converged %.2f s after the kill", $label, time - $start));
}

# ---------------------------------------------------------------------
# (d) immediate shutdown (a postmaster crash) in the middle of the writes
# ---------------------------------------------------------------------
{
	my $label = 'immediate stop';
	my $w = start_writes(6);
	usleep(2_000_000);

	my $old = engine_pid();
	diag("$label: engine lag before: " . engine_lag() . " bytes");
	my $start = time;
	$node->stop('immediate');
	finish_writes($w, $label, 0);
	$node->start;
	my ($new, $secs) = wait_for_engine(undef, $engine_back_within);
	isnt($new, '', "$label: the engine runs after the restart");
	diag(sprintf("%s: engine back %.2f s after start", $label, $secs));
	check_converged($label);
	diag(sprintf("%s: converged %.2f s after the crash", $label, time - $start));
}

# ---------------------------------------------------------------------
# (e) clean restart with pending changes: a session holding an ACCESS
# EXCLUSIVE lock on tv_post keeps the engine from applying them
# ---------------------------------------------------------------------
{
	my $label = 'clean restart';
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN; LOCK TABLE tv_post IN ACCESS EXCLUSIVE MODE;');

	$node->safe_psql('postgres', q{
		UPDATE tb_post SET title = title || ' (pending)' WHERE pk_post % 7 = 0;
		INSERT INTO tb_comment SELECT nextval('comment_seq'), p, 'pending comment'
		  FROM generate_series(1, 50) p;
		UPDATE tb_user SET name = name || ' (pending)' WHERE pk_user = 3;
	});
	is($node->safe_psql('postgres', q{SELECT pg_tviews_wait('2s')}), 'f',
		"$label: the engine cannot catch up while tv_post is locked");
	my $stale = $holder->query_safe(qq{
		SELECT count(*) FROM (TABLE tv_post EXCEPT ALL SELECT * FROM ($definition{tv_post}) d) x;
	});
	cmp_ok($stale, '>', 0, "$label: tv_post has pending changes ($stale rows stale)");
	diag("$label: engine lag before: " . engine_lag() . " bytes");

	my $start = time;
	$node->restart;    # fast mode: ends the lock holder too
	eval { $holder->quit; };
	diag(sprintf("%s: restarted in %.2f s", $label, time - $start));
	my ($new, $secs) = wait_for_engine(undef, $engine_back_within);
	isnt($new, '', "$label: the engine runs after the restart");
	check_converged($label);
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM tv_post WHERE title LIKE '%(pending)'}),
		$node->safe_psql('postgres', q{
		SELECT count(*) FROM tb_post WHERE title LIKE '%(pending)'}),
		"$label: the pending title changes reached tv_post");
	diag(sprintf("%s: converged %.2f s after the restart began", $label, time - $start));
}

# Errors of the background workers (lines without an application name):
# only the cancel of (b) is expected.
{
	my $log = slurp_file($node->logfile);
	my @bg = ($log =~ /^\S+ \S+ \S+ \[\d+\] (?:ERROR|WARNING|PANIC):\s+(.*)$/mg);
	my @slot_busy = grep { /replication slot "[^"]*" is active for PID/ } @bg;
	my @other = grep {
		!/canceling statement due to user request/
		  && !/replication slot "[^"]*" is active for PID/
	} @bg;
	# A new engine waits for the worker it replaces to release the slot
	# (it used to fail once and be restarted a second later).
	is(scalar(@slot_busy), 0,
		'no new engine worker found the slot still held by the worker it replaces')
	  or diag(join("\n", @slot_busy));
	is(scalar(@other), 0, 'no other error or warning from the background workers')
	  or diag(join("\n", @other));
}

$node->stop;
done_testing();
