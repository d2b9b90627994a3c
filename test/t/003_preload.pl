# pg_tviews must be preloaded; pg_tviews_decoder need not be.
#
#  - Without pg_tviews in shared_preload_libraries, CREATE EXTENSION (and
#    LOAD) fail with an error and a hint, every time, and leave nothing.
#  - With it preloaded, the "pg_tviews" GUC prefix is reserved.  What
#    PostgreSQL 15's MarkGUCPrefixReserved() does, and this test checks: a
#    misspelt pg_tviews.* line in postgresql.conf gives a WARNING at server
#    start ('invalid configuration parameter name "...", removing it' with
#    DETAIL '"pg_tviews" is now a reserved prefix.') and is removed; on a
#    reload the same line is reported at LOG level ('"pg_tviews" is a
#    reserved prefix.'); SET of an unknown pg_tviews.* name is an ERROR.
#    Without the preload, such a line is silently kept as a placeholder.
#  - The decoder is a library of its own: logical slots with it work on a
#    server with pg_tviews preloaded and on one without it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node parse_json_lines);
use Test::More;

my $preload_error =
  qr/ERROR:\s+55000: pg_tviews must be loaded via shared_preload_libraries/;
my $preload_hint = qr/HINT:\s+Add pg_tviews to shared_preload_libraries in postgresql\.conf and restart the server\./;

# psql with SQLSTATEs in error messages; returns (rc, stdout, stderr).
# psql stops at the first error (rc 3) unless $go_on is set.
sub psql_verbose
{
	my ($node, $sql, $go_on) = @_;
	my ($out, $err);
	my $rc = $node->psql('postgres', $sql,
		stdout => \$out, stderr => \$err,
		on_error_stop => $go_on ? 0 : 1,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($rc, $out, $err);
}

# The decoder on a node: json through the SQL interface, binary first byte.
sub check_decoder
{
	my ($node, $label) = @_;
	$node->safe_psql('postgres', q{
		CREATE TABLE dec_t (id int PRIMARY KEY, v text);
		SELECT 'init' FROM pg_create_logical_replication_slot('dec_slot', 'pg_tviews_decoder');
		INSERT INTO dec_t VALUES (1, 'one');
	});
	my @d = parse_json_lines($node->safe_psql('postgres', q{
		SELECT data FROM pg_logical_slot_peek_changes('dec_slot', NULL, NULL,
			'include-timestamp', 'false')
	}));
	is(join(' ', map { $_->{action} } @d), 'B I C', "$label: json changes decoded");
	is_deeply($d[1]{columns},
		[
			{ name => 'id', type => 'integer', value => 1 },
			{ name => 'v',  type => 'text',    value => 'one' }
		],
		"$label: row values");
	is($node->safe_psql('postgres', q{
		SELECT string_agg(get_byte(data, 0)::text || chr(get_byte(data, 1)), ' ')
		FROM pg_logical_slot_get_binary_changes('dec_slot', NULL, NULL,
			'format', 'binary')
	}), '1B 1R 1I 1C', "$label: binary messages, version 1");
	$node->safe_psql('postgres', q{
		SELECT pg_drop_replication_slot('dec_slot');
		DROP TABLE dec_t;
	});
}

# =====================================================================
# a server without pg_tviews preloaded (the decoder still allowed)
# =====================================================================
my $plain = new_node('no_preload');
$plain->append_conf('postgresql.conf', q{
shared_preload_libraries = ''
pg_tviews.misspelt_setting = 'on'
});
$plain->start;

is($plain->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'no_preload: nothing preloaded');

{
	my ($rc, $out, $err) = psql_verbose($plain,
		"CREATE EXTENSION pg_tviews;\nCREATE EXTENSION pg_tviews;", 1);
	my @errors = $err =~ /($preload_error)/g;
	is(scalar(@errors), 2,
		'no_preload: the preload error, with SQLSTATE 55000, on the first and on a second attempt in the same session');
	my @hints = $err =~ /($preload_hint)/g;
	is(scalar(@hints), 2, 'no_preload: with the hint each time');
	is($plain->safe_psql('postgres',
		q{SELECT count(*) FROM pg_extension WHERE extname = 'pg_tviews'}),
		'0', 'no_preload: the extension is not created');
	is($plain->safe_psql('postgres',
		q{SELECT count(*) FROM pg_proc WHERE proname LIKE 'pg_tviews%'}),
		'0', 'no_preload: none of its functions is left behind');

	($rc, $out, $err) = psql_verbose($plain, q{LOAD 'pg_tviews'});
	isnt($rc, 0, 'no_preload: LOAD pg_tviews fails');
	like($err, $preload_error, 'no_preload: LOAD gives the preload error');
	like($err, $preload_hint,  'no_preload: LOAD gives the hint');
}

# without the library, the prefix is not reserved: the line stays a placeholder
is($plain->safe_psql('postgres', 'SHOW pg_tviews.misspelt_setting'), 'on',
	'no_preload: a pg_tviews.* setting is a plain placeholder');
unlike(slurp_file($plain->logfile), qr/reserved prefix/,
	'no_preload: no reserved-prefix warning');

check_decoder($plain, 'no_preload');
$plain->stop;

# =====================================================================
# a server with pg_tviews preloaded and a misspelt pg_tviews.* setting
# =====================================================================
my $pre = new_node('preload');
$pre->append_conf('postgresql.conf', q{
pg_tviews.misspelt_setting = 'on'
});
$pre->start;

like($pre->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	qr/\bpg_tviews\b/, 'preload: pg_tviews is preloaded');

{
	my $log = slurp_file($pre->logfile);
	like($log,
		qr/WARNING:\s+invalid configuration parameter name "pg_tviews\.misspelt_setting", removing it\n[^\n]*DETAIL:\s+"pg_tviews" is now a reserved prefix\./,
		'preload: WARNING at start for the misspelt setting, naming the reserved prefix');

	my ($rc, $out, $err) =
	  psql_verbose($pre, 'SHOW pg_tviews.misspelt_setting');
	isnt($rc, 0, 'preload: the misspelt setting was removed');
	like($err,
		qr/ERROR:\s+42704: unrecognized configuration parameter "pg_tviews\.misspelt_setting"/,
		'preload: SHOW reports it unrecognized');

	($rc, $out, $err) = psql_verbose($pre, 'SET pg_tviews.another_typo = 1');
	isnt($rc, 0, 'preload: SET of an unknown pg_tviews.* parameter fails');
	like($err,
		qr/ERROR:\s+42602: invalid configuration parameter name "pg_tviews\.another_typo"\n.*DETAIL:\s+"pg_tviews" is a reserved prefix\./s,
		'preload: SET names the reserved prefix');

	($rc, $out, $err) =
	  psql_verbose($pre, 'ALTER SYSTEM SET pg_tviews.another_typo = 1');
	isnt($rc, 0, 'preload: ALTER SYSTEM of an unknown pg_tviews.* parameter fails');
	like($err,
		qr/ERROR:\s+42704: unrecognized configuration parameter "pg_tviews\.another_typo"/,
		'preload: ALTER SYSTEM reports it unrecognized');

	# a reload reads the misspelt line again and reports it
	my $offset = -s $pre->logfile;
	$pre->reload;
	ok( $pre->wait_for_log(
			qr/LOG:\s+invalid configuration parameter name "pg_tviews\.misspelt_setting"\n[^\n]*DETAIL:\s+"pg_tviews" is a reserved prefix\./,
			$offset),
		'preload: a reload reports the misspelt setting at LOG level');
}

is($pre->safe_psql('postgres', q{
	CREATE EXTENSION pg_tviews;
	SELECT extversion FROM pg_extension WHERE extname = 'pg_tviews';
}), '0.1', 'preload: CREATE EXTENSION pg_tviews works');
is($pre->safe_psql('postgres', q{
	SELECT count(*) FROM pg_tviews_wire_to_json('{}'::bytea[])
}), '0', 'preload: its functions are callable');

check_decoder($pre, 'preload');
$pre->stop;

done_testing();
