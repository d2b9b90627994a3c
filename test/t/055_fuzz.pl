# Fuzzing with hostile input: decoder options, TVIEW definitions, binary
# wire messages.  Seeded: the seed is printed; PGTV_FUZZ_SEED=<seed>
# replays a run.  Cases per kind: 300 by default, 2000 with PGTV_LONG=1,
# or PGTV_FUZZ_CASES=N.
#
#  1. Decoder options.  pg_logical_slot_peek_changes and
#     peek_binary_changes on a pg_tviews_decoder slot holding varied
#     changes (hostile schema and table names, TOAST, truncate, messages,
#     a transaction large enough to stream), with random option names and
#     values: valid ones, random text (quotes, backslashes, control
#     characters, unicode), huge strings, empty strings, NULL, patterns
#     with dots, stars and escapes, out-of-range numbers, duplicated
#     options.
#  2. TVIEW definitions.  A role "fuzzer" (owner of schema fz) calls
#     pg_tviews_create() -- and sometimes CREATE TABLE fz.tv_... AS -- with
#     valid definitions, hostile ones (multiple statements, DO blocks,
#     writing CTEs, SELECT INTO, FOR UPDATE, volatile and set-returning
#     functions, window functions, LIMIT, DISTINCT, UNION, VALUES, system
#     catalogs, sequences, temporary, unlogged and partitioned tables,
#     materialized views, foreign tables), and random mutations of both
#     (SQL fragments, semicolons, comments, "; DROP TABLE ...", swapped
#     tables and expressions), with random TVIEW names and key columns.
#     Two canary tables must stay unchanged: fz.canary_own (the fuzzer
#     could drop it, if its text were ever run as a statement of its own)
#     and public.canary_su (only a superuser could).  No relation may be
#     left behind by a failed call.  A created TVIEW must equal its
#     definition (oracle), then -- kept for a while, through writes the
#     engine applies -- still equal it, and be droppable.
#  3. pg_tviews_wire_to_json(bytea[]) with the real binary output of the
#     decoder (plain, streamed, key-only), mutated: flipped bytes, lengths
#     and counts set to extremes, truncated, extended, dropped, duplicated,
#     reordered messages, wrong versions and types, empty and NULL
#     elements.
#
# Every call must succeed or fail with a clean ERROR: SQLSTATE not in
# class XX (internal error), a message that is not one of PostgreSQL's
# internal "cannot happen" messages; no server process may crash.  Each
# finding is reported with its exact SQL (also written to
# 055_fuzz_findings.sql in the test's log directory), to replay by hand.
use strict;
use warnings;

use Encode qw(encode);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node);
use PgTviews::Differential;
use Test::More;
use Time::HiRes qw(usleep time);

my $seed = $ENV{PGTV_FUZZ_SEED} // ((time() * 1000 ^ $$) & 0x7fffffff);
my $cases = $ENV{PGTV_FUZZ_CASES} // ($ENV{PGTV_LONG} ? 2000 : 300);
diag("fuzz seed $seed, $cases cases per kind (replay: PGTV_FUZZ_SEED=$seed PGTV_FUZZ_CASES=$cases)");

my $node = new_node('fuzz');
$node->append_conf('postgresql.conf', q{
# a transaction of ~100 kB is streamed when stream-changes is on
logical_decoding_work_mem = 64kB
pg_tviews.max_retries = 2
pg_tviews.retry_delay = 100ms
pg_tviews.restart_interval = 1
max_connections = 30
});
$node->start;

my $findings_file = "$PostgreSQL::Test::Utils::log_path/055_fuzz_findings.sql";
open(my $findings_fh, '>', $findings_file) or die "cannot write $findings_file: $!";
print $findings_fh "-- 055_fuzz.pl findings, seed $seed, $cases cases per kind\n\n";

# ---------------------------------------------------------------------
# sessions (long-lived psql per role) that survive a server crash
# ---------------------------------------------------------------------
package RoleNode;
sub new { my ($class, $node, $role) = @_; return bless { node => $node, role => $role }, $class; }
sub installed_command { my $self = shift; return $self->{node}->installed_command(@_); }
sub connstr { my ($self, $db) = @_; return $self->{node}->connstr($db) . " user=$self->{role}"; }
package main;

my %sessions;

sub session
{
	my ($role) = @_;
	return $sessions{$role} if $sessions{$role};
	my $s = PgTviews::Differential::Session->new(RoleNode->new($node, $role), 'postgres', "fuzz $role");
	$s->query(q{SET statement_timeout = '60s'});
	$s->query(q{SET lock_timeout = '20s'});
	return $sessions{$role} = $s;
}

sub drop_sessions
{
	for my $s (values %sessions)
	{
		eval { $s->{run}->kill_kill; };
	}
	%sessions = ();
}

# Wait until the server accepts connections again (after a crash, the
# postmaster reinitializes).
sub wait_for_server
{
	for (1 .. 600)
	{
		my $rc = $node->psql('postgres', 'SELECT 1');
		return 1 if $rc == 0;
		usleep(100_000);
	}
	return 0;
}

# Run SQL as a role: { out, err, state, message, dead }.
sub exec_sql
{
	my ($role, $sql) = @_;
	my ($out, $err, $state);
	my $ok = eval { ($out, $err, $state) = session($role)->query($sql); 1 };
	my $died = $@;
	if (!$ok
		|| $err =~ /server closed the connection unexpectedly|connection to server was lost|terminating connection because of crash/)
	{
		drop_sessions();
		wait_for_server() or BAIL_OUT('the server did not come back after a crash');
		# the session that was going to run what follows
		return { dead => 1, out => $out // '', err => ($err // '') . ($died // ''), state => $state };
	}
	my ($msg) = $err =~ /ERROR:\s+[0-9A-Z]{5}:\s+(.*)$/m;
	return { dead => 0, out => $out, err => $err, state => $state, message => $msg };
}

sub su
{
	my ($sql) = @_;
	my $r = exec_sql('postgres', $sql);
	die "superuser: $sql\n$r->{err}" if $r->{dead} || defined $r->{state};
	return $r->{out};
}

# ---------------------------------------------------------------------
# findings
# ---------------------------------------------------------------------
my %findings;    # kind => [ "description" ]
my %stats;       # kind => { outcome => count }

# PostgreSQL's "cannot happen" messages: an error of that kind is a bug
# even when its SQLSTATE is not XX000.
my $internal_msg = qr/^(?:cache lookup failed|unrecognized node type|invalid memory alloc request size|
	unexpected (?:end|object|node|message)|could not find (?:tuple|pathkey|array|member)|
	variable not found in subplan|plan should not reference|tupdesc reference|
	unrecognized (?:token|join|type|command)|wrong (?:varno|varattno|type)|no relation entry|
	negative bitmapset member|bogus|unexpected EOF|too many range table entries)/x;

sub finding
{
	my ($kind, $n, $what, $sql) = @_;
	push @{ $findings{$kind} }, "case $n: $what";
	print $findings_fh "-- [$kind] case $n: $what\n$sql;\n\n";
	$findings_fh->flush;
}

sub lit
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

# Judge one call; returns the result.
sub check_call
{
	my ($kind, $n, $role, $sql) = @_;
	my $r = exec_sql($role, $sql);
	if ($r->{dead})
	{
		finding($kind, $n, "SERVER CRASH or lost connection: " . substr($r->{err}, 0, 300), $sql);
		$stats{$kind}{crash}++;
		return $r;
	}
	if (defined $r->{state})
	{
		$stats{$kind}{ $r->{state} }++;
		my $msg = $r->{message} // '';
		if ($r->{state} =~ /^XX/)
		{
			finding($kind, $n, "internal error $r->{state}: $msg", $sql);
		}
		elsif ($msg eq '' || $msg !~ /^[[:print:]]/ || $msg =~ $internal_msg)
		{
			finding($kind, $n, "unclean error $r->{state}: $msg", $sql);
		}
		elsif ($r->{err} =~ /^(?:psql:[^\n]*?)?(?:FATAL|PANIC):/m)
		{
			finding($kind, $n, "FATAL/PANIC: " . substr($r->{err}, 0, 300), $sql);
		}
	}
	else
	{
		$stats{$kind}{ok}++;
	}
	return $r;
}

# ---------------------------------------------------------------------
# random text
# ---------------------------------------------------------------------
sub pick { return $_[ int(rand(@_)) ]; }

# a random character (UTF-8 bytes), never NUL
sub rand_char
{
	my $r = rand();
	my $cp;
	if ($r < 0.55) { $cp = 32 + int(rand(95)); }
	elsif ($r < 0.65) { $cp = pick(ord("'"), ord('"'), ord('\\'), ord(','), ord('.'), ord('*'), ord(';')); }
	elsif ($r < 0.70) { $cp = 1 + int(rand(31)); }
	elsif ($r < 0.80) { $cp = 0xA0 + int(rand(0x500)); }
	elsif ($r < 0.88) { $cp = 0x3000 + int(rand(0x5000)); }
	elsif ($r < 0.93) { $cp = 0x1F300 + int(rand(0x300)); }
	else { $cp = pick(0x10FFFF, 0xFEFF, 0x200B, 0x2028, 0x0301, 0xFFFD, 0x7F, 0x85); }
	return encode('UTF-8', chr($cp));
}

sub rand_text
{
	my ($max) = @_;
	$max //= 20;
	return join('', map { rand_char() } 1 .. int(rand($max + 1)));
}

# bytes that may not be valid UTF-8 (never NUL): only for binary data.
# (Text with invalid UTF-8 cannot reach the server's functions -- text
# input rejects it -- and would confuse psql's lexer.)
sub rand_bytes
{
	my ($max) = @_;
	return join('', map { chr(1 + int(rand(255))) } 1 .. int(rand(($max // 20) + 1)));
}

# =====================================================================
# 1. Decoder options
# =====================================================================
su(q{CREATE EXTENSION pg_tviews});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = pg_tviews_slot_name()})
  or die 'the engine did not make its slot';

su(q{SELECT 'x' FROM pg_create_logical_replication_slot('fuzz_dec', 'pg_tviews_decoder')});
su(q{SELECT 'x' FROM pg_create_logical_replication_slot('fuzz_wire', 'pg_tviews_decoder')});
su(q{
	CREATE SCHEMA "we.ird";
	CREATE SCHEMA "sch""ema";
	CREATE TABLE public.fz_dec (id int PRIMARY KEY, fk int, t text, n numeric, f float8, j jsonb,
	                            b bytea, ok boolean, ts timestamptz, arr int[]);
	CREATE TABLE "we.ird"."ta*ble" (id int PRIMARY KEY, "co,l" text, "c.d" text);
	CREATE TABLE "sch""ema"."tb\,x" ("pk ü" text PRIMARY KEY, v text);
	ALTER TABLE "sch""ema"."tb\,x" REPLICA IDENTITY FULL;
	CREATE TABLE public.fz_toast (id int PRIMARY KEY, big text, small text);
	CREATE TABLE public.fz_big (id int PRIMARY KEY, pad text);
	CREATE TABLE public.fz_w_parent (pk_p int PRIMARY KEY, name text);
	CREATE TABLE public.fz_w_child (pk_c int PRIMARY KEY, fk int, body text);
	INSERT INTO public.fz_w_parent VALUES (1, 'p1');
	SELECT pg_tviews_create('tv_fz_w', 'SELECT p.pk_p, p.name, (SELECT count(*) FROM public.fz_w_child c WHERE c.fk = p.pk_p) AS n FROM public.fz_w_parent p');
});
su(q{
	INSERT INTO public.fz_dec VALUES
	  (1, 10, 'quote '' dq " bs \ tab' || chr(9) || 'nl' || chr(10) || ' ü 😀', 'NaN', 'Infinity', '{"a": [1, "x"]}', '\x00ff', true,
	   '2020-01-01 00:00+00', '{1,2}'),
	  (2, 20, NULL, -1.50, '-Infinity', 'null', '', false, 'infinity', '{}'),
	  (3, NULL, repeat('x', 3000), 1e100, 1e-300, '[]', NULL, NULL, NULL, NULL);
	UPDATE public.fz_dec SET t = 'changed', fk = 11 WHERE id = 1;
	UPDATE public.fz_dec SET id = 4 WHERE id = 2;
	DELETE FROM public.fz_dec WHERE id = 3;
	INSERT INTO "we.ird"."ta*ble" VALUES (1, 'a,b', 'c.d'), (2, '\', '*');
	INSERT INTO "sch""ema"."tb\,x" VALUES ('k''1', 'v'), ('k"2', NULL);
	UPDATE "sch""ema"."tb\,x" SET v = 'w';
	DELETE FROM "sch""ema"."tb\,x" WHERE "pk ü" = 'k"2';
	INSERT INTO public.fz_toast SELECT 1, string_agg(md5(g::text), '') , 's' FROM generate_series(1, 400) g;
	UPDATE public.fz_toast SET small = 's2';
	TRUNCATE "we.ird"."ta*ble", public.fz_dec;
	INSERT INTO public.fz_w_child VALUES (1, 1, 'c1'), (2, 1, 'c2');
	UPDATE public.fz_w_parent SET name = 'p1b';
	DELETE FROM public.fz_w_child WHERE pk_c = 2;
	SELECT pg_logical_emit_message(true, 'pfx', 'transactional message');
	SELECT pg_logical_emit_message(false, 'p.f*x,', '\x00ff41'::bytea);
	SELECT pg_logical_emit_message(true, '', '');
});
# a transaction large enough to be streamed, with a rolled back subtransaction
su(q{
	BEGIN;
	INSERT INTO public.fz_big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 400) g;
	SAVEPOINT s1;
	INSERT INTO public.fz_big SELECT g, repeat('y', 200) FROM generate_series(1001, 1300) g;
	ROLLBACK TO SAVEPOINT s1;
	INSERT INTO public.fz_big VALUES (2000, 'after');
	COMMIT;
});

my @opt_names = qw(format binary-version include-tables exclude-tables actions message-prefixes
  only-local columns lineage-columns tracked skip-empty-xacts include-xids include-timestamp
  include-lsn include-types stream-changes);
my %list_opt = map { $_ => 1 } qw(include-tables exclude-tables actions message-prefixes lineage-columns);
my %bool_opt = map { $_ => 1 } qw(only-local tracked skip-empty-xacts include-xids include-timestamp
  include-lsn include-types stream-changes);
my @pattern_atoms = ('*', '.', '\\.', '\\*', '\\\\', '\\', ',', '\\,', 'public', 'fz_*', 'tb_*', ' ',
	'ü', '"', "'", 'we', 'ird', 'ta', 'ble', '**', 'x' x 63, '', 'sch"ema', 'tb\\,x', 'pk ü', '*.*',
	'public.fz_dec', 'we\\.ird.ta\\*ble', 'fz_dec.id', 'id', '%', '_', '?', '[a-z]', '$', '^');
my @bool_values = ('true', 'false', 'on', 'off', 'yes', 'no', '1', '0', 't', 'f', 'TRUE', 'Off', 'y',
	'n', 'maybe', 'tru', '', ' true', 'true ', '2', '-1', 'on!', 'o');
my @number_values = ('1', '0', '-1', '2', '01', '1.0', '1e0', '0x1', ' 1', '1 ', '+1', '１', '2147483648',
	'4294967297', '99999999999999999999999999', '-9223372036854775809', '1' x 300, 'NaN', 'inf', '');
my %valid_values = (
	format => [ 'json', 'binary' ],
	'binary-version' => ['1'],
	actions => [ 'insert', 'update', 'delete', 'truncate', 'message', 'Insert, DELETE', 'insert,update,delete,truncate,message' ],
	columns => [ 'all', 'key' ],
	'message-prefixes' => [ 'pfx', 'p.f*x\\,', 'a,b\\,c', '' ],
);

sub rand_pattern
{
	my ($parts) = @_;
	my @segs;
	for (1 .. $parts)
	{
		push @segs, join('', map { pick(@pattern_atoms) } 1 .. 1 + int(rand(3)));
	}
	return join(pick('.', '.', '.', '\\.', ''), @segs);
}

sub rand_list
{
	my ($gen) = @_;
	return join(pick(',', ',', ', ', '\\,', ',,'), map { $gen->() } 1 .. 1 + int(rand(4)));
}

sub rand_opt_name
{
	my $r = rand();
	return pick(@opt_names) if $r < 0.75;
	my $n = pick(@opt_names);
	if ($r < 0.85)
	{
		my $m = int(rand(5));
		return uc($n) if $m == 0;
		return "$n " if $m == 1;
		return substr($n, 0, int(rand(length($n)))) if $m == 2;
		return $n =~ s/-/_/gr if $m == 3;
		return "$n" . rand_char();
	}
	return pick('', ' ', 'x' x 1000, rand_text(30), rand_text(3), 'format=json', 'format\0', '-');
}

sub rand_opt_value
{
	my ($name) = @_;
	my $r = rand();
	return undef if $r < 0.04;
	if ($r < 0.40)
	{
		return pick(@{ $valid_values{$name} }) if $valid_values{$name};
		return pick(@bool_values) if $bool_opt{$name};
		if ($name =~ /tables/) { return rand_list(sub { rand_pattern(2) }); }
		if ($name eq 'lineage-columns') { return rand_list(sub { rand_pattern(3) }); }
	}
	if ($r < 0.55)
	{
		return rand_list(sub { rand_pattern(1 + int(rand(4))) }) if $list_opt{$name} || rand() < 0.3;
		return rand_pattern(1 + int(rand(3)));
	}
	return pick(@bool_values) if $r < 0.62;
	return pick(@number_values) if $r < 0.70;
	return rand_text(40) if $r < 0.85;
	return '' if $r < 0.88;
	# huge
	my $unit = pick('*', 'a', '\\', '*.', 'public.*,', 'ü', "'", '\\,', 'x.y.z,');
	return $unit x (1000 + int(rand(60000)));
}

srand($seed);
for my $n (1 .. $cases)
{
	my @pairs;
	for (1 .. int(rand(6)))
	{
		my $name = rand_opt_name();
		push @pairs, [ $name, rand_opt_value($name) ];
	}
	if (@pairs && rand() < 0.2)
	{
		my $dup = $pairs[ int(rand(@pairs)) ][0];
		push @pairs, [ $dup, rand_opt_value($dup) ];
	}
	my $binary = rand() < 0.35;
	splice(@pairs, int(rand(@pairs + 1)), 0, [ 'format', 'binary' ]) if $binary && rand() < 0.75;
	my $fn = $binary ? 'pg_logical_slot_peek_binary_changes' : 'pg_logical_slot_peek_changes';
	my $upto = rand() < 0.6 ? 'NULL' : int(rand(30));
	my $args = join('', map { ', ' . lit($_->[0]) . ', ' . lit($_->[1]) } @pairs);
	check_call('decoder options', $n, 'postgres',
		"SELECT count(*), coalesce(sum(octet_length(data)), 0) FROM $fn('fuzz_dec', NULL, $upto$args)");
}
# the slot is as it was: peek consumed nothing
is(su(q{SELECT count(*) > 0 FROM pg_logical_slot_peek_changes('fuzz_dec', NULL, NULL)}), 't',
	'decoder options: the slot still decodes with default options');

# =====================================================================
# 3 (before 2, whose writes would flood the slot). pg_tviews_wire_to_json
# =====================================================================
# (only our tables: the engine's own catalog writes would make the pools,
# and so the cases of a seed, differ from run to run)
my %pool;
my $ours = q{'include-tables', 'public.fz_*, we\.ird.*, sch"ema.*'};
for my $p ([ plain => qq{'format', 'binary', $ours} ],
	[ stream => qq{'format', 'binary', 'stream-changes', 'true', $ours} ],
	[ key => qq{'format', 'binary', 'columns', 'key', 'lineage-columns', 'public.fz_w*.fk', $ours} ],
	[ tracked => q{'format', 'binary', 'tracked', 'true', 'columns', 'key'} ])
{
	my ($name, $opts) = @$p;
	my $hex = su("SELECT string_agg(encode(data, 'hex'), ' ' ORDER BY n)
	              FROM pg_logical_slot_peek_binary_changes('fuzz_wire', NULL, NULL, $opts)
	                   WITH ORDINALITY AS m(lsn, xid, data, n)");
	$pool{$name} = [ map { pack('H*', $_) } split / /, $hex ];
}
note(join(', ', map { "$_: " . scalar(@{ $pool{$_} }) . ' messages' } sort keys %pool));
ok(scalar(@{ $pool{stream} }) > scalar(@{ $pool{plain} }) || grep({ substr($_, 1, 1) eq 'S' } @{ $pool{stream} }),
	'wire: the streamed pool has stream messages');
{
	my $r = exec_sql('postgres', q{SELECT count(*) FROM pg_tviews_wire_to_json(ARRAY(
		SELECT data FROM pg_logical_slot_peek_binary_changes('fuzz_wire', NULL, NULL, 'format', 'binary')))});
	ok(!defined $r->{state} && $r->{out} > 0, 'wire: the unmutated stream renders') or diag($r->{err});
}

sub mutate_messages
{
	my ($msgs) = @_;
	my @m = @$msgs;
	my $k = int(rand(14));
	my $i = int(rand(@m || 1));
	if (!@m) { push @m, "\x01" . chr(int(rand(256))) . rand_bytes(30); return \@m; }
	my $len = defined $m[$i] ? length($m[$i]) : 0;
	if ($k == 0 && $len)
	{
		for (1 .. 1 + int(rand(4)))
		{
			my $p = int(rand(length($m[$i])));
			substr($m[$i], $p, 1) = chr(ord(substr($m[$i], $p, 1)) ^ (1 + int(rand(255))));
		}
	}
	elsif ($k == 1 && $len >= 4)
	{
		my $p = int(rand($len - 3));
		substr($m[$i], $p, 4) = pack('N', pick(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe,
				int(rand(2**32)), $len, $len - $p));
	}
	elsif ($k == 2 && $len >= 2)
	{
		my $p = int(rand($len - 1));
		substr($m[$i], $p, 2) = pack('n', pick(0, 1, 0x7fff, 0x8000, 0xffff, int(rand(65536))));
	}
	elsif ($k == 3 && $len) { $m[$i] = substr($m[$i], 0, int(rand($len))); }
	elsif ($k == 4) { $m[$i] = ($m[$i] // '') . rand_bytes(64); }
	elsif ($k == 5 && $len)
	{
		my $p = int(rand($len));
		substr($m[$i], $p, 0) = rand_bytes(16);
	}
	elsif ($k == 6) { splice(@m, $i, 0, $m[$i]); }
	elsif ($k == 7) { splice(@m, $i, 1); }
	elsif ($k == 8)
	{
		my $j = int(rand(@m));
		@m[ $i, $j ] = @m[ $j, $i ];
	}
	elsif ($k == 9 && $len) { substr($m[$i], 0, 1) = chr(pick(0, 2, 255, int(rand(256)))); }
	elsif ($k == 10 && $len >= 2) { substr($m[$i], 1, 1) = chr(pick(int(rand(256)), map { ord } split //, 'RBCIUDTMSEcAx')); }
	elsif ($k == 11) { $m[$i] = pick('', "\x01", "\x01R", undef); }
	elsif ($k == 12) { splice(@m, $i, 0, "\x01" . pick(split //, 'RBCIUDTMSEcA') . rand_bytes(40)); }
	else
	{
		my $other = $pool{ pick(keys %pool) };
		splice(@m, $i, 0, $other->[ int(rand(@$other)) ]) if @$other;
	}
	return \@m;
}

srand($seed + 3);
for my $n (1 .. $cases)
{
	my $src = $pool{ pick(keys %pool) };
	my $start = rand() < 0.5 ? 0 : int(rand(@$src));
	my $count = 1 + int(rand(40));
	my @msgs = grep { defined } @$src[ $start .. ($start + $count - 1 < $#$src ? $start + $count - 1 : $#$src) ];
	my $msgs = \@msgs;
	$msgs = mutate_messages($msgs) for 1 .. int(rand(5));
	my $array = @$msgs
	  ? 'ARRAY[' . join(', ', map { defined $_ ? "'\\x" . unpack('H*', $_) . "'::bytea" : 'NULL::bytea' } @$msgs) . ']'
	  : 'ARRAY[]::bytea[]';
	check_call('wire', $n, 'postgres',
		"SELECT count(*), coalesce(sum(octet_length(l)), 0) FROM pg_tviews_wire_to_json($array) l");
}

# =====================================================================
# 2. TVIEW definitions
# =====================================================================
su(q{
	CREATE ROLE fuzzer LOGIN;
	CREATE SCHEMA fz AUTHORIZATION fuzzer;
	CREATE TABLE public.canary_su (x text);
	INSERT INTO public.canary_su VALUES ('su-canary');
	GRANT SELECT ON public.canary_su TO fuzzer;
});
my $fuzz_setup = q{
	CREATE TABLE fz.tb_parent (pk_parent int PRIMARY KEY, name text NOT NULL, n int, fk_other int);
	CREATE TABLE fz.tb_child (pk_child int PRIMARY KEY, fk_parent int NOT NULL, body text, amount numeric);
	CREATE TABLE fz.tb_other (pk_other int PRIMARY KEY, label text);
	CREATE TABLE fz.tb_part (pk_part int, v text) PARTITION BY RANGE (pk_part);
	CREATE TABLE fz.tb_part_1 PARTITION OF fz.tb_part FOR VALUES FROM (0) TO (100000);
	CREATE UNLOGGED TABLE fz.tb_unlogged (pk_unlogged int PRIMARY KEY, v text);
	CREATE VIEW fz.v_parent AS SELECT pk_parent, name, n FROM fz.tb_parent WHERE n IS NOT NULL;
	CREATE SEQUENCE fz.sq;
	CREATE MATERIALIZED VIEW fz.mv AS SELECT pk_parent, name FROM fz.tb_parent;
	CREATE TABLE fz.side (x text);
	CREATE TABLE fz.canary_own (x text);
	INSERT INTO fz.canary_own VALUES ('own-canary');
	CREATE FUNCTION fz.f_stable(int) RETURNS int LANGUAGE sql STABLE AS 'SELECT $1 * 2';
	CREATE FUNCTION fz.f_volatile() RETURNS int LANGUAGE plpgsql VOLATILE AS
	  $f$BEGIN INSERT INTO fz.side VALUES ('volatile'); RETURN 1; END$f$;
	CREATE FUNCTION fz.f_liar(int) RETURNS int LANGUAGE plpgsql STABLE AS
	  $f$BEGIN RETURN fz.f_volatile() + $1; END$f$;
	CREATE FUNCTION fz.f_srf() RETURNS SETOF int LANGUAGE sql STABLE AS 'SELECT generate_series(1, 3)';
	CREATE FUNCTION fz.f_err(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
	  $f$BEGIN IF $1 = 13 THEN RAISE EXCEPTION 'unlucky %', $1; END IF; RETURN $1; END$f$;
	CREATE PROCEDURE fz.proc() LANGUAGE sql AS 'SELECT 1';
	CREATE TYPE fz.mood AS ENUM ('sad', 'ok');
	INSERT INTO fz.tb_other SELECT g, 'other ' || g FROM generate_series(1, 5) g;
	INSERT INTO fz.tb_parent SELECT g, 'parent ' || g, CASE WHEN g % 4 <> 0 THEN g END, 1 + g % 5
	  FROM generate_series(1, 30) g;
	INSERT INTO fz.tb_child SELECT g, 1 + g % 30, 'child ' || g, g * 1.5 FROM generate_series(1, 80) g;
	INSERT INTO fz.tb_unlogged VALUES (1, 'u');
	INSERT INTO fz.tb_part VALUES (1, 'p');
	CREATE TEMP TABLE tmp_t (pk_parent int PRIMARY KEY);
	INSERT INTO tmp_t VALUES (1);
};
{
	my $r = exec_sql('fuzzer', $fuzz_setup);
	die "fuzzer setup: $r->{err}" if defined $r->{state};
}
su(q{CREATE FOREIGN TABLE fz.ft (entity_name text) SERVER pg_tviews_server OPTIONS (status_table 'metadata');
     GRANT SELECT ON fz.ft TO fuzzer});

my @valid_defs = (
	q{SELECT p.pk_parent, p.name, p.n FROM fz.tb_parent p},
	q{SELECT p.pk_parent, jsonb_build_object('name', p.name, 'children', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.pk_child, 'body', c.body) ORDER BY c.pk_child), '[]'::jsonb) FROM fz.tb_child c WHERE c.fk_parent = p.pk_parent)) AS data FROM fz.tb_parent p},
	q{SELECT c.pk_child, c.fk_parent, c.body, p.name FROM fz.tb_child c JOIN fz.tb_parent p ON p.pk_parent = c.fk_parent},
	q{SELECT p.pk_parent, count(c.pk_child) AS n FROM fz.tb_parent p LEFT JOIN fz.tb_child c ON c.fk_parent = p.pk_parent GROUP BY p.pk_parent},
	q{SELECT p.pk_parent, p.fk_other, o.label FROM fz.tb_parent p LEFT JOIN fz.tb_other o ON o.pk_other = p.fk_other},
	q{WITH x AS (SELECT pk_parent, name FROM fz.tb_parent) SELECT pk_parent, name FROM x},
	q{SELECT pk_parent, fz.f_stable(n) AS s FROM fz.tb_parent},
	q{SELECT v.pk_parent, v.name FROM fz.v_parent v},
	q{SELECT c.pk_child, (SELECT p.name FROM fz.tb_parent p WHERE p.pk_parent = c.fk_parent) AS pname FROM fz.tb_child c},
	q{SELECT pk_parent, name FROM fz.tb_parent WHERE n > 3 OR name LIKE '%1%'},
	q{SELECT c.pk_child, c.amount, o.label FROM fz.tb_child c JOIN fz.tb_parent p ON p.pk_parent = c.fk_parent JOIN fz.tb_other o ON o.pk_other = p.fk_other},
);
# hostile definitions, each also run once as is
my @hostile_defs = (
	q{SELECT pk_parent FROM fz.tb_parent; DROP TABLE fz.canary_own},
	q{SELECT pk_parent FROM fz.tb_parent; DELETE FROM public.canary_su},
	q{SELECT pk_parent FROM fz.tb_parent;; DROP TABLE fz.canary_own; --},
	q{SELECT pk_parent FROM fz.tb_parent -- comment},
	q{SELECT pk_parent FROM fz.tb_parent /* unterminated},
	q{SELECT pk_parent FROM fz.tb_parent; -- trailing},
	q{SELECT pk_parent FROM fz.tb_parent;
	  },
	q{DO $$ BEGIN DROP TABLE fz.canary_own; END $$},
	q{WITH d AS (DELETE FROM fz.canary_own RETURNING 1) SELECT pk_parent FROM fz.tb_parent},
	q{WITH d AS (INSERT INTO fz.canary_own VALUES ('x') RETURNING 1) SELECT p.pk_parent FROM fz.tb_parent p, d},
	q{SELECT pk_parent INTO fz.newtab FROM fz.tb_parent},
	q{SELECT pk_parent FROM fz.tb_parent FOR UPDATE},
	q{SELECT pk_parent FROM fz.tb_parent FOR KEY SHARE SKIP LOCKED},
	q{SELECT pk_parent, fz.f_liar(pk_parent) AS x FROM fz.tb_parent},
	q{SELECT pk_parent, fz.f_volatile() AS x FROM fz.tb_parent},
	q{SELECT pk_parent, fz.f_srf() AS x FROM fz.tb_parent},
	q{SELECT pk_parent, fz.f_err(pk_parent) AS x FROM fz.tb_parent},
	q{SELECT p.pk_parent, fz.f_err(c.pk_child) AS x FROM fz.tb_parent p JOIN fz.tb_child c ON c.pk_child = p.pk_parent},
	q{SELECT g AS pk_parent FROM generate_series(1, 3) g},
	q{SELECT p.pk_parent, g FROM fz.tb_parent p, generate_series(1, 2) g},
	q{SELECT pk_parent, random() AS r FROM fz.tb_parent},
	q{SELECT pk_parent, now() AS t FROM fz.tb_parent},
	q{SELECT pk_parent, row_number() OVER (ORDER BY pk_parent) AS rn FROM fz.tb_parent},
	q{SELECT pk_parent FROM fz.tb_parent ORDER BY pk_parent LIMIT 5},
	q{SELECT DISTINCT pk_parent, name FROM fz.tb_parent},
	q{SELECT DISTINCT ON (fk_parent) fk_parent AS pk_parent, body FROM fz.tb_child ORDER BY fk_parent, pk_child},
	q{SELECT pk_parent FROM fz.tb_parent UNION SELECT pk_child FROM fz.tb_child},
	q{SELECT pk_parent FROM fz.tb_parent UNION ALL SELECT pk_parent FROM fz.tb_parent},
	q{VALUES (1)},
	q{SELECT * FROM (VALUES (1), (2)) v(pk_parent)},
	q{SELECT oid AS pk_parent FROM pg_class},
	q{SELECT p.pk_parent, (SELECT count(*) FROM pg_class) AS n FROM fz.tb_parent p},
	q{SELECT p.pk_parent, (SELECT count(*) FROM pg_roles) AS n FROM fz.tb_parent p},
	q{SELECT p.pk_parent, (SELECT last_value FROM fz.sq) AS s FROM fz.tb_parent p},
	q{SELECT last_value AS pk_parent FROM fz.sq},
	q{SELECT pk_parent FROM tmp_t},
	q{SELECT pk_parent FROM pg_temp.tmp_t},
	q{SELECT pk_unlogged, v FROM fz.tb_unlogged},
	q{SELECT pk_parent, name FROM fz.mv},
	q{SELECT pk_part, v FROM fz.tb_part},
	q{SELECT pk_part, v FROM fz.tb_part_1},
	q{SELECT entity_name AS pk_parent FROM fz.ft},
	q{SELECT p.pk_parent, (SELECT count(*) FROM fz.ft) AS n FROM fz.tb_parent p},
	q{SELECT tview::oid::int AS pk_parent FROM tviews.tview},
	q{SELECT p.pk_parent, (SELECT count(*) FROM tviews.tview) AS n FROM fz.tb_parent p},
	q{SELECT x AS pk_parent FROM public.canary_su},
	q{SELECT pk_parent, pg_sleep(0) FROM fz.tb_parent},
	q{SELECT pk_parent, txid_current() AS x FROM fz.tb_parent},
	q{SELECT pk_parent, nextval('fz.sq') AS x FROM fz.tb_parent},
	q{SELECT pk_parent, current_user AS u, current_setting('search_path') AS sp FROM fz.tb_parent},
	q{SELECT pk_parent, 'sad'::fz.mood AS m FROM fz.tb_parent},
	q{SELECT pk_parent, name::json AS j FROM fz.tb_parent WHERE false},
	q{SELECT pk_parent, point(n, n) AS pt FROM fz.tb_parent},
	q{TABLE fz.tb_parent},
	q{SELECT * FROM fz.tb_parent},
	q{SELECT pk_parent FROM fz.tb_parent TABLESAMPLE SYSTEM (50)},
	q{SELECT pk_parent FROM fz.tb_parent WHERE pk_parent = $1},
	q{SELECT pk_parent, name FROM fz.tb_parent ORDER BY name},
	q{SELECT pk_parent, name FROM ONLY fz.tb_parent},
	q{(SELECT pk_parent FROM fz.tb_parent)},
	q{SELECT p.pk_parent FROM fz.tb_parent p FULL JOIN fz.tb_child c ON c.fk_parent = p.pk_parent},
	q{SELECT p.pk_parent, c.pk_child FROM fz.tb_parent p, fz.tb_child c},
	q{WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 3) SELECT p.pk_parent, (SELECT max(x) FROM r) AS m FROM fz.tb_parent p},
	q{SELECT p.pk_parent, l.body FROM fz.tb_parent p, LATERAL (SELECT body FROM fz.tb_child c WHERE c.fk_parent = p.pk_parent LIMIT 1) l},
	q{SELECT p.pk_parent, p.pk_parent AS pk_parent2 FROM fz.tb_parent p},
	q{EXPLAIN SELECT pk_parent FROM fz.tb_parent},
	q{SHOW search_path}, q{SET search_path = public}, q{RESET ALL}, q{COMMIT}, q{ROLLBACK}, q{BEGIN},
	q{COPY fz.tb_parent TO STDOUT}, q{LISTEN x}, q{NOTIFY x}, q{PREPARE p AS SELECT 1}, q{EXECUTE p},
	q{CALL fz.proc()}, q{DECLARE c CURSOR FOR SELECT 1}, q{CREATE TABLE fz.newtab AS SELECT 1 AS pk_parent},
	q{ANALYZE fz.tb_parent}, q{VACUUM fz.tb_parent}, q{DROP TABLE fz.canary_own}, q{TRUNCATE fz.canary_own},
	q{}, q{;}, q{ }, q{--}, q{/**/}, q{SELECT}, q{SELECT FROM fz.tb_parent}, q{SELECT 1},
	"SELECT pk_parent FROM fz.tb_parent\\gexec", "SELECT pk_parent FROM fz.tb_parent \\! touch /tmp/pgtv_fuzz_pwned",
	"SELECT pk_parent FROM fz.tb_parent WHERE name = 'x'' OR 1=1 --'",
	"SELECT pk_parent FROM fz.tb_parent WHERE name = \$q\$'; DROP TABLE fz.canary_own; --\$q\$",
	"SELECT pk_parent AS \"pk_x\"\"; DROP TABLE fz.canary_own; --\" FROM fz.tb_parent",
);

my @fragments = (
	'; DROP TABLE fz.canary_own', '; DELETE FROM public.canary_su', '; DROP TABLE fz.canary_own; --',
	' -- x', ' /* x */', ' /*', '*/', ';', ';;', '; --', ' LIMIT 1', ' OFFSET 1', ' FOR UPDATE',
	' FOR SHARE', ' ORDER BY 1', ' UNION SELECT 1', ' UNION ALL SELECT pk_child FROM fz.tb_child',
	' WHERE true', ' WHERE random() > 0.5', ' GROUP BY 1', ' HAVING true', ' INTO fz.newtab',
	' RETURNING *', ')', '(', "'", '"', '$$', '$a$', '\\', ' \\gexec', ':foo', ":'foo'",
	'; COMMIT; DROP TABLE fz.canary_own; BEGIN', "\x0b", "\t", "\n", "\r\n", 'ü', "\xe2\x80\xa8",
	' TABLESAMPLE SYSTEM (10)', ' WINDOW w AS ()', ',', ' AND false', ' OR true', '::text',
	' COLLATE "C"', ' AS x', ' CROSS JOIN fz.tb_other', ' NATURAL JOIN fz.tb_child',
);
my @prefixes = (
	'EXPLAIN ', 'WITH d AS (DELETE FROM fz.canary_own RETURNING 1) ',
	'WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 3) ', '/* c */ ',
	"-- c\n", '(', 'SELECT * FROM (', 'DO $$ BEGIN NULL; END $$; ', 'BEGIN; ', 'COMMIT; ',
	'SET ROLE postgres; ', 'RESET ROLE; ', 'SET search_path = public; ', 'DROP TABLE fz.canary_own; ',
	"\xef\xbb\xbf", ' ', "\n\n",
);
my @expr_swaps = ('random()::text', 'fz.f_volatile()', 'fz.f_liar(1)', 'pg_sleep(0)::text', 'current_user',
	q{current_setting('search_path')}, '(SELECT count(*) FROM pg_class)', q{nextval('fz.sq')},
	'txid_current()', 'fz.f_err(13)', '(SELECT 1 UNION SELECT 2)', 'fz.f_srf()', 'NULL', q{'x'},
	'1/0', 'row_number() OVER ()', 'count(*)', q{(SELECT string_agg(x, ',') FROM fz.canary_own)},
	q{(SELECT x FROM public.canary_su)}, 'pg_backend_pid()', q{'sad'::fz.mood}, 'now()');
my @table_swaps = ('fz.tb_parent', 'fz.tb_child', 'fz.tb_other', 'fz.v_parent', 'fz.mv', 'fz.sq',
	'fz.tb_part', 'fz.tb_part_1', 'fz.tb_unlogged', 'tmp_t', 'pg_class', 'fz.ft', 'tviews.tview',
	'public.canary_su', 'fz.canary_own', 'generate_series(1, 3)', 'fz.f_srf()', 'fz.nosuch',
	'(SELECT 1) s', 'LATERAL (SELECT 1) s', 'pg_tviews_metadata');

sub mutate_def
{
	my ($q) = @_;
	my $k = int(rand(10));
	if ($k <= 1) { return $q . pick(@fragments); }
	if ($k == 2) { return pick(@prefixes) . $q; }
	if ($k == 3)
	{
		my @sp;
		push @sp, pos($q) - 1 while $q =~ / /g;
		return $q unless @sp;
		my $p = pick(@sp);
		return substr($q, 0, $p) . ' ' . pick(@fragments) . ' ' . substr($q, $p + 1);
	}
	if ($k == 4)
	{
		my @cols = $q =~ /\b([a-z]\.(?:name|body|n|label|amount|fk_other))\b/g;
		return $q . pick(@fragments) unless @cols;
		my $c = pick(@cols);
		my $e = pick(@expr_swaps);
		$q =~ s/\b\Q$c\E\b/$e/;
		return $q;
	}
	if ($k == 5)
	{
		my @t = $q =~ /\b(fz\.\w+)\b/g;
		return $q unless @t;
		my $t = pick(@t);
		my $r = pick(@table_swaps);
		$q =~ s/\b\Q$t\E\b/$r/;
		return $q;
	}
	if ($k == 6)
	{
		return $q unless length($q);
		my $a = int(rand(length($q)));
		my $l = int(rand(10));
		return substr($q, 0, $a) . ($a + $l < length($q) ? substr($q, $a + $l) : '');
	}
	if ($k == 7) { return $q . '; ' . pick(@valid_defs, @hostile_defs); }
	if ($k == 8)
	{
		$q =~ s/\bSELECT\b/pick('SELECT DISTINCT', 'SELECT ALL', 'SELECT', 'select')/e;
		$q =~ s/\bFROM\b/pick('FROM ONLY', 'FROM', 'from')/e;
		return $q;
	}
	return uc($q) if rand() < 0.5;
	return substr($q, 0, int(rand(length($q) + 1)));
}

my @weird_names = ('fz."tv_fz""q%d"', 'fz."tv fz%d"', 'fz."tv.fz%d"', 'fz."tv_fz_%d; DROP TABLE fz.canary_own"',
	'fz.tv_fz_%d; DROP TABLE fz.canary_own', 'fz."tv_ü%d"', 'a.b.c', '', '"', 'fz.', '.tv_fz_%d', 'tv_fz_%d',
	'public.tv_fz_%d', 'pg_catalog.tv_fz_%d', 'tviews.tv_fz_%d', 'fz."' . ('x' x 70) . '%d"', 'fz.tb_parent',
	'fz.canary_own', 'fz.tv_fz_%d_def', 'pg_temp.tv_fz_%d', 'FZ.TV_FZ_%d', 'fz."TV_%d"');

sub rand_key
{
	my $r = rand();
	return undef if $r < 0.6;
	return pick('pk_parent', 'pk_child', 'fk_parent', 'name', 'n') if $r < 0.8;
	return pick('', ' ', 'pk_parent; DROP TABLE fz.canary_own', 'pk_"parent', "pk_'parent", 'PK_PARENT',
		'x' x 100, rand_text(10), 'ü', 'pk_parent ', 'ctid', 'oid', 'xmin', '*');
}

my %kept;       # TVIEW regclass text => definition
my %kept_role;  # ... => the role that made it
my $kept_max = 6;
my $def_n = 0;

sub invariants
{
	my $r = exec_sql('postgres', q{
		SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		        WHERE s.nspname IN ('fz', 'public', 'tviews'))
		    || '|' || (SELECT count(*) FROM tviews.tview)
		    || '|' || (SELECT rolsuper::int FROM pg_roles WHERE rolname = 'fuzzer')
		    || '|' || (to_regclass('fz.canary_own') IS NOT NULL)::int
		    || '|' || (to_regclass('public.canary_su') IS NOT NULL)::int});
	return undef if $r->{dead} || defined $r->{state};
	my ($rels, $tvs, $super, $own, $su) = split /\|/, $r->{out};
	my $content = '';
	if ($own eq '1' && $su eq '1')
	{
		$content = su(q{SELECT (SELECT string_agg(x, ',' ORDER BY x) FROM fz.canary_own) || '|'
		                    || (SELECT string_agg(x, ',' ORDER BY x) FROM public.canary_su)});
	}
	return { rels => $rels, tvs => $tvs, super => $super, canaries => "$own|$su|$content" };
}
my $canaries_ok = '1|1|own-canary|su-canary';

sub restore_canaries
{
	su(q{DROP TABLE IF EXISTS fz.canary_own; DROP TABLE IF EXISTS public.canary_su;
	     CREATE TABLE public.canary_su (x text); INSERT INTO public.canary_su VALUES ('su-canary');
	     GRANT SELECT ON public.canary_su TO fuzzer;
	     CREATE TABLE fz.canary_own (x text); INSERT INTO fz.canary_own VALUES ('own-canary');
	     ALTER TABLE fz.canary_own OWNER TO fuzzer;
	     ALTER ROLE fuzzer NOSUPERUSER;});
}

# the oracle, as the fuzzer (the definition's context: its privileges)
sub oracle
{
	my ($kind, $n, $tv, $def, $role) = @_;
	$role //= 'fuzzer';
	my $vw = exec_sql($role, "SELECT backing_view::text FROM tviews.tview WHERE tview = " . lit($tv) . '::regclass');
	if ($vw->{dead} || defined $vw->{state} || $vw->{out} eq '')
	{
		finding($kind, $n, "created TVIEW $tv has no catalog row ($vw->{err})", $def);
		return;
	}
	my $r = exec_sql($role,
		'SELECT count(*) FROM (' . PgTviews::Differential::oracle_sql($tv, $vw->{out}) . ') d');
	return 'n/a' if defined $r->{state} && $r->{state} =~ /^(42883|42804)$/;    # no equality operator
	if ($r->{dead} || defined $r->{state})
	{
		finding($kind, $n, "oracle of $tv failed: $r->{state} $r->{message}", $def);
		return;
	}
	return $r->{out};
}

sub drop_tview
{
	my ($kind, $n, $tv, $def, $role) = @_;
	my $r = exec_sql($role // 'fuzzer', 'SELECT pg_tviews_drop(' . lit($tv) . ')');
	if ($r->{dead} || defined $r->{state})
	{
		finding($kind, $n, "pg_tviews_drop($tv) failed: " . ($r->{state} // 'crash') . ' ' . ($r->{message} // ''), $def);
		# get rid of it anyway
		exec_sql('postgres', 'DROP TABLE IF EXISTS ' . $tv . ' CASCADE');
	}
}

# writes to every base table, the engine applies them; every kept TVIEW
# must still equal its definition
sub batch_check
{
	my ($n) = @_;
	return unless %kept;
	my @w;
	for (1 .. 6)
	{
		my $id = 1 + int(rand(40));
		push @w, pick(
			"INSERT INTO fz.tb_parent VALUES ($id + 100 * (1 + floor(random() * 50))::int, 'new $id', $id % 7, 1 + $id % 5) ON CONFLICT DO NOTHING",
			"UPDATE fz.tb_parent SET name = name || '+', n = coalesce(n, 0) + 1 WHERE pk_parent = $id",
			"UPDATE fz.tb_parent SET fk_other = 1 + (fk_other % 5) WHERE pk_parent = $id",
			"DELETE FROM fz.tb_parent WHERE pk_parent = $id",
			"INSERT INTO fz.tb_child VALUES ($id + 1000 * (1 + floor(random() * 50))::int, $id, 'new', 1) ON CONFLICT DO NOTHING",
			"UPDATE fz.tb_child SET fk_parent = 1 + fk_parent % 30, body = body || '*' WHERE pk_child = $id",
			"DELETE FROM fz.tb_child WHERE pk_child = $id",
			"UPDATE fz.tb_other SET label = label || '!' WHERE pk_other = 1 + $id % 5",
			"SELECT nextval('fz.sq')",
			"INSERT INTO fz.tb_unlogged VALUES ($id + 100, 'u') ON CONFLICT DO NOTHING",
			"REFRESH MATERIALIZED VIEW fz.mv");
	}
	# what no write to a base table shows: sequences, catalogs, materialized views
	push @w, "SELECT nextval('fz.sq')", "REFRESH MATERIALIZED VIEW fz.mv",
	  "CREATE TABLE fz.ddl_$n (x int)";
	my $r = exec_sql('fuzzer', join(";\n", @w));
	finding('definitions', $n, "batch writes failed: $r->{err}", join(";\n", @w)) if $r->{dead};
	exec_sql('postgres', "CREATE ROLE fz_role_$n");
	my $w = exec_sql('postgres', q{SELECT pg_tviews_wait('20s')});
	if (($w->{out} // '') ne 't')
	{
		my $e = exec_sql('postgres', q{SELECT state || ' / ' || coalesce(last_error, '') FROM pg_tviews_engines()
		                               WHERE datid = (SELECT oid FROM pg_database WHERE datname = 'postgres')});
		finding('definitions', $n, "the engine did not catch up in 20 s ($e->{out}) with these TVIEWs kept",
			join(";\n", map { "-- $_: $kept{$_}" } sort keys %kept));
	}
	for my $tv (sort keys %kept)
	{
		my $o = oracle('definitions', $n, $tv, $kept{$tv}, $kept_role{$tv});
		if (defined $o && $o ne '0' && $o ne 'n/a')
		{
			my $err = exec_sql('postgres', 'SELECT coalesce(last_error, \'\') FROM tviews.tview WHERE tview = '
				  . lit($tv) . '::regclass');
			finding('definitions', $n,
				"TVIEW $tv differs from its definition in $o rows after writes applied by the engine"
				  . ($err->{out} ? " (last_error: $err->{out})" : ''),
				"-- as $kept_role{$tv}\nSELECT pg_tviews_create(" . lit($tv) . ', ' . lit($kept{$tv}) . ')');
		}
		drop_tview('definitions', $n, $tv, $kept{$tv}, $kept_role{$tv});
	}
	%kept = ();
	%kept_role = ();
}

my $volatile_re = qr/random|now\(|clock|timeofday|txid|pg_backend_pid|nextval|pg_sleep|current_setting|
	search_path|tablesample|timestamp|localtime|current_time|current_date|f_liar|f_volatile|pg_stat|
	current_user|session_user/xi;

srand($seed + 2);
my $base = invariants();
die 'cannot read the invariants' unless $base;
# every definition of the corpus as is (as the fuzzer, the hostile ones
# also as a superuser), then $cases mutated ones
my @defs_to_run = ((map { [ $_, 0, 'fuzzer' ] } @valid_defs, @hostile_defs),
	(map { [ $_, 0, 'postgres' ] } @hostile_defs));
for my $n (1 .. @defs_to_run + $cases)
{
	my ($def, $mutated, $role) = (undef, undef, 'fuzzer');
	if ($n <= @defs_to_run)
	{
		($def, $mutated, $role) = @{ $defs_to_run[ $n - 1 ] };
	}
	else
	{
		$def = pick(@valid_defs, @valid_defs, @valid_defs, @hostile_defs);
		$def = mutate_def($def) for 1 .. (rand() < 0.5 ? 1 : 2 + int(rand(2)));
		$mutated = 1;
	}
	$def_n++;
	my $name = $role eq 'fuzzer' ? "fz.tv_fz_$n" : "fz.tv_fz_su_$n";
	my $key;
	if ($mutated)
	{
		if (rand() < 0.2)
		{
			$name = pick(@weird_names);
			$name = sprintf($name, $n) if $name =~ /%d/;
		}
		$key = rand_key();
	}
	my ($sql, $via_ctas);
	if ($n > @defs_to_run && rand() < 0.1 && $def !~ /canary|;/ && $name =~ /^fz\.tv_fz_\d+$/)
	{
		# CREATE TABLE tv_... AS, sometimes followed by another statement in
		# the same query string
		$via_ctas = 1;
		$sql = "CREATE TABLE $name AS $def" . (rand() < 0.3 ? '; SELECT 1' : '');
		# (run with psql -c as the fuzzer)
	}
	else
	{
		$sql = "-- as $role\n"
		  . 'SELECT pg_tviews_create(' . lit($name) . ', ' . lit($def)
		  . (defined $key || rand() < 0.1 ? ', key => ' . lit($key) : '') . ')::text';
	}

	my $r;
	if ($via_ctas)
	{
		my ($out, $err) = ('', '');
		IPC::Run::run([ $node->installed_command('psql'), '-XAtq', '-v', 'VERBOSITY=verbose',
				'-d', $node->connstr('postgres') . ' user=fuzzer', '-c', $sql ],
			'>', \$out, '2>', \$err, IPC::Run::timeout(120));
		my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
		my ($msg) = $err =~ /ERROR:\s+[0-9A-Z]{5}:\s+(.*)$/m;
		$r = { out => $out, err => $err, state => $state, message => $msg,
			dead => $err =~ /server closed the connection|connection to server was lost/ ? 1 : 0 };
		if ($r->{dead})
		{
			finding('definitions', $n, 'SERVER CRASH: ' . substr($err, 0, 300), $sql);
			drop_sessions();
			wait_for_server();
		}
		elsif (defined $state)
		{
			$stats{definitions}{$state}++;
			finding('definitions', $n, "internal error $state: $msg", $sql) if $state =~ /^XX/;
			finding('definitions', $n, "unclean error $state: $msg", $sql)
			  if $state !~ /^XX/ && (($msg // '') eq '' || $msg =~ $internal_msg);
		}
		else
		{
			$stats{definitions}{ok}++;
		}
		# the TVIEW's name, if one was made
		if (!$r->{dead} && !defined $state)
		{
			my $c = exec_sql('postgres', 'SELECT count(*) FROM tviews.tview WHERE tview = to_regclass(' . lit($name) . ')');
			$r->{out} = $c->{out} eq '1' ? $name : '';
			finding('definitions', $n, "CREATE TABLE $name AS succeeded without making a TVIEW", $sql)
			  if $c->{out} ne '1';
		}
	}
	else
	{
		$r = check_call('definitions', $n, $role, $sql);
	}
	$stats{"definitions, as is, as $role"}{ defined $r->{state} ? 'refused' : 'created' }++ unless $mutated;

	my $created = !$r->{dead} && !defined $r->{state} && $r->{out} ne '' ? $r->{out} : undef;
	if ($created)
	{
		$stats{'definitions, created'}{ $def =~ $volatile_re || keys(%kept) >= $kept_max ? 'dropped at once' : 'kept through writes' }++;
		my $o = oracle('definitions', $n, $created, $def, $role);
		if (defined $o && $o ne '0' && $o ne 'n/a')
		{
			finding('definitions', $n, "the new TVIEW $created differs from its definition in $o rows", $sql);
		}
		if ($def !~ $volatile_re && keys(%kept) < $kept_max)
		{
			$kept{$created} = $def;
			$kept_role{$created} = $role;
		}
		else
		{
			drop_tview('definitions', $n, $created, $sql, $role);
		}
	}

	my $inv = invariants();
	if (!$inv)
	{
		finding('definitions', $n, 'could not read the invariants after this case', $sql);
		next;
	}
	if ($inv->{canaries} ne $canaries_ok || $inv->{super} ne '0')
	{
		finding('definitions', $n,
			"INJECTION: canaries now '$inv->{canaries}' (expected '$canaries_ok'), fuzzer superuser: $inv->{super}", $sql);
		restore_canaries();
		$inv = invariants();
	}
	elsif (!$created && !$via_ctas && $inv->{rels} != $base->{rels})
	{
		my $extra = exec_sql('postgres', q{SELECT string_agg(n.nspname || '.' || c.relname, ', ')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'fz' AND c.relname ~ '(tv|newtab)'});
		finding('definitions', $n, "a failed call left relations behind ($base->{rels} -> $inv->{rels}: $extra->{out})", $sql);
	}
	if (keys(%kept) >= $kept_max || $n % 25 == 0)
	{
		batch_check($n);
		$inv = invariants() // $inv;
	}
	$base = $inv;
}
batch_check(@defs_to_run + $cases);

# =====================================================================
# verdicts
# =====================================================================
for my $role ('fuzzer', 'postgres')
{
	my $k = "definitions, as is, as $role";
	note("$k: " . join(', ', map { "$_ $stats{$k}{$_}" } sort keys %{ $stats{$k} }));
}
note("definitions, created: " . join(', ', map { "$_ $stats{'definitions, created'}{$_}" } sort keys %{ $stats{'definitions, created'} }));
for my $kind ('decoder options', 'wire', 'definitions')
{
	note("$kind: " . join(', ', map { "$_ $stats{$kind}{$_}" } sort keys %{ $stats{$kind} // {} }));
	my @f = @{ $findings{$kind} // [] };
	my $count = $kind eq 'definitions' ? "the corpus as is (" . scalar(@defs_to_run) . " cases) and $cases mutated cases" : "$cases cases";
	is(scalar(@f), 0, "$kind: $count, every call succeeded or failed cleanly"
		  . ($kind eq 'definitions' ? ', no injection, every TVIEW equal to its definition and droppable' : ''))
	  or diag(join("\n", map { length($_) > 600 ? substr($_, 0, 600) . '...' : $_ } @f)
		  . "\nexact inputs: $findings_file (seed $seed)");
}
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC:|TRAP:/, 'no server process crashed');
my @engine_exits = $log =~ /(background worker "pg_tviews engine" \(PID \d+\) exited with exit code \d+)/g;
is(scalar(@engine_exits), 0, 'the engine never exited on an error')
  or diag(scalar(@engine_exits) . " exits; last error before the first:\n"
	  . (($log =~ /\n([^\n]*ERROR:[^\n]*\n(?:[^\n]*(?:CONTEXT|DETAIL)[^\n]*\n)*)[^\n]*background worker "pg_tviews engine"/)[0] // '?'));
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');

close $findings_fh;
drop_sessions();
$node->stop;
done_testing();
