#pragma once
// Internal: opening a libpq connection host by host. libpq's asynchronous API
// (PQconnectStartParams / PQconnectPoll) walks a host list itself but never gives up on a
// host that accepts TCP and stays silent: only the blocking PQconnectdb applies
// connect_timeout per host. So libusher splits the host list as libpq does and makes one
// asynchronous attempt per host, each under its own timeout (docs/client.md,
// "Connecting").

#include <libpq-fe.h>

#include <string>
#include <utility>
#include <vector>

#include "usher/connection.hpp"
#include "usher/errors.hpp"

namespace usher::detail {

using ConnOptions = std::vector<std::pair<std::string, std::string>>;

// Opens a connection (status CONNECTION_OK, error verbosity back to the default) or
// throws as Connection::open documents.
PGconn* connect_hosts(const std::string& conninfo, const ConnOptions& options,
                      const ConnectLimits& limits);

// `conninfo` and `options` for messages: passwords replaced by "***".
std::string describe_conninfo(const std::string& conninfo, const ConnOptions& options);

// A libpq error text written with PQERRORS_VERBOSE: the fields of the (last) server
// error in it (severity, SQLSTATE, message, DETAIL, HINT; no LOCATION), or, when there is
// none, libpq's own text as `message` (one line) with an empty sqlstate.
ErrorFields parse_login_error(const std::string& verbose_message);

}  // namespace usher::detail
