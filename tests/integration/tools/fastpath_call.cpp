// Calls a function through the fast-path interface (libpq's PQfn: a FunctionCall
// message, no query, no planner, no executor) and prints its text result:
//
//   fastpath_call 'probe()'      (connection settings from PG* variables)
//   -> the function's result, or "error: ..." and exit status 1
//
// Used by tests/integration/gate_nesting.sh: psql cannot send a fast-path call.
#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fastpath_call 'function(argument types)'\n");
    return 2;
  }
  PGconn* conn = PQconnectdb("");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::printf("error: %s", PQerrorMessage(conn));
    return 1;
  }
  const char* params[] = {argv[1]};
  PGresult* lookup = PQexecParams(conn, "SELECT $1::regprocedure::oid", 1, nullptr, params, nullptr, nullptr, 0);
  if (PQresultStatus(lookup) != PGRES_TUPLES_OK) {
    std::printf("error: %s", PQerrorMessage(conn));
    return 1;
  }
  int oid = std::atoi(PQgetvalue(lookup, 0, 0));
  PQclear(lookup);
  char buffer[1024] = {};
  int length = 0;
  PGresult* result = PQfn(conn, oid, reinterpret_cast<int*>(buffer), &length, 0, nullptr, 0);
  if (PQresultStatus(result) != PGRES_COMMAND_OK) {
    std::printf("error: %s", PQerrorMessage(conn));
    return 1;
  }
  std::printf("%.*s\n", length, buffer);
  PQclear(result);
  PQfinish(conn);
  return 0;
}
