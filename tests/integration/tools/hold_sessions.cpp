// Opens up to N connections one after another with the given application_name and
// keeps them open until standard input closes. Stops at the first refused login and
// prints how many it holds and that login's error, SQLSTATE included:
//
//   hold_sessions APPLICATION_NAME N      (other settings from PG* variables)
//   -> "held=5 error=FATAL:  53300: too many connections for service ..."
//
// Used by the admission tests to fill a service, or the server, to an exact count.
#include <libpq-fe.h>
#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// Connects asynchronously so that error verbosity can be raised before the server
// answers: then libpq puts the SQLSTATE of a refused login into the message.
PGconn* connect_verbose(const char* application_name) {
  const char* keys[] = {"application_name", nullptr};
  const char* values[] = {application_name, nullptr};
  PGconn* conn = PQconnectStartParams(keys, values, 0);
  if (conn == nullptr) return nullptr;
  PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED) {
    pollfd fd{PQsocket(conn), static_cast<short>(status == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    // Long enough for a login held while the registry is unpublished (admission.sh).
    if (poll(&fd, 1, 60000) <= 0) break;
    status = PQconnectPoll(conn);
  }
  return conn;
}

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s APPLICATION_NAME N\n", argv[0]);
    return 2;
  }
  int wanted = std::atoi(argv[2]);
  std::vector<PGconn*> held;
  std::string error;
  for (int i = 0; i < wanted; i++) {
    PGconn* conn = connect_verbose(argv[1]);
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      error = conn ? one_line(PQerrorMessage(conn)) : "out of memory";
      PQfinish(conn);
      break;
    }
    held.push_back(conn);
  }
  std::printf("held=%zu error=%s\n", held.size(), error.c_str());
  std::fflush(stdout);
  int c;
  while ((c = std::getchar()) != EOF) {
  }
  for (PGconn* conn : held) PQfinish(conn);
  return 0;
}
