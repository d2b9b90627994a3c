# PgTviews::Workload -- the schema, TVIEWs and pgbench write load shared by
# the fault-injection and soak tests (test/t/050_faults.pl, 060_soak.pl).
#
#   my @names = PgTviews::Workload::setup($node, $db);   # tables, data, TVIEWs
#   my $script = PgTviews::Workload::pgbench_script();    # a file in a tempdir
#   # or, for a stationary load (060_soak.pl):
#   PgTviews::Workload::setup($node, $db, steady => 1);
#   my $script = PgTviews::Workload::pgbench_script(steady => 1);
#   my $w = PgTviews::Workload::start_pgbench($node, $db, $script,
#               seconds => 5, rate => 400, seed => 42);
#   my $n = PgTviews::Workload::finish_pgbench($w);       # transactions done
#
# Three base tables and five TVIEWs of different shapes:
#   tv_post           a join: post + author (tb_user is a parent through
#                     the exposed fk_user)
#   tv_post_comments  the post's comments as a jsonb_agg (tb_comment is a
#                     child through fk_post)
#   tv_comment        comment + its post's title (tb_post is a parent
#                     through the exposed fk_post)
#   tv_user_stats     posts per user and their total score (LEFT JOIN ...
#                     GROUP BY)
#   tv_user_feed      a TVIEW on a TVIEW: each user's posts read from
#                     tv_post in a correlated jsonb_agg
# The pgbench script writes to all three tables: inserts, updates that
# move rows between keys, deletes, multi-statement transactions.  It never
# touches user 999 nor posts above 900000 (900001..900010 exist, owned by
# user 999), which a test may use for writes of its own that must not
# collide with pgbench's.
#
# The default script makes the tables grow (new keys from sequences), and
# with them the work of a write: renaming a user refreshes all of that
# user's posts.  The steady variant keeps every key in a fixed range
# (upserts and deletes of random keys: about 1700 posts and 17000
# comments at equilibrium, which steady setup starts at), so that the
# engine's work per second is stationary: what a soak that looks for
# leaks needs.
package PgTviews::Workload;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(setup pgbench_script start_pgbench finish_pgbench @tviews);

# [name, key, definition], in dependency order
our @tviews = (
	[
		'tv_post', 'pk_post', q{
SELECT p.pk_post, p.fk_user, p.title, p.score,
       jsonb_build_object('name', u.name, 'id', u.pk_user) AS author
FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user}
	],
	[
		'tv_post_comments', 'pk_post', q{
SELECT p.pk_post,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.pk_comment, 'body', c.body)
                                  ORDER BY c.pk_comment), '[]'::jsonb)
          FROM tb_comment c WHERE c.fk_post = p.pk_post) AS comments
FROM tb_post p}
	],
	[
		'tv_comment', 'pk_comment', q{
SELECT c.pk_comment, c.fk_post, c.body, p.title AS post_title
FROM tb_comment c JOIN tb_post p ON p.pk_post = c.fk_post}
	],
	[
		'tv_user_stats', 'pk_user', q{
SELECT u.pk_user, count(p.pk_post) AS posts, coalesce(sum(p.score), 0) AS score
FROM tb_user u LEFT JOIN tb_post p ON p.fk_user = u.pk_user
GROUP BY u.pk_user}
	],
	[
		'tv_user_feed', 'pk_user', q{
SELECT u.pk_user, u.name,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('post', tp.pk_post, 'title', tp.title)
                                  ORDER BY tp.pk_post), '[]'::jsonb)
          FROM tv_post tp WHERE tp.fk_user = u.pk_user) AS feed
FROM tb_user u}
	],);

# Create the extension, the tables with their data, and the TVIEWs;
# returns the TVIEW names.
sub setup
{
	my ($node, $db, %opt) = @_;
	$node->safe_psql($db, q{
		SET client_min_messages = warning;
		CREATE EXTENSION pg_tviews;
		CREATE TABLE tb_user (pk_user int PRIMARY KEY, name text NOT NULL);
		CREATE TABLE tb_post (pk_post int PRIMARY KEY, fk_user int NOT NULL,
		                      title text NOT NULL, score int NOT NULL DEFAULT 0);
		CREATE TABLE tb_comment (pk_comment int PRIMARY KEY, fk_post int NOT NULL,
		                         body text NOT NULL);
		CREATE INDEX ON tb_post (fk_user);
		CREATE INDEX ON tb_comment (fk_post);
		CREATE SEQUENCE user_seq START 21;
		CREATE SEQUENCE post_seq START 1001;
		CREATE SEQUENCE comment_seq START 100001;
		INSERT INTO tb_user SELECT i, 'user ' || i FROM generate_series(1, 20) i;
		INSERT INTO tb_user VALUES (999, 'quiet user');
		INSERT INTO tb_post SELECT i, 1 + i % 20, 'post ' || i, i % 7 FROM generate_series(1, 400) i;
		INSERT INTO tb_post SELECT 900000 + i, 999, 'quiet post ' || i, 0 FROM generate_series(1, 10) i;
		INSERT INTO tb_comment SELECT i, 1 + i % 400, 'comment ' || i FROM generate_series(1, 2000) i;
	});
	# the steady script's equilibrium, about
	if ($opt{steady})
	{
		$node->safe_psql($db, q{
			INSERT INTO tb_post SELECT i, 1 + i % 20, 'post ' || i, i % 7
			FROM generate_series(401, 2000) i WHERE i % 6 <> 0;
			INSERT INTO tb_comment SELECT i, 1 + i % 2000, 'comment ' || i
			FROM generate_series(2001, 20000) i WHERE i % 6 <> 0;
		});
	}
	for my $tv (@tviews)
	{
		my ($name, $key, $query) = @$tv;
		$node->safe_psql($db,
			"SET client_min_messages = warning;"
			  . " SELECT pg_tviews_create('$name', \$q\$$query\$q\$, '$key')");
	}
	return map { $_->[0] } @tviews;
}

# The pgbench script, written to a new file; returns its path.
sub pgbench_script
{
	my (%opt) = @_;
	my $script = PostgreSQL::Test::Utils::tempdir() . '/writes.pgbench';
	PostgreSQL::Test::Utils::append_to_file($script, $opt{steady} ? q{
\set u random(1, 20)
\set p random(1, 2000)
\set c random(1, 20000)
\set r random(1, 100)
\if :r <= 25
INSERT INTO tb_comment VALUES (:c, :p, 'comment ' || :c)
  ON CONFLICT (pk_comment) DO UPDATE SET fk_post = EXCLUDED.fk_post, body = 'comment ' || :c || ' v' || :r;
\elif :r <= 40
UPDATE tb_post SET score = (score + 1) % 100, title = 'post ' || :p || ' v' || :c WHERE pk_post = :p;
\elif :r <= 50
UPDATE tb_comment SET fk_post = :p, body = 'moved ' || :c WHERE pk_comment = :c;
\elif :r <= 62
DELETE FROM tb_comment WHERE pk_comment = :c;
\elif :r <= 70
INSERT INTO tb_post VALUES (:p, :u, 'post ' || :p, :c % 10)
  ON CONFLICT (pk_post) DO UPDATE SET fk_user = EXCLUDED.fk_user;
\elif :r <= 78
UPDATE tb_post SET fk_user = :u WHERE pk_post = :p;
\elif :r <= 83
UPDATE tb_user SET name = 'user ' || :u || ' v' || :c WHERE pk_user = :u;
\elif :r <= 87
DELETE FROM tb_post WHERE pk_post = :p;
\else
BEGIN;
INSERT INTO tb_post VALUES (:p, :u, 'batch post', 1)
  ON CONFLICT (pk_post) DO UPDATE SET title = 'batch post ' || :c;
INSERT INTO tb_comment SELECT (:c + i) % 20000 + 1, :p, 'batch comment ' || i FROM generate_series(0, 2) i
  ORDER BY 1 ON CONFLICT (pk_comment) DO UPDATE SET fk_post = EXCLUDED.fk_post, body = EXCLUDED.body;
UPDATE tb_user SET name = name || '+' WHERE pk_user = :u AND length(name) < 40;
UPDATE tb_user SET name = 'user ' || :u WHERE pk_user = :u AND length(name) >= 40;
COMMIT;
\endif
} : q{
\set u random(1, 30)
\set p random(1, 1600)
\set c random(1, 104000)
\set r random(1, 100)
\if :r <= 22
INSERT INTO tb_comment VALUES (nextval('comment_seq'), :p, 'new comment ' || :c);
\elif :r <= 40
UPDATE tb_post SET score = score + 1, title = 'post ' || :p || ' v' || :c WHERE pk_post = :p;
\elif :r <= 50
UPDATE tb_comment SET fk_post = :p, body = body || '.' WHERE pk_comment = :c;
\elif :r <= 58
DELETE FROM tb_comment WHERE pk_comment = :c;
\elif :r <= 66
INSERT INTO tb_post VALUES (nextval('post_seq'), :u, 'new post ' || :c, :c % 10);
\elif :r <= 74
UPDATE tb_post SET fk_user = :u WHERE pk_post = :p;
\elif :r <= 81
UPDATE tb_user SET name = 'user ' || :u || ' v' || :c WHERE pk_user = :u;
\elif :r <= 83
INSERT INTO tb_user SELECT nextval('user_seq'), 'new user' WHERE :c % 20 = 0;
\elif :r <= 87
DELETE FROM tb_post WHERE pk_post = :p;
\else
BEGIN;
INSERT INTO tb_post VALUES (nextval('post_seq'), :u, 'batch post', 1);
INSERT INTO tb_comment SELECT nextval('comment_seq'), currval('post_seq'), 'batch comment ' || i
  FROM generate_series(1, 5) i;
UPDATE tb_comment SET fk_post = currval('post_seq') WHERE pk_comment = :c;
UPDATE tb_user SET name = name || '+' WHERE pk_user = :u;
COMMIT;
\endif
});
	return $script;
}

# Start pgbench in the background: seconds, rate (transactions per
# second, all clients together), seed (pgbench's --random-seed), clients
# (default 2).
sub start_pgbench
{
	my ($node, $db, $script, %o) = @_;
	croak 'start_pgbench needs seconds' unless $o{seconds};
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-h', $node->host, '-p', $node->port,
		'-c', $o{clients} // 2, '-j', $o{clients} // 2, '-T', $o{seconds},
		(defined $o{rate} ? ('-R', $o{rate}) : ()),
		(defined $o{seed} ? ("--random-seed=$o{seed}") : ()),
		# a deadlock between the clients is retried, not the end of a client
		'--max-tries=10',
		'-f', $script, $db);
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($o{seconds} + 300));
	return { h => $h, out => \$out, err => \$err };
}

# Wait for pgbench to end; returns the number of transactions it reports
# as processed (a crash makes its clients abort: those count as failed).
sub finish_pgbench
{
	my ($w) = @_;
	eval { $w->{h}->finish; };
	if ($@)
	{
		Test::More::diag("pgbench did not end: $@");
		eval { $w->{h}->kill_kill; };
	}
	my ($n) = ${ $w->{out} } =~ /number of transactions actually processed: (\d+)/;
	return $n // 0;
}

1;
