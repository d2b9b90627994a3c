# Emergency switches survive a restart, and nothing written meanwhile is
# lost.
#
# A node with the test settings, two base tables and two TVIEWs:
#   tv_account  one row per account with the sum and count of its entries
#               (tb_entry is a child through fk_account);
#   tv_entry    one row per entry with its account's owner (tb_account is a
#               parent through the exposed fk_account).
# Through the status tables, tv_account is emergency-disabled
# (UPDATE pg_tviews_metadata SET emergency_disabled = true, with a time and
# a reason), then the whole engine is switched off with
# pg_tviews_system_disable().  Writes follow, and the server is restarted.
# After the restart
#   - the engine is still off: pg_tviews_workers says 'paused',
#     tviews.engine and pg_tviews_slots agree, the health check warns;
#   - tv_account is still emergency-disabled with the same time and reason;
#   - the writes are kept in the slot: its confirmed position is not past
#     them, lag_bytes grows with every write, pg_tviews_wait() times out.
# pg_tviews_system_enable() applies them all: tv_entry equals its
# definition exactly (EXCEPT ALL both ways) while tv_account, still
# disabled, does not move.  Enabling tv_account again rebuilds it, and
# from then on both follow every write.  Last, a rebuild queued by an
# emergency enable survives a crash: the TVIEW stays 'rebuilding' and the
# engine queues its rebuild again when it starts.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use Test::More;

my $node = new_node('emergency_restart');
$node->start;

my %definition = (
	tv_account => q{
		SELECT a.pk_account, a.owner,
		       (SELECT coalesce(sum(e.amount), 0) FROM tb_entry e WHERE e.fk_account = a.pk_account) AS balance,
		       (SELECT count(*) FROM tb_entry e WHERE e.fk_account = a.pk_account) AS entries
		FROM tb_account a},
	tv_entry => q{
		SELECT e.pk_entry, e.fk_account, e.amount, a.owner
		FROM tb_entry e JOIN tb_account a ON a.pk_account = e.fk_account},
);

$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	CREATE EXTENSION pg_tviews;
	CREATE TABLE tb_account (pk_account int PRIMARY KEY, owner text NOT NULL);
	CREATE TABLE tb_entry (pk_entry int PRIMARY KEY,
	                       fk_account int NOT NULL REFERENCES tb_account,
	                       amount numeric NOT NULL);
	INSERT INTO tb_account SELECT i, 'owner ' || i FROM generate_series(1, 50) i;
	INSERT INTO tb_entry SELECT i, 1 + i % 50, i * 1.5 FROM generate_series(1, 500) i;
});
for my $tv (sort keys %definition)
{
	$node->safe_psql('postgres',
		"SET client_min_messages = warning; SELECT pg_tviews_create('$tv', \$q\$$definition{$tv}\$q\$)");
}

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

sub query { return $node->safe_psql('postgres', $_[0]); }

# The state of this database's engine in pg_tviews_workers.
sub engine_state
{
	return query(q{
		SELECT state FROM pg_tviews_workers
		WHERE worker_type = 'engine' AND database = current_database()});
}

sub wait_engine_state
{
	my ($wanted, $label) = @_;
	my $sql = q{
		SELECT CASE WHEN state IN ('idle', 'streaming', 'applying') THEN 'running' ELSE state END
		FROM pg_tviews_workers
		WHERE worker_type = 'engine' AND database = current_database()};
	ok($node->poll_query_until('postgres', $sql, $wanted),
		"$label: the engine is $wanted")
	  or diag('engine state: ' . engine_state());
}

# rows of the TVIEW, rows of its definition, rows extra, rows missing
sub diff
{
	my ($tv) = @_;
	my $def = $definition{$tv};
	return query(qq{
		SELECT (SELECT count(*) FROM $tv),
		       (SELECT count(*) FROM ($def) d),
		       (SELECT count(*) FROM (TABLE $tv EXCEPT ALL SELECT * FROM ($def) d) x),
		       (SELECT count(*) FROM (SELECT * FROM ($def) d EXCEPT ALL TABLE $tv) x)});
}

sub converged
{
	my ($tv, $label) = @_;
	my ($rows, $expected_rows, $extra, $missing) = split /\|/, diff($tv);
	is($rows, $expected_rows, "$label: $tv has as many rows as its definition ($expected_rows)");
	is("$extra|$missing", '0|0',
		"$label: $tv equals its definition (rows not in it | rows missing)");
}

sub not_converged
{
	my ($tv, $label) = @_;
	my ($rows, $expected_rows, $extra, $missing) = split /\|/, diff($tv);
	cmp_ok($extra + $missing, '>', 0,
		"$label: $tv does not follow the writes ($extra rows not in the definition, $missing missing)");
}

sub metadata
{
	my ($tv) = @_;
	return query(qq{
		SELECT state, emergency_disabled, emergency_disable_time, emergency_disable_reason
		FROM pg_tviews_metadata WHERE entity_name = '$tv'});
}

sub slot_lag
{
	return query(q{SELECT lag_bytes FROM pg_tviews_slots WHERE database = current_database()});
}

sub slot_confirmed
{
	return query(q{
		SELECT confirmed_flush_lsn FROM pg_tviews_slots WHERE database = current_database()});
}

# a round of writes on both tables, numbered so that every round differs
sub write_round
{
	my ($n) = @_;
	my $base = 1000 * $n;
	query(qq{
		UPDATE tb_account SET owner = owner || ' r$n' WHERE pk_account % 7 = $n % 7;
		INSERT INTO tb_entry SELECT $base + i, 1 + (i * $n) % 50, i + $n FROM generate_series(1, 40) i;
		UPDATE tb_entry SET amount = amount + $n WHERE pk_entry % 11 = $n % 11;
		UPDATE tb_entry SET fk_account = 1 + (fk_account + $n) % 50 WHERE pk_entry % 13 = 0;
		DELETE FROM tb_entry WHERE pk_entry % 17 = $n % 17 AND pk_entry < 500;
	});
}

# ---------------------------------------------------------------------
# the engine runs, the TVIEWs follow
# ---------------------------------------------------------------------
wait_engine_state('running', 'initial');
write_round(1);
is(query(q{SELECT pg_tviews_wait('60s')}), 't', 'initial: pg_tviews_wait says the engine caught up');
converged($_, 'initial') for sort keys %definition;

# ---------------------------------------------------------------------
# emergency-disable tv_account, then switch the engine off
# ---------------------------------------------------------------------
query(q{
	UPDATE pg_tviews_metadata
	   SET emergency_disabled = true,
	       emergency_disable_time = now() - interval '5 minutes',
	       emergency_disable_reason = 'balances wrong: incident 41'
	 WHERE entity_name = 'tv_account'});
my $disabled = metadata('tv_account');
like($disabled, qr/^stale\|t\|[^|]+\|balances wrong: incident 41$/,
	'tv_account is emergency-disabled, stale, with a time and a reason');
is(query(q{SELECT pg_tviews_system_disable('tap: restart with the engine off')}),
	'pg_tviews engine disabled: changes are kept in the slot and applied after pg_tviews_system_enable()',
	'pg_tviews_system_disable()');
wait_engine_state('paused', 'disabled');

my $confirmed_before = slot_confirmed();
my $lag_before = slot_lag();
my $first_write = query(q{SELECT pg_current_wal_lsn()});
write_round(2);
my $lag_written = slot_lag();
cmp_ok($lag_written, '>', $lag_before, "disabled: the slot's lag grows with writes ($lag_before -> $lag_written bytes)");
is(query(q{SELECT pg_tviews_wait('1s')}), 'f', 'disabled: pg_tviews_wait times out');
is(slot_confirmed(), $confirmed_before, "disabled: the slot's confirmed position stays");

# The slot must not get past the writes made while disabled.  (Across a
# restart PostgreSQL 15 may bring a logical slot's confirmed position back
# to the one last saved: that only means decoding again what was already
# applied, which the engine's recompute-by-key makes harmless.)
sub slot_before_first_write
{
	my ($label) = @_;
	is(query(qq{
		SELECT confirmed_flush_lsn <= '$first_write'::pg_lsn
		FROM pg_tviews_slots WHERE database = current_database()}), 't',
		"$label: the slot's confirmed position is not past the writes made while disabled");
}
slot_before_first_write('disabled');
not_converged('tv_entry', 'disabled');

# ---------------------------------------------------------------------
# restart: both switches persist, the writes wait in the slot
# ---------------------------------------------------------------------
$node->restart;
wait_engine_state('paused', 'after restart');
is(query(q{SELECT enabled, reason FROM tviews.engine}), 'f|tap: restart with the engine off',
	'after restart: tviews.engine still says disabled, with its reason');
is(query(q{SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database()}), 't',
	'after restart: pg_tviews_slots says the engine is paused');
is(query(q{SELECT status, detail FROM pg_tviews_health_check() WHERE component = 'engine'}),
	'warning|engine disabled by pg_tviews_system_disable(); changes wait in the slot',
	'after restart: the health check warns that the engine is disabled');
is(metadata('tv_account'), $disabled,
	'after restart: tv_account is still emergency-disabled, same time and reason');
is(query(q{SELECT count(*) FROM pg_tviews_metadata WHERE emergency_disabled}), '1',
	'after restart: only tv_account is emergency-disabled');
slot_before_first_write('after restart');
my $lag_restarted = slot_lag();
cmp_ok($lag_restarted, '>=', $lag_written, "after restart: the lag is still there ($lag_restarted bytes)");

write_round(3);
my $lag_more = slot_lag();
cmp_ok($lag_more, '>', $lag_restarted, "after restart: the lag grows with writes ($lag_restarted -> $lag_more bytes)");
is(query(q{SELECT pg_tviews_wait('1s')}), 'f', 'after restart: pg_tviews_wait times out');
not_converged('tv_entry', 'after restart');
slot_before_first_write('after restart, more writes');

# ---------------------------------------------------------------------
# engine on: everything kept in the slot is applied, except to the
# emergency-disabled TVIEW
# ---------------------------------------------------------------------
my $account_before = query(q{SELECT md5(string_agg(t::text, ',' ORDER BY pk_account)) FROM tv_account t});
is(query(q{SELECT pg_tviews_system_enable()}), 'pg_tviews engine enabled', 'pg_tviews_system_enable()');
wait_engine_state('running', 'enabled');
is(query(q{SELECT pg_tviews_wait('60s')}), 't', 'enabled: pg_tviews_wait says the engine caught up');
converged('tv_entry', 'enabled');
is(query(q{SELECT md5(string_agg(t::text, ',' ORDER BY pk_account)) FROM tv_account t}),
	$account_before, 'enabled: the emergency-disabled tv_account did not move');
not_converged('tv_account', 'enabled');
is(metadata('tv_account'), $disabled, 'enabled: tv_account is still emergency-disabled');
cmp_ok(slot_lag(), '<', $lag_more, 'enabled: the slot caught up');

# ---------------------------------------------------------------------
# tv_account enabled again: rebuilt, then maintained
# ---------------------------------------------------------------------
query(q{UPDATE pg_tviews_metadata SET emergency_disabled = false WHERE entity_name = 'tv_account'});
is(query(q{SELECT pg_tviews_wait('60s')}), 't', 're-enabled: pg_tviews_wait says the engine caught up');
converged('tv_account', 're-enabled');
converged('tv_entry', 're-enabled');
is(query(q{SELECT state, emergency_disabled FROM pg_tviews_metadata WHERE entity_name = 'tv_account'}),
	'ready|f', 're-enabled: tv_account is ready')
  or diag("the whole refreshes of tv_account in the queue:\n" . query(q{
	SELECT status, error_message FROM pg_tviews_queue
	WHERE entity_name = 'tv_account' AND full_refresh}));

write_round(4);
is(query(q{SELECT pg_tviews_wait('60s')}), 't', 'maintained: pg_tviews_wait says the engine caught up');
converged($_, 'maintained') for sort keys %definition;
is(query(q{
	SELECT string_agg(entity_name || ':' || state || ':' || pending_count || ':' || failed_count
	                  || ':' || coalesce(last_error, '-'), ' ' ORDER BY entity_name)
	FROM pg_tviews_metadata}),
	'tv_account:ready:0:0:- tv_entry:ready:0:0:-',
	'maintained: both TVIEWs ready, nothing pending, failed or in error');
is(query(q{SELECT string_agg(status, ',' ORDER BY component) FROM pg_tviews_health_check()}),
	'ok,ok,ok,ok', 'maintained: the health check is all ok');

# ---------------------------------------------------------------------
# a crash loses the queued rebuild of a re-enabled TVIEW: the engine
# queues it again from its 'rebuilding' state
# ---------------------------------------------------------------------
query(q{SELECT pg_tviews_system_disable('hold the rebuild')});
wait_engine_state('paused', 'crash test');
query(q{UPDATE pg_tviews_metadata SET emergency_disabled = true, emergency_disable_reason = 'crash test'
        WHERE entity_name = 'tv_account'});
write_round(5);
query(q{UPDATE pg_tviews_metadata SET emergency_disabled = false WHERE entity_name = 'tv_account'});
is(query(q{SELECT state, pending_count FROM pg_tviews_metadata WHERE entity_name = 'tv_account'}),
	'rebuilding|1', 're-enabled while the engine is off: rebuilding, its rebuild queued');
$node->stop('immediate');
$node->start;
is(query(q{SELECT state FROM pg_tviews_metadata WHERE entity_name = 'tv_account'}),
	'rebuilding', 'after a crash: still rebuilding (the queue in shared memory is gone)');
query(q{SELECT pg_tviews_system_enable()});
ok($node->poll_query_until('postgres',
		q{SELECT state = 'ready' FROM pg_tviews_metadata WHERE entity_name = 'tv_account'}),
	'after the crash the engine queued the rebuild again and made tv_account ready');
is(query(q{SELECT pg_tviews_wait('60s')}), 't', 'after the crash: the engine caught up');
converged($_, 'after the crash') for sort keys %definition;

$node->stop;
done_testing();
