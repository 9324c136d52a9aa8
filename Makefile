EXTENSION  = pg_streams
EXTVERSION = 0.1.0
MODULE_big = pg_streams
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
SQL_PARTS  = $(sort $(wildcard src/sql/*.sql))
SRCS       = $(filter-out src/cli/%,$(wildcard src/*.cpp src/*/*.cpp))
OBJS       = $(SRCS:.cpp=.o)

PG_CONFIG ?= pg_config

# pg-streams, the command-line client (src/cli): a program of its own, linked
# against libpq, installed next to the server's programs (pg_config --bindir).
CLI_SRCS = $(wildcard src/cli/*.cpp)
CLI_OBJS = $(CLI_SRCS:.cpp=.o)
PG_CPPFLAGS = -Isrc -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -Wno-register -fno-omit-frame-pointer -MMD -MP
SHLIB_LINK  = -lstdc++ -lcurl -lrdkafka

REGRESS      = $(basename $(notdir $(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-instance=./tmp_regress --temp-config=test/regress.conf \
               --encoding=UTF8 --no-locale --load-extension=$(EXTENSION)

EXTRA_CLEAN = tmp_regress tmp_check results regression.diffs regression.out $(SRCS:.cpp=.d) \
              pg-streams $(CLI_OBJS) $(CLI_SRCS:.cpp=.d)

# PGXS compiles C++ to LLVM bitcode with clang and without PG_CXXFLAGS (C++14):
# our sources need C++17, and the JIT gains nothing from them.
override with_llvm = no
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(SRCS:.cpp=.d)

# The install script is the parts of src/sql in name order.
$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@

# The client -----------------------------------------------------------------
CLI_CXXFLAGS = -std=c++17 -O2 -Wall -Wextra -Werror -MMD -MP -Isrc -I$(shell $(PG_CONFIG) --includedir)
CLI_LDLIBS   = -L$(shell $(PG_CONFIG) --libdir) -lpq

all: pg-streams

src/cli/%.o: src/cli/%.cpp
	$(CXX) $(CLI_CXXFLAGS) -c -o $@ $<

pg-streams: $(CLI_OBJS)
	$(CXX) -o $@ $(CLI_OBJS) $(LDFLAGS) $(CLI_LDLIBS)

install: install-cli
installdirs: installdirs-cli
uninstall: uninstall-cli

.PHONY: install-cli installdirs-cli uninstall-cli
installdirs-cli:
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
install-cli: pg-streams installdirs-cli
	$(INSTALL_PROGRAM) pg-streams '$(DESTDIR)$(bindir)/pg-streams'
uninstall-cli:
	rm -f '$(DESTDIR)$(bindir)/pg-streams'

-include $(CLI_SRCS:.cpp=.d)
