# pg_usher: a PGXS build of the C++ backend module, plus the targets that set up,
# test, demonstrate and measure the whole project. See README.md.
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

MODULE_big = pg_usher
OBJS = $(patsubst %.cpp,%.o,$(wildcard extension/*.cpp))
# Pure C++ shared with the client library (no PostgreSQL or libpq header).
OBJS += $(patsubst %.cpp,%.o,$(wildcard common/*.cpp))
EXTENSION = extension/pg_usher
EXTVERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" extension/pg_usher.control)
# The install script is built from its parts, one concern each, in name order.
SQL_PARTS = $(sort $(wildcard extension/sql/*.sql))
DATA_built = build/pg_usher--$(EXTVERSION).sql
# Earlier versions' install scripts, kept as shipped, and the upgrade scripts between them.
DATA = $(wildcard extension/versions/*.sql)
PGFILEDESC = "pg_usher - connection health and admission control"

REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
# The registry tests need the database named by usher.database (tests/run.sh sets it).
REGRESS_OUTPUT ?= build/regress
REGRESS_OPTS = --inputdir=. --outputdir=$(REGRESS_OUTPUT)
override CONTRIB_TESTDB = usher_test

EXTRA_CLEAN = build/regress

include extension/cxx.mk

.DEFAULT_GOAL := all

# Without the server's development files PGXS is missing; the set-up targets below
# install them and then run make again, so a fresh machine needs only `make test`.
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
$(OBJS): $(wildcard extension/*.hpp) $(wildcard common/*.hpp)
build/pg_usher--$(EXTVERSION).sql: $(SQL_PARTS) extension/pg_usher.control
	@mkdir -p build
	cat $(SQL_PARTS) > $@
else
all install installcheck:
	@echo "PostgreSQL server development files not found; run 'make test' or 'make demo'," \
	      "or tests/harness/deps.sh, to install them." >&2; exit 1
endif

# libusher (client/), built with CMake as part of `all` and installed by `install`.
CMAKE ?= cmake
CLIENT_BUILD ?= build/client
CLIENT_PREFIX ?= /usr/local
.PHONY: client install-client
# CMake's build runs with its own -j, apart from a parent make -j's jobserver (build-all).
client:
	@$(CMAKE) -S client -B $(CLIENT_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(CLIENT_PREFIX) >/dev/null
	@env -u MAKEFLAGS -u MFLAGS $(CMAKE) --build $(CLIENT_BUILD) -j $$(nproc) >/dev/null
install-client: client
	@DESTDIR=$(DESTDIR) $(CMAKE) --install $(CLIENT_BUILD) >/dev/null
ifneq ($(wildcard $(PGXS)),)
all: client
install: install-client
endif
EXTRA_CLEAN += build/client build/client-asan build/client-tsan build/client-stage build/client-example \
               build/client-bench build/client-logs build/client-cli build/demo

.PHONY: deps test demo bench build-all

deps:
	@tests/harness/deps.sh

# Build and install everything the test suites load into a server.
# In parallel: the extension's files compile one by one otherwise (about 100 s).
build-all: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@$(MAKE) --no-print-directory install >/dev/null
	@$(MAKE) --no-print-directory -C tests/extension all
	@$(MAKE) --no-print-directory -C tests/extension install >/dev/null

test: build-all
	@tests/run.sh

demo: build-all
	@tests/harness/demo.sh

bench: build-all
	@bench/run.sh
