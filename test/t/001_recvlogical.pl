# pg_tviews_decoder through a walsender, as pg_recvlogical uses it: slot
# creation, the json format (every line parsed as JSON, filters honoured,
# values and framing checked), the binary format as pg_recvlogical writes
# it to a file, and option errors reported to the client with their hint.
#
# Every slot here belongs to this test alone (created with
# pg_recvlogical --create-slot), so each stream is read from the start.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PgTviews::TestUtil qw(new_node parse_json_lines);
use Test::More;

my $node = new_node('recvlogical');
$node->start;

my $connstr = $node->connstr('postgres');
my $tmp = PostgreSQL::Test::Utils::tempdir;

# Run pg_recvlogical with the given arguments; returns (exit ok, stderr).
sub recvlogical
{
	my @args = @_;
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[ 'pg_recvlogical', '-d', $connstr, @args ],
		'>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($ok, $stderr);
}

# Stream a slot from where it stands up to $endpos into a new file (a new
# one each time: pg_recvlogical appends to an existing file); returns the
# file's content (raw bytes).
my $nfile = 0;
sub stream_slot
{
	my ($slot, $endpos, @opts) = @_;
	my $file = sprintf '%s/%s.%d.out', $tmp, $slot, ++$nfile;
	my ($ok, $stderr) = recvlogical(
		'--slot', $slot, '--start', '-f', $file,
		"--endpos=$endpos", '--no-loop',
		map { ('-o', $_) } @opts);
	ok($ok, "pg_recvlogical streams slot $slot")
	  or diag("pg_recvlogical stderr: $stderr");
	return -e $file ? slurp_file($file) : '';
}

sub actions { return join ' ', map { $_->{action} } @_; }

# one column of a json tuple, by name
sub col
{
	my ($tuple, $name) = @_;
	my @c = grep { $_->{name} eq $name } @{ $tuple || [] };
	return $c[0];
}

# ---------------------------------------------------------------------
# Slots, each created by pg_recvlogical with the plugin named
# ---------------------------------------------------------------------
my @slots = qw(recv_t1 recv_all recv_excl recv_binary);
for my $slot (@slots)
{
	my ($ok, $stderr) = recvlogical('--slot', $slot, '--create-slot',
		'--plugin=pg_tviews_decoder');
	ok($ok, "pg_recvlogical --create-slot $slot") or diag($stderr);
	my $s = $node->slot($slot);
	is($s->{plugin},    'pg_tviews_decoder', "slot $slot uses pg_tviews_decoder");
	is($s->{slot_type}, 'logical',           "slot $slot is logical");
}

# ---------------------------------------------------------------------
# Changes: insert, update, delete, truncate and messages on two tables
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE TABLE t1 (id int PRIMARY KEY, name text, score numeric);
	CREATE TABLE t2 (id int PRIMARY KEY, val text);
});
my $t1_oid = $node->safe_psql('postgres', q{SELECT 'public.t1'::regclass::oid});
my $t2_oid = $node->safe_psql('postgres', q{SELECT 'public.t2'::regclass::oid});

my $xid1 = $node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO t1 VALUES (1, 'one', 1.5), (2, 'two', NULL);
	INSERT INTO t2 VALUES (1, 'x');
	SELECT pg_current_xact_id();
	COMMIT;
});
$node->safe_psql('postgres', q{UPDATE t1 SET name = 'uno' WHERE id = 1});
$node->safe_psql('postgres', q{INSERT INTO t2 VALUES (2, 'only t2')});
$node->safe_psql('postgres', q{DELETE FROM t1 WHERE id = 2});
# a value with a quote and a newline: a raw newline would break the json
# format's line framing, and the binary format must carry it verbatim
my $xid5 = $node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO t1 VALUES (3, E'three "q"\nline2', 'NaN');
	SELECT 'msg' FROM pg_logical_emit_message(true, 'pgtv_test', 'txn msg');
	SELECT pg_current_xact_id();
	COMMIT;
});
$xid5 =~ s/^msg\n//;
$node->safe_psql('postgres',
	q{SELECT pg_logical_emit_message(false, 'pgtv_test', 'non-txn msg')});
$node->safe_psql('postgres', q{TRUNCATE t1, t2});

my $endpos = $node->lsn('insert');
my $three = qq{three "q"\nline2};

# ---------------------------------------------------------------------
# json, include-tables=public.t1, include-timestamp=false
# ---------------------------------------------------------------------
{
	my $raw = stream_slot('recv_t1', $endpos,
		'include-timestamp=false', 'include-tables=public.t1');
	my @lines = split /\n/, $raw;
	my @d = parse_json_lines($raw);
	is(scalar(@d), scalar(@lines), 'filtered: every line is one JSON object');
	is(actions(@d), 'B I I C B U C B D C B I M C M B T C',
		'filtered: transactions, changes and messages in order; the t2-only transaction is skipped');

	is((grep { exists $_->{timestamp} } @d), 0,
		'filtered: include-timestamp=false leaves out every timestamp');
	my @changes = grep { $_->{action} =~ /^[IUD]$/ } @d;
	is((grep { $_->{schema} ne 'public' || $_->{table} ne 't1' } @changes), 0,
		'filtered: every change is of public.t1');
	is((grep { $_->{relid} != $t1_oid } @changes), 0,
		'filtered: relid is the oid of t1');
	unlike($raw, qr/"t2"/, 'filtered: t2 appears nowhere');
	is((grep { !defined $_->{lsn} || $_->{lsn} !~ m{^[0-9A-F]+/[0-9A-F]+$} }
		  grep { $_->{action} ne 'M' || $_->{transactional} } @d), 0,
		'filtered: every transactional line carries an LSN');

	# transaction 1
	is($d[0]{xid}, $xid1, 'BEGIN carries the xid');
	is($d[1]{xid}, $xid1, 'change carries the xid');
	is($d[3]{xid}, $xid1, 'COMMIT carries the xid');
	is_deeply($d[1]{key}, ['id'], 'key is the primary key');
	is(col($d[1]{columns}, 'id')->{value},    1,     'I: int value');
	is(col($d[1]{columns}, 'id')->{type}, 'integer', 'I: type name');
	is(col($d[1]{columns}, 'name')->{value},  'one', 'I: text value');
	is(col($d[1]{columns}, 'score')->{value}, 1.5,   'I: numeric value');
	like($lines[1], qr/\{"name":"score","type":"numeric","value":1\.5\}/,
		'I: numeric is a JSON number');
	ok(exists col($d[2]{columns}, 'score')->{value}
		  && !defined col($d[2]{columns}, 'score')->{value},
		'I: NULL is null');
	# transaction 2
	is(col($d[5]{columns}, 'name')->{value}, 'uno', 'U: new value');
	ok(!exists $d[5]{identity}, 'U: no old identity when the key is unchanged');
	# transaction 4
	is_deeply($d[8]{identity},
		[ { name => 'id', type => 'integer', value => 2 } ],
		'D: old identity');
	ok(!exists $d[8]{columns}, 'D: no new columns');
	# transaction 5
	is($d[10]{xid}, $xid5, 'second BEGIN carries its xid');
	is(col($d[11]{columns}, 'name')->{value}, $three,
		'I: quote and newline survive the JSON escaping');
	is(col($d[11]{columns}, 'score')->{value}, 'NaN', 'I: numeric NaN');
	like($lines[11], qr/"value":"NaN"/, 'I: numeric NaN is a JSON string');
	is($d[12]{prefix},  'pgtv_test', 'M: prefix');
	is($d[12]{content}, 'txn msg',   'M: content');
	ok($d[12]{transactional}, 'M: transactional');
	is($d[12]{xid}, $xid5, 'M: transactional message carries the xid');
	# non-transactional message
	is($d[14]{content}, 'non-txn msg', 'M: non-transactional content');
	ok(!$d[14]{transactional}, 'M: non-transactional flag');
	ok(!exists $d[14]{xid}, 'M: non-transactional message has no xid');
	# truncate
	is_deeply(
		[ map { "$_->{schema}.$_->{table}:$_->{relid}" } @{ $d[16]{relations} } ],
		["public.t1:$t1_oid"],
		'T: only the included table is listed');
	ok(!$d[16]{cascade} && !$d[16]{restart_identity}, 'T: flags');
}

# ---------------------------------------------------------------------
# json, default options: every table, timestamps
# ---------------------------------------------------------------------
{
	my @d = parse_json_lines(stream_slot('recv_all', $endpos));
	is(actions(@d), 'B I I I C B U C B I C B D C B I M C M B T C',
		'unfiltered: every transaction in order');
	my @bc = grep { $_->{action} =~ /^[BC]$/ } @d;
	is((grep { ($_->{timestamp} // '') !~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/ } @bc), 0,
		'unfiltered: BEGIN and COMMIT carry a commit timestamp');
	is($d[3]{table}, 't2', 'unfiltered: t2 change present');
	is(col($d[9]{columns}, 'val')->{value}, 'only t2', 'unfiltered: t2-only transaction');
	is_deeply([ sort map { $_->{table} } @{ $d[20]{relations} } ],
		[qw(t1 t2)], 'unfiltered: TRUNCATE lists both tables');
}

# ---------------------------------------------------------------------
# json, exclude-tables + actions + include-xids=false
# ---------------------------------------------------------------------
{
	my @d = parse_json_lines(stream_slot('recv_excl', $endpos,
		'exclude-tables=public.t1', 'actions=insert,truncate',
		'include-xids=false'));
	is(actions(@d), 'B I C B I C B T C',
		'exclude-tables and actions: only t2 inserts and truncate');
	is((grep { exists $_->{xid} } @d), 0, 'include-xids=false: no xid');
	is((grep { $_->{action} eq 'I' && $_->{table} ne 't2' } @d), 0,
		'exclude-tables: no t1 change');
	is_deeply([ map { $_->{table} } @{ $d[7]{relations} } ], ['t2'],
		'exclude-tables: TRUNCATE lists t2 only');
}

# ---------------------------------------------------------------------
# binary format, as pg_recvlogical writes it: each message followed by
# one newline byte (pg_recvlogical's framing, whatever the output type).
# Messages can hold newline bytes themselves, so the stream is parsed by
# the layout of include/pg_tviews/wire.h, checking the newline after each.
# ---------------------------------------------------------------------
sub parse_wire_stream
{
	my ($data) = @_;
	my ($pos, $len) = (0, length $data);
	my $take = sub {
		my ($n) = @_;
		die "truncated message at byte $pos\n" if $pos + $n > $len;
		my $s = substr($data, $pos, $n);
		$pos += $n;
		return $s;
	};
	my $u8  = sub { unpack 'C',  $take->(1) };
	my $u16 = sub { unpack 'n',  $take->(2) };
	my $u32 = sub { unpack 'N',  $take->(4) };
	my $i32 = sub { unpack 'l>', $take->(4) };
	my $u64 = sub { unpack 'Q>', $take->(8) };
	my $i64 = sub { unpack 'q>', $take->(8) };
	my $str = sub { $take->($u32->()) };
	my $tuple = sub {
		my @cols;
		for (1 .. $u16->())
		{
			my %c = (index => $u16->(), kind => chr($u8->()));
			die "bad value kind '$c{kind}' at byte $pos\n"
			  unless $c{kind} =~ /^[ntu]$/;
			$c{value} = $str->() if $c{kind} eq 't';
			push @cols, \%c;
		}
		return \@cols;
	};

	my @msgs;
	while ($pos < $len)
	{
		my %m = (offset => $pos, version => $u8->(), type => chr($u8->()));
		my $t = $m{type};
		if ($t eq 'B')
		{
			@m{qw(xid final_lsn commit_time)} = ($u32->(), $u64->(), $i64->());
			$m{origin} = $str->();
		}
		elsif ($t eq 'C' || $t eq 'c')
		{
			@m{qw(xid commit_lsn end_lsn commit_time)} =
			  ($u32->(), $u64->(), $u64->(), $i64->());
		}
		elsif ($t eq 'R')
		{
			$m{relid}     = $u32->();
			$m{schema}    = $str->();
			$m{table}     = $str->();
			$m{replident} = chr($u8->());
			for (1 .. $u16->())
			{
				my %c = (flags => $u8->(), name => $str->());
				@c{qw(typid typmod typname)} = ($u32->(), $i32->(), $str->());
				push @{ $m{columns} }, \%c;
			}
		}
		elsif ($t eq 'I' || $t eq 'U' || $t eq 'D')
		{
			@m{qw(xid lsn relid)} = ($u32->(), $u64->(), $u32->());
			if ($t ne 'I')
			{
				$m{has_old} = $u8->();
				$m{old} = $tuple->() if $m{has_old};
			}
			$m{new} = $tuple->() if $t ne 'D';
		}
		elsif ($t eq 'T')
		{
			@m{qw(xid lsn flags)} = ($u32->(), $u64->(), $u8->());
			$m{relids} = [ map { $u32->() } 1 .. $u32->() ];
		}
		elsif ($t eq 'M')
		{
			@m{qw(xid lsn transactional)} = ($u32->(), $u64->(), $u8->());
			$m{prefix}  = $str->();
			$m{content} = $str->();
		}
		elsif ($t eq 'S') { @m{qw(xid first_segment)} = ($u32->(), $u8->()); }
		elsif ($t eq 'E') { $m{xid} = $u32->(); }
		elsif ($t eq 'A') { @m{qw(xid subxid)} = ($u32->(), $u32->()); }
		else { die "unknown message type '$t' at byte $m{offset}\n"; }

		my $nl = $take->(1);
		die "message at byte $m{offset} ($t) is not followed by a newline\n"
		  unless $nl eq "\n";
		push @msgs, \%m;
	}
	return @msgs;
}

# structural equality of two RELATION messages
sub eq_deeply_str
{
	my ($a, $b) = @_;
	my $json = JSON::PP->new->canonical;
	return $json->encode($a) eq $json->encode($b);
}

sub tuple_values
{
	my ($tuple) = @_;
	return [ map { $_->{kind} eq 't' ? "$_->{index}=$_->{value}" : "$_->{index}:$_->{kind}" }
		  @$tuple ];
}

{
	my $raw = stream_slot('recv_binary', $endpos, 'format=binary');
	ok(length($raw) > 0, 'binary: output is not empty');
	is(ord(substr($raw, 0, 1)), 1, 'binary: first byte is wire version 1');

	my @m = eval { parse_wire_stream($raw) };
	is($@, '', 'binary: the whole stream parses, one newline after each message');
	is((grep { $_->{version} != 1 } @m), 0, 'binary: every message is version 1');
	is(join(' ', map { $_->{type} } grep { $_->{type} ne 'R' } @m),
		'B I I I C B U C B I C B D C B I M C M B T C',
		'binary: message sequence (RELATION messages aside)');
	like(join(' ', map { $_->{type} } @m), qr/^B R I I R I C /,
		'binary: RELATION right before the first change of each table');

	# RELATION may be sent again (after DDL; TRUNCATE is one) but always
	# describes a relation before a change refers to it, and the same
	# relation the same way while its definition is unchanged
	my (%rel, @undescribed, @differ);
	for my $msg (@m)
	{
		if ($msg->{type} eq 'R')
		{
			my %r = %$msg;
			delete $r{offset};
			push @differ, $r{relid}
			  if $rel{ $r{relid} } && !eq_deeply_str($rel{ $r{relid} }, \%r);
			$rel{ $r{relid} } = \%r;
		}
		for my $relid (defined $msg->{relid} && $msg->{type} ne 'R'
			? ($msg->{relid}) : @{ $msg->{relids} || [] })
		{
			push @undescribed, $relid unless $rel{$relid};
		}
	}
	is_deeply(\@undescribed, [], 'binary: every relid is described before use');
	is_deeply(\@differ, [], 'binary: repeated RELATION messages agree');
	is_deeply([ sort keys %rel ], [ sort ($t1_oid, $t2_oid) ],
		'binary: RELATION messages for both tables only');
	my $r1 = $rel{$t1_oid};
	is("$r1->{schema}.$r1->{table}", 'public.t1', 'R: names');
	is($r1->{replident}, 'd', 'R: replica identity default');
	is_deeply(
		[ map { "$_->{flags} $_->{name} $_->{typid} $_->{typmod} $_->{typname}" }
			  @{ $r1->{columns} } ],
		[ '3 id 23 -1 integer', '0 name 25 -1 text', '0 score 1700 -1 numeric' ],
		'R: columns with key/identity flags, type oids, typmods and names');

	my @ins = grep { $_->{type} eq 'I' } @m;
	is($m[0]{xid}, $xid1, 'B: xid');
	is($m[0]{origin}, '', 'B: local origin is empty');
	ok($m[0]{commit_time} > 0, 'B: commit time set');
	is($ins[0]{xid}, $xid1, 'I: xid');
	is($ins[0]{relid}, $t1_oid, 'I: relid');
	is_deeply(tuple_values($ins[0]{new}), [ '0=1', '1=one', '2=1.5' ],
		'I: values as text');
	is_deeply(tuple_values($ins[1]{new}), [ '0=2', '1=two', '2:n' ],
		'I: NULL kind');
	is_deeply(tuple_values($ins[4]{new}), [ '0=3', "1=$three", '2=NaN' ],
		'I: newline and NaN carried verbatim');
	my ($c1) = grep { $_->{type} eq 'C' } @m;
	is($c1->{xid}, $xid1, 'C: xid');
	ok($c1->{end_lsn} > $c1->{commit_lsn}, 'C: end_lsn after commit_lsn');

	my ($u) = grep { $_->{type} eq 'U' } @m;
	is($u->{has_old}, 0, 'U: no old tuple when the key is unchanged');
	is_deeply(tuple_values($u->{new}), [ '0=1', '1=uno', '2=1.5' ], 'U: new tuple');
	my ($del) = grep { $_->{type} eq 'D' } @m;
	is($del->{has_old}, 1, 'D: old tuple present');
	is_deeply(tuple_values($del->{old}), ['0=2'], 'D: old tuple is the identity');

	my ($tr) = grep { $_->{type} eq 'T' } @m;
	is_deeply([ sort @{ $tr->{relids} } ], [ sort ($t1_oid, $t2_oid) ],
		'T: both relids');
	is($tr->{flags}, 0, 'T: no cascade, no restart identity');

	my @msg = grep { $_->{type} eq 'M' } @m;
	is_deeply([ map { "$_->{transactional} $_->{xid} $_->{prefix} $_->{content}" } @msg ],
		[ "1 $xid5 pgtv_test txn msg", '0 0 pgtv_test non-txn msg' ],
		'M: transactional and non-transactional messages');
}

# ---------------------------------------------------------------------
# option errors reach pg_recvlogical's stderr with their hint
# ---------------------------------------------------------------------
{
	my ($ok, $stderr) = recvlogical('--slot', 'recv_t1', '--start', '-f',
		"$tmp/bogus.out", "--endpos=$endpos", '--no-loop', '-o', 'bogus=1');
	ok(!$ok, 'unknown option: pg_recvlogical fails');
	like($stderr, qr/ERROR:\s+unrecognized pg_tviews_decoder option "bogus"/,
		'unknown option: error text in stderr');
	like($stderr,
		qr/HINT:\s+Valid options are: format, .*include-tables, .*include-timestamp/,
		'unknown option: hint listing the valid options in stderr');

	($ok, $stderr) = recvlogical('--slot', 'recv_t1', '--start', '-f',
		"$tmp/xml.out", "--endpos=$endpos", '--no-loop', '-o', 'format=xml');
	ok(!$ok, 'bad format: pg_recvlogical fails');
	like($stderr,
		qr/ERROR:\s+invalid value "xml" for pg_tviews_decoder option "format"/,
		'bad format: error text in stderr');
	like($stderr, qr/HINT:\s+Valid values are: json, binary\./,
		'bad format: hint in stderr');

	# a bare option (no value) is only possible through the replication
	# protocol: fine for a boolean, an error for anything else
	($ok, $stderr) = recvlogical('--slot', 'recv_t1', '--start', '-f',
		"$tmp/bare.out", "--endpos=$endpos", '--no-loop', '-o', 'format');
	ok(!$ok, 'format without a value: pg_recvlogical fails');
	like($stderr,
		qr/ERROR:\s+pg_tviews_decoder option "format" requires a value/,
		'format without a value: error text in stderr');
	like($stderr, qr/HINT:\s+Only boolean options may be given without a value/,
		'format without a value: hint in stderr');

	is($node->slot('recv_t1')->{active}, 'f', 'the slot is released after the failed start');
}

# the slots are still usable: a new change reaches the filtered one
$node->safe_psql('postgres', q{INSERT INTO t1 VALUES (4, 'four', 4)});
{
	# -o stream-changes: a boolean given without a value is accepted
	my @d = parse_json_lines(stream_slot('recv_t1', $node->lsn('insert'),
		'include-tables=public.t1', 'stream-changes'));
	is(actions(@d), 'B I C', 'after errors, the slot streams on');
	is(col($d[1]{columns}, 'id')->{value}, 4, 'after errors: the new row');
}

for my $slot (@slots)
{
	my ($ok, $stderr) = recvlogical('--slot', $slot, '--drop-slot');
	ok($ok, "pg_recvlogical --drop-slot $slot") or diag($stderr);
}
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'recv\\_%'"),
	'0', 'no slot of this test left');

$node->stop;
done_testing();
