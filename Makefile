EXTENSION  = pg_streams
EXTVERSION = 0.1.0
MODULE_big = pg_streams
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
SQL_PARTS  = $(sort $(wildcard src/sql/*.sql))
SRCS       = $(wildcard src/*.cpp src/*/*.cpp)
OBJS       = $(SRCS:.cpp=.o)

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -Isrc -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -Wno-register -fno-omit-frame-pointer -MMD -MP
SHLIB_LINK  = -lstdc++ -lcurl

REGRESS      = $(basename $(notdir $(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-instance=./tmp_regress --temp-config=test/regress.conf \
               --encoding=UTF8 --no-locale --load-extension=$(EXTENSION)

EXTRA_CLEAN = tmp_regress tmp_check results regression.diffs regression.out $(SRCS:.cpp=.d)

# PGXS compiles C++ to LLVM bitcode with clang and without PG_CXXFLAGS (C++14):
# our sources need C++17, and the JIT gains nothing from them.
override with_llvm = no
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(SRCS:.cpp=.d)

# The install script is the parts of src/sql in name order.
$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@
