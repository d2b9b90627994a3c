# Makefile for pg_tviews (PGXS)
#
# Builds two shared libraries:
#   pg_tviews          the extension (engine/, later fdw/)
#   pg_tviews_decoder  the logical decoding output plugin (decoder/)
# Both include the shared wire format headers in include/pg_tviews/.
#
#   make                 build
#   make install         install into the server's directories (root/sudo)
#   make test            install dependencies, build, install, run all tests
#   make bench           the engine benchmarks (test/bench/run.sh)
#   make installcheck    pg_regress only (temp instance, temp config)

EXTENSION = pg_tviews
DATA = pg_tviews--0.1.sql
MODULE_big = pg_tviews
OBJS = engine/pg_tviews.o engine/wire_reader.o engine/wire_json.o \
	engine/lineage.o engine/shmem.o engine/launcher.o engine/worker.o \
	engine/collect.o engine/apply.o engine/tvcache.o engine/wakeup.o \
	engine/sqlfuncs.o engine/ddl.o \
	fdw/handler.o fdw/modify.o
PGFILEDESC = "pg_tviews - TVIEWs maintained from the WAL"

DECODER = pg_tviews_decoder
DECODER_OBJS = decoder/plugin.o decoder/options.o decoder/relinfo.o \
	decoder/json_format.o decoder/binary_format.o

PG_CPPFLAGS = -I$(srcdir)/include
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

# pg_regress: a throwaway instance with the settings pg_tviews needs
# (test/regress.conf is generated, see scripts/gen-test-conf.sh).
REGRESS = $(shell sed -n "s/^test: //p" test/schedule)
REGRESS_OPTS = --temp-instance=$(CURDIR)/tmp_check_regress \
	--temp-config=$(CURDIR)/test/regress.conf --load-extension=pg_tviews

EXTRA_CLEAN = $(DECODER)$(DLSUFFIX) $(DECODER_OBJS) test/regress.conf \
	tmp_check_regress tmp_check_iso tmp_check output_iso results \
	regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# ---- the output plugin: a second shared library ----
all: $(DECODER)$(DLSUFFIX)

$(DECODER_OBJS): decoder/decoder.h include/pg_tviews/wire.h \
	include/pg_tviews/json_render.h include/pg_tviews/compat.h
$(OBJS): engine/engine.h fdw/fdw.h include/pg_tviews/wire.h \
	include/pg_tviews/json_render.h include/pg_tviews/compat.h

$(DECODER)$(DLSUFFIX): $(DECODER_OBJS)
	$(CC) $(CFLAGS) $(DECODER_OBJS) $(PG_LIBS_INTERNAL) $(LDFLAGS) \
		$(LDFLAGS_SL) -shared -o $@

install: install-decoder
install-decoder: $(DECODER)$(DLSUFFIX)
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)'
	$(INSTALL_SHLIB) $(DECODER)$(DLSUFFIX) '$(DESTDIR)$(pkglibdir)/'

uninstall: uninstall-decoder
uninstall-decoder:
	rm -f '$(DESTDIR)$(pkglibdir)/$(DECODER)$(DLSUFFIX)'

installcheck: test/regress.conf
test/regress.conf: scripts/gen-test-conf.sh
	scripts/gen-test-conf.sh > $@

# ---- the whole suite: what README and .ci/run call ----
.PHONY: test demo bench install-decoder uninstall-decoder
test:
	scripts/test.sh

demo:
	scripts/demo.sh

# the engine benchmarks (docs/performance.md); not part of make test
bench:
	test/bench/run.sh
