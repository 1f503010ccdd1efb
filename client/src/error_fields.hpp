#pragma once
// Internal: a server error's fields read from a PGresult (statement.cpp), for every
// place that reads results itself: the statement loop, and the pipelined COMMIT of
// transaction.cpp.

#include <libpq-fe.h>

#include "usher/errors.hpp"

namespace usher::detail {

// The server's fields of `res` (copied: PQclear frees them); a result libpq made up
// itself (connection lost), or none, has only its message (libpq's, one line).
ErrorFields fields_of(PGconn* conn, const PGresult* res);

// Throws the error of `res` (or of the connection when null) as its member of the
// hierarchy (ConnectionError when the connection is gone), and frees `res`.
[[noreturn]] void throw_for(PGconn* conn, PGresult* res);

}  // namespace usher::detail
