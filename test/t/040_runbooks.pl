# The operations runbooks run as written against a live installation.
#
# A node with pg_tviews (and pg_stat_statements, which the emergency
# runbook's Performance Validation reads), a FraiseQL-style schema
# (tb_user, tb_post, tb_comment) and three TVIEWs (tv_user, tv_post,
# tv_comment), with writes flowing from a background session throughout.
# Every ```sql block of docs/operations/runbooks/**/*.md runs with psql -X
# -f, from the repository root ($PGTV_REPO, so that "\i docs/..." resolves),
# with standard input "DISABLE" (the answer to emergency-disable.sql's
# \prompt), after its your_* placeholders are bound (%placeholder below,
# documented in docs/operations/runbooks/README.md); each
# docs/operations/runbooks/scripts/*.sql runs on its own as well.
#
# Asserted for every block and script: psql exits 0 and reports no ERROR,
# FATAL or lost connection, and no WARNING but the documented ones -- except
# for the one documented self-cancel: the "Option 2" pg_cancel_backend
# statement of the emergency runbook, which matches its own session and
# fails with "canceling statement due to user request" (asserted to be
# exactly that statement, also from the server log; a session matching the
# pattern in an earlier backend slot is asserted to have been cancelled).
# And what the text promises:
#   - a key the TVIEW rejects (a CHECK constraint on tv_post) is parked and
#     the health check says so; the queue cleanup drops the parked entry
#     (addressed by ctid) and marks its TVIEW stale; emergency-disable.sql
#     changes nothing unless DISABLE is typed (it runs with DISABLE through
#     the emergency runbook's \i);
#   - after the manual refresh runbook (the cause fixed first) every TVIEW
#     is ready, with nothing parked and no error; after the incident
#     checklist nothing is left disabled or paused;
#   - after the emergency protocol no refresh is pending and every TVIEW is
#     emergency-disabled with the reason and a time, the engine paused;
#   - the stabilization step terminates none of our (young) sessions;
#   - after "terminate every other backend" the engine is back with a new
#     pid within seconds (the background writer, terminated too, is
#     restarted);
#   - after the System Reset block and pg_tviews_system_enable() (which the
#     runbook leaves commented), every TVIEW is enabled again and, once
#     pg_tviews_wait() returns, ready (rebuilt);
#   - at the end, with the writes stopped and pg_tviews_wait() true, every
#     TVIEW equals its definition (EXCEPT ALL both ways against
#     <name>_def), every health check component is 'ok', every sql block
#     of every runbook ran, and no server process crashed.
use strict;
use warnings;

use File::Find;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use Test::More;
use Time::HiRes qw(time usleep);

my $repo = $ENV{PGTV_REPO}
  or BAIL_OUT('PGTV_REPO is not set (run the TAP tests through scripts/run-tests.sh)');
my $rbdir = 'docs/operations/runbooks';    # relative to $repo

# The runbooks' placeholders and what they stand for here (keep in step
# with the table in docs/operations/runbooks/README.md).
my %placeholder = (
	your_critical_tview => 'tv_post',
	your_tview => 'tv_user',
	your_key => '7',
	your_low_key => '1',
	your_high_key => '10',
);

# WARNINGs a block may print (anything else fails it)
my @expected_warnings = (
	# Option 1 of the emergency runbook: pg_stat_activity lists the
	# background writer, checkpointer and walwriter, which
	# pg_terminate_backend() refuses
	qr/WARNING:  PID \d+ is not a PostgreSQL backend process/,
);

# the statement that cancels its own session, and its error
my $self_cancel_stmt = qr/SELECT pg_cancel_backend\(pid\)\nFROM pg_stat_activity\nWHERE query LIKE '%tview%' OR query LIKE '%refresh%';/;
my $self_cancel_error = 'canceling statement due to user request';

# how long the engine may take to come back after being terminated (the
# postmaster restarts the launcher after its restart interval)
my $engine_back_within = 30;

my $node = new_node('runbooks');
$node->append_conf('postgresql.conf', q{
# the emergency runbook's Performance Validation reads pg_stat_statements
shared_preload_libraries = 'pg_tviews, pg_stat_statements'
# park a failing key after two quick attempts
pg_tviews.max_retries = 2
pg_tviews.retry_delay = 100ms
pg_tviews.restart_interval = 1
# no autovacuum worker comes and goes in a backend slot: the self-cancel
# check relies on the order of the slots of our own sessions
autovacuum = off
});
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_tviews;
	CREATE EXTENSION pg_stat_statements;
	CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text NOT NULL, email text NOT NULL,
	                      updated_at timestamptz NOT NULL DEFAULT now());
	CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL, title text NOT NULL,
	                      updated_at timestamptz NOT NULL DEFAULT now());
	CREATE TABLE tb_comment (pk_comment int PRIMARY KEY, fk_post int NOT NULL, fk_user int NOT NULL,
	                         body text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
	CREATE SEQUENCE comment_seq START 100001;
	CREATE TABLE writer_progress (txns bigint NOT NULL);
	INSERT INTO writer_progress VALUES (0);
	INSERT INTO tb_user SELECT i, 'user ' || i, 'user' || i || '@example.com' FROM generate_series(1, 20) i;
	-- the owner of the post that the TVIEW will reject (outside the writer's range)
	INSERT INTO tb_user VALUES (99, 'quarantine', 'q@example.com');
	INSERT INTO tb_post SELECT i, 1 + i % 20, 'post ' || i FROM generate_series(1, 200) i;
	INSERT INTO tb_comment SELECT i, 1 + i % 200, 1 + i % 20, 'comment ' || i
	  FROM generate_series(1, 1000) i;
});

# FraiseQL read models: a key, the columns lineage needs, a jsonb document
my %definition = (
	tv_user => q{
		SELECT u.pk_user, u.updated_at,
		       jsonb_build_object('id', u.pk_user, 'name', u.name, 'email', u.email,
		                          'postCount', (SELECT count(*) FROM tb_post p
		                                         WHERE p.fk_user = u.pk_user)) AS data
		FROM tb_user u},
	tv_post => q{
		SELECT p.pk_post, p.fk_user, p.updated_at,
		       jsonb_build_object('id', p.pk_post, 'title', p.title,
		                          'author', jsonb_build_object('id', u.pk_user, 'name', u.name),
		                          'comments', (SELECT coalesce(jsonb_agg(jsonb_build_object(
		                                                 'id', c.pk_comment, 'body', c.body)
		                                               ORDER BY c.pk_comment), '[]'::jsonb)
		                                         FROM tb_comment c WHERE c.fk_post = p.pk_post)) AS data
		FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user},
	tv_comment => q{
		SELECT c.pk_comment, c.fk_post, c.updated_at,
		       jsonb_build_object('id', c.pk_comment, 'body', c.body,
		                          'post', jsonb_build_object('id', p.pk_post, 'title', p.title)) AS data
		FROM tb_comment c JOIN tb_post p ON p.pk_post = c.fk_post},
);
for my $tv (sort keys %definition)
{
	$node->safe_psql('postgres',
		"SELECT pg_tviews_create('$tv', \$q\$$definition{$tv}\$q\$)");
}
# a constraint on the TVIEW table that some data violates: its refresh
# fails, is retried, and is parked -- something for the queue runbooks
$node->safe_psql('postgres', q{
	ALTER TABLE tv_post ADD CONSTRAINT tv_post_no_poison CHECK (data->>'title' NOT LIKE 'poison%')});
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_tviews_metadata'), '3',
	'three TVIEWs created');

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

# pid of this database's engine, from the workers status table ('' if none)
sub engine_pid
{
	my ($rc, $out) = (0, '');
	$rc = $node->psql('postgres', q{
		SELECT pid FROM pg_tviews_workers
		WHERE worker_type = 'engine' AND database = current_database() AND pid IS NOT NULL},
		stdout => \$out);
	return $rc == 0 ? $out : '';
}

# Wait until an engine other than $old runs; returns (pid, seconds).
sub wait_for_engine
{
	my ($old, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my $pid = engine_pid();
		return ($pid, time - $start)
		  if $pid ne '' && (!defined $old || $pid ne $old);
		usleep(200_000);
	}
	return ('', time - $start);
}

# The background writer: one session running a loop of small write
# transactions (its text matches neither '%tview%' nor '%refresh%').
my $writer;
my $writer_sql = q{
DO $$
DECLARE
    i bigint := 0;
    u int; p int; c int; r int;
BEGIN
    LOOP
        i := i + 1;
        u := 1 + floor(random() * 20)::int;
        p := 1 + floor(random() * 200)::int;
        c := 1 + floor(random() * 1000)::int;
        r := floor(random() * 100)::int;
        IF r < 30 THEN
            UPDATE tb_post SET title = 'post ' || p || ' v' || i, updated_at = now() WHERE pk_post = p;
        ELSIF r < 55 THEN
            UPDATE tb_comment SET body = 'comment ' || c || ' v' || i, updated_at = now() WHERE pk_comment = c;
        ELSIF r < 65 THEN
            UPDATE tb_comment SET fk_post = p, updated_at = now() WHERE pk_comment = c;
        ELSIF r < 75 THEN
            UPDATE tb_user SET name = 'user ' || u || ' v' || i, updated_at = now() WHERE pk_user = u;
        ELSIF r < 85 THEN
            INSERT INTO tb_comment VALUES (nextval('comment_seq'), p, u, 'new comment ' || i, now());
        ELSIF r < 92 THEN
            DELETE FROM tb_comment WHERE pk_comment = (SELECT max(pk_comment) FROM tb_comment);
        ELSE
            UPDATE tb_post SET fk_user = u, updated_at = now() WHERE pk_post = p;
        END IF;
        UPDATE writer_progress SET txns = txns + 1;
        COMMIT;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
};

sub writer_txns
{
	return $node->safe_psql('postgres', 'SELECT txns FROM writer_progress');
}

sub writer_running
{
	return $node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity WHERE application_name = 'runbook_writer'}) eq '1';
}

sub start_writer
{
	my ($out, $err) = ('', '');
	local $ENV{PGAPPNAME} = 'runbook_writer';
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', $writer_sql ],
		'<', \undef, '>', \$out, '2>', \$err);
	$writer = { h => $h, err => \$err };
	# wait until it has written something
	my $before = writer_txns();
	my $start = time;
	usleep(100_000) while writer_txns() < $before + 20 && time - $start < 30;
	ok(writer_txns() >= $before + 20, 'the background writer writes');
}

# End the writer (if it still runs) and reap it.
sub stop_writer
{
	return unless $writer;
	$node->safe_psql('postgres', q{
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'runbook_writer'});
	$writer->{h}->finish;
	$writer = undef;
}

# The ```sql blocks of a markdown file, in order: [[first line, text], ...]
sub sql_blocks
{
	my ($md) = @_;
	my @blocks;
	my ($in, $text, $first, $n) = (0, '', 0, 0);
	for my $line (split /\n/, slurp_file("$repo/$md"))
	{
		$n++;
		if (!$in && $line =~ /^```sql\s*$/)
		{
			($in, $text, $first) = (1, '', $n + 1);
		}
		elsif ($in && $line =~ /^```\s*$/)
		{
			push @blocks, [ $first, $text ];
			$in = 0;
		}
		elsif ($in)
		{
			$text .= "$line\n";
		}
	}
	die "$md: unterminated ```sql block at line $first" if $in;
	return @blocks;
}

# Replace the placeholders (whole words); dies on an unbound one.
sub bind_placeholders
{
	my ($label, $text) = @_;
	for my $name (sort { length($b) <=> length($a) } keys %placeholder)
	{
		$text =~ s/\b\Q$name\E\b/$placeholder{$name}/g;
	}
	if ($text =~ /\b(your_\w+)/)
	{
		fail("$label: placeholder $1 is bound (see docs/operations/runbooks/README.md)");
	}
	return $text;
}

# Run a SQL file with psql from the repository root, standard input $stdin;
# returns { rc, out, err, log_offset }.
sub run_psql_file
{
	my ($file, $stdin, @opts) = @_;
	my ($out, $err) = ('', '');
	my $log_offset = -s $node->logfile;
	IPC::Run::run(
		[ 'psql', '-X', '-v', 'ON_ERROR_STOP=0', @opts, '-d', $node->connstr('postgres'),
		  '-f', $file ],
		'<', \$stdin, '>', \$out, '2>', \$err,
		init => sub { chdir $repo or die "chdir $repo: $!" },
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return { rc => $? >> 8, out => $out, err => $err, log_offset => $log_offset };
}

# Problems in psql's output: errors, lost connections, unexpected warnings.
# Returns the offending lines.
sub problems
{
	my ($res) = @_;
	my @bad;
	for my $line (split /\n/, $res->{err})
	{
		if ($line =~ /\b(?:ERROR|FATAL|PANIC):|server closed the connection|connection to server|could not connect|error:/)
		{
			push @bad, $line;
		}
		elsif ($line =~ /\bWARNING:/ && !grep { $line =~ $_ } @expected_warnings)
		{
			push @bad, $line;
		}
	}
	return @bad;
}

# Run one block; unless %opt{allow_self_cancel}, it must run cleanly.
# Returns the result.
my %blocks_run;
sub run_block
{
	my ($md, $first, $text, %opt) = @_;
	my $label = "$md:$first";
	my $sql = bind_placeholders($label, $text);
	(my $base = "$md.$first.sql") =~ s{[/ ]}{_}g;
	my $file = "$tmp/$base";
	PostgreSQL::Test::Utils::append_to_file($file, $sql);
	my $res = run_psql_file($file, "DISABLE\n");
	$res->{file} = $file;
	$res->{sql} = $sql;
	$blocks_run{$md}++;
	is($res->{rc}, 0, "$label: psql exits 0");
	my @bad = problems($res);
	if ($opt{allow_self_cancel})
	{
		check_self_cancel($label, $res, \@bad);
	}
	else
	{
		is(join("\n", @bad), '', "$label: no error")
		  or diag("block:\n$sql\nstdout:\n$res->{out}\nstderr:\n$res->{err}");
	}
	return $res;
}

# The one allowed error: the self-cancel of the Option 2 statement, at the
# line where that statement ends, and nothing else.
sub check_self_cancel
{
	my ($label, $res, $bad) = @_;
	my @lines = split /\n/, $res->{sql};
	my ($end_line) = grep { $lines[ $_ - 1 ] =~ /^WHERE query LIKE '%tview%' OR query LIKE '%refresh%';$/ } 1 .. @lines;
	ok(defined $end_line && $res->{sql} =~ $self_cancel_stmt,
		"$label: the block holds the Option 2 pg_cancel_backend statement");
	$end_line //= -1;
	my @cancel = grep { /^psql:\Q$res->{file}\E:$end_line: ERROR:  \Q$self_cancel_error\E$/ } @$bad;
	is(scalar(@cancel), 1,
		"$label: the pg_cancel_backend statement (ending at line $end_line) cancelled its own session")
	  or diag("stderr:\n$res->{err}");
	my @other = grep { !/^psql:\Q$res->{file}\E:$end_line: ERROR:  \Q$self_cancel_error\E$/ } @$bad;
	is(join("\n", @other), '', "$label: no other error")
	  or diag("stdout:\n$res->{out}\nstderr:\n$res->{err}");
	# the server says which statement it cancelled
	my $log = substr(slurp_file($node->logfile), $res->{log_offset});
	my @stmts = $log =~ /ERROR:  \Q$self_cancel_error\E\n[^\n]*STATEMENT:  ([^\n]*(?:\n\t[^\n]*)*)/g;
	@stmts = map { s/\n\t/\n/gr } @stmts;
	my @mine = grep { /^SELECT pg_cancel_backend\(pid\)\nFROM pg_stat_activity\nWHERE query LIKE '%tview%' OR query LIKE '%refresh%';$/ } @stmts;
	is(scalar(@mine), 1, "$label: the server log shows the cancelled statement is the pg_cancel_backend one")
	  or diag("cancelled statements in the log:\n" . join("\n--\n", @stmts));
}

# Run every block of a runbook; returns the results.
sub run_runbook
{
	my ($md) = @_;
	my @res;
	for my $b (sql_blocks($md))
	{
		push @res, run_block($md, @$b);
	}
	return @res;
}

sub run_script
{
	my ($script, $stdin, @opts) = @_;
	my $label = "$rbdir/scripts/$script";
	my $res = run_psql_file("$rbdir/scripts/$script", $stdin, @opts);
	is($res->{rc}, 0, "$label: psql exits 0");
	is(join("\n", problems($res)), '', "$label: no error")
	  or diag("stdout:\n$res->{out}\nstderr:\n$res->{err}");
	return $res;
}

# Wait until key 999 of tv_post is parked.
sub wait_parked
{
	my ($label) = @_;
	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_tviews_queue
		WHERE entity_name = 'tv_post' AND status = 'failed' AND primary_key_value = '999'}),
		"$label: the refresh of tv_post key 999 is parked");
}

# What the engine did, for failure diagnostics.
sub diag_engine_state
{
	diag("metadata:\n", $node->safe_psql('postgres', q{
		SELECT entity_name, state, emergency_disabled, last_refreshed, rows_refreshed,
		       full_refreshes, pending_count, failed_count, last_error
		FROM pg_tviews_metadata ORDER BY 1}),
		"\nqueue:\n", $node->safe_psql('postgres', q{
		SELECT entity_name, status, full_refresh, error_message, count(*),
		       min(created_at), max(processed_at)
		FROM pg_tviews_queue GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3}),
		"\nworkers:\n", $node->safe_psql('postgres', 'TABLE pg_tviews_workers'));
}

# Each TVIEW against its definition (<name>_def), EXCEPT ALL both ways.
sub check_converged
{
	my ($label) = @_;
	is($node->safe_psql('postgres', q{SELECT pg_tviews_wait('60s')}), 't',
		"$label: pg_tviews_wait says the engine caught up");
	for my $tv (sort keys %definition)
	{
		my $res = $node->safe_psql('postgres', qq{
			SELECT (SELECT count(*) FROM $tv), (SELECT count(*) FROM ${tv}_def),
			       (SELECT count(*) FROM (TABLE $tv EXCEPT ALL TABLE ${tv}_def) x),
			       (SELECT count(*) FROM (TABLE ${tv}_def EXCEPT ALL TABLE $tv) x)});
		my ($rows, $def_rows, $extra, $missing) = split /\|/, $res;
		is("$rows|$extra|$missing", "$def_rows|0|0",
			"$label: $tv equals its definition (rows|not in it|missing)")
		  or diag("$tv, rows differing from the definition:\n",
			$node->safe_psql('postgres', qq{
				(TABLE $tv EXCEPT ALL TABLE ${tv}_def) UNION ALL (TABLE ${tv}_def EXCEPT ALL TABLE $tv)
				ORDER BY 1 LIMIT 10}),
			"\nmetadata:\n", $node->safe_psql('postgres', qq{
				SELECT * FROM pg_tviews_metadata WHERE entity_name = '$tv'}),
			"\nqueue:\n", $node->safe_psql('postgres', qq{
				SELECT status, full_refresh, error_message, count(*), min(created_at), max(processed_at)
				FROM pg_tviews_queue WHERE entity_name = '$tv' GROUP BY 1, 2, 3}));
	}
}

# ---------------------------------------------------------------------
# the runbooks and scripts to run
# ---------------------------------------------------------------------
my @runbooks;
find(
	{
		no_chdir => 1,
		wanted => sub { push @runbooks, $File::Find::name =~ s{^\Q$repo\E/}{}r if /\.md$/ }
	},
	"$repo/$rbdir");
@runbooks = sort @runbooks;
my @scripts = sort map { s{^.*/}{}r } glob("$repo/$rbdir/scripts/*.sql");
ok(scalar(@runbooks) >= 7, 'runbooks found: ' . join(', ', @runbooks));
is(join(' ', @scripts), 'emergency-disable.sql health-check.sql queue-cleanup.sql refresh-status.sql',
	'runbook scripts found');

my $emergency = "$rbdir/04-incident-response/emergency-procedures.md";
my @ordered = map { "$rbdir/$_" } qw(
  01-health-monitoring/tview-health-check.md
  02-queue-management/queue-management.md
  03-manual-refresh/manual-refresh.md
  04-incident-response/incident-checklist.md
  04-incident-response/post-incident-review.md);
my %known = map { $_ => 1 } @ordered, $emergency;
my @others = grep { !$known{$_} } @runbooks;

isnt((wait_for_engine(undef, 60))[0], '', 'the engine runs');
start_writer();

# ---------------------------------------------------------------------
# a failing key, then the scripts on their own
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{INSERT INTO tb_post VALUES (999, 99, 'poison')});
wait_parked('poison');

{
	my $res = run_script('health-check.sql', '');
	like($res->{out}, qr/queue\s*\|\s*warning\s*\|.*1 parked/, 'health-check.sql reports the parked key');
	run_script('refresh-status.sql', '');

	$res = run_script('queue-cleanup.sql', '');
	like($res->{out}, qr/^DELETE 1$/m, 'queue-cleanup.sql deletes exactly the parked entry');
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_tviews_queue WHERE status = 'failed'}), '0',
		'queue-cleanup.sql: nothing is parked any more');
	is($node->safe_psql('postgres', q{
		SELECT state FROM pg_tviews_metadata WHERE entity_name = 'tv_post'}), 'stale',
		'queue-cleanup.sql: tv_post, whose work was dropped, is marked stale');

	# anything but DISABLE aborts and changes nothing
	$res = run_script('emergency-disable.sql', "no\n");
	like($res->{out}, qr/Aborted \(you typed 'no' instead of DISABLE\): nothing was changed/,
		'emergency-disable.sql aborts unless DISABLE is typed');
	is($node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM pg_tviews_metadata WHERE emergency_disabled)
		     || ' ' || (SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database())}),
		'0 false', 'emergency-disable.sql aborted: no TVIEW disabled, engine not paused');
}

# ---------------------------------------------------------------------
# routine runbooks, with a parked key again
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{UPDATE tb_post SET title = 'poison again' WHERE pk_post = 999});
wait_parked('poison again');

for my $md (@ordered)
{
	if ($md =~ m{03-manual-refresh})
	{
		# the queue runbook retried and dropped the failing key: now the
		# cause is fixed, as its text says to do before refreshing
		$node->safe_psql('postgres', q{UPDATE tb_post SET title = 'antidote' WHERE pk_post = 999});
	}
	run_runbook($md);
	if ($md =~ m{03-manual-refresh})
	{
		is($node->safe_psql('postgres', q{
			SELECT string_agg(entity_name || ':' || state || ':' || failed_count
			                  || ':' || coalesce(last_error, '-'), ' ' ORDER BY entity_name)
			FROM pg_tviews_metadata}),
			'tv_comment:ready:0:- tv_post:ready:0:- tv_user:ready:0:-',
			'after the manual refresh runbook: every TVIEW ready, nothing parked, no error');
	}
	if ($md =~ m{incident-checklist})
	{
		is($node->safe_psql('postgres', q{
			SELECT (SELECT count(*) FROM pg_tviews_metadata WHERE emergency_disabled)
			     || ' ' || (SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database())
			     || ' ' || (SELECT state FROM pg_tviews_metadata WHERE entity_name = 'tv_user')}),
			'0 false ready', 'after the incident checklist: contained and recovered (nothing disabled or paused)');
	}
}
run_runbook($_) for @others;
ok(writer_running(), 'the writer still runs before the emergency runbook');

# ---------------------------------------------------------------------
# the emergency runbook, block by block
# ---------------------------------------------------------------------
my @blocks = sql_blocks($emergency);
my %step;
for my $i (0 .. $#blocks)
{
	my $t = $blocks[$i][1];
	$step{disable} //= $i if $t =~ /emergency-disable\.sql/;
	$step{stabilize} //= $i if $t =~ /idle in transaction/;
	$step{restart} //= $i if $t =~ /WHERE pid != pg_backend_pid\(\)/;
	$step{reset} //= $i if $t =~ /TRUNCATE pg_tviews_queue/;
}
is(join(' ', map { defined $step{$_} ? 'y' : 'n' } qw(disable stabilize restart reset)), 'y y y y',
	'the emergency runbook has its disable, stabilization, restart and reset blocks');

for my $i (0 .. $#blocks)
{
	my ($first, $text) = @{ $blocks[$i] };
	my $label = "$emergency:$first";

	if (defined $step{disable} && $i == $step{disable})
	{
		# a session whose query matches '%tview%', connected before the
		# runbook's session (so in an earlier backend slot): the note says
		# it is cancelled before the statement cancels itself
		# A new session takes the lowest free backend slot: wait for the
		# backends of earlier connections to be gone, start the probe, and
		# open no other connection until it holds its slot.
		my ($sout, $serr) = ('', '');
		sleep 1;
		my $sleeper = IPC::Run::start(
			[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
			  'SELECT pg_sleep(600) /* tview probe */' ],
			'<', \undef, '>', \$sout, '2>', \$serr);
		sleep 1;
		ok($node->poll_query_until('postgres', q{
			SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600) /* tview probe */'}),
			"$label: a session matching '%tview%' runs");

		my $res = run_block($emergency, $first, $text, allow_self_cancel => 1);
		like($res->{out}, qr/== 1\. stopping the engine.*== 2\. emergency-disabling every TVIEW.*== 3\. dropping pending refreshes/s,
			"$label: emergency-disable.sql was confirmed and ran its three steps");

		# cancelled, it ends at once; if not, end it rather than wait
		my $probe_gone = $node->poll_query_until('postgres', q{
			SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600) /* tview probe */'});
		$node->safe_psql('postgres', q{
			SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE query LIKE '%pg_sleep(600) /* tview probe */' AND pid <> pg_backend_pid()})
		  unless $probe_gone;
		$sleeper->finish;
		like($serr, qr/ERROR:  canceling statement due to user request/,
			"$label: the matching session in an earlier slot was cancelled");

		is($node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_tviews_queue WHERE processed_at IS NULL}), '0',
			"$label: no refresh is pending");
		# writes go on: still nothing pending a moment later
		usleep(500_000);
		is($node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_tviews_queue WHERE processed_at IS NULL}), '0',
			"$label: still no refresh pending while writes go on");
		is($node->safe_psql('postgres', q{
			SELECT string_agg(entity_name || ':' || emergency_disabled || ':' || state || ':'
			                  || coalesce(emergency_disable_reason, '-') || ':'
			                  || (emergency_disable_time IS NOT NULL
			                      AND emergency_disable_time > now() - interval '5 minutes'),
			                  ' ' ORDER BY entity_name)
			FROM pg_tviews_metadata}),
			join(' ', map { "$_:true:stale:Critical incident response:true" } sort keys %definition),
			"$label: every TVIEW is emergency-disabled, stale, with the reason and time");
		is($node->safe_psql('postgres', q{
			SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database()}), 't',
			"$label: the engine is paused (pg_tviews_system_disable by the script)");
		next;
	}

	if (defined $step{stabilize} && $i == $step{stabilize})
	{
		# a young session idle in a transaction must survive
		my $idle = $node->background_psql('postgres', on_error_stop => 0);
		$idle->query_safe('BEGIN');
		$idle->query_safe('SELECT 1');
		my $idle_pid = $idle->query_safe('SELECT pg_backend_pid()');
		is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $idle_pid"),
			'idle in transaction', "$label: a session is idle in transaction");

		my $res = run_block($emergency, $first, $text);
		like($res->{out}, qr/pg_terminate_backend\s*\n-+\s*\n\(0 rows\)/,
			"$label: no session is terminated (none idle in transaction or waiting for 30 minutes)");
		is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $idle_pid"),
			'idle in transaction', "$label: the young idle-in-transaction session survives");
		ok(writer_running(), "$label: the writer survives");
		$idle->query_safe('COMMIT');
		$idle->quit;
		next;
	}

	if (defined $step{restart} && $i == $step{restart})
	{
		my $old = engine_pid();
		isnt($old, '', "$label: the engine runs before");
		my $res = run_block($emergency, $first, $text);
		my $start = time;
		my ($new, $secs) = wait_for_engine($old, $engine_back_within);
		isnt($new, '', "$label: an engine with a new pid is back within $engine_back_within s");
		diag(sprintf("%s: engine back after %.1f s (pid %s -> %s)", $label, $secs, $old, $new));
		is($node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_stat_activity WHERE application_name = 'runbook_writer'}), '0',
			"$label: the writer was terminated too");
		$writer->{h}->finish;
		$writer = undef;
		start_writer();
		next;
	}

	if (defined $step{reset} && $i == $step{reset})
	{
		run_block($emergency, $first, $text);
		# the runbook leaves pg_tviews_system_enable() commented out; the
		# engine was stopped by emergency-disable.sql
		like($node->safe_psql('postgres', 'SELECT pg_tviews_system_enable()'), qr/enabled/,
			"$label: pg_tviews_system_enable()");
		is($node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_tviews_metadata
			WHERE emergency_disabled OR emergency_disable_time IS NOT NULL
			   OR emergency_disable_reason IS NOT NULL OR last_error IS NOT NULL}), '0',
			"$label: every TVIEW is enabled again, errors cleared");
		is($node->safe_psql('postgres', q{
			SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database()}), 'f',
			"$label: the engine runs again");
		# the note under the block: once pg_tviews_wait() returns true, every
		# TVIEW is ready (rebuilt by the engine)
		is($node->safe_psql('postgres', q{SELECT pg_tviews_wait('60s')}), 't',
			"$label: pg_tviews_wait() returns true after the reset");
		is($node->safe_psql('postgres', q{
			SELECT string_agg(entity_name || ':' || state, ' ' ORDER BY entity_name) FROM pg_tviews_metadata}),
			join(' ', map { "$_:ready" } sort keys %definition),
			"$label: every TVIEW is rebuilt (ready)")
		  or diag_engine_state();
		next;
	}

	run_block($emergency, $first, $text);
}

# ---------------------------------------------------------------------
# the end state: writes stop, everything converges and is healthy
# ---------------------------------------------------------------------
my $txns = writer_txns();
stop_writer();
cmp_ok($txns, '>', 200, "the background writer committed $txns transactions during the runbooks");
check_converged('after the runbooks');
is($node->safe_psql('postgres', q{
	SELECT string_agg(component || ':' || status, ' ' ORDER BY component)
	FROM pg_tviews_health_check()}),
	'engine:ok queue:ok slot:ok tviews:ok', 'health check: every component ok')
  or diag($node->safe_psql('postgres', 'SELECT * FROM pg_tviews_health_check()')), diag_engine_state();

# every runbook ran
for my $md (@runbooks)
{
	my @b = sql_blocks($md);
	is($blocks_run{$md} // 0, scalar(@b), "$md: all " . scalar(@b) . " sql blocks ran");
}

# no backend crashed
{
	my $log = slurp_file($node->logfile);
	my @crashes = $log =~ /^.*terminated by signal.*$/mg;
	is(join("\n", @crashes), '', 'no server process crashed');
}

$node->stop;
done_testing();
