#include "session.hpp"

#include <chrono>

#include <fmt/format.h>

namespace usher::cli {

Session connect(const Args& args) {
  // An empty conninfo lets libpq take everything from PG* variables and its defaults.
  // fallback_application_name names the tool in pg_stat_activity unless PGAPPNAME or the
  // conninfo says otherwise.
  std::string conninfo = args.get("dbname").value_or("");
  Session s;
  try {
    s.conn = usher::Connection::open(conninfo, {{"fallback_application_name", "usher"}},
                                     usher::Connection::Clock::now() + std::chrono::seconds(10));
  } catch (const usher::DatabaseError& e) {
    // A server's refusal at login (no such role or database, wrong password, too many
    // connections) comes typed by its SQLSTATE; for this tool it is "cannot connect"
    // (exit 69), not a missing pg_monitor grant or a failed query.
    throw usher::ConnectionError(e.what(), e.fields());  // the server's fields kept
  }
  // Checked up front rather than inferred from "schema usher does not exist", so the
  // message can name the database and the fix.
  auto r = s.conn.exec(
      "SELECT current_database()::text, EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_usher')");
  s.database = std::string(r.text(0, 0));
  if (!r.get<bool>(0, 1))
    throw ExtensionMissing(fmt::format(
        "pg_usher is not installed in database \"{}\": CREATE EXTENSION pg_usher is needed there "
        "(or connect to the database that has it with -d)",
        s.database));
  return s;
}

Format output_format(const Args& args) {
  auto f = args.get("format").value_or("table");
  if (f == "table") return Format::table;
  if (f == "json") return Format::json;
  throw UsageError(fmt::format("unknown format '{}': use --format table or --format json", f));
}

std::string fetch_json(usher::Connection& conn, const std::string& sql, std::span<const usher::Param> params) {
  auto r = conn.exec_params("SELECT coalesce(json_agg(q), '[]')::text FROM (" + sql + ") q", params);
  return std::string(r.text(0, 0));
}

std::optional<usher::Result> fetch_rows(const Args& args, const std::string& sql,
                                        std::span<const usher::Param> params) {
  Format format = output_format(args);  // before connecting: a typo costs no connection
  Session s = connect(args);
  if (format == Format::table) return s.conn.exec_params(sql, params);
  fmt::print("{}\n", fetch_json(s.conn, sql, params));
  return std::nullopt;
}

usher::Param text_param(const std::optional<std::string>& value) {
  return usher::Param{value, usher::type_oids::text};
}

}  // namespace usher::cli
