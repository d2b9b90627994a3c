# Every destructive action of the runbooks, with writes flowing, leaves the
# system explainable in the status tables and, after the documented
# recovery, exact.
#
# A node with the test settings, base tables in a schema of their own
# (app.tb_user, app.tb_post, app.tb_comment) and three FraiseQL-style
# TVIEWs in public:
#   tv_post     post + author (tb_user, a parent rule) + its comments as a
#               jsonb_agg (tb_comment, a child rule through fk_post);
#   tv_user     user + its posts as a jsonb_agg (tb_post, a child rule);
#   tv_comment  comment + its post's title (tb_post, a parent rule).
# A background session (a PL/pgSQL loop, one transaction per write) keeps
# writing to all three tables.  It names tables and columns by OID and
# attribute number, so it follows every rename, as an application that is
# redeployed with the new names would.  A probe user (99) with posts
# 901-903 and comments 9001-9006 is never touched by the writer: a change
# to it that is dropped stays visible.
#
# For each action: what the status tables show (pg_tviews_metadata,
# pg_tviews_queue, pg_tviews_health_check(), pg_tviews_workers) is printed
# with note() (in the test's log), what the docs claim is asserted, the
# documented recovery is run, and then, with the writes stopped and
# pg_tviews_wait() true, every TVIEW must equal its backing view exactly
# (EXCEPT ALL both ways, oracle_count).
#
#   1. pg_cancel_backend / pg_terminate_backend of every session matching
#      '%tview%' or '%refresh%' (emergency runbook, Option 2, with the own
#      pid excluded): the engine and a manual refresh job are hit, the
#      engine comes back, nothing is lost;
#   2. DELETE FROM pg_tviews_queue by entity_name, DELETE of everything,
#      TRUNCATE pg_tviews_queue (with a parked key): the engine is held
#      back by a lock on tv_post so that work is queued; the TVIEWs whose
#      work was dropped are stale, the health check says so, a dropped
#      probe change is visibly missing; recovery: the manual refresh
#      runbook (engine paused around the refreshes, as its known issue
#      says), then ready and exact;
#   3. emergency disable and enable of one TVIEW;
#   4. pg_tviews_system_disable() / _enable();
#   5. TRUNCATE of a base table;
#   6. ALTER COLUMN TYPE and DROP COLUMN of used columns (refused by
#      PostgreSQL), DROP COLUMN of unused ones and ADD COLUMN (followed);
#   7. renames: base table, used column, TVIEW, schema of the base tables,
#      and a lineage column -- writes keep being applied, the oracle holds,
#      the status tables show the new names.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use PgTviews::Differential qw(oracle_count oracle_rows);
use Test::More;
use Time::HiRes qw(time usleep);

my $repo = $ENV{PGTV_REPO}
  or BAIL_OUT('PGTV_REPO is not set (run the TAP tests through scripts/run-tests.sh)');
my $rbdir = "$repo/docs/operations/runbooks";

# how long the engine may take to come back after being cancelled or
# terminated (the launcher restarts it after pg_tviews.restart_interval)
my $engine_back_within = 30;

my $node = new_node('destructive');
$node->append_conf('postgresql.conf', q{
pg_tviews.restart_interval = 1
# park a failing key after two quick attempts
pg_tviews.max_retries = 2
pg_tviews.retry_delay = 100ms
});
$node->start;

$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	CREATE EXTENSION pg_tviews;
	CREATE SCHEMA app;
	CREATE TABLE app.tb_user (pk_user int PRIMARY KEY, name text NOT NULL, spare text);
	CREATE TABLE app.tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL, title text NOT NULL,
	                          score int NOT NULL DEFAULT 0);
	CREATE TABLE app.tb_comment (pk_comment int PRIMARY KEY, fk_post int NOT NULL, body text NOT NULL,
	                             note text);
	CREATE SEQUENCE app.post_seq START 10001;
	CREATE SEQUENCE app.comment_seq START 100001;
	INSERT INTO app.tb_user SELECT i, 'user ' || i FROM generate_series(1, 20) i;
	INSERT INTO app.tb_user VALUES (99, 'probe');
	INSERT INTO app.tb_post SELECT i, 1 + i % 20, 'post ' || i FROM generate_series(1, 200) i;
	INSERT INTO app.tb_post SELECT i, 99, 'probe post ' || i FROM generate_series(901, 903) i;
	INSERT INTO app.tb_comment SELECT i, 1 + i % 200, 'comment ' || i FROM generate_series(1, 1000) i;
	INSERT INTO app.tb_comment SELECT i, 901 + i % 3, 'probe comment ' || i FROM generate_series(9001, 9006) i;

	-- the writer's bookkeeping, and its name lookup by attribute number
	CREATE TABLE writer_progress (txns bigint NOT NULL, errors bigint NOT NULL,
	                              last_error text, stop boolean NOT NULL);
	INSERT INTO writer_progress VALUES (0, 0, NULL, false);
	CREATE FUNCTION wcol(rel oid, att int2) RETURNS text LANGUAGE sql STABLE
	    AS $$ SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = rel AND attnum = att $$;
	CREATE FUNCTION wnum(rel regclass, col name) RETURNS int2 LANGUAGE sql STABLE
	    AS $$ SELECT attnum FROM pg_attribute WHERE attrelid = rel AND attname = col $$;
	-- what the writer writes to, by OID and attribute number (stable across renames)
	CREATE TABLE writer_target AS
	SELECT 'app.tb_user'::regclass::oid AS u, 'app.tb_post'::regclass::oid AS p,
	       'app.tb_comment'::regclass::oid AS c,
	       'app.post_seq'::regclass::oid AS ps, 'app.comment_seq'::regclass::oid AS cs,
	       wnum('app.tb_user', 'pk_user') AS a_upk, wnum('app.tb_user', 'name') AS a_uname,
	       wnum('app.tb_post', 'pk_post') AS a_ppk, wnum('app.tb_post', 'fk_user') AS a_pfk,
	       wnum('app.tb_post', 'title') AS a_ptitle, wnum('app.tb_post', 'score') AS a_pscore,
	       wnum('app.tb_comment', 'pk_comment') AS a_cpk, wnum('app.tb_comment', 'fk_post') AS a_cfk,
	       wnum('app.tb_comment', 'body') AS a_cbody;
});

# created in this order: tv_post has the lowest OID, so the engine refreshes
# it first in each pass (a lock on it holds the whole pass back)
my @tviews = (
	[ tv_post => q{
		SELECT p.pk_post, p.fk_user,
		       jsonb_build_object('id', p.pk_post, 'title', p.title, 'score', p.score,
		                          'author', jsonb_build_object('id', u.pk_user, 'name', u.name),
		                          'comments', (SELECT coalesce(jsonb_agg(jsonb_build_object(
		                                                 'id', c.pk_comment, 'body', c.body)
		                                               ORDER BY c.pk_comment), '[]'::jsonb)
		                                         FROM app.tb_comment c WHERE c.fk_post = p.pk_post)) AS data
		FROM app.tb_post p JOIN app.tb_user u ON u.pk_user = p.fk_user} ],
	[ tv_user => q{
		SELECT u.pk_user,
		       jsonb_build_object('id', u.pk_user, 'name', u.name,
		                          'posts', (SELECT coalesce(jsonb_agg(jsonb_build_object(
		                                              'id', p.pk_post, 'title', p.title)
		                                            ORDER BY p.pk_post), '[]'::jsonb)
		                                      FROM app.tb_post p WHERE p.fk_user = u.pk_user)) AS data
		FROM app.tb_user u} ],
	[ tv_comment => q{
		SELECT c.pk_comment, c.fk_post,
		       jsonb_build_object('id', c.pk_comment, 'body', c.body,
		                          'post', jsonb_build_object('id', p.pk_post, 'title', p.title)) AS data
		FROM app.tb_comment c JOIN app.tb_post p ON p.pk_post = c.fk_post} ],
);
for my $t (@tviews)
{
	$node->safe_psql('postgres',
		"SET client_min_messages = warning; SELECT pg_tviews_create('$t->[0]', \$q\$$t->[1]\$q\$)");
}
# a constraint some data violates: its key fails, is retried, is parked
$node->safe_psql('postgres', q{
	ALTER TABLE tv_post ADD CONSTRAINT tv_post_no_poison CHECK (data->>'title' NOT LIKE 'poison%')});

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Run SQL that may fail; returns (rc, stdout, stderr).
sub try_sql
{
	my ($text) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $text, stdout => \$out, stderr => \$err,
		on_error_stop => 1);
	return ($rc, $out, $err);
}

# The TVIEWs as the catalog names them now: [table, backing view]
sub tview_list
{
	return map { [ split /\|/ ] } split /\n/, sql(q{
		SELECT tview::text, backing_view::text FROM tviews.tview ORDER BY tview::oid});
}

sub differs
{
	my ($tv) = @_;
	my ($view) = map { $_->[1] } grep { $_->[0] eq $tv } tview_list();
	die "no TVIEW $tv" unless defined $view;
	return oracle_count($node, 'postgres', $tv, $view);
}

sub health
{
	my ($component) = @_;
	return sql("SELECT status FROM pg_tviews_health_check() WHERE component = '$component'");
}

sub states
{
	return sql(q{
		SELECT string_agg(entity_name || ':' || state, ' ' ORDER BY entity_name)
		FROM pg_tviews_metadata});
}

# What a DBA sees: printed into the test's log for the failure-modes doc.
sub show
{
	my ($label) = @_;
	note("=== $label: pg_tviews_metadata (entity_name|state|emergency_disabled|pending|failed|last_error)\n"
		  . sql(q{
		SELECT entity_name, state, emergency_disabled, pending_count, failed_count,
		       coalesce(last_error, '-')
		FROM pg_tviews_metadata ORDER BY entity_name}));
	note("=== $label: pg_tviews_queue (entity_name|status|full_refresh|entries|error_message)\n"
		  . sql(q{
		SELECT entity_name, status, full_refresh, count(*),
		       coalesce(string_agg(DISTINCT error_message, '; '), '-')
		FROM pg_tviews_queue GROUP BY 1, 2, 3 ORDER BY 1, 2, 3}));
	note("=== $label: pg_tviews_health_check()\n"
		  . sql(q{SELECT component, status, detail FROM pg_tviews_health_check() ORDER BY component}));
	note("=== $label: engine (pid|state|restarts|last_error) / slot (engine_paused|lag_bytes)\n"
		  . sql(q{
		SELECT pid, state, restarts, coalesce(last_error, '-') FROM pg_tviews_workers
		WHERE worker_type = 'engine' AND database = current_database()})
		  . "\n"
		  . sql(q{SELECT engine_paused, lag_bytes FROM pg_tviews_slots WHERE database = current_database()}));
}

# Writes stopped: the engine catches up and every TVIEW equals its
# backing view exactly.
sub converged
{
	my ($label) = @_;
	is(sql(q{SELECT pg_tviews_wait('60s')}), 't', "$label: pg_tviews_wait says the engine caught up");
	for my $t (tview_list())
	{
		my ($tv, $view) = @$t;
		is(oracle_count($node, 'postgres', $tv, $view), '0',
			"$label: $tv equals $view (EXCEPT ALL both ways)")
		  or diag("$label: rows of $tv differing from $view:\n"
			  . oracle_rows($node, 'postgres', $tv, $view, 10));
	}
}

# pid of this database's engine ('' if none)
sub engine_pid
{
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', q{
		SELECT pid FROM pg_tviews_workers
		WHERE worker_type = 'engine' AND database = current_database() AND pid IS NOT NULL},
		stdout => \$out, stderr => \$err);
	return $rc == 0 ? $out : '';
}

sub wait_for_engine
{
	my ($old, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my $pid = engine_pid();
		return ($pid, time - $start) if $pid ne '' && (!defined $old || $pid ne $old);
		usleep(100_000);
	}
	return ('', time - $start);
}

# The ```sql blocks of a runbook; the first one matching $re.
sub runbook_block
{
	my ($md, $re) = @_;
	my $text = slurp_file("$rbdir/$md");
	while ($text =~ /^```sql\n(.*?)^```$/msg)
	{
		my $block = $1;
		return $block if $block =~ $re;
	}
	BAIL_OUT("no sql block matching $re in $md");
}

# manual-refresh.md, Step 2: every TVIEW that needs it, one at a time
my $refresh_all_block = runbook_block('03-manual-refresh/manual-refresh.md', qr/FOR attempt IN 1 \.\. 3/);
# tview-health-check.md, Step 4: the consistency check
my $consistency_block = runbook_block('01-health-monitoring/tview-health-check.md',
	qr/rows not in its definition/);
# manual-refresh.md, Step 3: re-enable an emergency-disabled TVIEW
my $reenable_block = runbook_block('03-manual-refresh/manual-refresh.md',
	qr/SET emergency_disabled = false/);

# The documented recovery of stale TVIEWs (03-manual-refresh): with the
# base tables being written, pause the engine around the refreshes (the
# runbook's known issue), refresh every TVIEW that needs it, resume.
sub recover_stale
{
	my ($label) = @_;
	like(sql(q{SELECT pg_tviews_system_disable('manual refresh')}), qr/disabled/,
		"$label: recovery: engine paused for the manual refresh");
	my ($rc, $out, $err) = try_sql($refresh_all_block);
	is($rc, 0, "$label: recovery: the manual refresh runbook's DO block runs");
	unlike($err, qr/WARNING|ERROR/, "$label: recovery: no TVIEW refresh failed")
	  or diag($err);
	note("$label: manual refresh:\n$err");
	like(sql(q{SELECT pg_tviews_system_enable()}), qr/enabled/, "$label: recovery: engine resumed");
}

# The consistency check of the health check runbook, as written: runs the
# definitions in pg_tviews_metadata.  Returns (rc, notices).
sub consistency_check
{
	my ($rc, $out, $err) = try_sql($consistency_block);
	return ($rc, $err);
}

# ---------------------------------------------------------------------
# the writer
# ---------------------------------------------------------------------
my $writer;
my $writer_sql = q{
DO $$
DECLARE
    w writer_target;
    tu text; tp text; tc text;
    upk text; uname text; ppk text; pfk text; ptitle text; pscore text; cpk text; cfk text; cbody text;
    i bigint := 0;
    r int; uu int; pp int; cc int;
BEGIN
    SELECT * INTO w FROM writer_target;
    LOOP
        EXIT WHEN (SELECT stop FROM writer_progress);
        i := i + 1;
        BEGIN
            -- the current names: the writer follows renames
            tu := w.u::regclass::text; tp := w.p::regclass::text; tc := w.c::regclass::text;
            upk := wcol(w.u, w.a_upk); uname := wcol(w.u, w.a_uname);
            ppk := wcol(w.p, w.a_ppk); pfk := wcol(w.p, w.a_pfk);
            ptitle := wcol(w.p, w.a_ptitle); pscore := wcol(w.p, w.a_pscore);
            cpk := wcol(w.c, w.a_cpk); cfk := wcol(w.c, w.a_cfk); cbody := wcol(w.c, w.a_cbody);
            r := floor(random() * 100)::int;
            uu := 1 + floor(random() * 20)::int;
            pp := 1 + floor(random() * 200)::int;
            cc := 1 + floor(random() * 1000)::int;
            IF r < 20 THEN
                EXECUTE format('INSERT INTO %s (%s, %s, %s) VALUES (nextval($1), $2, $3)', tc, cpk, cfk, cbody)
                    USING w.cs::regclass, pp, 'new comment ' || i;
            ELSIF r < 40 THEN
                EXECUTE format('UPDATE %s SET %s = $1, %s = %s + 1 WHERE %s = $2', tp, ptitle, pscore, pscore, ppk)
                    USING 'post ' || pp || ' v' || i, pp;
            ELSIF r < 50 THEN
                EXECUTE format('UPDATE %s SET %s = $1 WHERE %s = $2', tc, cfk, cpk) USING pp, cc;
            ELSIF r < 58 THEN
                EXECUTE format('DELETE FROM %s WHERE %s = $1', tc, cpk) USING cc;
            ELSIF r < 68 THEN
                EXECUTE format('UPDATE %s SET %s = $1 WHERE %s = $2', tu, uname, upk)
                    USING 'user ' || uu || ' v' || i, uu;
            ELSIF r < 76 THEN
                EXECUTE format('UPDATE %s SET %s = $1 WHERE %s = $2', tp, pfk, ppk) USING uu, pp;
            ELSIF r < 82 THEN
                EXECUTE format('INSERT INTO %s (%s, %s, %s) VALUES (nextval($1), $2, $3)', tp, ppk, pfk, ptitle)
                    USING w.ps::regclass, uu, 'new post ' || i;
            ELSIF r < 85 THEN
                EXECUTE format('DELETE FROM %s WHERE %s = $1', tp, ppk) USING pp;
            ELSE
                EXECUTE format('UPDATE %s SET %s = %s || $1 WHERE %s = $2', tc, cbody, cbody, cpk) USING '.', cc;
            END IF;
            UPDATE writer_progress SET txns = txns + 1;
        EXCEPTION WHEN OTHERS THEN
            UPDATE writer_progress SET errors = errors + 1, last_error = SQLERRM;
        END;
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
END
$$;
};

sub writer_txns { return sql('SELECT txns FROM writer_progress'); }

sub start_writer
{
	my ($label) = @_;
	my ($out, $err) = ('', '');
	sql('UPDATE writer_progress SET stop = false');
	local $ENV{PGAPPNAME} = 'destructive_writer';
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-d', $node->connstr('postgres'), '-c', $writer_sql ],
		'<', \undef, '>', \$out, '2>', \$err);
	$writer = { h => $h, out => \$out, err => \$err };
	my $before = writer_txns();
	my $start = time;
	usleep(50_000)
	  while writer_txns() < $before + 10 && time - $start < 60
	  && (time - $start < 2 || writer_running());
	cmp_ok(writer_txns(), '>=', $before + 10, "$label: the writer writes")
	  or diag("writer: " . sql('SELECT * FROM writer_progress') . "\n" . ${ $writer->{err} });
}

sub writer_running
{
	return sql(q{
		SELECT count(*) FROM pg_stat_activity WHERE application_name = 'destructive_writer'}) eq '1';
}

# Let the writer write some more (it must still be alive).
sub writes_flow
{
	my ($label, $n) = @_;
	$n //= 20;
	my $before = writer_txns();
	my $start = time;
	usleep(50_000) while writer_txns() < $before + $n && time - $start < 60;
	cmp_ok(writer_txns(), '>=', $before + $n, "$label: writes keep flowing");
}

sub stop_writer
{
	return unless $writer;
	sql('UPDATE writer_progress SET stop = true');
	my $start = time;
	usleep(50_000) while writer_running() && time - $start < 60;
	if (writer_running())
	{
		sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		      WHERE application_name = 'destructive_writer'});
	}
	$writer->{h}->finish;
	note("writer: " . sql(q{SELECT txns || ' transactions, ' || errors || ' failed (last: '
	                              || coalesce(last_error, '-') || ')' FROM writer_progress}));
	$writer = undef;
}

# Hold the engine back: a lock on tv_post (refreshed first in each pass)
# that conflicts with the engine's refresh lock; readers pass.  Then a
# probe transaction queues keys of all three TVIEWs (tv_user 99 and
# tv_comment 9001, which the writer never touches; tv_post 901-903), and we
# wait until the engine waits for the lock with that work queued.
my $probe_n = 0;
sub hold_engine
{
	my ($label) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN');
	$holder->query_safe('LOCK TABLE tv_post IN EXCLUSIVE MODE');
	$probe_n++;
	sql(qq{
		BEGIN;
		UPDATE app.tb_user SET name = 'probe $probe_n' WHERE pk_user = 99;
		UPDATE app.tb_comment SET body = 'probe comment $probe_n' WHERE pk_comment = 9001;
		COMMIT;});
	ok($node->poll_query_until('postgres', q{
		SELECT (SELECT count(*) FROM pg_stat_activity
		        WHERE backend_type = 'pg_tviews engine' AND datname = current_database()
		          AND wait_event_type = 'Lock') = 1
		   AND (SELECT count(DISTINCT entity_name) FROM pg_tviews_queue
		        WHERE processed_at IS NULL) = 3}),
		"$label: the engine waits for the lock on tv_post, with work of the three TVIEWs queued");
	is(sql(q{
		SELECT string_agg(entity_name || ':' || primary_key_value, ' '
		                  ORDER BY entity_name, primary_key_value)
		FROM pg_tviews_queue WHERE processed_at IS NULL}),
		'tv_comment:9001 tv_post:901 tv_post:902 tv_post:903 tv_user:99',
		"$label: the probe's keys are pending");
	return $holder;
}

sub release_engine
{
	my ($holder) = @_;
	$holder->query_safe('COMMIT');
	$holder->quit;
}

# ---------------------------------------------------------------------
# 0. the start: everything maintained
# ---------------------------------------------------------------------
isnt((wait_for_engine(undef, 60))[0], '', 'the engine runs');
start_writer('initial');
writes_flow('initial', 100);
stop_writer();
converged('initial');
is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', 'initial: every TVIEW ready');
is(sql(q{SELECT string_agg(status, ',' ORDER BY component) FROM pg_tviews_health_check()}),
	'ok,ok,ok,ok', 'initial: the health check is all ok');

# ---------------------------------------------------------------------
# 1. pg_cancel_backend / pg_terminate_backend of everything matching
#    '%tview%' or '%refresh%' (emergency runbook, Option 2), own pid excluded
# ---------------------------------------------------------------------
my $match = q{(query LIKE '%tview%' OR query LIKE '%refresh%') AND pid <> pg_backend_pid()};
for my $case ([ cancel => 'pg_cancel_backend', qr/ERROR:  canceling statement due to user request/ ],
	[ terminate => 'pg_terminate_backend', qr/FATAL:  terminating connection due to administrator command/ ])
{
	my ($label, $func, $job_error) = @$case;
	start_writer($label);

	# a manual refresh job, the kind of session the statement is meant for
	my ($jout, $jerr) = ('', '');
	my $job;
	{
		local $ENV{PGAPPNAME} = 'refresh_job';
		$job = IPC::Run::start(
			[ $node->installed_command('psql'), '-X', '-d', $node->connstr('postgres'), '-c',
			  q{SELECT pg_tviews_refresh('tv_user') FROM pg_sleep(120)} ],
			'<', \undef, '>', \$jout, '2>', \$jerr);
	}
	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'refresh_job' AND state = 'active'}),
		"$label: a manual refresh job runs");

	my $old = engine_pid();
	my $restarts = sql(q{SELECT restarts FROM pg_tviews_workers WHERE worker_type = 'engine'});
	my $matching = sql(qq{
		SELECT backend_type || ' ' || coalesce(nullif(application_name, ''), '-') || ': ' || left(query, 50)
		FROM pg_stat_activity WHERE $match ORDER BY 1});
	note("$label: sessions matching the runbook's pattern:\n$matching");
	like($matching, qr/^pg_tviews engine pg_tviews engine: pg_tviews: refreshing TVIEWs$/m,
		"$label: the engine's query matches the pattern");
	unlike($matching, qr/destructive_writer/, "$label: the writer does not match");

	my ($rc, $out, $err) = try_sql("SELECT $func(pid) FROM pg_stat_activity WHERE $match;");
	is($rc, 0, "$label: $func() of every matching session (own pid excluded) runs without error")
	  or diag($err);

	$job->finish;
	like($jerr, $job_error, "$label: the refresh job was hit");
	my ($new, $secs) = wait_for_engine($old, $engine_back_within);
	isnt($new, '', "$label: the engine is back with a new pid within $engine_back_within s");
	note(sprintf("%s: engine back after %.1f s (pid %s -> %s)", $label, $secs, $old, $new));
	ok(writer_running(), "$label: the writer survives");
	writes_flow($label);
	cmp_ok(sql(q{SELECT restarts FROM pg_tviews_workers WHERE worker_type = 'engine'}), '>', $restarts,
		"$label: pg_tviews_workers counts the restart");
	show("after $func");
	stop_writer();
	converged("after $func");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', "after $func: every TVIEW ready");
}

# The note under Option 2 says to "add AND pid <> pg_backend_pid()": added
# literally after the two ORed LIKEs it binds to the second one only, and
# the statement still cancels its own session (its text contains 'tview').
{
	my ($rc, $out, $err) = try_sql(q{
		SELECT pg_cancel_backend(pid)
		FROM pg_stat_activity
		WHERE query LIKE '%tview%' OR query LIKE '%refresh%' AND pid <> pg_backend_pid();});
	like($err, qr/canceling statement due to user request/,
		"Option 2 with 'AND pid <> pg_backend_pid()' appended unparenthesized still cancels itself");
	isnt((wait_for_engine(undef, $engine_back_within))[0], '', 'the engine runs after that');
}

# ---------------------------------------------------------------------
# 2. dropping queued work by hand
# ---------------------------------------------------------------------

# (a) DELETE by entity_name, as queue-management.md writes it
{
	my $label = 'DELETE by entity_name';
	my $holder = hold_engine($label);
	start_writer($label);
	my ($rc, $out, $err) = try_sql(q{
		DELETE FROM pg_tviews_queue
		WHERE ctid IN (SELECT q.ctid FROM pg_tviews_queue q
		               WHERE q.entity_name = 'tv_user' AND q.processed_at IS NULL);});
	is("$rc|$err", '0|', "$label: the DELETE runs");
	is(sql(q{SELECT count(*) FROM pg_tviews_queue WHERE entity_name = 'tv_user' AND processed_at IS NULL}),
		'0', "$label: no tv_user work pending");
	is(sql(q{SELECT status || ':' || error_message FROM pg_tviews_queue
	         WHERE entity_name = 'tv_user' AND primary_key_value = '99' ORDER BY created_at DESC LIMIT 1}),
		'dropped:dropped by hand', "$label: the entry is kept as history: dropped, 'dropped by hand'");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:stale', "$label: tv_user (only) is stale");
	is(health('tviews'), 'critical', "$label: the health check says tviews critical");
	show($label);
	release_engine($holder);
	writes_flow($label);
	stop_writer();
	is(sql(q{SELECT pg_tviews_wait('60s')}), 't', "$label: the engine catches up");
	cmp_ok(differs('tv_user'), '>', 0, "$label: the dropped change of user 99 is missing from tv_user");
	is(differs('tv_comment'), '0', "$label: tv_comment, whose work was not dropped, is exact");
	is(differs('tv_post'), '0', "$label: tv_post, whose work was not dropped, is exact");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:stale', "$label: tv_user is still stale");
	show("$label, engine released");
	start_writer("$label, recovery");
	recover_stale($label);
	stop_writer();
	converged("$label, recovered");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', "$label, recovered: every TVIEW ready");
	is(health('tviews'), 'ok', "$label, recovered: the health check says tviews ok");
}

# (b) DELETE of everything
{
	my $label = 'DELETE all';
	my $holder = hold_engine($label);
	start_writer($label);
	my $history = sql(q{SELECT count(*) FROM pg_tviews_queue WHERE status IN ('done', 'dropped')});
	my ($rc, $out, $err) = try_sql(q{DELETE FROM pg_tviews_queue;});
	is("$rc|$err", '0|', "$label: DELETE FROM pg_tviews_queue runs");
	note("$label: DELETE FROM pg_tviews_queue reports: $out");
	is(sql(q{SELECT count(*) FROM pg_tviews_queue WHERE processed_at IS NULL}), '0',
		"$label: nothing pending");
	cmp_ok(sql(q{SELECT count(*) FROM pg_tviews_queue WHERE status IN ('done', 'dropped')}), '>=', $history,
		"$label: processed rows are history and stay");
	is(states(), 'tv_comment:stale tv_post:stale tv_user:stale', "$label: every TVIEW is stale");
	is(health('tviews'), 'critical', "$label: the health check says tviews critical");
	show($label);
	release_engine($holder);
	writes_flow($label);
	stop_writer();
	is(sql(q{SELECT pg_tviews_wait('60s')}), 't', "$label: the engine catches up");
	cmp_ok(differs('tv_user'), '>', 0, "$label: the dropped change of user 99 is missing from tv_user");
	cmp_ok(differs('tv_comment'), '>', 0, "$label: the dropped change of comment 9001 is missing from tv_comment");
	# tv_post's keys had been taken by the engine before it waited for the
	# lock: dropping their queue entries did not stop their refresh
	note("$label: rows of tv_post differing from its definition: " . differs('tv_post'));
	is(states(), 'tv_comment:stale tv_post:stale tv_user:stale', "$label: every TVIEW is still stale");
	show("$label, engine released");
	start_writer("$label, recovery");
	recover_stale($label);
	stop_writer();
	converged("$label, recovered");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', "$label, recovered: every TVIEW ready");
}

# (c) TRUNCATE pg_tviews_queue, with a parked key
{
	my $label = 'TRUNCATE pg_tviews_queue';
	sql(q{INSERT INTO app.tb_post VALUES (999, 1, 'poison')});
	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_tviews_queue
		WHERE entity_name = 'tv_post' AND primary_key_value = '999' AND status = 'failed'}),
		"$label: key 999 of tv_post is parked");
	is(health('queue'), 'warning', "$label: the health check warns of the parked key");
	my $holder = hold_engine($label);
	start_writer($label);
	my ($rc, $out, $err) = try_sql(q{TRUNCATE pg_tviews_queue;});
	is("$rc|$err", '0|', "$label: TRUNCATE pg_tviews_queue runs");
	is(sql(q{SELECT count(*) FROM pg_tviews_queue WHERE processed_at IS NULL OR status = 'failed'}), '0',
		"$label: nothing pending or parked");
	is(sql(q{SELECT count(*) FROM tviews.failed_key}), '0', "$label: tviews.failed_key is empty");
	is(states(), 'tv_comment:stale tv_post:stale tv_user:stale', "$label: every TVIEW is stale");
	is(health('queue') . ' ' . health('tviews'), 'ok critical',
		"$label: the health check: queue ok, tviews critical");
	show($label);
	release_engine($holder);
	writes_flow($label);
	stop_writer();
	is(sql(q{SELECT pg_tviews_wait('60s')}), 't', "$label: the engine catches up");
	cmp_ok(differs('tv_user'), '>', 0, "$label: the dropped change of user 99 is missing from tv_user");
	cmp_ok(differs('tv_post'), '>', 0, "$label: the forgotten parked key 999 is missing from tv_post");
	show("$label, engine released");
	start_writer("$label, recovery");
	# fix the cause first (manual-refresh.md: "the cause is fixed")
	sql(q{UPDATE app.tb_post SET title = 'antidote' WHERE pk_post = 999});
	recover_stale($label);
	stop_writer();
	converged("$label, recovered");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', "$label, recovered: every TVIEW ready");
	is(sql(q{SELECT string_agg(status, ',' ORDER BY component) FROM pg_tviews_health_check()}),
		'ok,ok,ok,ok', "$label, recovered: the health check is all ok")
	  or show("$label, recovered");
}

# ---------------------------------------------------------------------
# 3. emergency disable and enable of one TVIEW (incident checklist)
# ---------------------------------------------------------------------
{
	my $label = 'emergency disable';
	start_writer($label);
	sql(q{
		UPDATE pg_tviews_metadata
		SET emergency_disabled = true,
		    emergency_disable_time = now(),
		    emergency_disable_reason = 'incident: refresh of this TVIEW fails or overloads the server'
		WHERE entity_name = 'tv_comment'});
	sql(q{UPDATE app.tb_comment SET body = 'while disabled' WHERE pk_comment = 9002});
	writes_flow($label);
	stop_writer();
	is(sql(q{SELECT pg_tviews_wait('60s')}), 't', "$label: pg_tviews_wait returns true (the others are maintained)");
	is(sql(q{SELECT state || ' ' || emergency_disabled || ' ' || (emergency_disable_time IS NOT NULL)
	         || ' ' || pending_count FROM pg_tviews_metadata WHERE entity_name = 'tv_comment'}),
		'stale true true 0', "$label: tv_comment is stale, disabled, stamped, nothing pending for it");
	cmp_ok(differs('tv_comment'), '>', 0, "$label: tv_comment does not follow the writes");
	is(differs('tv_post') . ' ' . differs('tv_user'), '0 0', "$label: tv_post and tv_user are maintained");
	is(health('tviews'), 'critical', "$label: the health check says tviews critical");
	like(sql(q{SELECT detail FROM pg_tviews_health_check() WHERE component = 'tviews'}),
		qr/1 emergency-disabled/, "$label: ... naming one emergency-disabled TVIEW");
	show($label);

	start_writer("$label, re-enable");
	(my $block = $reenable_block) =~ s/\byour_tview\b/tv_comment/g;
	my ($rc, $out, $err) = try_sql($block);
	is("$rc|$err", '0|', "$label: the re-enable block of manual-refresh.md runs");
	note("$label: re-enable block printed:\n$out");
	like($out, qr/^t\n.*tv_comment\|ready\|f$/ms, "$label: re-enabled: caught up, tv_comment ready");
	writes_flow("$label, re-enabled");
	stop_writer();
	converged("$label, re-enabled");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', "$label, re-enabled: every TVIEW ready");
}

# ---------------------------------------------------------------------
# 4. system disable and enable
# ---------------------------------------------------------------------
{
	my $label = 'system disable';
	start_writer($label);
	like(sql(q{SELECT pg_tviews_system_disable('incident: engine paused to relieve the server')}),
		qr/disabled/, "$label: pg_tviews_system_disable()");
	ok($node->poll_query_until('postgres', q{
		SELECT state = 'paused' FROM pg_tviews_workers WHERE worker_type = 'engine'}),
		"$label: pg_tviews_workers says paused");
	my $lag = sql(q{SELECT lag_bytes FROM pg_tviews_slots WHERE database = current_database()});
	writes_flow($label, 50);
	cmp_ok(sql(q{SELECT lag_bytes FROM pg_tviews_slots WHERE database = current_database()}), '>', $lag,
		"$label: the slot's lag grows");
	is(sql(q{SELECT pg_tviews_wait('1s')}), 'f', "$label: pg_tviews_wait times out");
	is(health('engine') . ' ' . sql(q{SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database()}),
		'warning t', "$label: the health check warns (engine), the slot says engine_paused");
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready',
		"$label: nothing is dropped: no TVIEW is stale");
	show($label);
	like(sql(q{SELECT pg_tviews_system_enable()}), qr/enabled/, "$label: pg_tviews_system_enable()");
	writes_flow("$label, enabled");
	stop_writer();
	converged("$label, enabled");
	is(sql(q{SELECT string_agg(status, ',' ORDER BY component) FROM pg_tviews_health_check()}),
		'ok,ok,ok,ok', "$label, enabled: the health check is all ok");
}

# ---------------------------------------------------------------------
# 5. TRUNCATE of a base table
# ---------------------------------------------------------------------
{
	my $label = 'TRUNCATE app.tb_comment';
	my $full_before = sql(q{SELECT string_agg(entity_name || ':' || full_refreshes, ' ' ORDER BY entity_name)
	                        FROM pg_tviews_metadata});
	start_writer($label);
	sql(q{TRUNCATE app.tb_comment});
	writes_flow($label);
	stop_writer();
	show($label);
	converged($label);
	my %full_after = map { split /:/ } split / /, sql(q{
		SELECT string_agg(entity_name || ':' || full_refreshes, ' ' ORDER BY entity_name)
		FROM pg_tviews_metadata});
	my %full_before = map { split /:/ } split / /, $full_before;
	ok($full_after{tv_post} > $full_before{tv_post} && $full_after{tv_comment} > $full_before{tv_comment},
		"$label: tv_post and tv_comment were refreshed whole ($full_before -> "
		  . join(' ', map { "$_:$full_after{$_}" } sort keys %full_after) . ')');
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', "$label: every TVIEW ready");
}

# ---------------------------------------------------------------------
# 6. column DDL on base tables
# ---------------------------------------------------------------------
{
	my $label = 'column DDL';
	start_writer($label);
	my ($rc, $out, $err) = try_sql(q{ALTER TABLE app.tb_post ALTER COLUMN title TYPE varchar(300);});
	like($err, qr/ERROR:  cannot alter type of a column used by a view or rule\nDETAIL:  rule _RETURN on view tv_\w+_def depends on column "title"/,
		"$label: ALTER COLUMN TYPE of a used column is refused by PostgreSQL");
	($rc, $out, $err) = try_sql(q{ALTER TABLE app.tb_comment ALTER COLUMN fk_post TYPE bigint;});
	like($err, qr/ERROR:  cannot alter type of a column used by a view or rule/,
		"$label: ALTER COLUMN TYPE of a lineage column is refused by PostgreSQL");
	($rc, $out, $err) = try_sql(q{ALTER TABLE app.tb_post DROP COLUMN title;});
	like($err, qr/ERROR:  cannot drop column title of table app\.tb_post because other objects depend on it/,
		"$label: DROP COLUMN of a used column is refused by PostgreSQL");
	note("$label: DROP COLUMN error:\n$err");

	($rc, $out, $err) = try_sql(q{
		ALTER TABLE app.tb_user DROP COLUMN spare;
		ALTER TABLE app.tb_comment DROP COLUMN note;
		ALTER TABLE app.tb_post ADD COLUMN extra int NOT NULL DEFAULT 7;
		ALTER TABLE app.tb_comment ADD COLUMN lang text;});
	is("$rc|$err", '0|', "$label: DROP COLUMN of unused columns and ADD COLUMN run");
	sql(q{
		UPDATE app.tb_post SET extra = 8, title = title || ' +extra' WHERE pk_post IN (901, 902);
		INSERT INTO app.tb_comment (pk_comment, fk_post, body, lang) VALUES (9101, 901, 'with lang', 'en');
		UPDATE app.tb_user SET name = 'probe after drop' WHERE pk_user = 99;});
	writes_flow($label);
	stop_writer();
	show($label);
	converged($label);
	is(states(), 'tv_comment:ready tv_post:ready tv_user:ready', "$label: every TVIEW ready");
}

# ---------------------------------------------------------------------
# 7. renames
# ---------------------------------------------------------------------

# TVIEWs whose definition in pg_tviews_metadata matches the SQL regex $re
sub definitions_matching
{
	my ($re) = @_;
	return sql(qq{
		SELECT coalesce(string_agg(entity_name, ' ' ORDER BY entity_name), '')
		FROM pg_tviews_metadata WHERE definition ~ '$re'});
}

sub rename_case
{
	my ($label, $ddl, $probe, $check) = @_;
	start_writer($label);
	my ($rc, $out, $err) = try_sql($ddl);
	is("$rc|$err", '0|', "$label: $ddl");
	sql($probe);
	writes_flow($label);
	stop_writer();
	show($label);
	converged($label);
	is(states(), join(' ', map { "$_:ready" } sort map { $_->[0] } tview_list()),
		"$label: every TVIEW ready");
	$check->() if $check;
}

rename_case('rename base table', 'ALTER TABLE app.tb_post RENAME TO tb_article;',
	q{UPDATE app.tb_article SET title = 'probe post renamed table' WHERE pk_post = 901},
	sub {
		is(sql(q{SELECT string_agg(DISTINCT base_relation, ' ' ORDER BY base_relation) FROM pg_tviews_dependencies}),
			'app.tb_article app.tb_comment app.tb_user',
			'rename base table: pg_tviews_dependencies shows the new name');
		is(definitions_matching('\\mtb_post\\M'), '',
			'rename base table: no definition in pg_tviews_metadata names tb_post any more');
	});

rename_case('rename used column', 'ALTER TABLE app.tb_article RENAME COLUMN title TO headline;',
	q{UPDATE app.tb_article SET headline = 'probe post renamed column' WHERE pk_post = 902},
	sub {
		is(sql(q{SELECT count(*) FILTER (WHERE 'title' = ANY (columns_used)) || ' '
		              || count(*) FILTER (WHERE 'headline' = ANY (columns_used))
		         FROM pg_tviews_dependencies WHERE base_relation = 'app.tb_article'}),
			'0 3', 'rename used column: pg_tviews_dependencies.columns_used shows headline, not title');
		is(definitions_matching('\\mp\\.title\\M'), '',
			'rename used column: no definition in pg_tviews_metadata reads p.title any more');
	});

rename_case('rename TVIEW', 'ALTER TABLE tv_comment RENAME TO tv_remark;',
	q{UPDATE app.tb_comment SET body = 'probe comment renamed TVIEW' WHERE pk_comment = 9101},
	sub {
		is(sql(q{SELECT string_agg(entity_name, ' ' ORDER BY entity_name) FROM pg_tviews_metadata}),
			'tv_post tv_remark tv_user', 'rename TVIEW: pg_tviews_metadata shows the new name');
		is(sql(q{SELECT count(*) FROM pg_tviews_dependencies WHERE entity_name = 'tv_remark'}), '2',
			'rename TVIEW: pg_tviews_dependencies shows the new name');
		my ($rc, $out, $err) = try_sql(q{
			INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_remark', '9101');});
		is("$rc|$err", '0|', 'rename TVIEW: a refresh can be queued under the new name');
		is(sql(q{SELECT pg_tviews_wait('60s')}), 't', 'rename TVIEW: ... and is applied');
		note('rename TVIEW: backing view of tv_remark: '
			  . sql(q{SELECT backing_view FROM tviews.tview WHERE tview = 'tv_remark'::regclass}));
	});

rename_case('rename schema', 'ALTER SCHEMA app RENAME TO app2;',
	q{UPDATE app2.tb_user SET name = 'probe renamed schema' WHERE pk_user = 99},
	sub {
		is(sql(q{SELECT string_agg(DISTINCT base_relation, ' ' ORDER BY base_relation) FROM pg_tviews_dependencies}),
			'app2.tb_article app2.tb_comment app2.tb_user',
			'rename schema: pg_tviews_dependencies shows the new names');
		is(definitions_matching('\\mapp\\.'), '',
			'rename schema: no definition in pg_tviews_metadata names schema app any more');
	});

# the runbook's consistency check runs the definitions of pg_tviews_metadata
{
	my ($rc, $notices) = consistency_check();
	note("consistency check after the renames:\n$notices");
	is($rc, 0, 'after the renames: the consistency check of the health check runbook runs')
	  or diag($notices);
}

# a column a lineage rule reads (tv_post: c.fk_post = p.pk_post), and a
# key column: maintenance matches them by name, so the rename is refused
# (as PostgreSQL refuses to drop a column a view uses), nothing changes
for my $case (
	[ 'lineage column', 'ALTER TABLE app2.tb_comment RENAME COLUMN fk_post TO post_ref' ],
	[ 'key column',     'ALTER TABLE app2.tb_comment RENAME COLUMN pk_comment TO id' ],
	[ 'TVIEW column',   'ALTER TABLE tv_post RENAME COLUMN title TO headline' ])
{
	my ($what, $ddl) = @$case;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$ddl",
		on_error_stop => 0);
	like($err, qr/ERROR:  2BP01: cannot rename column .* (because TVIEWs are maintained through it|of TVIEW)/,
		"rename $what: refused with 2BP01");
	like($err, qr/HINT:  .*pg_tviews_drop\(\)/, "rename $what: the hint says how to do it");
}
is(sql(q{SELECT string_agg(entity_name || ':' || source_column, ' ' ORDER BY entity_name)
         FROM pg_tviews_dependencies WHERE base_relation = 'app2.tb_comment'}),
	'tv_post:fk_post tv_remark:pk_comment',
	'refused renames: the lineage is unchanged');
sql(q{INSERT INTO app2.tb_comment (pk_comment, fk_post, body) VALUES (9102, 903, 'after refused renames');
      UPDATE app2.tb_comment SET fk_post = 902 WHERE pk_comment = 9101});
is(sql(q{SELECT pg_tviews_wait('60s')}), 't', 'refused renames: the engine caught up');
is(oracle_count($node, 'postgres', 'tv_post', 'tv_post_def'), '0',
	'refused renames: tv_post still follows writes exactly');

# ---------------------------------------------------------------------
# the end
# ---------------------------------------------------------------------
{
	my $log = slurp_file($node->logfile);
	my @crashes = $log =~ /^.*(?:terminated by signal|PANIC).*$/mg;
	is(join("\n", @crashes), '', 'no server process crashed');
	my @bg = $log =~ /^\S+ \S+ \S+ \[\d+\] (?:ERROR|WARNING|FATAL):\s+(.*)$/mg;
	note("errors and warnings of the background workers:\n" . join("\n", @bg));
}

$node->stop;
done_testing();
