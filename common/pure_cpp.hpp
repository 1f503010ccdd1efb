// common/pure_cpp.hpp: the last include of every header in common/. Code in common/ is
// compiled into both halves, the extension (PostgreSQL server headers) and libusher
// (libpq), so it may include neither: this fails the build when a PostgreSQL or libpq
// header was included before it, by the common header itself or by what came before it
// in the file. (After it, common/pure_cpp_source.hpp does the same for common's own .cpp
// files.) A file of the extension or the client therefore includes common headers before
// its PostgreSQL or libpq headers; the build says so when it does not.
//
// No include guard: every common header's last include checks again. The macros are
// the include guards of postgres.h, postgres_fe.h, c.h (under both), postgres_ext.h and
// libpq-fe.h.
#ifndef USHER_PURE_CPP_SOURCE  // common's own .cpp files: poisoned instead, see there
#if defined(POSTGRES_H) || defined(POSTGRES_FE_H) || defined(C_H)
#error "a PostgreSQL header was included before a header of common/: include common/ headers first, and nothing of PostgreSQL in common/"
#endif
#if defined(LIBPQ_FE_H) || defined(POSTGRES_EXT_H)
#error "a libpq header was included before a header of common/: include common/ headers first, and nothing of libpq in common/"
#endif
#endif
