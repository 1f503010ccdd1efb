// common/pure_cpp_source.hpp: the first include of every .cpp file in common/. Checks
// that nothing of PostgreSQL or libpq came before it (common/pure_cpp.hpp), then poisons
// the include guards of their headers, so that any header included after it that pulls
// in postgres.h, postgres_fe.h, c.h, postgres_ext.h or libpq-fe.h fails the build with
// `attempt to use poisoned "POSTGRES_H"` (or the guard it reached).
#pragma once

#include "common/pure_cpp.hpp"

#define USHER_PURE_CPP_SOURCE 1
#pragma GCC poison POSTGRES_H POSTGRES_FE_H C_H POSTGRES_EXT_H LIBPQ_FE_H
