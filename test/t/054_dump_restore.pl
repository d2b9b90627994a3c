# pg_dump / pg_restore of a database with pg_tviews.
#
# Database src on node 1: base tables tb_user, tb_post, tb_comment and
# three TVIEWs:
#   tv_post     a join (post + author) with the post's comments as a
#               jsonb_agg (pg_tviews_create);
#   tv_user     each user with its posts as a jsonb_agg (pg_tviews_create),
#               emergency-disabled with a reason;
#   tv_comment  a join (comment + post title), made by CREATE TABLE tv_x AS.
# tv_post has a CHECK constraint that a poisoned post violates: its key is
# parked (tviews.failed_key, last_error).
#
# Dump A (pg_dump -Fc, engine caught up) is restored with plain pg_restore
#   - into a new database dst on the same node, and
#   - into a database on a second node;
# each time: pg_restore reports no error; the catalog (tviews.tview,
# source, tracked, failed_key) equals src's at dump time; restored TVIEWs
# come back 'rebuilding' and the engine rebuilds them; the
# TVIEWs hold the same rows; the status tables work (pg_tviews_metadata
# lists the TVIEWs with their states, the parked key is in
# pg_tviews_queue, the engine of the new database streams its own slot);
# then writes to the restored base tables are applied by the engine, the
# documented recoveries (fix the cause, retry the parked key, re-enable the
# TVIEW) work there, and every TVIEW equals its definition exactly.
#
# Dump B is taken while the engine is behind (held back by a lock on
# tv_post, so that the dump's TVIEW rows lack the latest writes to its base
# tables): after restoring it and pg_tviews_wait(), the restored TVIEWs
# must equal their definitions too.
#
# pg_restore --single-transaction of dump A must work as well.  A parallel
# restore (-j) is run and what it restored is printed (not asserted: its
# outcome varies from run to run).
#
# The original database keeps working throughout.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use PgTviews::Differential qw(oracle_count oracle_rows);
use Test::More;

my $repo = $ENV{PGTV_REPO}
  or BAIL_OUT('PGTV_REPO is not set (run the TAP tests through scripts/run-tests.sh)');
my $rbdir = "$repo/docs/operations/runbooks";

my $node = new_node('dump_source');
$node->append_conf('postgresql.conf', q{
pg_tviews.max_retries = 2
pg_tviews.retry_delay = 100ms
});
$node->start;
my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	SET client_min_messages = warning;
	CREATE EXTENSION pg_tviews;
	CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text NOT NULL);
	CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL, title text NOT NULL);
	CREATE TABLE tb_comment (pk_comment int PRIMARY KEY, fk_post int NOT NULL, body text NOT NULL);
	INSERT INTO tb_user SELECT i, 'user ' || i FROM generate_series(1, 20) i;
	INSERT INTO tb_post SELECT i, 1 + i % 20, 'post ' || i FROM generate_series(1, 200) i;
	INSERT INTO tb_comment SELECT i, 1 + i % 200, 'comment ' || i FROM generate_series(1, 1000) i;
	SELECT pg_tviews_create('tv_post', $$
		SELECT p.pk_post, p.fk_user,
		       jsonb_build_object('id', p.pk_post, 'title', p.title,
		                          'author', jsonb_build_object('id', u.pk_user, 'name', u.name),
		                          'comments', (SELECT coalesce(jsonb_agg(jsonb_build_object(
		                                                 'id', c.pk_comment, 'body', c.body)
		                                               ORDER BY c.pk_comment), '[]'::jsonb)
		                                         FROM tb_comment c WHERE c.fk_post = p.pk_post)) AS data
		FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user$$);
	SELECT pg_tviews_create('tv_user', $$
		SELECT u.pk_user,
		       jsonb_build_object('id', u.pk_user, 'name', u.name,
		                          'posts', (SELECT coalesce(jsonb_agg(jsonb_build_object(
		                                              'id', p.pk_post, 'title', p.title)
		                                            ORDER BY p.pk_post), '[]'::jsonb)
		                                      FROM tb_post p WHERE p.fk_user = u.pk_user)) AS data
		FROM tb_user u$$);
});
$node->safe_psql('src', q{
	CREATE TABLE tv_comment AS
	SELECT c.pk_comment, c.fk_post,
	       jsonb_build_object('id', c.pk_comment, 'body', c.body, 'post_title', p.title) AS data
	FROM tb_comment c JOIN tb_post p ON p.pk_post = c.fk_post});
$node->safe_psql('src', q{
	ALTER TABLE tv_post ADD CONSTRAINT tv_post_no_poison CHECK (data->>'title' NOT LIKE 'poison%');
	INSERT INTO tb_post VALUES (999, 1, 'poison');});
ok($node->poll_query_until('src', q{
	SELECT count(*) = 1 FROM pg_tviews_queue WHERE status = 'failed' AND primary_key_value = '999'}),
	'src: key 999 of tv_post is parked');
$node->safe_psql('src', q{
	UPDATE pg_tviews_metadata
	SET emergency_disabled = true,
	    emergency_disable_time = '2026-01-02 03:04:05+00',
	    emergency_disable_reason = 'dump test: disabled before the dump'
	WHERE entity_name = 'tv_user'});

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

# The catalog, as text (what must come back identical).
my %catalog_sql = (
	tview => q{
		SELECT tview::text, backing_view::text, key_column, key_type::text, md5(definition),
		       created_at, emergency_disabled, emergency_disable_time,
		       emergency_disable_reason
		FROM tviews.tview ORDER BY 1},
	source => q{
		SELECT tview::text, source::text, rule, source_column, tview_column, columns_used,
		       location, source_is_tview, id
		FROM tviews.source ORDER BY tview::text, id},
	tracked => q{SELECT relid::text, lineage_columns FROM tviews.tracked ORDER BY 1},
	failed_key => q{
		SELECT tview::text, key, full_refresh, error, attempts, failed_at, id, enqueued_at
		FROM tviews.failed_key ORDER BY 1, 2},
);
# (state and the refresh counters are not compared: restored TVIEWs come
# back 'rebuilding' and the engine refreshes them whole; tviews.engine is
# not dumped: a restored database starts with its engine on)

sub catalog
{
	my ($n, $db) = @_;
	return { map { $_ => $n->safe_psql($db, $catalog_sql{$_}) } keys %catalog_sql };
}

# md5 of each TVIEW's rows
sub contents
{
	my ($n, $db) = @_;
	my @tvs = split /\n/, $n->safe_psql($db, q{SELECT tview::text FROM tviews.tview ORDER BY 1});
	return join(' ', map {
		"$_:" . $n->safe_psql($db, "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM $_ x")
	} @tvs);
}

# Each TVIEW against its backing view; all must be 0.
sub check_exact
{
	my ($n, $db, $label) = @_;
	is($n->safe_psql($db, q{SELECT pg_tviews_wait('60s')}), 't',
		"$label: pg_tviews_wait says the engine caught up");
	for my $row (split /\n/, $n->safe_psql($db, q{
		SELECT tview::text || '|' || backing_view::text FROM tviews.tview ORDER BY 1}))
	{
		my ($tv, $view) = split /\|/, $row;
		is(oracle_count($n, $db, $tv, $view), '0', "$label: $tv equals $view (EXCEPT ALL both ways)")
		  or diag("$label: rows of $tv differing from $view:\n" . oracle_rows($n, $db, $tv, $view, 10));
	}
}

# Writes touching every lineage rule; $o makes the new keys unique.
sub write_round
{
	my ($n, $db, $o) = @_;
	$n->safe_psql($db, qq{
		UPDATE tb_user SET name = name || ' r$o' WHERE pk_user % 3 = $o % 3;
		INSERT INTO tb_post SELECT $o * 1000 + i, 1 + i % 20, 'post r$o ' || i FROM generate_series(1, 20) i;
		INSERT INTO tb_comment SELECT $o * 100000 + i, $o * 1000 + 1 + i % 20, 'comment r$o ' || i
		  FROM generate_series(1, 60) i;
		UPDATE tb_comment SET fk_post = 1 + (fk_post + $o) % 200 WHERE pk_comment % 13 = $o % 13;
		DELETE FROM tb_comment WHERE pk_comment % 17 = $o % 17 AND pk_comment < 1000;
		UPDATE tb_post SET fk_user = 1 + (fk_user + $o) % 20, title = title || ' r$o'
		  WHERE pk_post % 11 = $o % 11 AND pk_post < 999;
		DELETE FROM tb_post WHERE pk_post % 29 = $o % 29 AND pk_post < 999;});
}

# The ```sql block of a runbook matching $re, with your_tview bound.
sub runbook_block
{
	my ($md, $re, $tview) = @_;
	my $text = slurp_file("$rbdir/$md");
	while ($text =~ /^```sql\n(.*?)^```$/msg)
	{
		my $block = $1;
		next unless $block =~ $re;
		$block =~ s/\byour_tview\b/$tview/g if defined $tview;
		return $block;
	}
	BAIL_OUT("no sql block matching $re in $md");
}

# The documented recoveries of what the dump carried: fix the poisoned
# post, retry the parked key (queue-management.md, Step 3), re-enable
# tv_user (manual-refresh.md, Step 3), then refresh what still has an
# error (manual-refresh.md, Step 2; no writes run meanwhile).
sub recover
{
	my ($n, $db, $label) = @_;
	$n->safe_psql($db, q{UPDATE tb_post SET title = 'antidote' WHERE pk_post = 999});
	my ($out, $err) = ('', '');
	my $rc = $n->psql($db,
		runbook_block('02-queue-management/queue-management.md', qr/SET retry_count = 0/),
		stdout => \$out, stderr => \$err, on_error_stop => 1);
	is("$rc|$err", '0|', "$label: retrying the parked key (queue-management.md) runs");
	$rc = $n->psql($db,
		runbook_block('03-manual-refresh/manual-refresh.md', qr/SET emergency_disabled = false/, 'tv_user'),
		stdout => \$out, stderr => \$err, on_error_stop => 1);
	is("$rc|$err", '0|', "$label: re-enabling tv_user (manual-refresh.md) runs");
	like($out, qr/tv_user\|ready\|f$/m, "$label: tv_user is ready again");
	is($n->safe_psql($db, q{SELECT pg_tviews_wait('60s')}), 't', "$label: the engine caught up");
	note("$label: before the manual refresh:\n" . $n->safe_psql($db, q{
		SELECT entity_name, state, failed_count, coalesce(last_error, '-') FROM pg_tviews_metadata ORDER BY 1}));
	$rc = $n->psql($db, runbook_block('03-manual-refresh/manual-refresh.md', qr/FOR attempt IN 1 \.\. 3/),
		stdout => \$out, stderr => \$err, on_error_stop => 1);
	is($rc, 0, "$label: the manual refresh of what needs it (manual-refresh.md) runs");
	unlike($err, qr/WARNING|ERROR/, "$label: ... and no refresh fails") or diag($err);
	note("$label: manual refresh:\n$err");
	is($n->safe_psql($db, q{
		SELECT string_agg(entity_name || ':' || state || ':' || failed_count || ':' || coalesce(last_error, '-'),
		                  ' ' ORDER BY entity_name) FROM pg_tviews_metadata}),
		'tv_comment:ready:0:- tv_post:ready:0:- tv_user:ready:0:-',
		"$label: every TVIEW ready, nothing parked, no error");
}

sub health
{
	my ($n, $db) = @_;
	return $n->safe_psql($db, q{
		SELECT string_agg(component || ':' || status, ' ' ORDER BY component) FROM pg_tviews_health_check()});
}

# Run pg_restore of $dump into $db of $n; returns (rc, stderr).
sub restore
{
	my ($n, $db, $dump, @opts) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ $n->installed_command('pg_restore'), @opts, '-d', $n->connstr($db), $dump ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $err);
}

sub dump_src
{
	my ($file) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ $node->installed_command('pg_dump'), '-Fc', '-f', $file, '-d', $node->connstr('src') ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $err);
}

# Everything about a restored database, against src at dump time.
sub check_restored
{
	my ($n, $db, $label, $cat, $content, $rc, $err) = @_;

	is($rc, 0, "$label: pg_restore exits 0");
	is($err, '', "$label: pg_restore reports no error")
	  or diag("$label: pg_restore printed:\n$err");

	my $got = catalog($n, $db);
	for my $t (sort keys %catalog_sql)
	{
		is($got->{$t}, $cat->{$t}, "$label: tviews.$t equals src's at dump time");
	}
	is(contents($n, $db), $content, "$label: the TVIEWs hold src's rows at dump time");
	is($n->safe_psql($db, q{SELECT enabled FROM tviews.engine}), 't', "$label: the engine is on");

	# restored TVIEWs are rebuilt once their key index exists; tv_post's
	# rebuild fails on the poisoned post and is parked (retries: a while)
	ok($n->poll_query_until($db, q{
		SELECT (SELECT state FROM tviews.tview WHERE tview = 'tv_comment'::regclass) = 'ready'
		   AND EXISTS (SELECT FROM tviews.failed_key WHERE tview = 'tv_post'::regclass AND full_refresh)}),
		"$label: restored TVIEWs are rebuilt; tv_post's rebuild is parked")
	  or diag($n->safe_psql($db, q{SELECT entity_name, state, last_error FROM pg_tviews_metadata}));

	# the status tables
	for my $st (qw(pg_tviews_metadata pg_tviews_queue pg_tviews_dependencies pg_tviews_workers pg_tviews_slots))
	{
		my ($out, $e) = ('', '');
		my $r = $n->psql($db, "SELECT count(*) FROM $st", stdout => \$out, stderr => \$e);
		is("$r|$e", '0|', "$label: $st can be read");
	}
	is($n->safe_psql($db, q{
		SELECT string_agg(entity_name || ':' || state || ':' || emergency_disabled || ':'
		                  || coalesce(emergency_disable_reason, '-'), ' ' ORDER BY entity_name)
		FROM pg_tviews_metadata}),
		'tv_comment:ready:false:- tv_post:rebuilding:false:- tv_user:stale:true:dump test: disabled before the dump',
		"$label: pg_tviews_metadata lists the TVIEWs with their states and the emergency switch");
	is($n->safe_psql($db, q{
		SELECT string_agg(entity_name || ':' || primary_key_value, ' ') FROM pg_tviews_queue WHERE status = 'failed'}),
		'tv_post:999', "$label: pg_tviews_queue shows the parked key");
	is($n->safe_psql($db, q{SELECT count(*) FROM pg_tviews_dependencies}),
		$node->safe_psql('src', q{SELECT count(*) FROM pg_tviews_dependencies}),
		"$label: pg_tviews_dependencies has src's lineage edges");
	ok($n->poll_query_until($db, q{
		SELECT count(*) = 1 FROM pg_tviews_workers
		WHERE worker_type = 'engine' AND database = current_database()
		  AND state IN ('idle', 'streaming', 'applying')}),
		"$label: an engine runs for the restored database");
	is($n->safe_psql($db, q{
		SELECT slot_name = pg_tviews_slot_name() FROM pg_tviews_slots WHERE database = current_database()}),
		't', "$label: its slot is the restored database's own");
	is(health($n, $db), 'engine:ok queue:warning slot:ok tviews:critical',
		"$label: the health check: parked key (queue warning), disabled TVIEW (tviews critical)");
	note("$label: health check:\n"
		  . $n->safe_psql($db, 'SELECT component, status, detail FROM pg_tviews_health_check() ORDER BY 1'));

	# the engine maintains the restored database
	write_round($n, $db, 7);
	is($n->safe_psql($db, q{SELECT pg_tviews_wait('60s')}), 't', "$label: writes applied (pg_tviews_wait)");
	recover($n, $db, $label);
	write_round($n, $db, 8);
	check_exact($n, $db, "$label, after writes");
	is(health($n, $db), 'engine:ok queue:ok slot:ok tviews:ok', "$label: the health check is all ok");
}

# ---------------------------------------------------------------------
# dump A: the engine caught up
# ---------------------------------------------------------------------
write_round($node, 'src', 1);
is($node->safe_psql('src', q{SELECT pg_tviews_wait('60s')}), 't', 'src: caught up before the dump');
my $cat_a = catalog($node, 'src');
my $content_a = contents($node, 'src');
note("src catalog at dump A:\n" . join("\n", map { "-- tviews.$_\n$cat_a->{$_}" } sort keys %$cat_a));
my $dump_a = "$tmp/src_a.dump";
{
	my ($rc, $err) = dump_src($dump_a);
	is("$rc|$err", '0|', 'pg_dump -Fc of src runs without error or warning');
}
is(contents($node, 'src'), $content_a, 'src did not change while it was dumped');
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $node->installed_command('pg_restore'), '-l', $dump_a ], '>', \$out, '2>', \$err);
	note("pg_restore -l of dump A:\n" . join("\n", grep { !/^;/ && /\S/ } split /\n/, $out));
}

# into a new database on the same node
$node->safe_psql('postgres', 'CREATE DATABASE dst');
{
	my ($rc, $err) = restore($node, 'dst', $dump_a);
	check_restored($node, 'dst', 'same node', $cat_a, $content_a, $rc, $err);
}

# into a database on a second node
my $node2 = new_node('restore_target');
$node2->append_conf('postgresql.conf', q{
pg_tviews.max_retries = 2
pg_tviews.retry_delay = 100ms
});
$node2->start;
$node2->safe_psql('postgres', 'CREATE DATABASE restored');
{
	my ($rc, $err) = restore($node2, 'restored', $dump_a);
	check_restored($node2, 'restored', 'second node', $cat_a, $content_a, $rc, $err);
}

# --single-transaction: all or nothing
$node->safe_psql('postgres', 'CREATE DATABASE dst_single');
{
	my ($rc, $err) = restore($node, 'dst_single', $dump_a, '--single-transaction');
	is($rc, 0, 'pg_restore --single-transaction exits 0')
	  or diag("pg_restore --single-transaction printed:\n$err");
	is($node->safe_psql('dst_single', q{
		SELECT count(*) FROM pg_class WHERE relname IN ('tv_post', 'tv_user', 'tv_comment')
		   AND EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_tviews')}),
		'3', 'pg_restore --single-transaction restored the extension and the TVIEWs');
}

# parallel restore: the catalog tables have no foreign keys between them,
# so the order in which their data is loaded does not matter
$node->safe_psql('postgres', 'CREATE DATABASE dst_parallel');
{
	my ($rc, $err) = restore($node, 'dst_parallel', $dump_a, '-j', '4');
	is("$rc|$err", '0|', 'pg_restore -j 4 exits 0 without errors');
	is($node->safe_psql('dst_parallel', q{
		SELECT (SELECT count(*) FROM tviews.tview) || '/' || (SELECT count(*) FROM tviews.source)
		       || '/' || (SELECT count(*) FROM tviews.tracked) || '/' || (SELECT count(*) FROM tviews.failed_key)}),
		$node->safe_psql('src', q{
		SELECT (SELECT count(*) FROM tviews.tview) || '/' || (SELECT count(*) FROM tviews.source)
		       || '/' || (SELECT count(*) FROM tviews.tracked) || '/' || (SELECT count(*) FROM tviews.failed_key)}),
		'pg_restore -j 4 restores every catalog row');
	my ($out, $e) = ('', '');
	$node->psql('dst_parallel', q{
		SELECT 'tview ' || (SELECT count(*) FROM tviews.tview) || ', source ' || (SELECT count(*) FROM tviews.source)
		       || ', tracked ' || (SELECT count(*) FROM tviews.tracked)
		       || ', failed_key ' || (SELECT count(*) FROM tviews.failed_key)},
		stdout => \$out, stderr => \$e);
	note("pg_restore -j 4: exit $rc; restored catalog rows: $out$e (src: tview 3, source "
		  . $node->safe_psql('src', 'SELECT count(*) FROM tviews.source') . ", tracked "
		  . $node->safe_psql('src', 'SELECT count(*) FROM tviews.tracked') . ", failed_key 1)\n"
		  . "pg_restore -j 4 printed:\n$err");
}

# ---------------------------------------------------------------------
# src keeps working; the documented recoveries there too
# ---------------------------------------------------------------------
write_round($node, 'src', 2);
recover($node, 'src', 'src');
check_exact($node, 'src', 'src after the restores');

# ---------------------------------------------------------------------
# dump B: taken while the engine is behind
# ---------------------------------------------------------------------
my $holder = $node->background_psql('src');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE tv_post IN EXCLUSIVE MODE');
write_round($node, 'src', 3);
ok($node->poll_query_until('src', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'pg_tviews engine' AND datname = current_database() AND wait_event_type = 'Lock'}),
	'src: the engine waits for the lock on tv_post: behind the writes');
my $behind = join(' ', map { "$_:" . oracle_count($node, 'src', $_, "${_}_def") } qw(tv_comment tv_post tv_user));
note("src at dump B, rows differing from the definitions: $behind");
my $dump_b = "$tmp/src_b.dump";
{
	my ($rc, $err) = dump_src($dump_b);
	is("$rc|$err", '0|', 'pg_dump of src while its engine is behind');
}
$holder->query_safe('COMMIT');
$holder->quit;
check_exact($node, 'src', 'src after dump B');

$node->safe_psql('postgres', 'CREATE DATABASE dst_behind');
{
	my ($rc, $err) = restore($node, 'dst_behind', $dump_b);
	note("dst_behind: pg_restore exit $rc, printed:\n$err");
	ok($node->poll_query_until('dst_behind', q{
		SELECT string_agg(entity_name || ':' || state, ' ' ORDER BY entity_name) FROM pg_tviews_metadata},
		'tv_comment:ready tv_post:ready tv_user:ready'),
		'dst_behind: the restored TVIEWs are rebuilt by the engine and ready');
	note("dst_behind: health check:\n"
		  . $node->safe_psql('dst_behind', 'SELECT component, status, detail FROM pg_tviews_health_check() ORDER BY 1'));
	check_exact($node, 'dst_behind', 'dump taken while the engine was behind, restored');
	# what a user has to do today (not documented): refresh every TVIEW
	$node->safe_psql('dst_behind', q{SELECT pg_tviews_refresh(entity_name) FROM pg_tviews_metadata});
	write_round($node, 'dst_behind', 9);
	check_exact($node, 'dst_behind', 'dst_behind, refreshed by hand, after writes');
}

# ---------------------------------------------------------------------
# the original database, at the end
# ---------------------------------------------------------------------
write_round($node, 'src', 4);
check_exact($node, 'src', 'src at the end');
is(health($node, 'src'), 'engine:ok queue:ok slot:ok tviews:ok', 'src: the health check is all ok');

{
	my $log = slurp_file($node->logfile) . slurp_file($node2->logfile);
	my @crashes = $log =~ /^.*(?:terminated by signal|PANIC).*$/mg;
	is(join("\n", @crashes), '', 'no server process crashed');
}

$node2->stop;
$node->stop;
done_testing();
