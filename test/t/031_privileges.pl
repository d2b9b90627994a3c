# TVIEWs and privileges: the engine refreshes a TVIEW with its owner's
# privileges (as REFRESH MATERIALIZED VIEW does), never its own.
#
#  - alice owns tb_secret and a TVIEW over it (tv_secret); bob owns a TVIEW
#    (tv_shared) over tb_shared, a table he may read but does not own.
#    Both are made by their owners with pg_tviews_create() (bob needs
#    UPDATE too: creation locks the table against writers).  Each
#    definition selects current_user, so every row shows who computed it.
#  - Changes reach both TVIEWs; rows the engine recomputed show the owner.
#  - bob may not refresh alice's TVIEW by hand (insufficient_privilege,
#    "must be owner"); alice may.  bob cannot build a TVIEW over tb_secret.
#  - bob loses SELECT on tb_shared: the engine's refreshes of tv_shared fail
#    with permission denied, are retried pg_tviews.max_retries (2) times
#    and parked in tviews.failed_key, with tviews.tview.last_error set, and
#    the rows stay as they were -- while tv_secret keeps flowing.
#  - Given SELECT back, bob repairs his TVIEW with pg_tviews_refresh().
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use Test::More;

my $node = new_node('privileges');
$node->append_conf('postgresql.conf', q{
pg_tviews.max_retries = 2
pg_tviews.retry_delay = 100ms
});
$node->start;

# psql as a role; returns (rc, stdout, stderr), errors with SQLSTATE
sub psql_as
{
	my ($role, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $sql,
		stdout => \$out, stderr => \$err, on_error_stop => 1,
		extra_params => [ '-U', $role, '-v', 'VERBOSITY=verbose' ]);
	return ($rc, $out, $err);
}

sub safe_as
{
	my ($role, $sql) = @_;
	my ($rc, $out, $err) = psql_as($role, $sql);
	die "as $role: $sql\n$err" if $rc != 0;
	return $out;
}

sub su { return $node->safe_psql('postgres', $_[0]); }

# the ERROR line of psql's stderr
sub first_error
{
	my ($err) = @_;
	return $err =~ /^(.*ERROR:.*)$/m ? $1 : $err;
}

su(q{
	CREATE EXTENSION pg_tviews;
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	GRANT CREATE ON SCHEMA public TO alice, bob;
	CREATE TABLE tb_shared (pk_shared int PRIMARY KEY, v text NOT NULL);
	INSERT INTO tb_shared VALUES (1, 'a'), (2, 'b');
	GRANT SELECT ON tb_shared TO bob;
});
safe_as('alice', q{
	CREATE TABLE tb_secret (pk_secret int PRIMARY KEY, v text NOT NULL);
	INSERT INTO tb_secret VALUES (1, 's1'), (2, 's2');
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = pg_tviews_slot_name()})
  or die 'the engine did not make its slot';

my %definition = (
	tv_secret => 'SELECT pk_secret, v, current_user::text AS refreshed_by FROM tb_secret',
	tv_shared => 'SELECT pk_shared, v, current_user::text AS refreshed_by FROM tb_shared',
);

# $role creates a TVIEW.  Should that fail, the superuser makes it and
# hands the table and its backing view to $role, so that what the engine
# does with the owner's privileges is still tested.
sub create_tview_as
{
	my ($role, $tv) = @_;
	my ($rc, $out, $err) = psql_as($role,
		"SELECT pg_tviews_create('$tv', \$\$$definition{$tv}\$\$)");
	is($rc, 0, "$role can create a TVIEW ($tv) over a table $role may read")
	  or diag("as $role: " . first_error($err));
	return if $rc == 0;
	diag("falling back: the superuser creates $tv and gives it to $role");
	su(qq{
		SELECT pg_tviews_create('$tv', \$\$$definition{$tv}\$\$);
		ALTER TABLE $tv OWNER TO $role;
		DO \$\$ BEGIN EXECUTE format('ALTER VIEW %s OWNER TO $role',
			(SELECT backing_view FROM tviews.tview WHERE tview = '$tv'::regclass)); END \$\$;
	});
}
create_tview_as('alice', 'tv_secret');

# Creating a TVIEW locks its base tables against writers (IN SHARE MODE),
# which PostgreSQL grants only with UPDATE, DELETE or TRUNCATE privilege:
# with SELECT alone, bob gets a clear error that says so.
{
	my ($rc, $out, $err) = psql_as('bob',
		"SELECT pg_tviews_create('tv_shared', \$\$$definition{tv_shared}\$\$)");
	isnt($rc, 0, 'bob, with SELECT only, cannot create a TVIEW over tb_shared');
	like($err, qr/ERROR:\s+42501:\s+permission denied to lock table (public\.)?tb_shared against writers/,
		'... insufficient_privilege: the lock against writers needs more than SELECT')
	  or diag('got: ' . first_error($err));
	like($err, qr/HINT:.*UPDATE, DELETE or TRUNCATE/, '... with a hint naming the privileges');
	is(su(q{SELECT count(*) FROM pg_class WHERE relname LIKE 'tv_shared%'}), '0',
		'... and nothing of it is left');
}
su('GRANT UPDATE ON tb_shared TO bob');
create_tview_as('bob', 'tv_shared');

is(su(q{
	SELECT string_agg(format('%s:%s:%s', t.tview, pg_get_userbyid(c.relowner),
	                         pg_get_userbyid(v.relowner)), ' ' ORDER BY t.tview::text)
	FROM tviews.tview t JOIN pg_class c ON c.oid = t.tview
	JOIN pg_class v ON v.oid = t.backing_view}),
	'tv_secret:alice:alice tv_shared:bob:bob',
	'each TVIEW and its backing view belong to its owner');

# bob may not build a TVIEW over what he cannot read
{
	my ($rc, $out, $err) = psql_as('bob',
		q{SELECT pg_tviews_create('tv_steal', 'SELECT pk_secret, v FROM tb_secret')});
	isnt($rc, 0, 'bob cannot create a TVIEW over tb_secret');
	like($err, qr/ERROR:\s+42501:/, '... insufficient_privilege');
	is(su(q{SELECT count(*) FROM pg_class WHERE relname LIKE 'tv_steal%'}), '0',
		'... and nothing of it is left');
}

# ---------------------------------------------------------------------
# changes flow, computed as the owners
# ---------------------------------------------------------------------
su(q{
	INSERT INTO tb_secret VALUES (3, 's3');
	INSERT INTO tb_shared VALUES (3, 'c');
	UPDATE tb_shared SET v = 'b2' WHERE pk_shared = 2;
});
is(su(q{SELECT pg_tviews_wait('30s')}), 't', 'the engine caught up');
is(su('SELECT v, refreshed_by FROM tv_secret WHERE pk_secret = 3'), 's3|alice',
	'tv_secret: a new row, computed as alice');
is(su('SELECT string_agg(format(\'%s=%s/%s\', pk_shared, v, refreshed_by), \' \' ORDER BY pk_shared) FROM tv_shared WHERE pk_shared IN (2, 3)'),
	'2=b2/bob 3=c/bob', 'tv_shared: changed and new rows, computed as bob');

# ---------------------------------------------------------------------
# manual refresh: owner only
# ---------------------------------------------------------------------
for my $call (q{pg_tviews_refresh('tv_secret')},
	q{pg_tviews_refresh_row('tv_secret', '1')},
	q{pg_tviews_refresh_range('tv_secret', '1', '2')})
{
	my ($rc, $out, $err) = psql_as('bob', "SELECT $call");
	isnt($rc, 0, "bob: $call fails");
	like($err, qr/ERROR:\s+42501:/, "bob: $call: insufficient_privilege");
	like($err, qr/must be owner of TVIEW (public\.)?tv_secret/, "bob: $call: must be owner")
	  or diag('got: ' . first_error($err));
}
{
	my ($rc, $out, $err) = psql_as('alice', q{SELECT pg_tviews_refresh('tv_secret')});
	is($rc, 0, 'alice can refresh her TVIEW by hand') or diag(first_error($err));
	is(su(q{SELECT count(*) FROM tv_secret WHERE refreshed_by <> 'alice'}), '0',
		'... and every row of it is then computed as alice')
	  if $rc == 0;
}

# ---------------------------------------------------------------------
# bob loses SELECT on tb_shared: his TVIEW's refreshes fail and are
# parked; alice's TVIEW goes on
# ---------------------------------------------------------------------
su(q{
	REVOKE SELECT ON tb_shared FROM bob;
	UPDATE tb_shared SET v = 'changed' WHERE pk_shared = 1;
	UPDATE tb_secret SET v = 'changed' WHERE pk_secret = 1;
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM tviews.failed_key WHERE tview = 'tv_shared'::regclass}),
	'the failing key of tv_shared is parked after its retries');
is(su(q{SELECT pg_tviews_wait('30s')}), 't',
	'the engine is not held up by the parked key');
is(su(q{
	SELECT format('%s|%s|%s', key, full_refresh, attempts >= 2)
	FROM tviews.failed_key WHERE tview = 'tv_shared'::regclass}),
	'1|f|t', 'tviews.failed_key: key 1 of tv_shared, after 2 attempts');
like(su(q{SELECT error FROM tviews.failed_key WHERE tview = 'tv_shared'::regclass}),
	qr/permission denied for table tb_shared/, '... failed with permission denied');
like(su(q{SELECT last_error FROM tviews.tview WHERE tview = 'tv_shared'::regclass}),
	qr/permission denied for table tb_shared/, 'tv_shared.last_error says permission denied');
is(su('SELECT v FROM tv_shared WHERE pk_shared = 1'), 'a',
	'tv_shared row 1 was not recomputed with privileges bob lost');

is(su('SELECT v, refreshed_by FROM tv_secret WHERE pk_secret = 1'), 'changed|alice',
	'tv_secret keeps flowing');
is(su(q{
	SELECT count(*) FROM tviews.failed_key WHERE tview = 'tv_secret'::regclass}),
	'0', 'tv_secret has no parked key');
is(su(q{SELECT last_error IS NULL FROM tviews.tview WHERE tview = 'tv_secret'::regclass}),
	't', 'tv_secret has no error');

# more of both: bob's new key fails too, alice's TVIEW follows exactly
su(q{
	INSERT INTO tb_shared VALUES (4, 'd');
	INSERT INTO tb_secret VALUES (4, 's4');
	DELETE FROM tb_secret WHERE pk_secret = 2;
	UPDATE tb_secret SET v = v || '+' WHERE pk_secret = 3;
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 2 FROM tviews.failed_key WHERE tview = 'tv_shared'::regclass}),
	'a new key of tv_shared is parked as well');
is(su(q{SELECT pg_tviews_wait('30s')}), 't', 'the engine caught up again');
is(su(q{SELECT count(*) FROM tv_shared WHERE pk_shared = 4}), '0',
	'tv_shared did not get the row bob may not read');
is(su(q{
	SELECT (SELECT count(*) FROM (TABLE tv_secret EXCEPT ALL
	                              SELECT pk_secret, v, 'alice' FROM tb_secret) x)
	     + (SELECT count(*) FROM (SELECT pk_secret, v, 'alice' FROM tb_secret
	                              EXCEPT ALL TABLE tv_secret) x)}),
	'0', 'tv_secret equals its definition (as alice)');

# ---------------------------------------------------------------------
# SELECT given back: bob repairs his TVIEW
# ---------------------------------------------------------------------
su('GRANT SELECT ON tb_shared TO bob');
{
	my ($rc, $out, $err) = psql_as('bob', q{SELECT pg_tviews_refresh('tv_shared')});
	is($rc, 0, 'bob can refresh his TVIEW by hand again') or diag(first_error($err));
	if ($rc == 0)
	{
		is(su(q{
			SELECT (SELECT count(*) FROM (TABLE tv_shared EXCEPT ALL
			                              SELECT pk_shared, v, 'bob' FROM tb_shared) x)
			     + (SELECT count(*) FROM (SELECT pk_shared, v, 'bob' FROM tb_shared
			                              EXCEPT ALL TABLE tv_shared) x)}),
			'0', 'tv_shared equals its definition (as bob) after the refresh');
		is(su(q{SELECT count(*) FROM tviews.failed_key WHERE tview = 'tv_shared'::regclass}),
			'0', 'the refresh cleared its parked keys');
		is(su(q{SELECT last_error IS NULL FROM tviews.tview WHERE tview = 'tv_shared'::regclass}),
			't', '... and its last_error');
	}
}

# the engine carries on for bob too
su(q{UPDATE tb_shared SET v = 'again' WHERE pk_shared = 2});
is(su(q{SELECT pg_tviews_wait('30s')}), 't', 'the engine caught up');
is(su('SELECT v, refreshed_by FROM tv_shared WHERE pk_shared = 2'), 'again|bob',
	'tv_shared flows again, computed as bob');

$node->stop;
done_testing();
