# PgTviews::TestUtil -- helpers shared by the TAP tests in test/t/.
#
#   my $node = PgTviews::TestUtil::new_node('name');   # not started
#   my $node = PgTviews::TestUtil::new_node('name', extra => ['--wal-segsize=1']);
#   my @rows = PgTviews::TestUtil::parse_json_lines($text);
#
# new_node() creates a PostgreSQL::Test::Cluster initialised for logical
# decoding (wal_level = logical, replication connections allowed) and
# appends the server settings every pg_tviews test runs with, as printed by
# scripts/gen-test-conf.sh (shared_preload_libraries = 'pg_tviews', the
# Debian output_plugin_libraries list naming pg_tviews_decoder, ...).  A
# test that needs something else appends its own lines afterwards: the
# last setting in postgresql.conf wins.
package PgTviews::TestUtil;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(new_node parse_json_lines server_conf);

# The output of scripts/gen-test-conf.sh (dies if the script fails).
sub server_conf
{
	my $repo = $ENV{PGTV_REPO}
	  or croak "PGTV_REPO is not set (run the TAP tests through scripts/run-tests.sh)";
	my $script = "$repo/scripts/gen-test-conf.sh";
	my $conf = `"$script"`;
	croak "$script failed with status $?" if $? != 0;
	croak "$script printed nothing" if $conf !~ /\S/;
	return $conf;
}

# A new, initialised, not yet started node with pg_tviews' test settings.
# Extra arguments go to PostgreSQL::Test::Cluster::init (e.g.
# extra => ['--wal-segsize=1']).
sub new_node
{
	my ($name, %init) = @_;
	croak "new_node needs a name" unless defined $name;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical', %init);
	$node->append_conf('postgresql.conf',
		"\n# pg_tviews test settings (scripts/gen-test-conf.sh)\n"
		  . server_conf());
	return $node;
}

# Parse text holding one JSON document per line (pg_tviews_decoder's json
# format, as written by pg_recvlogical) and return the decoded documents.
# Empty lines are skipped; any line that is not valid JSON, or holds
# anything other than an object, dies naming the line.
sub parse_json_lines
{
	my ($text) = @_;
	croak "parse_json_lines: undefined input" unless defined $text;

	my $json = JSON::PP->new->utf8;
	my @docs;
	my $lineno = 0;
	for my $line (split /\n/, $text)
	{
		$lineno++;
		next if $line eq '';
		my $doc = eval { $json->decode($line) };
		croak "line $lineno is not valid JSON ($@): $line" unless defined $doc;
		croak "line $lineno is not a JSON object: $line"
		  unless ref $doc eq 'HASH';
		push @docs, $doc;
	}
	return @docs;
}

1;
