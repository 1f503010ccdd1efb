# C++ settings shared by every PGXS module of pg_usher (the extension and the test
# module). Include after PG_CONFIG is set and before pgxs.mk.

# C++20; server headers as -isystem so their warnings are not ours. (GCC ignores a
# -I for a directory that is also given with -isystem, so PGXS's own -I is harmless.)
PG_CXXFLAGS += -std=c++20 -Wno-register -Wno-missing-field-initializers
PG_CPPFLAGS += -isystem $(shell $(PG_CONFIG) --includedir-server)
SHLIB_LINK += -lfmt -lstdc++
# common/ (pure C++ both halves use) is included as "common/NAME.hpp" from the top of
# the tree. Its headers must come before any PostgreSQL header (common/pure_cpp.hpp).
USHER_SOURCE_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
PG_CPPFLAGS += -I$(USHER_SOURCE_ROOT)

# No LLVM bitcode: PGXS compiles it with clang and its own flags, which would have to
# track ours (-std=c++20) and fmt's requirements, and JIT inlining gains nothing for
# pg_usher: its functions are set-returning functions and hooks, not per-row operators
# the planner can inline.
override with_llvm = no
