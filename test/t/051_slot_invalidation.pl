# A slot invalidated by max_slot_wal_keep_size is detected, reported and
# recovered by a full rebuild -- never silently stale.
#
# A node with 1 MB WAL segments and max_slot_wal_keep_size = 2MB, three
# base tables and three TVIEWs (a join with a parent rule, a jsonb_agg of
# children, and a TVIEW reading a TVIEW).  The engine is switched off
# (pg_tviews_system_disable), so its slot stops advancing; writes follow
# that will never be decoded, then enough WAL to push the slot past
# max_slot_wal_keep_size, and a CHECKPOINT invalidates it (PostgreSQL
# terminates the engine holding it).  Then:
#   - the engine, restarted by the launcher, finds the slot invalidated:
#     the server log says so (WARNING with the lost position), tviews.engine
#     counts the invalidation with its time and detail, every TVIEW is
#     'rebuilding' in pg_tviews_metadata, the health check's 'tviews'
#     component is critical and its 'slot' component tells the story;
#   - a new slot exists, and the slot's wal_status is no longer 'lost';
#   - while the engine is off, nothing is rebuilt and the TVIEWs visibly
#     differ from their definitions (the lost writes);
#   - pg_tviews_system_enable(): every TVIEW is refreshed whole, becomes
#     'ready', and equals its definition; later writes flow as usual.
# A second round invalidates the slot again and restarts the server
# before enabling: the 'rebuilding' state survives, the rebuild happens
# after the restart.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use PgTviews::Differential qw(oracle_count);
use Test::More;

my $node = new_node('slot_invalidation', extra => ['--wal-segsize=1']);
$node->append_conf('postgresql.conf', q{
max_slot_wal_keep_size = 2MB
min_wal_size = 2MB
max_wal_size = 4MB
checkpoint_timeout = 1h
pg_tviews.restart_interval = 1
});
$node->start;

my %definition = (
	tv_post => q{
		SELECT p.pk_post, p.fk_user, p.title, u.name AS author
		FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user},
	tv_user => q{
		SELECT u.pk_user, u.name,
		       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.pk_comment, 'body', c.body)
		                                  ORDER BY c.pk_comment), '[]')
		          FROM tb_comment c WHERE c.fk_user = u.pk_user) AS comments
		FROM tb_user u},
	tv_feed => q{
		SELECT t.pk_post, t.title, t.author FROM tv_post t},
);

$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	CREATE EXTENSION pg_tviews;
	CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text NOT NULL);
	CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL, title text);
	CREATE TABLE tb_comment (pk_comment int PRIMARY KEY, fk_user int NOT NULL, body text);
	CREATE TABLE filler (id serial, pad text);
	INSERT INTO tb_user SELECT i, 'user ' || i FROM generate_series(1, 100) i;
	INSERT INTO tb_post SELECT i, 1 + i % 100, 'post ' || i FROM generate_series(1, 1000) i;
	INSERT INTO tb_comment SELECT i, 1 + i % 100, 'comment ' || i FROM generate_series(1, 2000) i;
});
for my $tv (qw(tv_post tv_user tv_feed))
{
	$node->safe_psql('postgres',
		"SET client_min_messages = warning; SELECT pg_tviews_create('$tv', \$q\$$definition{$tv}\$q\$)");
}

sub query { return $node->safe_psql('postgres', $_[0]); }

sub mismatches
{
	my $total = 0;
	$total += oracle_count($node, 'postgres', $_, "${_}_def") for qw(tv_post tv_user tv_feed);
	return $total;
}

sub engine_pid
{
	return query(q{SELECT pid FROM pg_stat_activity
	               WHERE application_name = 'pg_tviews engine' AND datname = current_database()});
}

# Writes while the engine is off, then WAL until the slot is behind more
# than max_slot_wal_keep_size, and a checkpoint: the slot is invalidated.
# (While WAL is being written the checkpoints it triggers may invalidate
# the replacement slot too: each invalidation is counted.)
sub lose_the_slot
{
	my ($round) = @_;
	my $log_offset = -s $node->logfile;
	my $before = query(q{SELECT slot_invalidations FROM tviews.engine});

	query(q{SELECT pg_tviews_system_disable('test: let the slot fall behind')});
	query(qq{
		UPDATE tb_user SET name = name || ' r$round' WHERE pk_user % 7 = 0;
		UPDATE tb_post SET title = title || ' r$round' WHERE pk_post % 5 = 0;
		DELETE FROM tb_comment WHERE pk_comment % 11 = $round;
		INSERT INTO tb_post SELECT 5000 * $round + i, 1 + i % 100, 'new' FROM generate_series(1, 50) i;
	});
	for (1 .. 8)
	{
		query(q{INSERT INTO filler (pad) SELECT repeat('x', 1000) FROM generate_series(1, 1000);
		        SELECT pg_switch_wal();});
	}
	query('CHECKPOINT');
	ok( $node->poll_query_until('postgres', qq{
			SELECT coalesce((SELECT wal_status FROM pg_replication_slots
			                 WHERE slot_name = pg_tviews_slot_name()), 'gone') <> 'lost'
			   AND (SELECT slot_invalidations FROM tviews.engine) > $before}),
		"round $round: the engine found the invalidated slot and replaced it");
	ok($node->wait_for_log(qr/replication slot "pg_tviews_\d+" was invalidated; rebuilding 3 TVIEWs from a new slot/,
			$log_offset),
		"round $round: the server log says the slot was invalidated and what is rebuilt");
}

# ---------------------------------------------------------------------
# round 1: invalidation while the engine is off, rebuild on enable
# ---------------------------------------------------------------------
query(q{UPDATE tb_user SET name = 'before' WHERE pk_user = 1});
ok(query(q{SELECT pg_tviews_wait('60s')}) eq 't', 'the engine caught up before the test');
is(mismatches(), 0, 'TVIEWs equal their definitions before');

lose_the_slot(1);

my $engine_row = query(q{SELECT slot_invalidations, slot_invalidated_at IS NOT NULL,
                                slot_invalidation_detail FROM tviews.engine});
like($engine_row, qr/^[1-9]\d*\|t\|slot "pg_tviews_\d+" lost the WAL it needed at [0-9A-F]+\/[0-9A-F]+ \(max_slot_wal_keep_size = 2 MB\)$/,
	'tviews.engine records the invalidation, its time and detail');
note("tviews.engine: $engine_row");

is(query(q{SELECT string_agg(entity_name || '=' || state, ',' ORDER BY entity_name) FROM pg_tviews_metadata}),
	'tv_feed=rebuilding,tv_post=rebuilding,tv_user=rebuilding',
	'pg_tviews_metadata: every TVIEW is rebuilding');

my %health = map { my @f = split /\|/; ($f[0] => "$f[1]|$f[2]") }
  split /\n/, query(q{SELECT component, status, detail FROM pg_tviews_health_check()});
note("health check: $_ => $health{$_}") for sort keys %health;
like($health{tviews}, qr/^critical\|3 TVIEWs: 0 stale, 3 rebuilding/, 'health check: TVIEWs critical, rebuilding');
like($health{slot}, qr/invalidated \d+ time\(s\), last at .*TVIEWs rebuilt from a new slot/,
	'health check: the slot component reports the invalidation');
like(query(q{SELECT last_error FROM pg_tviews_workers WHERE worker_type = 'engine' AND database = current_database()}),
	qr/lost the WAL it needed/, 'pg_tviews_workers: the engine says why');

isnt(mismatches(), 0, 'while the engine is off, the lost writes are visibly missing');

query(q{SELECT pg_tviews_system_enable()});
ok($node->poll_query_until('postgres',
		q{SELECT bool_and(state = 'ready') FROM tviews.tview}),
	'after enable every TVIEW is rebuilt and ready');
ok(query(q{SELECT pg_tviews_wait('60s')}) eq 't', 'the engine caught up');
is(mismatches(), 0, 'after the rebuild every TVIEW equals its definition');
is(query(q{SELECT min(full_refreshes) >= 1 FROM pg_tviews_metadata}), 't',
	'each TVIEW was refreshed whole');

query(q{UPDATE tb_user SET name = 'after round 1' WHERE pk_user = 2;
        INSERT INTO tb_comment VALUES (900001, 2, 'fresh')});
ok(query(q{SELECT pg_tviews_wait('60s')}) eq 't', 'later writes are applied');
is(mismatches(), 0, 'and the TVIEWs follow them exactly');
like((split /\|/, query(q{SELECT status FROM pg_tviews_health_check() WHERE component = 'tviews'}))[0],
	qr/^ok$/, 'health check: TVIEWs ok again');

# ---------------------------------------------------------------------
# round 2: invalidation, then a restart before the rebuild
# ---------------------------------------------------------------------
my $after_round1 = query(q{SELECT slot_invalidations FROM tviews.engine});
lose_the_slot(2);
$node->restart;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 3 FROM tviews.tview WHERE state = 'rebuilding'}),
	'the rebuilding state survives a restart');
query(q{SELECT pg_tviews_system_enable()});
ok($node->poll_query_until('postgres',
		q{SELECT bool_and(state = 'ready') FROM tviews.tview}),
	'after the restart and enable, every TVIEW is rebuilt');
ok(query(q{SELECT pg_tviews_wait('60s')}) eq 't', 'the engine caught up');
is(mismatches(), 0, 'every TVIEW equals its definition after the second rebuild');
cmp_ok(query(q{SELECT slot_invalidations FROM tviews.engine}), '>', $after_round1,
	'the second round\'s invalidations are counted too');

$node->stop;
done_testing();
