// usher pgbouncer-config: a pgbouncer.ini (or its [databases] and [users] parts) from the
// live registry and usher.pool_advice(): one alias per enabled service, its pool sized by
// the advice; with --check, a running PgBouncer's admin console compared with what would
// be written. docs/cli.md has the reference, docs/pgbouncer.md the reasons.
//
// Everything that reaches the file is checked or quoted for PgBouncer's own parser, which
// is not SQL's and differs between versions (1.18: keys are bare words of letters, digits
// and _ . - * only, a quoted key is a syntax error; a value runs to the end of its line,
// with no escapes and no comments; connection-string values take '...' with '' for a
// quote). So: keys and list items must be bare words or the tool refuses them, free
// values must be one line, connection-string values are quoted.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <map>
#include <set>

#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <libpq-fe.h>

#include "usher/errors.hpp"

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

// A PgBouncer version as major.minor, from "1.18" or "1.18.0".
struct Version {
  int major = 1, minor = 18;
  bool at_least(int ma, int mi) const { return major > ma || (major == ma && minor >= mi); }
};

Version parse_version(const std::string& text) {
  Version v;
  int patch = 0;
  char extra = 0;
  int n = std::sscanf(text.c_str(), "%d.%d.%d%c", &v.major, &v.minor, &patch, &extra);
  if ((n != 2 && n != 3) || v.major != 1 || v.minor < 0 || v.minor > 99)
    throw UsageError(fmt::format("--pgbouncer-version takes a PgBouncer version such as 1.18 or 1.21.0, not '{}'", text));
  return v;
}

// A word PgBouncer reads as a key or a list item as it is: letters, digits, _ . - (and
// '@' in user names, which its user lists accept).
bool is_bare_word(const std::string& s, bool allow_at = false) {
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-' || (allow_at && c == '@');
  });
}

// A value shown in a message: in double quotes, control characters as \xNN, so that a
// hostile value cannot forge a second line of output.
std::string shown(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else if (c == '"' || c == '\\') out += std::string("\\") + static_cast<char>(c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// A setting's value on one line (paths, timeouts): PgBouncer keeps it verbatim.
std::string line_value(const std::string& option, const std::string& value) {
  if (value.empty() || has_control(value) || value.front() == ' ' || value.back() == ' ')
    throw UsageError(fmt::format("--{} must be one line of text without leading or trailing blanks, not {}", option,
                                 shown(value)));
  return value;
}

// A comma-separated list of user names (admin_users, stats_users).
std::string user_list(const std::string& option, const std::string& value) {
  std::string out;
  for (const auto& item : split_commas(value)) {
    if (!is_bare_word(item, true))
      throw UsageError(fmt::format("--{}: {} is not a user name PgBouncer reads in a list (letters, digits, "
                                   "_ . - @; names separated by commas without blanks)",
                                   option, shown(item)));
    out += (out.empty() ? "" : ",") + item;
  }
  return out;
}

// A connection-string value for PgBouncer: '...' with '' for a quote, one line.
std::string conn_value(const std::string& what, const std::string& value) {
  if (has_control(value)) throw UsageError(fmt::format("{} must be one line, not {}", what, shown(value)));
  std::string out = "'";
  for (char c : value) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

int count_option(const Args& args, const std::string& name, int fallback, int low, int high) {
  auto value = args.get(name);
  if (!value) return fallback;
  char* end = nullptr;
  long n = std::strtol(value->c_str(), &end, 10);
  if (value->empty() || *end != '\0' || n < low || n > high)
    throw UsageError(fmt::format("--{} takes a whole number between {} and {}, not {}", name, low, high, shown(*value)));
  return static_cast<int>(n);
}

// The services named by --session-mode (checked against the registry later).
std::set<std::string> name_set(const std::optional<std::string>& value) {
  std::set<std::string> names;
  if (!value) return names;
  for (const auto& item : split_commas(*value))
    if (!item.empty()) names.insert(item);
  return names;
}

struct Pool {
  std::string service;
  int pool_size = 0, min_pool_size = 0, reserve_pool = 0;
  bool session = false;
  std::string basis;
  int max_db_connections() const { return pool_size + reserve_pool; }
};

struct UserEntry {
  std::string role, service;
  bool session = false;
  int max_user_connections = 0;
};

// Everything the file says, so that writing it and comparing with a running PgBouncer
// use the same values.
struct Plan {
  Version version;
  int instances = 1;
  std::string host, port, dbname;  // where the server connections go
  std::vector<Pool> pools;
  std::vector<UserEntry> users;
  std::vector<std::string> skipped_roles;  // mapped roles PgBouncer cannot name as a key
  std::vector<std::pair<std::string, std::string>> settings;  // [pgbouncer], in order
  std::string database;  // the database the registry was read from
};

// The [pgbouncer] settings --check compares with SHOW CONFIG (the ones PgBouncer reports
// as written; paths and user lists are left out: a test harness or a packaging may move them).
const std::set<std::string>& compared_settings() {
  static const std::set<std::string> keys = {
      "pool_mode", "default_pool_size", "min_pool_size", "reserve_pool_size", "max_client_conn",
      "max_db_connections", "max_user_connections", "query_wait_timeout", "idle_transaction_timeout",
      "server_idle_timeout", "server_lifetime", "max_prepared_statements", "max_user_client_connections"};
  return keys;
}

const char* const kPoolsSql =
    "SELECT a.service, a.max_pool_size, a.min_idle, a.basis, p.max_connections,"
    " extract(epoch FROM p.queue_timeout)::float8"
    " FROM usher.pool_advice((SELECT jsonb_object_agg(s.name, $1::int) FROM usher.published_services s"
    "                         WHERE s.enabled)) a"
    " JOIN usher.published_services p ON p.name = a.service"
    " ORDER BY a.service";
const char* const kRolesSql =
    "SELECT r.role, p.name FROM usher.published_services p, unnest(p.roles) AS r(role)"
    " WHERE p.enabled ORDER BY r.role";

Plan make_plan(const Args& args, Session& s) {
  Plan plan;
  plan.version = parse_version(args.get("pgbouncer-version").value_or("1.18"));
  plan.instances = count_option(args, "instances", 1, 1, 100000);
  int reserve = count_option(args, "reserve-pool", 0, 0, 10000);
  int max_client_conn = count_option(args, "max-client-conn", 2000, 1, 1000000);
  std::set<std::string> session_services = name_set(args.get("session-mode"));
  auto max_user_clients = args.get("max-user-clients");
  if (max_user_clients && !plan.version.at_least(1, 24))
    throw UsageError(fmt::format("--max-user-clients needs PgBouncer 1.24 or later (max_user_client_connections); "
                                 "--pgbouncer-version is {}.{}",
                                 plan.version.major, plan.version.minor));
  auto max_prepared = args.get("max-prepared-statements");
  if (max_prepared && !plan.version.at_least(1, 21))
    throw UsageError(fmt::format("--max-prepared-statements needs PgBouncer 1.21 or later; --pgbouncer-version is {}.{}",
                                 plan.version.major, plan.version.minor));

  // Where the aliases send their server connections: by default where this tool is
  // connected, as libpq resolved it.
  PGconn* c = s.conn.native();
  plan.host = args.get("target-host").value_or(PQhost(c) ? PQhost(c) : "");
  plan.port = args.get("target-port").value_or(PQport(c) ? PQport(c) : "5432");
  plan.dbname = args.get("target-dbname").value_or(s.database);
  plan.database = s.database;
  if (!std::all_of(plan.port.begin(), plan.port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      plan.port.empty() || plan.port.size() > 5)
    throw UsageError(fmt::format("--target-port takes a port number, not {}", shown(plan.port)));

  auto rows = s.conn.exec(kPoolsSql, plan.instances);
  double longest_queue = 0;
  std::set<std::string> services;
  for (std::size_t i = 0; i < rows.rows(); ++i) {
    Pool p;
    p.service = std::string(rows.text(i, 0));
    // The registry allows only such names; a name that is not one (a registry written
    // around its checks) is refused rather than written where it would break the file.
    if (!is_bare_word(p.service))
      throw std::runtime_error(fmt::format("service {} cannot be a PgBouncer database name (letters, digits, _ . -)",
                                           shown(p.service)));
    p.pool_size = rows.get<int>(i, 1);
    p.min_pool_size = rows.get<int>(i, 2);
    p.basis = std::string(rows.text(i, 3));
    p.reserve_pool = reserve;
    // A reserve beyond the service's quota would only be refused at login (53300).
    int quota = rows.get<int>(i, 4);
    if (quota > 0) p.reserve_pool = std::max(0, std::min(reserve, quota / plan.instances - p.pool_size));
    p.session = session_services.count(p.service) != 0;
    longest_queue = std::max(longest_queue, rows.get<double>(i, 5));
    services.insert(p.service);
    plan.pools.push_back(p);
  }
  for (const auto& name : session_services)
    if (!services.count(name))
      throw UsageError(fmt::format("--session-mode names {}, which is not an enabled service (services: {})",
                                   shown(name), fmt::format("{}", fmt::join(services, ", "))));

  std::map<std::string, const Pool*> by_service;
  for (const auto& p : plan.pools) by_service[p.service] = &p;
  auto roles = s.conn.exec(kRolesSql);
  for (std::size_t i = 0; i < roles.rows(); ++i) {
    UserEntry u{std::string(roles.text(i, 0)), std::string(roles.text(i, 1))};
    auto it = by_service.find(u.service);
    if (it == by_service.end()) continue;
    if (!is_bare_word(u.role)) {
      plan.skipped_roles.push_back(u.role);
      continue;
    }
    u.session = it->second->session;
    // A mapped role counts as its service through any alias: cap its server connections
    // at the service's pool, whichever aliases it uses.
    u.max_user_connections = it->second->max_db_connections();
    plan.users.push_back(u);
  }

  // Above the longest gate wait, so that a statement queued in the server times out
  // there (53000, a clear message) before PgBouncer gives up on the client.
  int query_wait = count_option(args, "query-wait-timeout",
                                std::max(30, static_cast<int>(std::ceil(longest_queue)) + 5), 1, 86400);
  auto& st = plan.settings;
  st = {{"listen_addr", line_value("listen-addr", args.get("listen-addr").value_or("127.0.0.1"))},
        {"listen_port", std::to_string(count_option(args, "listen-port", 6432, 1, 65535))},
        {"unix_socket_dir", line_value("unix-socket-dir", args.get("unix-socket-dir").value_or("/var/run/postgresql"))},
        {"pidfile", line_value("pidfile", args.get("pidfile").value_or("/var/run/postgresql/pgbouncer.pid"))},
        {"logfile", line_value("logfile", args.get("logfile").value_or("/var/log/postgresql/pgbouncer.log"))},
        {"pool_mode", "transaction"},
        {"default_pool_size", "2"},
        {"min_pool_size", "0"},
        {"reserve_pool_size", "0"},
        {"reserve_pool_timeout", "3"},
        {"max_client_conn", std::to_string(max_client_conn)},
        {"max_db_connections", "0"},
        {"max_user_connections", "0"},
        {"ignore_startup_parameters", "extra_float_digits"},
        {"application_name_add_host", "0"},
        {"query_wait_timeout", std::to_string(query_wait)},
        {"idle_transaction_timeout", "60"},
        {"client_login_timeout", "60"},
        {"server_connect_timeout", "5"},
        {"server_login_retry", "5"},
        {"server_idle_timeout", "600"},
        {"server_lifetime", "3600"},
        {"server_check_delay", "30"},
        {"server_check_query", "select 1"}};
  if (plan.version.at_least(1, 21))
    st.emplace_back("max_prepared_statements", std::to_string(count_option(args, "max-prepared-statements", 100, 0, 100000)));
  if (max_user_clients)
    st.emplace_back("max_user_client_connections",
                    std::to_string(count_option(args, "max-user-clients", 0, 0, 1000000)));
  if (plan.instances > 1) st.emplace_back("so_reuseport", "1");
  std::string auth_file = line_value("auth-file", args.get("auth-file").value_or("/etc/pgbouncer/userlist.txt"));
  std::string auth = args.get("auth").value_or("query");
  if (auth == "query") {
    std::string auth_user = args.get("auth-user").value_or("pgbouncer_auth");
    if (!is_bare_word(auth_user))
      throw UsageError(fmt::format("--auth-user: {} is not a role name PgBouncer reads as it is (letters, digits, _ . -)",
                                   shown(auth_user)));
    st.emplace_back("auth_type", "scram-sha-256");
    st.emplace_back("auth_user", auth_user);
    st.emplace_back("auth_query", "SELECT usename, passwd FROM pgbouncer.get_auth($1)");
  } else if (auth == "file") {
    if (args.has("auth-user")) throw UsageError("--auth-user goes with --auth query, not --auth file");
    st.emplace_back("auth_type", "scram-sha-256");
  } else {
    throw UsageError(fmt::format("--auth takes query (auth_query through a lookup role) or file (every client in "
                                 "the auth_file), not {}",
                                 shown(auth)));
  }
  st.emplace_back("auth_file", auth_file);
  st.emplace_back("admin_users", user_list("admin-users", args.get("admin-users").value_or("pgbouncer_admin")));
  st.emplace_back("stats_users", user_list("stats-users", args.get("stats-users").value_or("pgbouncer_stats")));
  st.emplace_back("log_connections", "0");
  st.emplace_back("log_disconnections", "0");
  st.emplace_back("log_pooler_errors", "1");
  return plan;
}

std::string databases_and_users(const Plan& plan) {
  std::string out = "[databases]\n";
  std::string host = conn_value("--target-host", plan.host);
  std::string dbname = conn_value("--target-dbname", plan.dbname);
  for (const auto& p : plan.pools) {
    out += fmt::format("; {}: pool_advice {} for {} PgBouncer process(es){}\n", p.service, p.basis, plan.instances,
                       p.session ? "; session pooling (--session-mode)" : "");
    out += fmt::format(
        "{} = host={} port={} dbname={} application_name={}/pgbouncer pool_size={} min_pool_size={} reserve_pool={} "
        "max_db_connections={}{}\n",
        p.service, host, plan.port, dbname, p.service, p.pool_size, p.min_pool_size, p.reserve_pool,
        p.max_db_connections(), p.session ? " pool_mode=session" : "");
  }
  // PgBouncer 1.18 has no way to name a role that is not a bare word in [users].
  for (const auto& role : plan.skipped_roles)
    fmt::print(stderr, "usher: warning: role {} is mapped to a service but cannot be a PgBouncer [users] key; "
                       "no per-user limit is written for it\n", shown(role));
  if (!plan.users.empty()) {
    out += "\n[users]\n; roles mapped to a service (usher.set_role_service): at most the service's pool\n";
    for (const auto& u : plan.users)
      out += fmt::format("{} = max_user_connections={}{}\n", u.role, u.max_user_connections,
                         u.session ? " pool_mode=session" : "");
  }
  return out;
}

std::string whole_file(const Plan& plan) {
  std::string out = fmt::format(
      ";; pgbouncer.ini for PgBouncer {}.{}, written by `usher pgbouncer-config` from the pg_usher\n"
      ";; registry read in database {} (docs/pgbouncer.md). Regenerate after changing a service,\n"
      ";; then RELOAD; `usher pgbouncer-config --check` shows what a running PgBouncer lacks.\n"
      ";; The [databases] section stays last but for [users]: in PgBouncer 1.18 a [pgbouncer]\n"
      ";; header resets every setting given before it.\n\n[pgbouncer]\n",
      plan.version.major, plan.version.minor, shown(plan.database));
  for (const auto& [key, value] : plan.settings) out += fmt::format("{} = {}\n", key, value);
  if (!plan.version.at_least(1, 21))
    out += "; max_prepared_statements (named prepared statements in transaction mode) needs PgBouncer 1.21\n";
  return out + "\n" + databases_and_users(plan);
}

// Writes to a temporary file beside the target and renames it, so that a PgBouncer
// reloading at that moment reads the old file or the new one, never half of one.
void write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) throw std::runtime_error(fmt::format("cannot write {}: {}", shown(tmp), std::strerror(errno)));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (::fsync(::fileno(f)) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error(fmt::format("cannot write {}: {}", shown(path), why));
  }
}

// --check: one admin console command, in the simple query protocol (the console has no
// other).
usher::Result admin(usher::Connection& console, const char* command) {
  usher::Result r(PQexec(console.native(), command));
  auto status = PQresultStatus(r.native());
  if (status != PGRES_TUPLES_OK)
    throw std::runtime_error(fmt::format("PgBouncer's {} failed: {}", command, PQerrorMessage(console.native())));
  return r;
}

std::string cell(const usher::Result& r, std::size_t row, const char* column) {
  return std::string(r.text(row, r.column_index(column)));
}

// compare_config: false with --databases-only, whose [pgbouncer] section is kept by hand.
int check(const Plan& plan, const std::string& conninfo, bool compare_config) {
  usher::Connection console;
  try {
    console = usher::Connection::open(conninfo, {{"dbname", "pgbouncer"}, {"fallback_application_name", "usher"}},
                                      usher::Connection::Clock::now() + std::chrono::seconds(10));
  } catch (const usher::DatabaseError& e) {
    throw usher::ConnectionError(e.what(), e.fields());
  }
  Table diff({{"where"}, {"setting"}, {"pgbouncer"}, {"generated"}});
  auto differ = [&](const std::string& where, const std::string& setting, const std::string& have,
                    const std::string& want) {
    if (have != want) diff.add({where, setting, have, want});
  };

  std::map<std::string, const Pool*> wanted;
  for (const auto& p : plan.pools) wanted[p.service] = &p;
  auto dbs = admin(console, "SHOW DATABASES");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < dbs.rows(); ++i) {
    std::string name = cell(dbs, i, "name");
    if (name == "pgbouncer") continue;  // the admin console itself
    auto it = wanted.find(name);
    if (it == wanted.end()) {
      diff.add({name, "database", "present", "absent (not an enabled service)"});
      continue;
    }
    seen.insert(name);
    const Pool& p = *it->second;
    differ(name, "host", cell(dbs, i, "host"), plan.host);
    differ(name, "port", cell(dbs, i, "port"), plan.port);
    differ(name, "dbname", cell(dbs, i, "database"), plan.dbname);
    differ(name, "pool_size", cell(dbs, i, "pool_size"), std::to_string(p.pool_size));
    differ(name, "min_pool_size", cell(dbs, i, "min_pool_size"), std::to_string(p.min_pool_size));
    differ(name, "reserve_pool", cell(dbs, i, "reserve_pool"), std::to_string(p.reserve_pool));
    differ(name, "max_db_connections", cell(dbs, i, "max_connections"), std::to_string(p.max_db_connections()));
    // An alias without a pool_mode of its own shows an empty one (1.18) or the global one.
    std::string mode = cell(dbs, i, "pool_mode");
    differ(name, "pool_mode", mode.empty() ? "transaction" : mode, p.session ? "session" : "transaction");
  }
  for (const auto& p : plan.pools)
    if (!seen.count(p.service)) diff.add({p.service, "database", "absent", "present"});

  // The mode each open pool (alias, user) runs in: a user's own pool_mode wins over its
  // alias's.
  std::map<std::string, bool> user_session;
  for (const auto& u : plan.users) user_session[u.role] = u.session;
  auto pools = admin(console, "SHOW POOLS");
  for (std::size_t i = 0; i < pools.rows(); ++i) {
    std::string db = cell(pools, i, "database"), user = cell(pools, i, "user");
    auto it = wanted.find(db);
    if (it == wanted.end()) continue;  // reported above
    bool session = it->second->session;
    if (auto u = user_session.find(user); u != user_session.end() && u->second) session = true;
    differ(db + " (user " + user + ")", "pool_mode", cell(pools, i, "pool_mode"), session ? "session" : "transaction");
  }

  if (compare_config) {
    auto config = admin(console, "SHOW CONFIG");
    std::map<std::string, std::string> have;
    for (std::size_t i = 0; i < config.rows(); ++i) have[cell(config, i, "key")] = cell(config, i, "value");
    for (const auto& [key, value] : plan.settings)
      if (compared_settings().count(key)) differ("[pgbouncer]", key, have.count(key) ? have[key] : "(unknown)", value);
  }

  if (diff.empty()) {
    fmt::print("PgBouncer matches the registry: {} database(s)\n", plan.pools.size());
    return exit_code::ok;
  }
  diff.print(stdout);
  std::fflush(stdout);
  fmt::print(stderr, "usher: PgBouncer differs from what pgbouncer-config would write: regenerate the file and RELOAD\n");
  return exit_code::drift;
}

int run(const Args& args) {
  if (output_format(args) != Format::table)
    throw UsageError("pgbouncer-config writes an ini file: --format json does not apply");
  Session s = connect(args);
  Plan plan = make_plan(args, s);
  if (auto conninfo = args.get("check")) return check(plan, *conninfo, !args.has("databases-only"));
  std::string text = args.has("databases-only") ? databases_and_users(plan) : whole_file(plan);
  if (auto path = args.get("output")) write_atomically(*path, text);
  else fmt::print("{}", text);
  return exit_code::ok;
}

}  // namespace

const Command& pgbouncer_config_command() {
  static const Command c{
      "pgbouncer-config", "pgbouncer.ini from the registry; --check a running PgBouncer",
      "A complete pgbouncer.ini (or with --databases-only its [databases] and [users] parts)\n"
      "for the services of the published registry: one alias per enabled service, whose\n"
      "server connections log in as <service>/pgbouncer, pool_size and min_pool_size from\n"
      "usher.pool_advice() for --instances PgBouncer processes, max_db_connections = pool +\n"
      "reserve, transaction pooling but for the --session-mode services; [users] caps each\n"
      "role mapped to a service at that service's pool. Server connections go where this\n"
      "tool is connected unless --target-* say otherwise.\n"
      "--check CONNINFO connects to PgBouncer's admin console (dbname pgbouncer, as an\n"
      "admin or stats user), compares SHOW DATABASES, SHOW POOLS and SHOW CONFIG with what\n"
      "would be written, prints the differences and exits 1 if there are any.",
      {{"output", 'o', "FILE", "write to FILE (atomically: a temporary file renamed) instead of stdout"},
       {"databases-only", 0, "", "only the [databases] and [users] sections (for %include); with --check: "
                                 "SHOW CONFIG is not compared"},
       {"check", 0, "CONNINFO", "compare with the PgBouncer whose admin console CONNINFO reaches"},
       {"pgbouncer-version", 0, "X.Y", "the PgBouncer to write for (default 1.18; 1.21+: max_prepared_statements, "
                                       "1.24+: --max-user-clients)"},
       {"instances", 0, "N", "PgBouncer processes sharing these pools (default 1; >1 adds so_reuseport)"},
       {"session-mode", 0, "SVC,...", "services pooled in session mode (default: transaction for all)"},
       {"reserve-pool", 0, "N", "reserve_pool per alias, within the service's quota (default 0)"},
       {"max-client-conn", 0, "N", "max_client_conn (default 2000)"},
       {"query-wait-timeout", 0, "SECONDS", "default: the longest queue_timeout + 5, at least 30"},
       {"max-prepared-statements", 0, "N", "1.21+: max_prepared_statements (default 100)"},
       {"max-user-clients", 0, "N", "1.24+: max_user_client_connections, client connections per user"},
       {"auth", 0, "query|file", "query (default): auth_query through --auth-user; file: auth_file only"},
       {"auth-user", 0, "ROLE", "the auth_query lookup role (default pgbouncer_auth)"},
       {"auth-file", 0, "PATH", "auth_file (default /etc/pgbouncer/userlist.txt)"},
       {"admin-users", 0, "LIST", "admin_users (default pgbouncer_admin)"},
       {"stats-users", 0, "LIST", "stats_users (default pgbouncer_stats)"},
       {"listen-addr", 0, "ADDR", "listen_addr (default 127.0.0.1)"},
       {"listen-port", 0, "PORT", "listen_port (default 6432)"},
       {"unix-socket-dir", 0, "DIR", "unix_socket_dir (default /var/run/postgresql)"},
       {"pidfile", 0, "PATH", "pidfile (default /var/run/postgresql/pgbouncer.pid)"},
       {"logfile", 0, "PATH", "logfile (default /var/log/postgresql/pgbouncer.log)"},
       {"target-host", 0, "HOST", "host of the server connections (default: this connection's)"},
       {"target-port", 0, "PORT", "port of the server connections (default: this connection's)"},
       {"target-dbname", 0, "DBNAME", "database of the server connections (default: this connection's)"}},
      run};
  return c;
}

}  // namespace usher::cli
