# Randomized differential test of the refresh engine.
#
# A FraiseQL-style schema (tb_user, tb_post, tb_comment, tb_tag,
# tb_post_tag) and TVIEWs over it that exercise every lineage rule:
#
#   tv_post        root (tb_post) + parent (tb_user through tv_post.fk_user),
#                  nested jsonb object
#   tv_comment     root + parent through a LEFT JOIN on a nullable fk_user
#   tv_post_full   root + child: correlated jsonb_agg of the comments
#   tv_post_tags   root + child (tb_post_tag) + full (tb_tag, reached only
#                  through tb_post_tag)
#   tv_user_stats  root + child under a LEFT JOIN ... GROUP BY (aggregates)
#   tv_user_feed   root + a TVIEW (tv_post) read in a correlated jsonb_agg
#
# A seeded random workload then runs on several psql sessions whose
# transactions interleave statement by statement: inserts, updates of
# plain and lineage columns (moving posts between users and comments
# between posts, fk_user to and from NULL), primary key changes cascading
# through ON UPDATE CASCADE, deletes cascading through ON DELETE CASCADE /
# SET NULL, multi-row updates and deletes, TOASTed comment bodies, bulk
# inserts, rollbacks, savepoints rolled back or released (also after an
# error), and TRUNCATE of tb_comment followed by re-inserts.  Statements
# that would wait for another session's lock fail at once (lock_timeout),
# which the driver treats like any other error: the transaction, or the
# subtransaction of its savepoint, is rolled back.
#
# Now and then, with the other sessions idle, each session commits one
# transaction whose commit becomes visible late: synchronous replication
# to a standby that does not exist holds the committing backends after
# their commit records are flushed (and decodable) but before their
# changes are visible, until the setting is reset.  The engine must not
# refresh from a snapshot that misses them.
#
# Every PGTV_DIFF_CHECK_EVERY transactions, with all sessions idle:
# pg_tviews_wait('60s') must return true, and every TVIEW must equal its
# definition: (TVIEW EXCEPT ALL <name>_def) plus (<name>_def EXCEPT ALL
# TVIEW) is empty.  tv_user_feed is also compared with its definition
# evaluated over tv_post's definition instead of the tv_post table (the
# "deep" oracle).  A mismatch is reported with the differing rows and the
# seed, counted, and repaired with pg_tviews_refresh() so that later
# checkpoints find new divergences rather than the same one.  At the end:
# no last_error, no parked keys, no ERROR/WARNING of the engine in the
# server log.
#
# Environment:
#   PGTV_DIFF_SEED         seed to replay (printed at the start)
#   PGTV_DIFF_TXNS         number of transactions (default 5000, about a minute on
#                          two cores; PGTV_LONG=1: 20000)
#   PGTV_DIFF_CHECK_EVERY  transactions between checkpoints (default 100, long: 500)
#   PGTV_DIFF_SESSIONS     concurrent sessions (default 2; 1 = fully deterministic)
#   PGTV_DIFF_TOAST_RATE   share of bodies long enough to be TOASTed (default 0.1)
#   PGTV_DIFF_SELFTEST     1: damage a TVIEW row by hand first; the test must fail
#   PGTV_DIFF_AUDIT        1: audit triggers record every base-table change, and a
#                          mismatch prints the changes of its keys
#
# Every statement sent is logged, with its session and outcome, to
# tmp_check/log/020_differential_workload.sql (scripts/test.sh copies the
# log directory into test-results/).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::Differential qw(oracle_count oracle_rows);
use Test::More;
use Time::HiRes qw(time);

my $long = $ENV{PGTV_LONG} ? 1 : 0;
my $seed = $ENV{PGTV_DIFF_SEED} // (int(time() * 1000) ^ $$) % 2_000_000_000;
my $ntxns = $ENV{PGTV_DIFF_TXNS} // ($long ? 20000 : 5000);
my $check_every = $ENV{PGTV_DIFF_CHECK_EVERY} // ($long ? 500 : 100);
my $nsessions = $ENV{PGTV_DIFF_SESSIONS} // 2;
die "PGTV_DIFF_SEED must be a non-negative integer\n" unless $seed =~ /^\d+$/;
die "PGTV_DIFF_TXNS must be a positive integer\n" unless $ntxns =~ /^\d+$/ && $ntxns > 0;
die "PGTV_DIFF_CHECK_EVERY must be a positive integer\n"
  unless $check_every =~ /^\d+$/ && $check_every > 0;
die "PGTV_DIFF_SESSIONS must be a positive integer\n"
  unless $nsessions =~ /^\d+$/ && $nsessions > 0;
srand($seed);
my $replay = "PGTV_DIFF_SEED=$seed PGTV_DIFF_TXNS=$ntxns PGTV_DIFF_CHECK_EVERY=$check_every"
  . " PGTV_DIFF_SESSIONS=$nsessions"
  . (defined $ENV{PGTV_DIFF_TOAST_RATE} ? " PGTV_DIFF_TOAST_RATE=$ENV{PGTV_DIFF_TOAST_RATE}" : '');
diag "seed $seed; $ntxns transactions on $nsessions sessions, checkpoint every $check_every"
  . " (replay: $replay)";

my $t_start = time;

# ---------------------------------------------------------------------
# the node
# ---------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('differential');
$node->init(allows_streaming => 'logical');
{
	my $repo = $ENV{PGTV_REPO}
	  or BAIL_OUT('PGTV_REPO is not set (run through scripts/run-tests.sh)');
	my $conf = `"$repo/scripts/gen-test-conf.sh"`;
	BAIL_OUT("scripts/gen-test-conf.sh failed ($?)") if $? != 0;
	$node->append_conf('postgresql.conf',
		"\n# scripts/gen-test-conf.sh\n$conf\n");
}
$node->start;
my $db = 'postgres';
$node->safe_psql($db, 'CREATE EXTENSION pg_tviews');

# ---------------------------------------------------------------------
# schema and initial data
# ---------------------------------------------------------------------
$node->safe_psql(
	$db, q{
CREATE TABLE tb_user (
    pk_user bigint PRIMARY KEY,
    name text NOT NULL,
    email text);
CREATE TABLE tb_post (
    pk_post bigint PRIMARY KEY,
    fk_user bigint NOT NULL REFERENCES tb_user ON DELETE CASCADE ON UPDATE CASCADE,
    title text NOT NULL,
    body text,
    score int NOT NULL DEFAULT 0);
CREATE INDEX ON tb_post (fk_user);
CREATE TABLE tb_comment (
    pk_comment bigint PRIMARY KEY,
    fk_post bigint NOT NULL REFERENCES tb_post ON DELETE CASCADE ON UPDATE CASCADE,
    fk_user bigint REFERENCES tb_user ON DELETE SET NULL ON UPDATE CASCADE,
    body text);
CREATE INDEX ON tb_comment (fk_post);
CREATE INDEX ON tb_comment (fk_user);
CREATE TABLE tb_tag (
    pk_tag bigint PRIMARY KEY,
    name text NOT NULL);
CREATE TABLE tb_post_tag (
    fk_post bigint NOT NULL REFERENCES tb_post ON DELETE CASCADE ON UPDATE CASCADE,
    fk_tag bigint NOT NULL REFERENCES tb_tag ON DELETE CASCADE,
    PRIMARY KEY (fk_post, fk_tag));
CREATE INDEX ON tb_post_tag (fk_tag);

-- The workload picks rows by position: pick_x(r) is the (r mod count)-th
-- row of tb_x in key order, NULL when the table is empty.  Deterministic
-- for a given table state, and always an existing row.
CREATE FUNCTION pick_user(r bigint) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT pk_user FROM tb_user ORDER BY pk_user
   OFFSET r % greatest((SELECT count(*) FROM tb_user), 1) LIMIT 1 $$;
CREATE FUNCTION pick_post(r bigint) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT pk_post FROM tb_post ORDER BY pk_post
   OFFSET r % greatest((SELECT count(*) FROM tb_post), 1) LIMIT 1 $$;
CREATE FUNCTION pick_comment(r bigint) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT pk_comment FROM tb_comment ORDER BY pk_comment
   OFFSET r % greatest((SELECT count(*) FROM tb_comment), 1) LIMIT 1 $$;
CREATE FUNCTION pick_tag(r bigint) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT pk_tag FROM tb_tag ORDER BY pk_tag
   OFFSET r % greatest((SELECT count(*) FROM tb_tag), 1) LIMIT 1 $$;

INSERT INTO tb_user
SELECT i, 'user ' || i, CASE WHEN i % 5 <> 0 THEN 'u' || i || '@example.com' END
FROM generate_series(1, 20) i;
INSERT INTO tb_post
SELECT i, 1 + (i * 7) % 20, 'post ' || i, 'body of post ' || i, (i * 13) % 50
FROM generate_series(1, 60) i;
INSERT INTO tb_comment
SELECT i, 1 + (i * 11) % 60, CASE WHEN i % 4 <> 0 THEN 1 + (i * 3) % 20 END, 'comment ' || i
FROM generate_series(1, 150) i;
INSERT INTO tb_tag SELECT i, 'tag ' || i FROM generate_series(1, 8) i;
INSERT INTO tb_post_tag
SELECT DISTINCT 1 + (i * 17) % 60, 1 + (i * 5) % 8 FROM generate_series(1, 80) i;
});
# the next key of each table: keys are never reused
my %next = (user => 21, post => 61, comment => 151, tag => 9);

# ---------------------------------------------------------------------
# the TVIEWs, in dependency order
# ---------------------------------------------------------------------
my @tviews = (
	[
		'tv_post', undef, q{
SELECT p.pk_post, p.fk_user,
       jsonb_build_object('title', p.title, 'score', p.score,
                          'author', jsonb_build_object('name', u.name, 'email', u.email)) AS data
FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user}
	],
	[
		'tv_comment', undef, q{
SELECT c.pk_comment, c.fk_post, c.fk_user,
       jsonb_build_object('body', c.body, 'author', u.name) AS data
FROM tb_comment c LEFT JOIN tb_user u ON u.pk_user = c.fk_user}
	],
	[
		'tv_post_full', 'pk_post', q{
SELECT p.pk_post,
       (SELECT jsonb_agg(jsonb_build_object('id', c.pk_comment, 'body', c.body) ORDER BY c.pk_comment)
        FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
FROM tb_post p}
	],
	[
		'tv_post_tags', 'pk_post', q{
SELECT p.pk_post,
       (SELECT jsonb_agg(t.name ORDER BY t.name, t.pk_tag)
        FROM tb_post_tag pt JOIN tb_tag t ON t.pk_tag = pt.fk_tag
        WHERE pt.fk_post = p.pk_post) AS tags
FROM tb_post p}
	],
	[
		'tv_user_stats', 'pk_user', q{
SELECT u.pk_user, count(p.pk_post) AS posts, coalesce(sum(p.score), 0) AS score
FROM tb_user u LEFT JOIN tb_post p ON p.fk_user = u.pk_user
GROUP BY u.pk_user}
	],
	[
		'tv_user_feed', 'pk_user', q{
SELECT u.pk_user,
       (SELECT jsonb_agg(tp.data ORDER BY tp.pk_post) FROM tv_post tp
        WHERE tp.fk_user = u.pk_user) AS feed
FROM tb_user u}
	],);
my @names = map { $_->[0] } @tviews;

for my $tv (@tviews)
{
	my ($name, $key, $query) = @$tv;
	my $call = sprintf('SELECT pg_tviews_create(%s, $q$%s$q$%s)',
		"'$name'", $query, defined $key ? ", '$key'" : '');
	my ($rc, $out, $err) = $node->psql($db, $call);
	is($rc, 0, "pg_tviews_create('$name')") or diag $err;
	diag "$name: $_" for grep { /\S/ } split /\n/, $err;
}

# The "deep" oracle of tv_user_feed: its definition over tv_post's
# definition rather than over the tv_post table.
$node->safe_psql(
	$db, q{
CREATE VIEW tv_user_feed_deep AS
SELECT u.pk_user,
       (SELECT jsonb_agg(tp.data ORDER BY tp.pk_post) FROM tv_post_def tp
        WHERE tp.fk_user = u.pk_user) AS feed
FROM tb_user u});

# Forensics (PGTV_DIFF_AUDIT=1): every committed row change of the base
# tables, with its transaction, time and WAL position, so that a mismatch
# can be traced to the transactions behind it.  Off by default: it doubles
# the writes.
my $audit = $ENV{PGTV_DIFF_AUDIT} ? 1 : 0;
if ($audit)
{
	$node->safe_psql(
		$db, q{
CREATE TABLE diff_audit (
    id bigserial PRIMARY KEY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    lsn pg_lsn NOT NULL DEFAULT pg_current_wal_insert_lsn(),
    tbl text NOT NULL, op text NOT NULL,
    old_key bigint, new_key bigint, old_ref bigint, new_ref bigint);
CREATE INDEX ON diff_audit (tbl, old_key);
CREATE INDEX ON diff_audit (tbl, new_key);
CREATE FUNCTION diff_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    n jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
BEGIN
    INSERT INTO diff_audit (tbl, op, old_key, new_key, old_ref, new_ref)
    VALUES (TG_TABLE_NAME, TG_OP, (o->>TG_ARGV[0])::bigint, (n->>TG_ARGV[0])::bigint,
            (o->>TG_ARGV[1])::bigint, (n->>TG_ARGV[1])::bigint);
    RETURN NULL;
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON tb_user
    FOR EACH ROW EXECUTE FUNCTION diff_audit_row('pk_user', 'none');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON tb_post
    FOR EACH ROW EXECUTE FUNCTION diff_audit_row('pk_post', 'fk_user');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON tb_comment
    FOR EACH ROW EXECUTE FUNCTION diff_audit_row('pk_comment', 'fk_post');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON tb_post_tag
    FOR EACH ROW EXECUTE FUNCTION diff_audit_row('fk_post', 'fk_tag');
});
}

diag "derived lineage rules (tviews.source):\n"
  . $node->safe_psql(
	$db, q{
SELECT format('  %-14s %-13s %-6s %-12s -> %-12s used %-28s %s%s',
              s.tview, s.source, s.rule, coalesce(s.source_column::text, '-'),
              coalesce(s.tview_column::text, '-'), s.columns_used, s.location,
              CASE WHEN s.source_is_tview THEN ' (a TVIEW)' ELSE '' END)
FROM tviews.source s
ORDER BY s.tview::oid, s.source::text, s.location});
diag "tracked relations (tviews.tracked):\n"
  . $node->safe_psql(
	$db, q{
SELECT format('  %-12s lineage columns %s, replica identity %s', k.relid, k.lineage_columns,
              c.relreplident)
FROM tviews.tracked k JOIN pg_class c ON c.oid = k.relid ORDER BY k.relid::text});

note "TOAST tables (to place an error naming one):\n"
  . $node->safe_psql(
	$db, q{
SELECT format('  %-14s oid %s, %s', c.relname, c.oid, c.reltoastrelid::regclass)
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.reltoastrelid <> 0
ORDER BY c.oid});

# ---------------------------------------------------------------------
# the workload
# ---------------------------------------------------------------------
sub rint { return int(rand($_[0])); }
sub chance { return rand() < $_[0]; }
sub r { return rint(1_000_000_000); }

# an SQL literal
sub lit
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

my @words = (
	'alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel',
	"O'Brien", 'Zoë', 'quote"d', 'back\\slash', 'tab	bed', 'ünïcödé ✓',
	'{"json": "like"}', '', ' spaced ', 'new
line');

sub word { return $words[ rint(scalar @words) ]; }
sub phrase { return join(' ', map { word() } 1 .. 1 + rint(3)); }

# An incompressible text long enough to be TOASTed out of line.
sub long_text
{
	my @alphabet = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '+', '/');
	return join('', map { $alphabet[ rint(64) ] } 1 .. 2500 + rint(1500));
}

my $toast_rate = $ENV{PGTV_DIFF_TOAST_RATE} // 0.1;
sub body { return chance($toast_rate) ? long_text() : phrase(); }

# Statement generators: each returns a list of SQL statements.
my @generators = (
	# users
	[
		'insert user', 3,
		sub {
			my $id = $next{user}++;
			return "INSERT INTO tb_user VALUES ($id, " . lit(phrase()) . ', '
			  . lit(chance(0.2) ? undef : "u$id\@example.com") . ')';
		}
	],
	[
		'rename user', 6,
		sub {
			return 'UPDATE tb_user SET name = ' . lit(phrase()) . ' WHERE pk_user = pick_user(' . r() . ')';
		}
	],
	[
		'change email', 3,
		sub {
			return 'UPDATE tb_user SET email = '
			  . lit(chance(0.3) ? undef : word() . '@example.org')
			  . ' WHERE pk_user = pick_user(' . r() . ')';
		}
	],
	[
		'no-op user update', 1,
		sub { return 'UPDATE tb_user SET name = name WHERE pk_user = pick_user(' . r() . ')'; }
	],
	[
		'rename users (multi-row)', 1,
		sub {
			my $m = 3 + rint(8);
			return "UPDATE tb_user SET name = name || ' v' || " . rint(1000)
			  . " WHERE pk_user % $m = " . rint($m);
		}
	],
	[
		'renumber user (cascades)', 0.7,
		sub {
			my $id = $next{user}++;
			return "UPDATE tb_user SET pk_user = $id WHERE pk_user = pick_user(" . r() . ')';
		}
	],
	[
		'delete user (cascades)', 0.8,
		sub { return 'DELETE FROM tb_user WHERE pk_user = pick_user(' . r() . ')'; }
	],

	# posts
	[
		'insert post', 9,
		sub {
			my $id = $next{post}++;
			return "INSERT INTO tb_post SELECT $id, u, " . lit(phrase()) . ', ' . lit(body())
			  . ', ' . (rint(100) - 20) . ' FROM pick_user(' . r() . ') u WHERE u IS NOT NULL';
		}
	],
	[
		'retitle post', 5,
		sub {
			return 'UPDATE tb_post SET title = ' . lit(phrase()) . ' WHERE pk_post = pick_post(' . r() . ')';
		}
	],
	[
		'score post', 5,
		sub {
			return 'UPDATE tb_post SET score = score + ' . (rint(21) - 10)
			  . ' WHERE pk_post = pick_post(' . r() . ')';
		}
	],
	[
		'change post body (not in any TVIEW)', 2,
		sub {
			return 'UPDATE tb_post SET body = ' . lit(body()) . ' WHERE pk_post = pick_post(' . r() . ')';
		}
	],
	[
		'score posts (multi-row)', 2,
		sub {
			my $m = 3 + rint(10);
			return 'UPDATE tb_post SET score = score + ' . (rint(7) - 3)
			  . " WHERE pk_post % $m = " . rint($m);
		}
	],
	[
		'retitle posts of a user (multi-row)', 1,
		sub {
			return 'UPDATE tb_post SET title = title || ' . lit(' ' . word())
			  . ' WHERE fk_user = pick_user(' . r() . ')';
		}
	],
	[
		'move post to another user', 5,
		sub {
			return 'UPDATE tb_post SET fk_user = pick_user(' . r() . ') WHERE pk_post = pick_post(' . r() . ')';
		}
	],
	[
		'move all posts of a user (multi-row)', 0.7,
		sub {
			return 'UPDATE tb_post SET fk_user = pick_user(' . r() . ') WHERE fk_user = pick_user(' . r() . ')';
		}
	],
	[
		'renumber post (cascades)', 0.7,
		sub {
			my $id = $next{post}++;
			return "UPDATE tb_post SET pk_post = $id WHERE pk_post = pick_post(" . r() . ')';
		}
	],
	[
		'delete post (cascades)', 2.5,
		sub { return 'DELETE FROM tb_post WHERE pk_post = pick_post(' . r() . ')'; }
	],

	# comments
	[
		'insert comment', 12,
		sub {
			my $id = $next{comment}++;
			my $u = chance(0.25) ? 'NULL' : 'pick_user(' . r() . ')';
			return "INSERT INTO tb_comment SELECT $id, p, $u, " . lit(body())
			  . ' FROM pick_post(' . r() . ') p WHERE p IS NOT NULL';
		}
	],
	[
		'bulk insert comments', 0.3,
		sub {
			my $n = 50 + rint(250);
			my $id = $next{comment};
			$next{comment} += $n;
			my $r = r();
			return "INSERT INTO tb_comment SELECT $id + g, pick_post($r + g * 7),"
			  . " CASE WHEN g % 3 = 0 THEN NULL ELSE pick_user($r + g) END, 'bulk ' || g"
			  . " FROM generate_series(0, $n - 1) g WHERE pick_post($r) IS NOT NULL";
		}
	],
	[
		'edit comment', 5,
		sub {
			return 'UPDATE tb_comment SET body = ' . lit(body())
			  . ' WHERE pk_comment = pick_comment(' . r() . ')';
		}
	],
	[
		'move comment to another post', 5,
		sub {
			return 'UPDATE tb_comment SET fk_post = pick_post(' . r()
			  . ') WHERE pk_comment = pick_comment(' . r() . ')';
		}
	],
	[
		'move comments of a post (multi-row)', 1,
		sub {
			return 'UPDATE tb_comment SET fk_post = pick_post(' . r()
			  . ') WHERE fk_post = pick_post(' . r() . ')';
		}
	],
	[
		'comment author to NULL', 3,
		sub {
			return 'UPDATE tb_comment SET fk_user = NULL WHERE pk_comment = pick_comment(' . r() . ')';
		}
	],
	[
		'comment author set', 3,
		sub {
			return 'UPDATE tb_comment SET fk_user = pick_user(' . r()
			  . ') WHERE pk_comment = pick_comment(' . r() . ')';
		}
	],
	[
		'delete comment', 4,
		sub { return 'DELETE FROM tb_comment WHERE pk_comment = pick_comment(' . r() . ')'; }
	],
	[
		'delete comments (multi-row)', 0.5,
		sub {
			my $m = 15 + rint(30);
			return "DELETE FROM tb_comment WHERE pk_comment % $m = " . rint($m);
		}
	],
	[
		'truncate comments and re-insert', 0.1,
		sub { return truncate_comments(); }
	],

	# tags
	[
		'insert tag', 1,
		sub {
			my $id = $next{tag}++;
			return "INSERT INTO tb_tag VALUES ($id, " . lit(word()) . ')';
		}
	],
	[
		'rename tag', 2,
		sub {
			return 'UPDATE tb_tag SET name = ' . lit(phrase()) . ' WHERE pk_tag = pick_tag(' . r() . ')';
		}
	],
	[
		'delete tag', 0.3,
		sub { return 'DELETE FROM tb_tag WHERE pk_tag = pick_tag(' . r() . ')'; }
	],
	[
		'tag post', 4,
		sub {
			return 'INSERT INTO tb_post_tag SELECT p, t FROM pick_post(' . r() . ') p, pick_tag('
			  . r() . ') t WHERE p IS NOT NULL AND t IS NOT NULL ON CONFLICT DO NOTHING';
		}
	],
	[
		'untag post', 2,
		sub {
			return 'DELETE FROM tb_post_tag WHERE (fk_post, fk_tag) = (SELECT fk_post, fk_tag'
			  . ' FROM tb_post_tag ORDER BY 1, 2 OFFSET ' . r()
			  . ' % greatest((SELECT count(*) FROM tb_post_tag), 1) LIMIT 1)';
		}
	],);

my $total_weight = 0;
$total_weight += $_->[1] for @generators;

sub truncate_comments
{
	my $id = $next{comment};
	$next{comment} += 100000;
	my $m = 2 + rint(3);
	return (
		'TRUNCATE tb_comment CASCADE',
		"INSERT INTO tb_comment SELECT $id + row_number() OVER (ORDER BY p.pk_post), p.pk_post,"
		  . " CASE WHEN p.pk_post % 2 = 0 THEN p.fk_user END, 'reborn ' || p.pk_post"
		  . " FROM tb_post p WHERE p.pk_post % $m <> 0");
}

my %stmt_kinds;

sub random_statements
{
	my $x = rand($total_weight);
	for my $g (@generators)
	{
		$x -= $g->[1];
		if ($x < 0)
		{
			$stmt_kinds{ $g->[0] }++;
			return $g->[2]->();
		}
	}
	$stmt_kinds{ $generators[-1][0] }++;
	return $generators[-1][2]->();
}

# A transaction: a list of steps [kind, sql].  Kinds: begin, stmt,
# savepoint, rollback_to, release, commit, rollback, auto (a statement
# outside any transaction block).
sub new_transaction
{
	my $n = 1 + rint(5);
	if ($n == 1 && chance(0.3))
	{
		my @s = random_statements();
		return { steps => [ map { [ 'auto', $_ ] } @s ], kind => 'autocommit' }
		  if @s == 1;
	}
	my @steps = ([ 'begin', 'BEGIN' ]);
	my @stmts = map { [ random_statements() ] } 1 .. $n;
	my ($sp_at, $sp_len) = (-1, 0);
	if (chance(0.15))
	{
		$sp_at = rint($n);
		$sp_len = 1 + rint(2);
	}
	my $sp_end = chance(0.7) ? 'rollback_to' : 'release';
	for my $i (0 .. $#stmts)
	{
		push @steps, [ 'savepoint', 'SAVEPOINT sp' ] if $i == $sp_at;
		push @steps, map { [ 'stmt', $_ ] } @{ $stmts[$i] };
		if ($sp_at >= 0 && $i == $sp_at + $sp_len - 1)
		{
			push @steps,
			  $sp_end eq 'rollback_to'
			  ? [ 'rollback_to', 'ROLLBACK TO SAVEPOINT sp' ]
			  : [ 'release', 'RELEASE SAVEPOINT sp' ];
			$sp_at = -1;
		}
	}
	push @steps,
	  [ 'rollback_to', 'ROLLBACK TO SAVEPOINT sp' ] if $sp_at >= 0;    # savepoint ran to the end
	my $rollback = chance(0.08);
	push @steps, $rollback ? [ 'rollback', 'ROLLBACK' ] : [ 'commit', 'COMMIT' ];
	return { steps => \@steps, kind => $rollback ? 'rollback' : 'commit' };
}

# Errors the workload provokes by design: lock timeouts between sessions,
# foreign keys whose referenced row a concurrent session removed.
my %expected_sqlstate = (
	'55P03' => 'lock timeout',
	'23503' => 'foreign key violation',
	'40P01' => 'deadlock',
	'23505' => 'unique violation (concurrent insert)',
	'40001' => 'serialization failure',);
my %errors;
my @unexpected;
my %stats = (
	committed => 0, rolled_back => 0, aborted => 0, autocommit => 0,
	statements => 0, statement_errors => 0, subxact_errors => 0, late_txns => 0);

my $logfile = "$PostgreSQL::Test::Utils::log_path/020_differential_workload.sql";
open(my $wlog, '>', $logfile) or die "cannot write $logfile: $!";
$wlog->autoflush(1);
print $wlog "-- seed $seed ($replay)\n";

my @sessions;
for my $i (1 .. $nsessions)
{
	my $s = PgTviews::Differential::Session->new($node, $db, chr(64 + $i));
	my (undef, $err) = $s->query("SET lock_timeout = '50ms'");
	die "SET lock_timeout: $err" if $err;
	($s->{pid}) = $s->query('SELECT pg_backend_pid()');
	push @sessions, $s;
}

sub run_sql
{
	my ($s, $sql) = @_;
	my ($out, $err, $state) = $s->query($sql);
	(my $one = $sql) =~ s/\n/\\n/g;
	$one = substr($one, 0, 300) . '...' if length($one) > 300;
	print $wlog "/* $s->{name} */ $one;" . ($err ? " -- $state " . (split /\n/, $err)[0] : '') . "\n";
	if ($err && $err =~ /ERROR/)
	{
		if (!defined $state || !$expected_sqlstate{$state})
		{
			push @unexpected, "session $s->{name}: $sql\n$err";
			diag "unexpected error in session $s->{name}: $sql\n$err" if @unexpected <= 5;
		}
		$errors{ $state // 'unknown' }++;
		return 0;
	}
	return 1;
}

# Run the next step of a session's transaction; true when it has ended.
sub step
{
	my ($s) = @_;
	my $t = $s->{txn};
	my $st = $t->{steps}[ $t->{pos}++ ];
	my ($kind, $sql) = @$st;

	if ($kind eq 'savepoint')
	{
		$t->{in_sp} = 1 if run_sql($s, $sql);
	}
	elsif ($kind eq 'rollback_to' || $kind eq 'release')
	{
		run_sql($s, $sql);
		$t->{in_sp} = 0;
	}
	elsif ($kind eq 'stmt' || $kind eq 'auto')
	{
		$stats{statements}++;
		if (!run_sql($s, $sql))
		{
			$stats{statement_errors}++;
			if ($kind eq 'auto')
			{
				$stats{aborted}++;
				$t->{aborted} = 1;
				return 1;
			}
			if ($t->{in_sp})
			{
				# the error aborted the subtransaction only: roll it back,
				# skip to the end of the savepoint, go on
				$stats{subxact_errors}++;
				run_sql($s, 'ROLLBACK TO SAVEPOINT sp');
				$t->{in_sp} = 0;
				$t->{pos}++
				  while $t->{steps}[ $t->{pos} ][0] !~ /^(rollback_to|release)$/;
				$t->{pos}++;
			}
			else
			{
				run_sql($s, 'ROLLBACK');
				$stats{aborted}++;
				$t->{aborted} = 1;
				return 1;
			}
		}
		if ($kind eq 'auto')
		{
			$stats{autocommit}++;
			return 1;
		}
	}
	elsif ($kind eq 'begin')
	{
		run_sql($s, $sql) or die "BEGIN failed";
	}
	elsif ($kind eq 'commit')
	{
		# a COMMIT can fail too (deferred checks); then nothing committed
		if (run_sql($s, $sql)) { $stats{committed}++; }
		else { $stats{aborted}++; }
		return 1;
	}
	elsif ($kind eq 'rollback')
	{
		run_sql($s, $sql);
		$stats{rolled_back}++;
		return 1;
	}
	return $t->{pos} >= @{ $t->{steps} };
}

# ---------------------------------------------------------------------
# checkpoints: the oracle
# ---------------------------------------------------------------------
my %mismatch_checks = map { $_ => 0 } (@names, 'tv_user_feed (deep)');
my %mismatch_rows = map { $_ => 0 } (@names, 'tv_user_feed (deep)');
my ($ncheckpoints, $wait_failures, $repair_failures, $oracle_errors) = (0, 0, 0, 0);
my $wait_time = 0;
my ($late_rounds, $late_round_done, $late_round_mismatches) = (0, 0, 0);
my %late_round_bad;
my (%transient, %lasting);
my $forced_truncates = 0;

sub wait_engine
{
	my ($label) = @_;
	my $t0 = time;
	my $ok = $node->safe_psql($db, "SELECT pg_tviews_wait('60s')");
	$wait_time += time - $t0;
	if ($ok ne 't')
	{
		$wait_failures++;
		diag "checkpoint $label: pg_tviews_wait('60s') returned '$ok' (seed $seed); engine state:\n"
		  . $node->safe_psql($db,
			"SELECT tview, state, last_error FROM tviews.tview ORDER BY tview::oid")
		  . "\nparked keys:\n"
		  . $node->safe_psql($db, 'SELECT tview, key, error FROM tviews.failed_key');
		return 0;
	}
	return 1;
}

# What the engine's queue (pending and recently processed work) and the
# audit trail say about the keys a mismatch is about.
sub forensics
{
	my ($tv, $view) = @_;
	my $keycol = $node->safe_psql($db,
		"SELECT key_column FROM tviews.tview WHERE tview = '$tv'::regclass");
	my $keys = eval {
		$node->safe_psql($db,
			"SELECT string_agg(DISTINCT ${keycol}::text, ',') FROM ("
			  . "(TABLE $tv EXCEPT ALL TABLE $view) UNION ALL (TABLE $view EXCEPT ALL TABLE $tv)) d");
	};
	return "(cannot list the keys: $@)" unless defined $keys;
	return '' if $keys eq '';
	my @k = (split /,/, $keys)[ 0 .. 19 ];
	@k = grep { defined } @k;
	my $list = join(',', map { "'$_'" } @k);
	my $out = "engine queue entries of $tv for keys @k:\n"
	  . (eval {
		$node->safe_psql($db,
			"SELECT format('  key %s %s status %s lsn %s enqueued %s processed %s attempts %s %s',"
			  . " key, CASE WHEN full_refresh THEN '(full)' ELSE '' END, status, source_lsn,"
			  . " enqueued_at::time, processed_at::time, attempts, coalesce(error, ''))"
			  . " FROM pg_tviews_queue_entries() WHERE tview = '$tv'::regclass"
			  . " AND (key IN ($list) OR full_refresh) ORDER BY enqueued_at")
	} // "  (pg_tviews_queue_entries() failed: $@)");
	if ($audit)
	{
		my %root = (tv_post => 'tb_post', tv_comment => 'tb_comment',
			tv_post_full => 'tb_post', tv_post_tags => 'tb_post',
			tv_user_stats => 'tb_user', tv_user_feed => 'tb_user');
		my $klist = join(',', @k);
		$out .= "\naudit trail of $root{$tv} for those keys (committed changes):\n"
		  . $node->safe_psql($db,
			"SELECT format('  %s xid %s lsn %s %s %s key %s -> %s ref %s -> %s', at::time, xid, lsn,"
			  . " tbl, op, old_key, new_key, old_ref, new_ref) FROM diff_audit"
			  . " WHERE tbl = '$root{$tv}' AND (old_key IN ($klist) OR new_key IN ($klist)"
			  . "   OR (tbl = 'tb_post' AND '$tv' = 'tv_user_stats' AND (old_ref IN ($klist) OR new_ref IN ($klist))))"
			  . " ORDER BY id");
	}
	return $out;
}

sub checkpoint
{
	my ($label) = @_;
	$ncheckpoints++;
	wait_engine($label);

	my @bad;
	my @pairs = ((map { [ $_, $_, "${_}_def" ] } @names),
		[ 'tv_user_feed (deep)', 'tv_user_feed', 'tv_user_feed_deep' ]);
	for my $p (@pairs)
	{
		my ($label2, $tv, $view) = @$p;
		# a query that fails (a corrupt TVIEW, say) counts as a mismatch
		my $n = eval { oracle_count($node, $db, $tv, $view) };
		if (!defined $n)
		{
			$oracle_errors++;
			diag "ORACLE ERROR at checkpoint $label (seed $seed): comparing $label2 with $view failed: $@";
			$n = 1;
		}
		next if $n == 0;
		$mismatch_checks{$label2}++;
		$mismatch_rows{$label2} += $n;
		push @bad, $tv unless grep { $_ eq $tv } @bad;
		# the rows of the first three mismatches of each TVIEW
		if ($mismatch_checks{$label2} <= 3)
		{
			diag "MISMATCH at checkpoint $label (after $stats{finished} transactions, seed $seed): "
			  . "$label2 differs from $view in $n rows:\n"
			  . (eval { oracle_rows($node, $db, $tv, $view, 30) } // "(cannot list them: $@)")
			  . "\n" . forensics($tv, $view);
		}
		else
		{
			diag "MISMATCH at checkpoint $label: $label2, $n rows (seed $seed)";
		}
	}
	return () unless @bad;

	# Transient or lasting?  Give the engine two more seconds and another
	# wait: a difference that goes away means pg_tviews_wait() returned
	# before the engine had applied what was committed before the call (no
	# read-your-writes); one that stays is work the engine lost.
	Time::HiRes::sleep(2);
	wait_engine("$label (second look)");
	for my $tv (@bad)
	{
		my @views = ("${tv}_def", ($tv eq 'tv_user_feed' ? ('tv_user_feed_deep') : ()));
		for my $view (@views)
		{
			my $n = eval { oracle_count($node, $db, $tv, $view) } // 'unknown';
			if ($n eq '0')
			{
				$transient{$tv}++;
				diag "checkpoint $label: $tv matches $view on a second look, 2 s later:"
				  . " pg_tviews_wait() had returned before the engine applied the changes";
			}
			else
			{
				$lasting{$tv}++;
				diag "checkpoint $label: $tv still differs from $view in $n rows 2 s later"
				  . " (work lost, not late)";
			}
		}
	}

	# repair, so that later checkpoints see new divergences only
	for my $tv (@names)
	{
		next unless grep { $_ eq $tv } @bad;
		my ($rc, $out, $err) = $node->psql($db, "SELECT pg_tviews_refresh('$tv')");
		diag "checkpoint $label: pg_tviews_refresh('$tv') failed: $err" if $rc != 0;
	}
	wait_engine("$label (after repair)");
	for my $tv (@bad)
	{
		my $n = eval { oracle_count($node, $db, $tv, "${tv}_def") } // 'unknown (the comparison failed)';
		if ($n ne '0')
		{
			$repair_failures++;
			diag "checkpoint $label: $tv still differs in $n rows after pg_tviews_refresh():\n"
			  . (eval { oracle_rows($node, $db, $tv, "${tv}_def", 20) } // $@);
		}
	}
	print $wlog "-- checkpoint $label: mismatch in @bad (repaired)\n";
	return @bad;
}

# A TRUNCATE of tb_comment and re-inserts, in one transaction, retried
# past the engine's short locks.
sub forced_truncate
{
	my $s0 = $sessions[0];
	for my $try (1 .. 20)
	{
		$s0->{txn} = {
			steps => [
				[ 'begin', 'BEGIN' ],
				(map { [ 'stmt', $_ ] } truncate_comments()),
				[ 'commit', 'COMMIT' ]
			],
			pos => 0
		};
		my $before = $stats{committed};
		until (step($s0)) { }
		$s0->{txn} = undef;
		if ($stats{committed} > $before) { $forced_truncates++; return; }
	}
}

# Commits that become visible late.  A backend makes its commit visible
# (ProcArrayEndTransaction) only after its commit record is flushed --
# and, with synchronous replication, after the standby confirmed it.
# Meanwhile the engine can decode the commit, but a snapshot does not see
# its changes yet.  A standby that never answers stretches that window:
# each session commits one random transaction while
# synchronous_standby_names names a standby that does not exist; once
# every commit waits (SyncRep) and the engine has had time to decode them
# (it then waits on its own commit, or for the transactions), the setting
# is reset, which releases every waiter.  The next checkpoint must find
# every TVIEW right all the same.
sub psql_poll
{
	my ($sql, $seconds) = @_;
	my $until = time + $seconds;
	while (time < $until)
	{
		return 1 if $node->safe_psql($db, $sql) eq 't';
		Time::HiRes::sleep(0.05);
	}
	return 0;
}

sub late_visibility_round
{
	# a checkpoint first, so that what the next one finds is the round's
	checkpoint('before a late-visibility round');
	my @committing;
	for my $s (@sessions)
	{
		my @stmts = map { random_statements() } 1 .. 1 + rint(3);
		$s->{txn} = {
			steps => [ [ 'begin', 'BEGIN' ], (map { [ 'stmt', $_ ] } @stmts) ],
			pos => 0
		};
		step($s) while !$s->{txn}{aborted} && $s->{txn}{pos} < @{ $s->{txn}{steps} };
		push @committing, $s unless $s->{txn}{aborted};    # an error rolled it back
		$s->{txn} = undef;
	}
	$stats{late_txns} += @sessions;
	return unless @committing;

	$node->safe_psql($db,
		"ALTER SYSTEM SET synchronous_standby_names = 'pgtv_no_such_standby'");
	$node->safe_psql($db, 'SELECT pg_reload_conf()');
	Time::HiRes::sleep(0.3);    # the checkpointer applies it
	for my $s (@committing)
	{
		print $wlog "/* $s->{name} */ COMMIT; -- held by synchronous replication\n";
		$s->send('COMMIT');
	}
	my $pids = join(',', map { $_->{pid} } @committing);
	my $held = psql_poll(
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid IN ($pids)"
		  . " AND state = 'active' AND wait_event IS DISTINCT FROM 'SyncRep'", 10);
	# the engine decodes the held commits and refreshes their keys; then
	# it waits too (its own commit is held), unless it had nothing to write
	my $engine_held = psql_poll(
		"SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'pg_tviews engine'"
		  . " AND (wait_event = 'SyncRep' OR wait_event_type = 'Lock'))", 5);
	$node->safe_psql($db, 'ALTER SYSTEM RESET synchronous_standby_names');
	$node->safe_psql($db, 'SELECT pg_reload_conf()');
	for my $s (@committing)
	{
		my ($out, $err, $state) = $s->collect;
		if ($err =~ /ERROR/)
		{
			$stats{aborted}++;
			push @unexpected, "session $s->{name}: COMMIT held by synchronous replication\n$err";
		}
		else
		{
			$stats{committed}++;
		}
	}
	$late_rounds++;
	$late_round_done = 1;
	note "late-visibility round: " . scalar(@committing) . " commits held"
	  . ($held ? '' : ' (not all seen waiting)')
	  . ($engine_held ? ', engine waited' : ', engine did not wait');
}

$stats{finished} = 0;
# PGTV_DIFF_SELFTEST=1: damage a TVIEW row behind the engine's back, to see
# the oracle fail (and its report); the test must then fail.
if ($ENV{PGTV_DIFF_SELFTEST})
{
	$node->safe_psql($db,
		"UPDATE tv_post SET data = '{}' WHERE pk_post = (SELECT min(pk_post) FROM tv_post)");
}
checkpoint('initial');

# Finish every open transaction (all sessions idle afterwards).
sub drain
{
	for my $s (@sessions)
	{
		next unless $s->{txn};
		until (step($s)) { }
		$s->{txn} = undef;
		$stats{finished}++;
	}
}

my $started = 0;
my $next_check = $check_every;
my $period = 0;
my $t_workload = time;
while ($stats{finished} < $ntxns)
{
	my $s = $sessions[ rint(scalar @sessions) ];
	if (!$s->{txn})
	{
		next if $started >= $ntxns;
		$s->{txn} = new_transaction();
		$s->{txn}{pos} = 0;
		$started++;
	}
	if (step($s))
	{
		$s->{txn} = undef;
		$stats{finished}++;
	}
	if ($stats{finished} >= $next_check || $stats{finished} >= $ntxns)
	{
		drain();
		# now and then, with all sessions idle: a TRUNCATE of tb_comment
		# that cannot collide with another session, or a round of commits
		# that become visible late
		$period++;
		forced_truncate() if $period % 10 == 2;
		late_visibility_round() if $period % 5 == 3;
		print $wlog "-- checkpoint after $stats{finished} transactions\n";
		my @bad = checkpoint("#$ncheckpoints" . ($late_round_done ? ' (after a late-visibility round)' : ''));
		if ($late_round_done && @bad)
		{
			$late_round_mismatches++;
			$late_round_bad{$_}++ for @bad;
		}
		$late_round_done = 0;
		$next_check += $check_every;
	}
}
drain();
checkpoint('final');
my $t_end_workload = time;

$_->quit for @sessions;
close $wlog;

# ---------------------------------------------------------------------
# results
# ---------------------------------------------------------------------
for my $label (@names, 'tv_user_feed (deep)')
{
	is($mismatch_checks{$label}, 0,
		"$label equals its definition at every checkpoint (seed $seed)")
	  or diag "$label: $mismatch_checks{$label} of $ncheckpoints checkpoints mismatched, "
	  . "$mismatch_rows{$label} differing rows in total";
}
is($late_round_mismatches, 0,
	"no mismatch after the $late_rounds rounds of commits that became visible late")
  or diag 'TVIEWs that differed after such a round (times): '
  . join(', ', map { "$_ ($late_round_bad{$_})" } sort keys %late_round_bad);
is($wait_failures, 0, "pg_tviews_wait('60s') returned true at every checkpoint");
is($oracle_errors, 0, 'every oracle comparison ran (no error reading a TVIEW or its definition)');
is($repair_failures, 0, 'pg_tviews_refresh() repaired every mismatch');
is(scalar(@unexpected), 0, 'the workload raised no unexpected errors')
  or diag "first unexpected error:\n$unexpected[0]";
cmp_ok($stats{committed} + $stats{autocommit}, '>=', $ntxns / 2,
	'at least half of the transactions committed');

is( $node->safe_psql(
		$db, 'SELECT string_agg(format(\'%s: %s\', tview, last_error), E\'\n\')'
		  . ' FROM tviews.tview WHERE last_error IS NOT NULL'),
	'',
	'no TVIEW has a last_error');
is( $node->safe_psql(
		$db, "SELECT string_agg(format('%s key %s: %s', tview, key, error), E'\\n')"
		  . ' FROM tviews.failed_key'),
	'',
	'no key is parked in tviews.failed_key');
is($node->safe_psql($db, "SELECT string_agg(tview::text, ', ') FROM tviews.tview WHERE state <> 'ready'"),
	'', 'every TVIEW is ready');

# Physical consistency (amcheck): heap and TOAST of every TVIEW and base
# table, and their btree indexes.  A TVIEW whose rows point at TOAST
# chunks that are gone fails here even where the oracle cannot say why.
{
	my ($rc, $out, $err) = $node->psql($db, 'CREATE EXTENSION IF NOT EXISTS amcheck');
	if ($rc != 0)
	{
		note "amcheck not available, no physical check: $err";
	}
	else
	{
		my $corrupt = '';
		for my $rel (@names, qw(tb_user tb_post tb_comment tb_tag tb_post_tag))
		{
			my ($rc2, $out2, $err2) = $node->psql(
				$db, qq{
SELECT format('  %s block %s offset %s attnum %s: %s', '$rel', blkno, offnum, attnum, msg)
FROM verify_heapam('$rel', check_toast => true)});
			$corrupt .= $rc2 == 0 ? ($out2 ne '' ? "$out2\n" : '') : "  $rel: $err2\n";
			my ($rc3, $out3, $err3) = $node->psql($db,
				"SELECT bt_index_check(indexrelid, true) FROM pg_index WHERE indrelid = '$rel'::regclass");
			$corrupt .= "  $rel indexes: $err3\n" if $rc3 != 0;
		}
		is($corrupt, '', 'amcheck finds no corruption in the TVIEWs and base tables (heap, TOAST, btree)');
	}
}

# the engine's complaints in the server log
my $log = slurp_file($node->logfile);
my @engine_lines = grep {
	/pg_tviews engine.*\b(ERROR|FATAL|PANIC|WARNING)\b/
	  || /\b(ERROR|FATAL|PANIC|WARNING):\s+(\w+:\s+)?pg_tviews/
	  || /background worker "pg_tviews[^"]*" .*(exited with exit code [1-9]|terminated by signal)/
	  || /server process .* terminated by signal/
} split /\n/, $log;
is(scalar(@engine_lines), 0, 'no ERROR, WARNING or crash of the pg_tviews engine in the server log')
  or diag "server log:\n" . join("\n", @engine_lines[ 0 .. ($#engine_lines < 40 ? $#engine_lines : 39) ]);

# ---------------------------------------------------------------------
# totals
# ---------------------------------------------------------------------
my $counts = join(
	"\n",
	map {
		$node->safe_psql(
			$db, qq{
SELECT format('  %-14s %6s rows, %7s rows refreshed, %4s full refreshes',
              t.tview, (SELECT count(*) FROM $_), t.rows_refreshed, t.full_refreshes)
FROM tviews.tview t WHERE t.tview = '$_'::regclass})
	} @names);
my $base = $node->safe_psql(
	$db, q{
SELECT format('  users %s, posts %s, comments %s (%s long), tags %s, post tags %s',
              (SELECT count(*) FROM tb_user), (SELECT count(*) FROM tb_post),
              (SELECT count(*) FROM tb_comment),
              (SELECT count(*) FROM tb_comment WHERE length(body) > 2000),
              (SELECT count(*) FROM tb_tag), (SELECT count(*) FROM tb_post_tag))});
diag sprintf(
	"totals (seed %d): %d transactions in %.1fs (%d committed, %d autocommit, %d rolled back,"
	  . " %d aborted by errors), %d statements (%d failed, %d rolled back to a savepoint after an error),"
	  . " %d checkpoints (%.1fs waiting for the engine), %d forced TRUNCATEs,"
	  . " %d late-visibility rounds (%d transactions; %d followed by a mismatch)",
	$seed, $stats{finished}, $t_end_workload - $t_workload, $stats{committed},
	$stats{autocommit}, $stats{rolled_back}, $stats{aborted}, $stats{statements},
	$stats{statement_errors}, $stats{subxact_errors}, $ncheckpoints, $wait_time,
	$forced_truncates, $late_rounds, $stats{late_txns}, $late_round_mismatches);
diag "errors by SQLSTATE: "
  . (join(', ', map { "$_ (" . ($expected_sqlstate{$_} // 'unexpected') . "): $errors{$_}" } sort keys %errors) || 'none');
diag "base tables at the end:\n$base";
diag "TVIEWs at the end:\n$counts";
diag "mismatches gone on a second look (pg_tviews_wait returned early): "
  . (join(', ', map { "$_ $transient{$_}" } sort keys %transient) || 'none')
  . "; still there (lost work): "
  . (join(', ', map { "$_ $lasting{$_}" } sort keys %lasting) || 'none');
diag "mismatches per TVIEW (checkpoints / rows): "
  . join(', ', map { "$_ $mismatch_checks{$_}/$mismatch_rows{$_}" } (@names, 'tv_user_feed (deep)'));
note "statements by kind:\n"
  . join("\n", map { sprintf('  %-40s %d', $_, $stmt_kinds{$_}) } sort keys %stmt_kinds);
note "workload log: $logfile";
diag sprintf('run time %.1fs', time - $t_start);

$node->stop;
done_testing();
