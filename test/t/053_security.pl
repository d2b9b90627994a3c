# Security: privileges, row-level security, security-restricted refresh,
# search_path attacks, status-table writes, and hostile names.
#
# What test/t/031_privileges.pl covers (the engine refreshes as the owner;
# a role cannot build a TVIEW over what it cannot read; manual refresh is
# for the owner; an owner who loses SELECT on the root table gets failing,
# parked keys) is not repeated.  Here:
#
#  1. Status tables and functions: every INSERT/UPDATE/DELETE/TRUNCATE on
#     every pg_tviews_* foreign table by a role that is not in
#     pg_tviews_admin (a plain role, a pg_monitor member, a TVIEW owner)
#     fails with 42501; a pg_tviews_admin member may do what is granted;
#     pg_tviews_system_disable/enable and the internal tviews.* functions
#     are denied to non-admins; nobody can make a foreign table of their
#     own on pg_tviews_server; and what the status tables restrict to
#     pg_monitor (queued keys, refresh errors, which can carry data values)
#     cannot be read by others through the functions and catalog beneath.
#  2. An owner who loses SELECT on a joined (non-root) table: the engine's
#     refreshes fail, the error shows in pg_tviews_metadata.last_error and
#     pg_tviews_queue, no new row leaks in; a superuser's manual refresh
#     fails too; an admin's queued refresh is still run as the owner.
#  3. A definition calling a SECURITY INVOKER function that reads a table
#     the owner may not read: the engine's refresh fails; a superuser's
#     manual refresh (refresh, refresh_row, refresh_range) must run as the
#     owner too and not copy the secret into the TVIEW.
#  4. Row-level security: the refresh applies the owner's policies (engine
#     and manual refresh by a superuser), and FORCE ROW LEVEL SECURITY on
#     a table the owner owns.
#  5. Hostile names (database "names"): schemas, tables, columns, TVIEWs
#     and keys with quotes, spaces, dots, unicode and SQL fragments, through
#     every API: pg_tviews_create, CREATE TABLE tv_... AS, writes applied by
#     the engine (oracle = 0), refresh, refresh_row, refresh_range, wait,
#     emergency disable/enable and queue INSERT/UPDATE/DELETE by entity_name
#     through the foreign tables, the runbooks' dynamic SQL (the exact
#     statements, taken from the runbooks' sql blocks at run time; those
#     of the emergency runbook checked against the seed), drop,
#     DROP TABLE, and pg_tviews_convert_existing_table (with a query and
#     from <name>_def).  A canary table t survives all of it.
#  6. search_path attacks on the catalog's SQL: a non-superuser with CREATE
#     on public adds overloads and operators that beat pg_catalog's for the
#     argument types the extension's functions use (array_length(text[],
#     int), quote_ident(name), format(text, regclass), =(regclass,
#     regclass), ...).  No API call by a superuser with the default
#     search_path, and no refresh by the engine, may call them.
#  7. A malicious function in a definition, run by the engine: SET ROLE,
#     SET SESSION AUTHORIZATION, temporary tables, PREPARE, LISTEN,
#     DISCARD, ALTER ROLE, writes to others' tables are refused (the
#     security-restricted operation); writes to the owner's own tables run
#     as the owner; and settings the function changes (TimeZone,
#     search_path) must not outlive its refresh -- neither alter other
#     owners' TVIEWs nor let the owner run code as the engine's superuser.
#
# Product bugs make assertions here fail on purpose: each assertion states
# the correct behaviour.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use PgTviews::Differential qw(oracle_count);
use Test::More;
use Time::HiRes qw(usleep);

my $repo = $ENV{PGTV_REPO}
  or BAIL_OUT('PGTV_REPO is not set (run the TAP tests through scripts/run-tests.sh)');

my $node = new_node('security');
$node->append_conf('postgresql.conf', q{
pg_tviews.max_retries = 2
pg_tviews.retry_delay = 100ms
pg_tviews.restart_interval = 1
# a long-lived psql per role and database
max_connections = 50
});
$node->start;

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

# A node that connects as a given role, for PgTviews::Differential::Session
# (one long-lived psql per role and database: hundreds of statements
# without a process each).
package RoleNode;
sub new { my ($class, $node, $role) = @_; return bless { node => $node, role => $role }, $class; }
sub installed_command { my $self = shift; return $self->{node}->installed_command(@_); }
sub connstr { my ($self, $db) = @_; return $self->{node}->connstr($db) . " user=$self->{role}"; }
package main;

my %sessions;

sub session
{
	my ($role, $db) = @_;
	return $sessions{"$role/$db"} //=
	  PgTviews::Differential::Session->new(RoleNode->new($node, $role), $db, "$role/$db");
}

# after a restart the sessions are gone
sub forget_sessions
{
	for my $s (values %sessions)
	{
		eval { $s->quit };
	}
	%sessions = ();
}

# SQL as a role: { rc, out, err, state (SQLSTATE of the first ERROR) }.
# psql goes on after an error (ON_ERROR_STOP=0); rc is 3 after one.
sub run_as
{
	my ($role, $sql, $db) = @_;
	$db //= 'postgres';
	my ($out, $err, $state) = session($role, $db)->query($sql);
	return { rc => defined $state ? 3 : 0, out => $out, err => $err, state => $state // '' };
}

sub safe_as
{
	my ($role, $sql, $db) = @_;
	my $r = run_as($role, $sql, $db);
	die "as $role: $sql\n$r->{err}" if $r->{rc} != 0;
	return $r->{out};
}

sub su
{
	my ($sql, $db) = @_;
	my $r = run_as('postgres', $sql, $db);
	die "as superuser: $sql\n$r->{err}" if $r->{rc} != 0;
	return $r->{out};
}

sub first_error
{
	my ($err) = @_;
	return $err =~ /^(.*ERROR:.*)$/m ? $1 : $err;
}

# SQL literal / identifier quoting
sub qlit { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }
sub qident { my $s = shift; $s =~ s/"/""/g; return "\"$s\""; }

# pg_tviews_wait() as superuser.  The bounds here and in poll() only cut
# a failing case short; nothing is asserted about how long anything takes.
sub wait_engine
{
	my ($db, $timeout) = @_;
	$timeout //= 30;
	return su("SELECT pg_tviews_wait('${timeout}s')", $db) eq 't';
}

# Poll (as superuser) until a query returns 't', for up to $timeout s.
sub poll
{
	my ($sql, $db, $timeout) = @_;
	$timeout //= 30;
	for (my $i = 0; $i < $timeout * 10; $i++)
	{
		my $r = run_as('postgres', $sql, $db // 'postgres');
		return 1 if $r->{rc} == 0 && $r->{out} eq 't';
		usleep(100_000);
	}
	diag("timed out after ${timeout}s polling: $sql");
	return 0;
}

# Server log from a byte offset on.
sub log_since
{
	my ($offset) = @_;
	my $log = slurp_file($node->logfile);
	return substr($log, $offset);
}

su(q{
	CREATE EXTENSION pg_tviews;
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE ROLE nobody LOGIN;
	CREATE ROLE mon LOGIN IN ROLE pg_monitor;
	CREATE ROLE adm LOGIN IN ROLE pg_tviews_admin;
	GRANT CREATE ON SCHEMA public TO alice, bob, mallory;
});
poll(q{SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = pg_tviews_slot_name()})
  or die 'the engine did not make its slot';

# =====================================================================
# 1. Status tables and functions
# =====================================================================
su(q{
	CREATE TABLE tb_acl (pk_acl int PRIMARY KEY, v text);
	INSERT INTO tb_acl VALUES (1, 'a'), (2, 'b');
	SELECT pg_tviews_create('tv_acl', 'SELECT pk_acl, v FROM tb_acl');
});

my %status_col = (
	pg_tviews_metadata => 'entity_name',
	pg_tviews_queue => 'entity_name',
	pg_tviews_dependencies => 'entity_name',
	pg_tviews_workers => 'worker_type',
	pg_tviews_slots => 'slot_name',
);
my @status_tables = sort keys %status_col;

# a statement of each kind against a status table
sub write_stmt
{
	my ($op, $t) = @_;
	my $c = $status_col{$t};
	return {
		INSERT => "INSERT INTO $t DEFAULT VALUES",
		UPDATE => "UPDATE $t SET $c = $c WHERE false",
		DELETE => "DELETE FROM $t WHERE false",
		TRUNCATE => "TRUNCATE $t",
	}->{$op};
}

# roles outside pg_tviews_admin: every write is refused by privileges
for my $role (qw(nobody mon alice))
{
	for my $t (@status_tables)
	{
		for my $op (qw(INSERT UPDATE DELETE TRUNCATE))
		{
			my $r = run_as($role, write_stmt($op, $t));
			ok($r->{rc} != 0 && $r->{state} eq '42501',
				"$role: $op on $t is denied (42501)")
			  or diag("rc $r->{rc}: " . first_error($r->{err}));
		}
	}
}

# pg_tviews_admin: what is granted passes the privilege check, the rest
# is denied
my %admin_may = map { $_ => 1 }
  ('UPDATE pg_tviews_metadata', 'INSERT pg_tviews_queue', 'UPDATE pg_tviews_queue',
	'DELETE pg_tviews_queue', 'TRUNCATE pg_tviews_queue');
for my $t (@status_tables)
{
	for my $op (qw(INSERT UPDATE DELETE TRUNCATE))
	{
		next if $admin_may{"$op $t"};
		my $r = run_as('adm', write_stmt($op, $t));
		ok($r->{rc} != 0 && $r->{state} eq '42501',
			"pg_tviews_admin member: $op on $t is denied (not granted)")
		  or diag("rc $r->{rc}: " . first_error($r->{err}));
	}
}
ok(wait_engine(), 'engine caught up before the admin writes');
{
	my $r = run_as('adm', q{
		UPDATE pg_tviews_metadata SET emergency_disable_reason = 'admin was here'
		WHERE entity_name = 'tv_acl';
		UPDATE pg_tviews_queue SET priority = 'high' WHERE false;
		DELETE FROM pg_tviews_queue WHERE false;
		INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_acl', '1');
		TRUNCATE pg_tviews_queue;
		SELECT pg_tviews_system_disable('admin test');
		SELECT pg_tviews_system_enable();
		SELECT count(*) FROM pg_tviews_health_check();
	});
	is($r->{rc}, 0, 'a pg_tviews_admin member may UPDATE pg_tviews_metadata, write pg_tviews_queue, '
		  . 'and call pg_tviews_system_disable/enable')
	  or diag(first_error($r->{err}));
	is(su(q{SELECT emergency_disable_reason FROM tviews.tview WHERE tview = 'tv_acl'::regclass}),
		'admin was here', '... and the UPDATE reached the catalog');
	su(q{UPDATE pg_tviews_metadata SET emergency_disable_reason = NULL WHERE entity_name = 'tv_acl'});
	is(su(q{SELECT enabled FROM tviews.engine}), 't', '... the engine is enabled again');
}

# superuser: read-only status tables refuse writes cleanly
for my $t (qw(pg_tviews_dependencies pg_tviews_workers pg_tviews_slots))
{
	for my $op (qw(INSERT UPDATE DELETE TRUNCATE))
	{
		my $r = run_as('postgres', write_stmt($op, $t));
		ok($r->{rc} != 0 && $r->{state} =~ /^(0A000|55000)$/,
			"superuser: $op on $t is refused as not supported")
		  or diag("rc $r->{rc}: " . first_error($r->{err}));
	}
}

# functions: denied to non-admins
my @admin_functions = (
	q{SELECT pg_tviews_system_disable('not mine to stop')},
	q{SELECT pg_tviews_system_enable()},
	q{SELECT tviews._set_paused(true)},
	q{UPDATE tviews.engine SET enabled = false},
	q{SELECT tviews._enqueue('tv_acl', '1')},
	q{SELECT tviews._queue_drop(1)},
	q{SELECT tviews._queue_set(1, 'high', NULL)},
	q{SELECT tviews.catalog_remove('tv_acl')},
	q{SELECT tviews.catalog_add('tv_acl', 'tv_acl_def', 'pk_acl', 'SELECT 1')},
	q{SELECT tviews.note_refresh('tv_acl', now(), true)},
	q{SELECT tviews._note_refresh('tv_acl', now(), true)},
	q{SELECT tviews._catalog_remove('tv_acl')},
	q{SELECT tviews._create_admin_role()},
);
for my $role (qw(nobody mon alice))
{
	for my $sql (@admin_functions,
		$role eq 'mon' ? () : (q{SELECT count(*) FROM tviews.failed_key},
			q{SELECT count(*) FROM tviews.queue_rows}))
	{
		my $r = run_as($role, $sql);
		ok($r->{rc} != 0 && $r->{state} eq '42501', "$role: $sql is denied (42501)")
		  or diag("rc $r->{rc}: " . first_error($r->{err}));
	}
}
is(su(q{SELECT enabled FROM tviews.engine}), 't', 'the engine was not stopped by anyone denied');
is(su(q{SELECT count(*) FROM tviews.tview WHERE tview = 'tv_acl'::regclass}), '1',
	'tv_acl is still registered');

# reads: pg_monitor yes, others no
for my $t (@status_tables)
{
	my $r = run_as('nobody', "SELECT count(*) FROM $t");
	ok($r->{rc} != 0 && $r->{state} eq '42501', "nobody: reading $t is denied");
	$r = run_as('mon', "SELECT count(*) FROM $t");
	is($r->{rc}, 0, "pg_monitor member: reading $t is allowed")
	  or diag(first_error($r->{err}));
}
{
	my $r = run_as('nobody', q{SELECT count(*) FROM pg_tviews_health_check()});
	ok($r->{rc} != 0 && $r->{state} eq '42501', 'nobody: pg_tviews_health_check() is denied');
}

# nobody makes a foreign table of their own over the status tables
for my $sql (
	q{CREATE FOREIGN TABLE my_queue (entity_name text, primary_key_value text)
	  SERVER pg_tviews_server OPTIONS (status_table 'queue')},
	q{IMPORT FOREIGN SCHEMA pg_tviews FROM SERVER pg_tviews_server INTO public})
{
	my $r = run_as('alice', $sql);
	ok($r->{rc} != 0 && $r->{state} eq '42501' && $r->{err} =~ /foreign server/,
		'alice (CREATE on public) cannot make foreign tables on pg_tviews_server: '
		  . ($sql =~ /^(\w+ \w+ \w+)/)[0])
	  or diag("rc $r->{rc}: " . first_error($r->{err}));
}

# Keys and refresh errors are restricted to pg_monitor in the status
# tables; they can carry data values.  alice's private TVIEW fails on a
# row whose key and value are secret: nobody must not read them.
safe_as('alice', q{
	CREATE TABLE tb_leak (pk_leak text PRIMARY KEY, v text);
	INSERT INTO tb_leak VALUES ('ok-1', '1');
	SELECT pg_tviews_create('tv_leak',
	  'SELECT pk_leak, v, CASE WHEN v LIKE ''LEAK%'' THEN v::int END AS n FROM tb_leak');
	INSERT INTO tb_leak VALUES ('LEAKKEY-7', 'LEAKME-42');
});
ok(poll(q{SELECT count(*) > 0 FROM tviews.failed_key WHERE tview = 'tv_leak'::regclass}),
	"alice's failing key is parked");
{
	my $r = run_as('mon', q{SELECT primary_key_value || ' ' || error_message FROM pg_tviews_queue
	                        WHERE entity_name = 'tv_leak' AND status = 'failed'});
	like($r->{out}, qr/LEAKKEY-7 .*LEAKME-42/, 'pg_monitor sees the parked key and its error (by design)');

	$r = run_as('nobody', q{SELECT count(*) FROM pg_tviews_queue_entries()
	                        WHERE key LIKE 'LEAK%' OR error LIKE '%LEAKME%'});
	ok($r->{rc} != 0 || $r->{out} eq '0',
		'nobody cannot read parked keys and errors through pg_tviews_queue_entries()')
	  or diag("nobody read: rc $r->{rc}, rows matching the secret: $r->{out}");

	$r = run_as('nobody', q{SELECT count(*) FROM tviews.tview WHERE last_error LIKE '%LEAKME%'});
	ok($r->{rc} != 0 || $r->{out} eq '0',
		'nobody cannot read refresh errors (with data values) through tviews.tview.last_error')
	  or diag("nobody read: rc $r->{rc}, rows matching the secret: $r->{out}");

	$r = run_as('nobody', q{SELECT count(*) FROM pg_tviews_engines() WHERE last_error LIKE '%LEAKME%'});
	ok($r->{rc} != 0 || $r->{out} eq '0', 'nobody reads no data values through pg_tviews_engines()');

	# a key waiting in the queue (the engine paused)
	safe_as('adm', q{SELECT pg_tviews_system_disable('leak test');
	                 INSERT INTO pg_tviews_queue (entity_name, primary_key_value)
	                 VALUES ('tv_leak', 'LEAKKEY-9')});
	$r = run_as('mon', q{SELECT count(*) FROM pg_tviews_queue WHERE primary_key_value = 'LEAKKEY-9'});
	is($r->{out}, '1', 'pg_monitor sees the queued key (by design)');
	$r = run_as('nobody', q{SELECT count(*) FROM pg_tviews_queue_entries() WHERE key LIKE 'LEAKKEY%'});
	ok($r->{rc} != 0 || $r->{out} eq '0',
		'nobody cannot read queued keys through pg_tviews_queue_entries()')
	  or diag("nobody read: rc $r->{rc}, rows matching the secret key: $r->{out}");
	safe_as('adm', q{TRUNCATE pg_tviews_queue; SELECT pg_tviews_system_enable()});
}
su(q{SELECT pg_tviews_drop('tv_leak'); DROP TABLE tb_leak;});

# =====================================================================
# 2. The owner loses SELECT on a joined table
# =====================================================================
su(q{
	CREATE TABLE tb_customer (pk_customer int PRIMARY KEY, name text NOT NULL);
	CREATE TABLE tb_order (pk_order int PRIMARY KEY, fk_customer int NOT NULL, amount int NOT NULL);
	INSERT INTO tb_customer VALUES (1, 'ann'), (2, 'ben');
	INSERT INTO tb_order VALUES (1, 1, 10), (2, 2, 20);
	GRANT SELECT, UPDATE ON tb_customer, tb_order TO alice;
	-- a TVIEW of someone else that keeps flowing meanwhile
	CREATE TABLE tb_other (pk_other int PRIMARY KEY, v text);
	INSERT INTO tb_other VALUES (1, 'x');
	SELECT pg_tviews_create('tv_other', 'SELECT pk_other, v FROM tb_other');
});
safe_as('alice', q{
	SELECT pg_tviews_create('tv_order',
	  'SELECT o.pk_order, o.fk_customer, o.amount, c.name
	   FROM tb_order o JOIN tb_customer c ON c.pk_customer = o.fk_customer');
});
su(q{
	REVOKE SELECT ON tb_customer FROM alice;
	INSERT INTO tb_customer VALUES (3, 'secret-carl');
	INSERT INTO tb_order VALUES (3, 3, 30);
	UPDATE tb_customer SET name = 'secret-ann' WHERE pk_customer = 1;
	UPDATE tb_other SET v = 'y';
});
ok(poll(q{SELECT count(*) FILTER (WHERE status = 'failed') >= 1 FROM pg_tviews_queue
          WHERE entity_name = 'tv_order'}, 'postgres', 10),
	'tv_order: refreshes after the REVOKE fail and are parked');
my $engine_ok = wait_engine('postgres', 5);
ok($engine_ok, 'the engine is not held up');
unless ($engine_ok)
{
	diag('engine: ' . su(q{SELECT format('%s pid %s restarts %s, last error: %s', state, pid, restarts, last_error)
	                       FROM pg_tviews_engines() WHERE datid = (SELECT oid FROM pg_database WHERE datname = 'postgres')}));
}
{
	my $r = run_as('mon', q{SELECT last_error FROM pg_tviews_metadata WHERE entity_name = 'tv_order'});
	like($r->{out}, qr/permission denied for table tb_customer/,
		'pg_tviews_metadata.last_error says permission denied for the joined table');
	$r = run_as('mon', q{SELECT string_agg(DISTINCT error_message, '; ') FROM pg_tviews_queue
	                     WHERE entity_name = 'tv_order' AND status IN ('failed', 'retrying')});
	like($r->{out}, qr/permission denied for table tb_customer/,
		'pg_tviews_queue.error_message says the same');
}
is(su(q{SELECT count(*) FROM tv_order WHERE pk_order = 3 OR name LIKE 'secret%'}), '0',
	'no row computed with the lost privilege is in tv_order');
is(su(q{SELECT v FROM tv_other}), 'y', "another owner's TVIEW kept flowing");
for my $call (q{pg_tviews_refresh('tv_order')}, q{pg_tviews_refresh_row('tv_order', '3')},
	q{pg_tviews_refresh_range('tv_order', '1', '3')})
{
	my $r = run_as('postgres', "SELECT $call");
	ok($r->{rc} != 0 && $r->{state} eq '42501',
		"superuser: $call fails with the owner's missing privilege (42501)")
	  or diag("rc $r->{rc}: " . first_error($r->{err}));
	$r = run_as('alice', "SELECT $call");
	ok($r->{rc} != 0 && $r->{state} eq '42501', "alice: $call fails (42501)")
	  or diag("rc $r->{rc}: " . first_error($r->{err}));
}
is(su(q{SELECT count(*) FROM tv_order WHERE pk_order = 3 OR name LIKE 'secret%'}), '0',
	'still no leaked row in tv_order after the manual refreshes');
{
	# an admin queues a refresh: the engine still runs it as alice
	my $r = run_as('adm', q{INSERT INTO pg_tviews_queue (entity_name, primary_key_value)
	                        VALUES ('tv_order', '3')});
	is($r->{rc}, 0, 'admin queues a refresh of tv_order key 3') or diag(first_error($r->{err}));
	ok(wait_engine('postgres', $engine_ok ? 30 : 3), 'the engine caught up');
	ok(poll(q{SELECT count(*) = 0 FROM pg_tviews_queue WHERE entity_name = 'tv_order'
	          AND primary_key_value = '3' AND status IN ('pending', 'retrying')},
			'postgres', $engine_ok ? 30 : 3),
		'the queued refresh was tried');
	is(su(q{SELECT count(*) FROM tv_order WHERE pk_order = 3}), '0',
		'the admin-queued refresh ran as alice: no leaked row');
}
su(q{GRANT SELECT ON tb_customer TO alice});
{
	my $r = run_as('alice', q{SELECT pg_tviews_refresh('tv_order')});
	is($r->{rc}, 0, 'with SELECT back, alice repairs tv_order') or diag(first_error($r->{err}));
	is(oracle_count($node, 'postgres', 'tv_order', 'tv_order_def'), '0',
		'tv_order equals its definition');
	ok(wait_engine(), 'the engine caught up (with SELECT back)');
	is(su(q{SELECT v FROM tv_other}), 'y', "the other owner's TVIEW is current");
}

# =====================================================================
# 3. A SECURITY INVOKER function reading a secret table
# =====================================================================
su(q{
	CREATE TABLE tb_secret (pk_secret int PRIMARY KEY, secret text NOT NULL);
	INSERT INTO tb_secret VALUES (1, 'TOPSECRET-1'), (2, 'TOPSECRET-2');
	CREATE FUNCTION public.lookup_secret(int) RETURNS text
	  LANGUAGE sql STABLE STRICT SECURITY INVOKER
	  AS 'SELECT secret FROM public.tb_secret WHERE pk_secret = $1';
	CREATE TABLE tb_item (pk_item int PRIMARY KEY, want int);
	INSERT INTO tb_item VALUES (1, NULL), (2, NULL);
	GRANT SELECT, UPDATE ON tb_item TO alice;
});
{
	my $r = run_as('alice', q{SELECT pg_tviews_create('tv_item_bad',
		'SELECT i.pk_item, public.lookup_secret(i.pk_item) AS s FROM tb_item i')});
	ok($r->{rc} != 0 && $r->{state} eq '42501',
		'alice cannot create a TVIEW whose function reads tb_secret (42501)')
	  or diag("rc $r->{rc}: " . first_error($r->{err}));
}
safe_as('alice', q{SELECT pg_tviews_create('tv_item',
	'SELECT i.pk_item, i.want, public.lookup_secret(i.want) AS s FROM tb_item i')});
su(q{UPDATE tb_item SET want = 1 WHERE pk_item = 1});
ok(poll(q{SELECT count(*) > 0 FROM tviews.failed_key WHERE tview = 'tv_item'::regclass}),
	'the engine: refresh of tv_item key 1 fails and is parked');
like(su(q{SELECT error FROM tviews.failed_key WHERE tview = 'tv_item'::regclass}),
	qr/permission denied for table tb_secret/, '... with permission denied for tb_secret');
is(su(q{SELECT count(*) FROM tv_item WHERE s IS NOT NULL}), '0',
	'the engine copied no secret into tv_item');

for my $call (q{pg_tviews_refresh_row('tv_item', '1')},
	q{pg_tviews_refresh_range('tv_item', '1', '2')}, q{pg_tviews_refresh('tv_item')})
{
	my $r = run_as('postgres', "SELECT $call");
	my $leaked = su(q{SELECT count(*) FROM tv_item WHERE s LIKE 'TOPSECRET%'});
	ok($r->{rc} != 0 && $leaked eq '0',
		"superuser: $call runs as the owner: fails, copies no secret into alice's TVIEW")
	  or diag("rc $r->{rc}, secret rows in tv_item: $leaked; " . first_error($r->{err}));
	if ($leaked ne '0')
	{
		# put it back as it was for the next call
		su(q{UPDATE tb_item SET want = NULL WHERE pk_item = 1});
		safe_as('alice', q{SELECT pg_tviews_refresh('tv_item')});
		su(q{UPDATE tb_item SET want = 1 WHERE pk_item = 1});
	}
}
{
	my $r = run_as('alice', q{SELECT pg_tviews_refresh('tv_item')});
	ok($r->{rc} != 0 && $r->{state} eq '42501', 'alice: pg_tviews_refresh(tv_item) fails (42501)');
	is(run_as('alice', q{SELECT count(*) FROM tv_item WHERE s LIKE 'TOPSECRET%'})->{out}, '0',
		'alice reads no secret through her TVIEW');
}
su(q{SELECT pg_tviews_drop('tv_item')});

# =====================================================================
# 4. Row-level security
# =====================================================================
su(q{
	CREATE TABLE tb_doc (pk_doc int PRIMARY KEY, visible_to text NOT NULL, body text NOT NULL);
	ALTER TABLE tb_doc ENABLE ROW LEVEL SECURITY;
	CREATE POLICY doc_visible ON tb_doc USING (visible_to = current_user);
	GRANT SELECT, UPDATE ON tb_doc TO bob;
	INSERT INTO tb_doc VALUES (1, 'bob', 'bob-1'), (2, 'postgres', 'su-secret-2'),
	                          (3, 'alice', 'alice-secret-3');
});
safe_as('bob', q{SELECT pg_tviews_create('tv_doc', 'SELECT pk_doc, visible_to, body FROM tb_doc')});
my $bob_rows = q{SELECT string_agg(format('%s:%s', pk_doc, body), ' ' ORDER BY pk_doc)};
is(su("$bob_rows FROM tv_doc"), '1:bob-1', "tv_doc holds bob's rows only");
su(q{
	INSERT INTO tb_doc VALUES (4, 'bob', 'bob-4'), (5, 'postgres', 'su-secret-5');
	UPDATE tb_doc SET visible_to = 'postgres' WHERE pk_doc = 1;
	UPDATE tb_doc SET visible_to = 'bob', body = 'bob-3' WHERE pk_doc = 3;
});
ok(wait_engine(), 'engine caught up');
is(su("$bob_rows FROM tv_doc"), su("$bob_rows FROM tb_doc WHERE visible_to = 'bob'"),
	"the engine applies bob's policy: rows that became his appear, rows he lost go");
{
	my $r = run_as('postgres', q{SELECT pg_tviews_refresh('tv_doc')});
	is(su("$bob_rows FROM tv_doc"), su("$bob_rows FROM tb_doc WHERE visible_to = 'bob'"),
		"a superuser's pg_tviews_refresh(tv_doc) applies bob's policy too (no superuser rows)")
	  or diag('rc ' . $r->{rc} . ' ' . first_error($r->{err}));
	$r = run_as('postgres', q{SELECT pg_tviews_refresh_range('tv_doc', '1', '5')});
	is(su("$bob_rows FROM tv_doc"), su("$bob_rows FROM tb_doc WHERE visible_to = 'bob'"),
		"... and pg_tviews_refresh_range");
	safe_as('bob', q{SELECT pg_tviews_refresh('tv_doc')});
	is(su("$bob_rows FROM tv_doc"), su("$bob_rows FROM tb_doc WHERE visible_to = 'bob'"),
		"bob's own refresh gives his rows");
}

# FORCE ROW LEVEL SECURITY on the owner's own table
safe_as('alice', q{
	CREATE TABLE tb_note (pk_note int PRIMARY KEY, hidden boolean NOT NULL, body text NOT NULL);
	ALTER TABLE tb_note ENABLE ROW LEVEL SECURITY;
	ALTER TABLE tb_note FORCE ROW LEVEL SECURITY;
	CREATE POLICY note_visible ON tb_note USING (NOT hidden);
});
su(q{INSERT INTO tb_note VALUES (1, false, 'n1'), (2, true, 'hidden-2')});
safe_as('alice', q{SELECT pg_tviews_create('tv_note', 'SELECT pk_note, hidden, body FROM tb_note')});
my $notes = q{SELECT string_agg(format('%s:%s', pk_note, body), ' ' ORDER BY pk_note)};
is(su("$notes FROM tv_note"), '1:n1', 'FORCE RLS: the owner sees only visible rows at creation');
su(q{
	INSERT INTO tb_note VALUES (3, true, 'hidden-3'), (4, false, 'n4');
	UPDATE tb_note SET hidden = true WHERE pk_note = 1;
	UPDATE tb_note SET hidden = false, body = 'n2' WHERE pk_note = 2;
});
ok(wait_engine(), 'engine caught up');
is(su("$notes FROM tv_note"), su("$notes FROM tb_note WHERE NOT hidden"),
	"FORCE RLS: the engine applies the owner's own policy");
run_as('postgres', q{SELECT pg_tviews_refresh('tv_note')});
is(su("$notes FROM tv_note"), su("$notes FROM tb_note WHERE NOT hidden"),
	"FORCE RLS: so does a superuser's manual refresh");
is(su(q{SELECT count(*) FROM tv_note WHERE body LIKE 'hidden%'}), '0', 'no hidden row in tv_note');

# =====================================================================
# 5. Hostile names, in a database of their own
# =====================================================================
su(q{CREATE DATABASE names});
su(q{
	CREATE EXTENSION pg_tviews;
	CREATE TABLE t (x int);
	INSERT INTO t VALUES (42);
	CREATE SCHEMA "sch""ema";
}, 'names');
poll(q{SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = pg_tviews_slot_name()}, 'names')
  or die 'the engine of database names did not make its slot';

sub canary_ok
{
	my ($what) = @_;
	is(su(q{SELECT coalesce((SELECT string_agg(x::text, ',') FROM t), 'empty')}, 'names'), '42',
		"canary table t intact ($what)");
}

my @schemas = ('public', 'sch"ema');
my @names = ('tv_we"ird', 'tv with space', 'tv.dot', 'tv_ünï', 'tv_x; DROP TABLE t; --', "tv_o'q");
my @keys = ("k'1", 'k"2', 'k 3,{}', "ünï\\4", "x'); DROP TABLE t; --", 'k6',
	'long-' . ('ü' x 40));    # > 63 bytes: refreshed by whole-TVIEW refreshes

# base tables: a parent with a text key and a child, with hostile names
for my $s (@schemas)
{
	my $S = qident($s);
	su(qq{
		CREATE TABLE $S."tb we""ird.parent" ("pk_we""ird" text PRIMARY KEY, "va""l ue" text);
		CREATE TABLE $S."tb child.ü" ("pk_c hild" int PRIMARY KEY, "fk_we""ird" text NOT NULL,
		                              "bo.dy" text);
	}, 'names');
	my $n = 0;
	for my $k (@keys[0 .. 3])
	{
		$n++;
		su(qq{INSERT INTO $S."tb we""ird.parent" VALUES (@{[qlit($k)]}, 'v$n');
		      INSERT INTO $S."tb child.ü" VALUES ($n, @{[qlit($k)]}, @{[qlit("body '\"$n")]});},
			'names');
	}
}

# The TVIEWs: every name in every schema.  Keys: pk_<entity> for tv_*
# names, the only pk_* column otherwise.
my @tv;
for my $s (@schemas)
{
	for my $name (@names)
	{
		my $keycol = $name =~ /^tv_(.+)$/ ? "pk_$1" : 'pk_we"ird';
		my $S = qident($s);
		my $def = qq{SELECT p."pk_we""ird" AS @{[qident($keycol)]}, p."va""l ue",
		       (SELECT coalesce(jsonb_agg(jsonb_build_object('body', c."bo.dy") ORDER BY c."pk_c hild"),
		                        '[]'::jsonb)
		        FROM $S."tb child.ü" c WHERE c."fk_we""ird" = p."pk_we""ird") AS "da""ta"
		FROM $S."tb we""ird.parent" p};
		push @tv, {
			schema => $s,
			name => $name,
			keycol => $keycol,
			def => $def,
			# how pg_tviews_create names it: unqualified in public
			arg => $s eq 'public' ? qident($name) : qident($s) . '.' . qident($name),
			qualified => qident($s) . '.' . qident($name),
		};
	}
}

my $i = 0;
for my $t (@tv)
{
	$i++;
	my ($r, $how);
	if ($t->{name} =~ /^tv_/ && $i % 2 == 0)
	{
		$how = 'CREATE TABLE ... AS';
		my $target = $t->{schema} eq 'public' ? qident($t->{name}) : $t->{qualified};
		$r = run_as('postgres', "CREATE TABLE $target AS $t->{def}", 'names');
	}
	else
	{
		$how = 'pg_tviews_create';
		my $key = $i % 3 == 0 ? ', key => ' . qlit($t->{keycol}) : '';
		$r = run_as('postgres',
			"SELECT pg_tviews_create(@{[qlit($t->{arg})]}, @{[qlit($t->{def})]}$key)", 'names');
	}
	ok($r->{rc} == 0, "$how $t->{qualified}") or diag(first_error($r->{err}));
	$t->{ok} = $r->{rc} == 0;
	$t->{how} = $how;
}
my @ok = grep { $_->{ok} } @tv;

# what the status tables and the catalog call them
for my $t (@ok)
{
	$t->{entity} = su("SELECT @{[qlit($t->{qualified})]}::regclass::text", 'names');
	$t->{view} = su(qq{SELECT backing_view::text FROM tviews.tview
	                   WHERE tview = @{[qlit($t->{qualified})]}::regclass}, 'names');
	my $row = su(qq{SELECT key_column || '|' || state FROM pg_tviews_metadata
	                WHERE entity_name = @{[qlit($t->{entity})]}}, 'names');
	is($row, "$t->{keycol}|ready", "pg_tviews_metadata: $t->{entity} with its key, ready");
	is(su("SELECT count(*) FROM $t->{entity}", 'names'), '4',
		"EXECUTE 'SELECT count(*) FROM ' || entity_name works for $t->{entity}");
}
canary_ok('after creation');

sub all_equal
{
	my ($what) = @_;
	for my $t (@ok)
	{
		is(oracle_count($node, 'names', $t->{entity}, $t->{view}), '0',
			"$t->{entity} equals its definition ($what)");
	}
}

# writes, applied by the engine
for my $s (@schemas)
{
	my $S = qident($s);
	su(qq{
		INSERT INTO $S."tb we""ird.parent" VALUES (@{[qlit($keys[4])]}, 'v5'), (@{[qlit($keys[5])]}, 'v6'),
		                                        (@{[qlit($keys[6])]}, 'v7');
		INSERT INTO $S."tb child.ü" VALUES (5, @{[qlit($keys[4])]}, 'c5'), (6, @{[qlit($keys[0])]}, 'c6'),
		                                  (7, @{[qlit($keys[6])]}, 'c7');
		UPDATE $S."tb we""ird.parent" SET "va""l ue" = "va""l ue" || '+' WHERE "pk_we""ird" IN (@{[qlit($keys[1])]}, @{[qlit($keys[6])]});
		UPDATE $S."tb child.ü" SET "fk_we""ird" = @{[qlit($keys[2])]} WHERE "pk_c hild" = 2;
		DELETE FROM $S."tb child.ü" WHERE "pk_c hild" = 3;
		DELETE FROM $S."tb we""ird.parent" WHERE "pk_we""ird" = @{[qlit($keys[3])]};
	}, 'names');
}
ok(wait_engine('names'), 'pg_tviews_wait(): the engine applied the writes');
all_equal('after writes applied by the engine');
canary_ok('after writes');

# refresh, refresh_row (hostile keys), refresh_range
for my $t (@ok)
{
	my $n = qlit($t->{arg});
	my $top = qlit("\xf4\x8f\xbf\xbf");    # U+10FFFF, in UTF-8
	my $sql = "SELECT pg_tviews_refresh($n);\n"
	  . join('', map { "SELECT pg_tviews_refresh_row($n, @{[qlit($_)]});\n" } @keys)
	  . "SELECT pg_tviews_refresh_range($n, @{[qlit(q{ })]}, $top);\n"
	  . "SELECT pg_tviews_refresh_range($n, @{[qlit($keys[0])]}, @{[qlit($keys[4])]});\n";
	my $r = run_as('postgres', $sql, 'names');
	is($r->{rc}, 0, "refresh, refresh_row with every hostile key, refresh_range: $t->{entity}")
	  or diag(first_error($r->{err}));
}
all_equal('after manual refreshes');
canary_ok('after manual refreshes');

# ---------------------------------------------------------------------
# the runbooks' dynamic SQL, exactly as the docs have it: each statement
# is taken from the ```sql block of its runbook that holds a distinctive
# piece of it, at run time, so that the test follows the docs
# ---------------------------------------------------------------------
my %rb_file = (
	emergency => 'docs/operations/runbooks/04-incident-response/emergency-procedures.md',
	health => 'docs/operations/runbooks/01-health-monitoring/tview-health-check.md',
	refresh => 'docs/operations/runbooks/03-manual-refresh/manual-refresh.md',
	queue => 'docs/operations/runbooks/02-queue-management/queue-management.md',
	checklist => 'docs/operations/runbooks/04-incident-response/incident-checklist.md',
);
my %rb_blocks;
for my $doc (keys %rb_file)
{
	my $text = slurp_file("$repo/$rb_file{$doc}");
	$rb_blocks{$doc} = [ $text =~ /^```sql\n(.*?)^```$/msg ];
}
my $seed_file = '/work/shared/seed/emergency-procedures.md';
my $seed_text = -r $seed_file ? slurp_file($seed_file) : undef;

# name => [ runbook, a piece that identifies the block, a regex that cuts
# the statement(s) out of the block (whole block when undef), also in the
# seed runbook ]
my %runbook_spec = (
	# emergency procedures (and the seed), Step 3: Data Integrity Verification
	integrity => [ 'emergency', 'Data integrity issues detected', undef, 1 ],
	# health check, Step 4: Consistency Check
	consistency => [ 'health', 'rows of its definition missing' ],
	# manual refresh, Step 2: every TVIEW that needs it
	refresh_all => [ 'refresh', 'refresh failed' ],
	# manual refresh, Step 2: one key, a range, the whole TVIEW
	refresh_one => [ 'refresh', q{pg_tviews_refresh_row('your_tview'} ],
	# queue management, Step 2: lock holders on TVIEW tables
	locks => [ 'queue', 'entity_name::regclass', qr/^(-- sessions holding.*)\z/ms ],
	# incident checklist, 3. Contain: one TVIEW
	disable_one => [ 'checklist', 'incident: refresh of this TVIEW' ],
	# manual refresh, Step 3: re-enable
	enable_one => [ 'refresh', 'SET emergency_disabled = false' ],
	# queue management, Step 3: queue a refresh by hand
	queue_insert => [ 'queue', q{VALUES ('your_tview', true)} ],
	queue_priority => [ 'queue', q{SET priority = 'high'} ],
	queue_delete_failed => [ 'queue', q{q.status = 'failed')} ],
	# emergency procedures, Post-Emergency Verification, Step 2, Test 1
	basic_access => [ 'emergency', 'Test 1: Basic TVIEW access',
		qr/^(SELECT COUNT\(\*\) FROM your_critical_tview LIMIT 1;)$/m, 1 ],
);
my %runbook;
for my $b (sort keys %runbook_spec)
{
	my ($doc, $piece, $cut, $in_seed) = @{ $runbook_spec{$b} };
	my @found = grep { index($_, $piece) >= 0 } @{ $rb_blocks{$doc} };
	is(scalar(@found), 1, "runbook block '$b': one sql block of $rb_file{$doc} holds \"$piece\"")
	  or next;
	my $sql = $found[0];
	if ($cut)
	{
		($sql) = $found[0] =~ $cut;
		ok(defined $sql, "runbook block '$b': the statement is in it") or next;
	}
	$runbook{$b} = [ $doc, $sql ];
	if ($in_seed && defined $seed_text)
	{
		ok(index($seed_text, $sql) >= 0, "runbook block '$b' is the seed runbook's, verbatim");
	}
}

# A block with its placeholders bound: 'your_x' (quoted) becomes a
# literal of the value, a bare your_x the value itself (an identifier).
sub bind_block
{
	my ($block, %v) = @_;
	my $sql = $runbook{$block}[1];
	for my $p (sort { length($b) <=> length($a) } keys %v)
	{
		my $lit = qlit($v{$p});
		$sql =~ s/'\Q$p\E'/$lit/g;
		$sql =~ s/\b\Q$p\E\b/$v{$p}/g;
	}
	die "unbound placeholder in $block: $sql" if $sql =~ /\byour_\w+/;
	return $sql;
}

sub run_block
{
	my ($block, %v) = @_;
	return run_as('postgres', bind_block($block, %v), 'names');
}

{
	my $r = run_block('integrity');
	is($r->{rc}, 0, 'runbook: data integrity verification runs') or diag(first_error($r->{err}));
	unlike($r->{err}, qr/Integrity issue/, '... and finds no integrity issue');

	# the same statement over every TVIEW (the runbook samples 5)
	(my $all = $runbook{integrity}[1]) =~ s/ LIMIT \d+ LOOP/ LOOP/;
	$r = run_as('postgres', $all, 'names');
	is($r->{rc}, 0, "runbook's integrity statement over every TVIEW") or diag(first_error($r->{err}));
	unlike($r->{err}, qr/Integrity issue/, '... no integrity issue');

	$r = run_block('consistency');
	is($r->{rc}, 0, 'runbook: the consistency check runs') or diag(first_error($r->{err}));
	for my $t (@ok)
	{
		like($r->{err}, qr/NOTICE:\s+(?:00000: )?\Q$t->{entity}\E: 0 rows not in its definition, 0 rows of its definition missing/,
			"consistency check: $t->{entity} is consistent");
	}

	$r = run_block('locks');
	is($r->{rc}, 0, 'runbook: the lock query casts every entity_name to regclass')
	  or diag(first_error($r->{err}));

	for my $t (@ok)
	{
		$r = run_block('basic_access', your_critical_tview => $t->{entity});
		is($r->{rc}, 0, "runbook: basic access to $t->{entity}") or diag(first_error($r->{err}));
		$r = run_block('refresh_one', your_tview => $t->{entity}, your_key => $keys[0],
			your_low_key => $keys[1], your_high_key => $keys[4]);
		is($r->{rc}, 0, "runbook: refresh_row, refresh_range, refresh of $t->{entity}")
		  or diag(first_error($r->{err}));
	}
}
canary_ok('after the runbook statements');

# emergency disable and enable, by entity_name
for my $t (@ok)
{
	my $r = run_block('disable_one', your_tview => $t->{entity});
	is($r->{rc}, 0, "runbook: emergency-disable $t->{entity}") or diag(first_error($r->{err}));
}
is(su(q{SELECT count(*) FILTER (WHERE NOT emergency_disabled OR state <> 'stale') FROM pg_tviews_metadata}, 'names'),
	'0', 'every TVIEW is emergency-disabled and stale');
for my $s (@schemas)
{
	my $S = qident($s);
	su(qq{UPDATE $S."tb we""ird.parent" SET "va""l ue" = 'while disabled'}, 'names');
}
ok(wait_engine('names'), 'engine caught up (nothing applied to disabled TVIEWs)');
is(su(q{SELECT count(*) FROM pg_tviews_metadata WHERE NOT emergency_disabled}, 'names'), '0',
	'still all disabled');
for my $t (@ok)
{
	is(su("SELECT count(*) FROM $t->{entity} WHERE \"va\"\"l ue\" = 'while disabled'", 'names'), '0',
		"$t->{entity}: changes made while disabled were not applied");
	my $r = run_block('enable_one', your_tview => $t->{entity});
	is($r->{rc}, 0, "runbook: re-enable $t->{entity}") or diag(first_error($r->{err}));
	like($r->{out}, qr/\Q$t->{entity}\E\|(ready|stale)\|f/, '... shown enabled');
}
ok(wait_engine('names'), 'engine caught up after the re-enables');
ok(poll(q{SELECT count(*) = 0 FROM pg_tviews_metadata WHERE state <> 'ready' OR emergency_disabled}, 'names'),
	'every re-enabled TVIEW is rebuilt and ready');
all_equal('after emergency disable and enable');
canary_ok('after emergency disable and enable');

# queue: INSERT, UPDATE priority, DELETE by entity_name (engine paused)
su(q{SELECT pg_tviews_system_disable('queue test')}, 'names');
for my $t (@ok)
{
	my $r = run_block('queue_insert', your_tview => $t->{entity}, your_key => $keys[4]);
	is($r->{rc}, 0, "runbook: queue a key and the whole of $t->{entity}") or diag(first_error($r->{err}));
	$r = run_block('queue_priority', your_critical_tview => $t->{entity});
	is($r->{rc}, 0, "runbook: raise the priority of $t->{entity}'s pending keys")
	  or diag(first_error($r->{err}));
	is(su(qq{SELECT string_agg(coalesce(primary_key_value, '<all>') || ':' || priority, ',' ORDER BY primary_key_value NULLS FIRST)
	         FROM pg_tviews_queue WHERE entity_name = @{[qlit($t->{entity})]} AND processed_at IS NULL}, 'names'),
		"<all>:high,$keys[4]:high", "pg_tviews_queue shows both entries of $t->{entity}, high");
}
for my $t (@ok)
{
	# queue management's DELETE, for pending rather than parked rows
	my $r = run_as('postgres', qq{DELETE FROM pg_tviews_queue
WHERE ctid IN (SELECT q.ctid FROM pg_tviews_queue q
               WHERE q.entity_name = @{[qlit($t->{entity})]} AND q.processed_at IS NULL);}, 'names');
	is($r->{rc}, 0, "DELETE the pending entries of $t->{entity} by entity_name")
	  or diag(first_error($r->{err}));
	is(su(qq{SELECT count(*) FROM pg_tviews_queue WHERE entity_name = @{[qlit($t->{entity})]}
	         AND processed_at IS NULL}, 'names'), '0', '... gone');
	is(su(qq{SELECT state FROM pg_tviews_metadata WHERE entity_name = @{[qlit($t->{entity})]}}, 'names'),
		'stale', '... and the TVIEW is stale');
}
su(q{SELECT pg_tviews_system_enable()}, 'names');
{
	my $r = run_block('refresh_all');
	is($r->{rc}, 0, 'runbook: refresh every TVIEW that needs it') or diag(first_error($r->{err}));
	unlike($r->{err}, qr/refresh failed/, '... none failed');
	for my $t (@ok)
	{
		like($r->{err}, qr/\Q$t->{entity}\E: refreshed/, "... $t->{entity} refreshed");
	}
}
ok(wait_engine('names'), 'engine caught up');
is(su(q{SELECT count(*) FROM pg_tviews_metadata WHERE state <> 'ready'}, 'names'), '0', 'all ready');
all_equal('after the queue statements');

# parked keys, deleted by entity_name
for my $t (@ok)
{
	su(qq{ALTER TABLE $t->{entity} ADD CONSTRAINT no_poison CHECK ("va""l ue" IS DISTINCT FROM 'poison')},
		'names');
}
for my $s (@schemas)
{
	su(qq{INSERT INTO @{[qident($s)]}."tb we""ird.parent" VALUES ('poison '' "key', 'poison')}, 'names');
}
ok(poll(q{SELECT count(*) = 0 FROM pg_tviews_metadata WHERE failed_count = 0}, 'names'),
	'every TVIEW has a parked key');
for my $t (@ok)
{
	my $r = run_block('queue_delete_failed', your_tview => $t->{entity});
	is($r->{rc}, 0, "runbook: delete the parked entries of $t->{entity}") or diag(first_error($r->{err}));
	is(su(qq{SELECT failed_count || ' ' || state FROM pg_tviews_metadata WHERE entity_name = @{[qlit($t->{entity})]}},
			'names'), '0 stale', '... none left, the TVIEW is stale');
	su(qq{ALTER TABLE $t->{entity} DROP CONSTRAINT no_poison}, 'names');
}
{
	my $r = run_block('refresh_all');
	is($r->{rc}, 0, 'runbook: refresh every stale TVIEW') or diag(first_error($r->{err}));
	is(su(q{SELECT count(*) FROM pg_tviews_metadata WHERE state <> 'ready'}, 'names'), '0', 'all ready');
}
all_equal('after parking and deleting parked keys');
canary_ok('after the queue and parked-key statements');

# drop (pg_tviews_drop or DROP TABLE), then convert back
$i = 0;
for my $t (@ok)
{
	$i++;
	my $r = $i % 2
	  ? run_as('postgres', "SELECT pg_tviews_drop(@{[qlit($t->{arg})]})", 'names')
	  : run_as('postgres', "DROP TABLE $t->{entity}", 'names');
	is($r->{rc}, 0, ($i % 2 ? 'pg_tviews_drop' : 'DROP TABLE') . " $t->{entity}")
	  or diag(first_error($r->{err}));
	is(su(qq{SELECT to_regclass(@{[qlit($t->{qualified})]}) IS NULL AND to_regclass(@{[qlit($t->{view})]}) IS NULL},
			'names'), 't', '... table and backing view gone');
}
is(su(q{SELECT count(*) FROM tviews.tview}, 'names'), '0', 'the catalog is empty');
canary_ok('after the drops');

$i = 0;
for my $t (@ok)
{
	$i++;
	su(qq{SELECT * INTO $t->{entity} FROM ($t->{def}) d WHERE false}, 'names');
	my $r;
	if ($i % 2)
	{
		$r = run_as('postgres',
			"SELECT pg_tviews_convert_existing_table(@{[qlit($t->{arg})]}, @{[qlit($t->{def})]})", 'names');
	}
	else
	{
		su("CREATE VIEW $t->{view} AS $t->{def}", 'names');
		$r = run_as('postgres', "SELECT pg_tviews_convert_existing_table(@{[qlit($t->{arg})]})", 'names');
	}
	is($r->{rc}, 0, 'pg_tviews_convert_existing_table ' . ($i % 2 ? 'with a query' : 'from its _def view')
		  . ": $t->{entity}") or diag(first_error($r->{err}));
}
for my $s (@schemas)
{
	my $S = qident($s);
	su(qq{
		UPDATE $S."tb we""ird.parent" SET "va""l ue" = 'after convert';
		INSERT INTO $S."tb child.ü" VALUES (8, @{[qlit($keys[5])]}, 'c8');
		DELETE FROM $S."tb we""ird.parent" WHERE "va""l ue" = 'poison';
	}, 'names');
}
ok(wait_engine('names'), 'engine caught up');
all_equal('converted, after writes');
for my $t (@ok)
{
	my $r = run_as('postgres', "SELECT pg_tviews_drop(@{[qlit($t->{arg})]})", 'names');
	is($r->{rc}, 0, "pg_tviews_drop $t->{entity} (converted)") or diag(first_error($r->{err}));
}
canary_ok('at the end');

# A 63-byte name of multibyte characters (its backing view's name must
# be shortened by bytes, not characters)
{
	my $long = 'tv_' . ('ü' x 30);
	my $r = run_as('postgres', qq{SELECT pg_tviews_create(@{[qlit(qident($long))]},
		'SELECT p."pk_we""ird" AS "pk_' || repeat('ü', 30) || '" FROM "tb we""ird.parent" p')}, 'names');
	is($r->{rc}, 0, 'pg_tviews_create of a 63-byte name of multibyte characters (tv_ü...ü)')
	  or diag(first_error($r->{err}));
	if ($r->{rc} == 0)
	{
		my $e = su(qq{SELECT @{[qlit(qident($long))]}::regclass::text}, 'names');
		isnt(su(qq{SELECT backing_view::text FROM tviews.tview WHERE tview = @{[qlit($e)]}::regclass}, 'names'),
			$e, '... with a backing view of another name');
		is(run_as('postgres', "SELECT pg_tviews_drop(@{[qlit($e)]})", 'names')->{rc}, 0, '... dropped');
	}
}

# =====================================================================
# 6. search_path attacks on the catalog's SQL functions
# =====================================================================
# Before the attack: a TVIEW of the superuser, tables to convert.
su(q{
	CREATE TABLE tb_h (pk_h int PRIMARY KEY, v text);
	INSERT INTO tb_h SELECT g, 'h' || g FROM generate_series(1, 5) g;
	SELECT pg_tviews_create('tv_h_pre', 'SELECT pk_h, v, jsonb_build_object(''v'', v) AS data FROM tb_h');
	SELECT pg_tviews_create('tv_h_drop1', 'SELECT pk_h, v FROM tb_h');
	SELECT pg_tviews_create('tv_h_drop2', 'SELECT pk_h, v FROM tb_h');
	CREATE TABLE tv_h_conv1 (pk_h int, v text);
	CREATE TABLE tv_h_conv2 (pk_h int, v text);
	CREATE VIEW tv_h_conv2_def AS SELECT pk_h, v FROM tb_h;
});
# mallory's trap: overloads in public that are better matches than
# pg_catalog's for what the extension's SQL passes
safe_as('mallory', q{
	CREATE TABLE public.pwn_log (who text, fn text, app text);
	GRANT ALL ON public.pwn_log TO PUBLIC;
	CREATE FUNCTION public.pwn_note(fn text) RETURNS void LANGUAGE plpgsql VOLATILE AS $f$
	BEGIN
	  RAISE WARNING 'pgtv-hijack: % called by % in "%"', fn, current_user,
	    current_setting('application_name');
	  BEGIN
	    INSERT INTO public.pwn_log VALUES (current_user, fn, current_setting('application_name'));
	  EXCEPTION WHEN OTHERS THEN NULL;
	  END;
	END $f$;
	CREATE FUNCTION public.array_length(text[], integer) RETURNS integer LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('array_length(text[], integer)'); RETURN pg_catalog.array_length($1, $2); END $f$;
	CREATE FUNCTION public.quote_ident(name) RETURNS text LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('quote_ident(name)'); RETURN pg_catalog.quote_ident($1::text); END $f$;
	CREATE FUNCTION public.format_type(regtype, integer) RETURNS text LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('format_type(regtype, integer)'); RETURN pg_catalog.format_type($1::oid, $2); END $f$;
	CREATE FUNCTION public.format(text, text, text) RETURNS text LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('format(text, text, text)'); RETURN pg_catalog.format($1, $2, $3); END $f$;
	CREATE FUNCTION public.format(text, regclass) RETURNS text LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('format(text, regclass)'); RETURN pg_catalog.format($1, $2); END $f$;
	CREATE FUNCTION public.format(text, regclass, name) RETURNS text LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('format(text, regclass, name)'); RETURN pg_catalog.format($1, $2, $3); END $f$;
	CREATE FUNCTION public.unnest(name[]) RETURNS SETOF name LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('unnest(name[])'); RETURN QUERY SELECT pg_catalog.unnest($1); END $f$;
	CREATE FUNCTION public.pg_get_viewdef(regclass) RETURNS text LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('pg_get_viewdef(regclass)'); RETURN pg_catalog.pg_get_viewdef($1::oid); END $f$;
	CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('jsonb_build_object(text, text)'); RETURN pg_catalog.jsonb_build_object($1, $2); END $f$;
	CREATE FUNCTION public.regclass_eq(regclass, regclass) RETURNS boolean LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('=(regclass, regclass)'); RETURN $1::oid OPERATOR(pg_catalog.=) $2::oid; END $f$;
	CREATE OPERATOR public.= (LEFTARG = regclass, RIGHTARG = regclass, FUNCTION = public.regclass_eq);
	CREATE FUNCTION public.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('=(text, text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq);
	CREATE FUNCTION public.name_text_eq(name, text) RETURNS boolean LANGUAGE plpgsql AS
	  $f$ BEGIN PERFORM public.pwn_note('=(name, text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
	CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.name_text_eq);
});
my $log_offset = -s $node->logfile;

my @su_calls = (
	[ 'pg_tviews_create', q{SELECT pg_tviews_create('tv_h_new', 'SELECT pk_h, v FROM tb_h')} ],
	[ 'CREATE TABLE tv_... AS', q{CREATE TABLE tv_h_ctas AS SELECT pk_h, v FROM tb_h} ],
	[ 'pg_tviews_convert_existing_table with a query',
		q{SELECT pg_tviews_convert_existing_table('tv_h_conv1', 'SELECT pk_h, v FROM tb_h')} ],
	[ 'pg_tviews_convert_existing_table from <name>_def',
		q{SELECT pg_tviews_convert_existing_table('tv_h_conv2')} ],
	[ 'pg_tviews_analyze', q{SELECT count(*) FROM pg_tviews_analyze('SELECT pk_h FROM tb_h', 'pk_h')} ],
	[ 'pg_tviews_refresh', q{SELECT pg_tviews_refresh('tv_h_pre')} ],
	[ 'pg_tviews_refresh_row', q{SELECT pg_tviews_refresh_row('tv_h_pre', '1')} ],
	[ 'pg_tviews_refresh_range', q{SELECT pg_tviews_refresh_range('tv_h_pre', '1', '5')} ],
	[ 'pg_tviews_wait', q{SELECT pg_tviews_wait('30s')} ],
	[ 'reading the status tables',
		q{SELECT (SELECT count(*) FROM pg_tviews_metadata), (SELECT count(*) FROM pg_tviews_queue),
		         (SELECT count(*) FROM pg_tviews_dependencies), (SELECT count(*) FROM pg_tviews_workers),
		         (SELECT count(*) FROM pg_tviews_slots), (SELECT count(*) FROM pg_tviews_health_check())} ],
	[ 'emergency disable and enable through pg_tviews_metadata',
		q{UPDATE pg_tviews_metadata SET emergency_disabled = true WHERE entity_name = 'tv_h_pre';
		  UPDATE pg_tviews_metadata SET emergency_disabled = false WHERE entity_name = 'tv_h_pre';} ],
	[ 'writes to pg_tviews_queue',
		q{INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_h_pre', '2');
		  UPDATE pg_tviews_queue SET priority = 'high' WHERE ctid IN (SELECT ctid FROM pg_tviews_queue WHERE processed_at IS NULL);
		  DELETE FROM pg_tviews_queue WHERE ctid IN (SELECT ctid FROM pg_tviews_queue WHERE processed_at IS NULL);
		  TRUNCATE pg_tviews_queue;} ],
	[ 'pg_tviews_system_disable/enable',
		q{SELECT pg_tviews_system_disable('x'); SELECT pg_tviews_system_enable();} ],
	[ 'pg_tviews_drop', q{SELECT pg_tviews_drop('tv_h_drop1')} ],
	[ 'DROP TABLE of a TVIEW', q{DROP TABLE tv_h_drop2} ],
	[ "the runbook's consistency check (health check, Step 4)", $runbook{consistency}[1] ],
);
for my $c (@su_calls)
{
	my ($what, $sql) = @$c;
	my $r = run_as('postgres', $sql);
	my @hits = $r->{err} =~ /pgtv-hijack: (.*?) called by/g;
	# the runbook block's own format('...', entity_name, definition) is
	# the DBA's code; what counts is what the definitions call when the
	# block re-parses their text
	@hits = grep { $_ ne 'format(text, text, text)' } @hits if $what =~ /runbook/;
	my %h = map { $_ => 1 } @hits;
	ok($r->{rc} == 0 && !@hits,
		"superuser: $what succeeds without calling mallory's objects in public")
	  or diag("rc $r->{rc}; called: " . (join(', ', sort keys %h) || 'none')
		  . ($r->{rc} ? '; ' . first_error($r->{err}) : ''));
}
# the engine applies changes of a TVIEW created before the trap (a new
# TVIEW makes it reload its refresh statements), and rebuilds it whole
su(q{UPDATE pg_tviews_metadata SET emergency_disabled = false WHERE emergency_disabled});
su(q{SELECT pg_tviews_system_enable()});
su(q{CREATE TABLE tb_h2 (pk_h2 int PRIMARY KEY)});
su(q{SELECT pg_tviews_create('tv_h2', 'SELECT pk_h2 FROM tb_h2')});
su(q{UPDATE tb_h SET v = v || '!' WHERE pk_h <= 3; INSERT INTO tb_h VALUES (6, 'h6'); DELETE FROM tb_h WHERE pk_h = 5});
su(q{INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_h_pre', NULL)});
ok(wait_engine(), 'engine caught up');
ok(poll(q{SELECT state = 'ready' FROM tviews.tview WHERE tview::oid OPERATOR(pg_catalog.=) 'tv_h_pre'::regclass::oid}),
	'tv_h_pre ready');
is(oracle_count($node, 'postgres', 'tv_h_pre', 'tv_h_pre_def'), '0',
	'tv_h_pre equals its definition after engine refreshes');
{
	my @engine = log_since($log_offset) =~ /pgtv-hijack: (.*? called by \S+) in "pg_tviews engine"/g;
	my %seen = map { $_ => 1 } @engine;
	is(scalar(@engine), 0, "the engine called none of mallory's objects")
	  or diag(scalar(@engine) . ' calls: ' . join(', ', sort keys %seen));
}
safe_as('mallory', q{
	DROP OPERATOR public.= (regclass, regclass);
	DROP OPERATOR public.= (text, text);
	DROP OPERATOR public.= (name, text);
	DROP FUNCTION public.array_length(text[], integer), public.quote_ident(name),
	  public.format_type(regtype, integer), public.format(text, text, text),
	  public.format(text, regclass), public.format(text, regclass, name), public.unnest(name[]),
	  public.pg_get_viewdef(regclass), public.jsonb_build_object(text, text),
	  public.regclass_eq(regclass, regclass), public.text_eq(text, text),
	  public.name_text_eq(name, text);
});
is(su(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f', 'mallory is not a superuser');
su(q{DO $$ BEGIN
	PERFORM pg_tviews_drop(t) FROM unnest(ARRAY['tv_h_new', 'tv_h_conv1', 'tv_h_conv2', 'tv_h_drop1',
	                                            'tv_h_ctas', 'tv_h2']) t
	WHERE to_regclass(t) IN (SELECT tview FROM tviews.tview);
END $$;
DROP TABLE IF EXISTS tv_h_ctas, tv_h_conv1, tv_h_conv2, tv_h_drop1, tv_h_drop2 CASCADE;});

# =====================================================================
# 7. A malicious function in a definition, run by the engine
# =====================================================================
# alice's TVIEW that shows the engine's session settings in each row it
# computes; rows inserted later are computed by the engine.  (A definition
# cannot call current_setting() itself -- refused, its value depends on the
# session -- so a function of alice's reads them.)
safe_as('alice', q{
	CREATE TABLE tb_env (pk_env int PRIMARY KEY, ts timestamptz NOT NULL);
	INSERT INTO tb_env VALUES (1, '2020-01-01 12:00:00+00');
	CREATE FUNCTION public.env_setting(name text) RETURNS text
	  LANGUAGE plpgsql STABLE AS $f$ BEGIN RETURN current_setting(name); END $f$;
	SELECT pg_tviews_create('tv_env',
	  'SELECT pk_env, ts::text AS ts_text, public.env_setting(''TimeZone'') AS tz,
	          public.env_setting(''search_path'') AS sp, current_user::text AS cu FROM tb_env');
	INSERT INTO tb_env VALUES (100, '2020-01-01 12:00:00+00');
});
is(run_as('alice', q{SELECT pg_tviews_create('tv_env_direct',
	  'SELECT pk_env, current_setting(''TimeZone'') AS tz FROM tb_env')})->{state},
	'42P17', 'a definition calling current_setting() directly is refused');
ok(wait_engine(), 'engine caught up');
my ($tz0, $sp0, $cu0, $ts0) = split /\|/, su(q{SELECT tz, sp, cu, ts_text FROM tv_env WHERE pk_env = 100});
is($sp0, 'pg_catalog', 'the engine computes rows with search_path = pg_catalog');
is($cu0, 'alice', '... as the owner');

safe_as('mallory', q{
	CREATE TABLE public.m_own (who text);
	CREATE TABLE public.tb_m (pk_m int PRIMARY KEY, act text);
	CREATE FUNCTION public.m_act(a text) RETURNS text LANGUAGE plpgsql VOLATILE AS $f$
	BEGIN
	  CASE a
	  WHEN 'set_role' THEN SET ROLE mallory;
	  WHEN 'set_config_role' THEN PERFORM set_config('role', 'mallory', false);
	  WHEN 'session_authorization' THEN SET SESSION AUTHORIZATION mallory;
	  WHEN 'temp_table' THEN CREATE TEMP TABLE m_tmp (x int);
	  WHEN 'prepare' THEN EXECUTE 'PREPARE m_p AS SELECT 1';
	  WHEN 'listen' THEN LISTEN m_channel;
	  WHEN 'discard' THEN DISCARD TEMP;
	  WHEN 'write_other' THEN INSERT INTO public.tb_env VALUES (666, now());
	  WHEN 'alter_role' THEN ALTER ROLE mallory SUPERUSER;
	  WHEN 'write_own' THEN INSERT INTO public.m_own VALUES (current_user);
	  WHEN 'timezone' THEN PERFORM set_config('TimeZone', 'Asia/Tokyo', false);
	  WHEN 'search_path' THEN PERFORM set_config('search_path', 'public, pg_catalog', false);
	  ELSE NULL;
	  END CASE;
	  RETURN a;
	END $f$;
	CREATE FUNCTION public.m_fn(a text) RETURNS text LANGUAGE plpgsql STABLE AS $f$
	BEGIN
	  RETURN current_user || '|' || coalesce(public.m_act(a), '');
	END $f$;
	INSERT INTO public.tb_m VALUES (1, NULL);
	SELECT pg_tviews_create('tv_m', 'SELECT pk_m, act, public.m_fn(act) AS info FROM public.tb_m');
});

my %refused = (
	set_role => qr/cannot set parameter "role" within security-(?:restricted operation|definer function)/,
	set_config_role => qr/cannot set parameter "role" within security-(?:restricted operation|definer function)/,
	session_authorization =>
	  qr/cannot set parameter "session_authorization" within security-(?:restricted operation|definer function)/,
	temp_table => qr/cannot create temporary table within security-restricted operation/,
	prepare => qr/cannot execute PREPARE within security-restricted operation/,
	listen => qr/cannot execute LISTEN within security-restricted operation/,
	discard => qr/cannot execute DISCARD within security-restricted operation/,
	write_other => qr/permission denied for table tb_env/,
	alter_role => qr/(?:must be superuser|permission denied)/,
);
my @acts = sort keys %refused;
{
	my $k = 10;
	my %key_of;
	for my $a (@acts, 'write_own')
	{
		$key_of{$a} = ++$k;
		safe_as('mallory', "INSERT INTO public.tb_m VALUES ($k, '$a')");
	}
	ok(poll(qq{SELECT count(*) = @{[scalar @acts]} FROM tviews.failed_key WHERE tview = 'tv_m'::regclass}),
		'each refused action of the definition makes its key fail and be parked');
	ok(wait_engine(), 'engine caught up');
	for my $a (@acts)
	{
		my $r = run_as('mon', qq{SELECT error_message FROM pg_tviews_queue
		  WHERE entity_name = 'tv_m' AND primary_key_value = '$key_of{$a}' AND status = 'failed'});
		like($r->{out}, $refused{$a}, "the engine's refresh refuses '$a' in a definition");
	}
	is(su(q{SELECT string_agg(who, ',') FROM m_own}), 'mallory',
		"a write to the owner's own table runs as the owner");
	is(su(qq{SELECT info FROM tv_m WHERE pk_m = $key_of{write_own}}), 'mallory|write_own',
		'... and that row was computed as mallory');
	is(su(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f', 'mallory is not a superuser');
	is(su(q{SELECT count(*) FROM tb_env WHERE pk_env = 666}), '0', "nothing was written to alice's table");
}

# Settings changed by a definition's function must not outlive its
# refresh (REFRESH MATERIALIZED VIEW rolls them back).
$log_offset = -s $node->logfile;
safe_as('mallory', q{INSERT INTO public.tb_m VALUES (50, 'timezone')});
ok(wait_engine(), 'engine applied mallory\'s TimeZone change');
safe_as('alice', q{INSERT INTO tb_env VALUES (101, '2020-01-01 12:00:00+00')});
ok(wait_engine(), 'engine caught up');
{
	my ($tz, $ts) = split /\|/, su(q{SELECT tz, ts_text FROM tv_env WHERE pk_env = 101});
	is($tz, $tz0, "TimeZone set by mallory's definition does not reach alice's TVIEW");
	is($ts, $ts0, "... alice's timestamps are rendered as before");
}

safe_as('mallory', q{
	CREATE FUNCTION public.format_type(regtype, integer) RETURNS text LANGUAGE plpgsql AS $f$
	BEGIN
	  RAISE WARNING 'pgtv-hijack: format_type(regtype, integer) called by % in "%"', current_user,
	    current_setting('application_name');
	  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
	    EXECUTE 'ALTER ROLE mallory SUPERUSER';
	  END IF;
	  RETURN pg_catalog.format_type($1::oid, $2);
	END $f$;
	INSERT INTO public.tb_m VALUES (51, 'search_path');
});
ok(wait_engine(), 'engine applied mallory\'s search_path change');
safe_as('alice', q{INSERT INTO tb_env VALUES (102, '2020-01-01 12:00:00+00')});
# a new TVIEW: the engine reloads its TVIEWs (their refresh statements)
safe_as('mallory', q{
	SELECT pg_tviews_create('tv_m2', 'SELECT pk_m, act FROM public.tb_m');
	INSERT INTO public.tb_m VALUES (52, NULL);
});
ok(wait_engine(), 'engine caught up');
is(su(q{SELECT sp FROM tv_env WHERE pk_env = 102}), 'pg_catalog',
	"search_path set by mallory's definition does not reach alice's TVIEW");
is(su(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f',
	"mallory does not become superuser by poisoning the engine's search_path");
{
	my @engine = log_since($log_offset) =~ /pgtv-hijack: (.*? called by \S+) in "pg_tviews engine"/g;
	my %seen = map { $_ => 1 } @engine;
	is(scalar(@engine), 0, "the engine called none of mallory's functions")
	  or diag(scalar(@engine) . ' calls: ' . join(', ', sort keys %seen));
}

# clean up: no superuser mallory, no attack left to replay, a fresh
# engine session
su(q{ALTER ROLE mallory NOSUPERUSER});
safe_as('mallory', q{
	DROP FUNCTION public.format_type(regtype, integer);
	SELECT pg_tviews_drop('tv_m2');
	SELECT pg_tviews_drop('tv_m');
	DELETE FROM public.tb_m;
});
ok(wait_engine(), 'engine caught up');
forget_sessions();
$node->restart;
ok(wait_engine(), 'engine back after a restart');
safe_as('alice', q{INSERT INTO tb_env VALUES (103, '2020-01-01 12:00:00+00')});
ok(wait_engine(), 'engine caught up');
is(su(q{SELECT sp || ' ' || cu FROM tv_env WHERE pk_env = 103}), 'pg_catalog alice',
	'after a restart the engine computes as before');

# =====================================================================
# no server process crashed
# =====================================================================
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC:/,
	'no server process crashed');

$node->stop;
done_testing();
