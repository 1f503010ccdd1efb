// Connection opening: the conninfo and the options merged into one keyword list, the host
// list split as libpq splits it, one asynchronous attempt per host under its own timeout,
// and a server's refusal at login thrown with its SQLSTATE.
#include "connect.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "usher/errors.hpp"
#include "usher/redact.hpp"
#include "wait.hpp"

namespace usher::detail {
namespace {

bool is_secret_keyword(std::string_view k) { return k == "password" || k == "sslpassword"; }

// libpq never prints a password, but a server or a future libpq might: scrub any we know.
std::string scrub(std::string message, const std::string& conninfo, const ConnOptions& options) {
  std::vector<std::string> secrets;
  for (const auto& [k, v] : options)
    if (is_secret_keyword(k) && !v.empty()) secrets.push_back(v);
  if (PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), nullptr)) {
    for (auto* o = parsed; o->keyword; ++o)
      if (o->val && *o->val && is_secret_keyword(o->keyword)) secrets.emplace_back(o->val);
    PQconninfoFree(parsed);
  }
  // Searching on after each replacement: a password such as "*" must not find itself in
  // the "***" just written (that looped for ever).
  for (const auto& secret : secrets)
    for (auto pos = message.find(secret); pos != std::string::npos;
         pos = message.find(secret, pos + 3))
      message.replace(pos, secret.size(), "***");
  return message;
}

// libpq's recognize_connection_string: a URI, or anything with an '='. Otherwise a
// non-empty conninfo is a database name.
bool looks_like_conninfo(const std::string& s) {
  return s.starts_with("postgresql://") || s.starts_with("postgres://") ||
         s.find('=') != std::string::npos;
}

const std::string* find(const ConnOptions& kw, std::string_view key) {
  for (auto it = kw.rbegin(); it != kw.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

void set(ConnOptions& kw, const std::string& key, const std::string& value) {
  for (auto& [k, v] : kw)
    if (k == key) {
      v = value;
      return;
    }
  kw.emplace_back(key, value);
}

// The conninfo (keyword=value, URI or a bare database name) with the options applied
// over it, as libpq would see them; nullopt when libpq cannot parse the conninfo.
std::optional<ConnOptions> merge(const std::string& conninfo, const ConnOptions& options) {
  ConnOptions kw;
  if (looks_like_conninfo(conninfo)) {
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &error);
    if (error) PQfreemem(error);
    if (!parsed) return std::nullopt;
    for (auto* o = parsed; o->keyword; ++o)
      if (o->val) kw.emplace_back(o->keyword, o->val);
    PQconninfoFree(parsed);
  } else if (!conninfo.empty()) {
    kw.emplace_back("dbname", conninfo);
  }
  for (const auto& [k, v] : options) set(kw, k, v);
  return kw;
}

// libpq's parse_comma_separated_list: no quoting, elements verbatim (an empty element
// means the default). An empty list has one element.
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    auto comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// A connect_timeout as libpq's connectDBComplete reads it: integer seconds (whitespace
// around allowed), 0 or negative = none, 1 means 2. nullopt when it is not an integer.
std::optional<std::chrono::milliseconds> parse_connect_timeout(const std::string& value) {
  const char* begin = value.c_str();
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(begin, &end, 10);
  if (end == begin || errno != 0 || n < INT_MIN || n > INT_MAX) return std::nullopt;
  while (*end && std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (*end) return std::nullopt;
  if (n <= 0) return std::chrono::milliseconds(0);
  return std::chrono::seconds(std::max(n, 2L));
}

// One libpq attempt: a keyword list, and what to call it in messages.
struct Attempt {
  ConnOptions keywords;
  bool expand_dbname = false;
  std::string label;  // "host=a port=5432", or empty: ask libpq afterwards
};

struct Plan {
  std::vector<Attempt> attempts;
  std::chrono::milliseconds per_host{0};  // 0: none
  bool prefer_standby_passes = false;     // two passes: target_session_attrs standby, any
  std::string error;                      // a setting libusher itself must refuse
};

// The attempts libpq's connectOptions2 would make, one per host. One attempt (the
// keyword list as given, libpq walking it) when there is one host, when the hosts come
// from a service file (not visible here), or when the lists do not match (libpq then
// reports the mismatch).
Plan make_plan(const std::string& conninfo, const ConnOptions& options,
               const ConnectLimits& limits) {
  Plan plan;
  plan.per_host = limits.per_host_timeout.count() > 0 ? limits.per_host_timeout
                                                      : std::chrono::milliseconds(0);
  Attempt whole;
  whole.keywords.emplace_back("dbname", conninfo);
  whole.keywords.insert(whole.keywords.end(), options.begin(), options.end());
  whole.expand_dbname = true;

  auto merged = merge(conninfo, options);
  if (!merged) {
    plan.attempts.push_back(std::move(whole));
    return plan;
  }
  const ConnOptions& kw = *merged;
  if (const std::string* t = find(kw, "connect_timeout")) {
    if (auto parsed = parse_connect_timeout(*t)) {
      plan.per_host = *parsed;
    } else {
      plan.error = fmt::format(
          "invalid integer value \"{}\" for connection option \"connect_timeout\"", *t);
      return plan;
    }
  }

  // libpq: explicit values, then the service file, then the environment. With a service
  // in play, what is not explicit is not visible here.
  const bool service = find(kw, "service") || std::getenv("PGSERVICE");
  auto effective = [&](std::string_view key, const char* envvar) -> std::string {
    if (const std::string* v = find(kw, key)) return *v;
    const char* e = service ? nullptr : std::getenv(envvar);
    return e ? e : "";
  };
  const bool host_visible = find(kw, "host") || find(kw, "hostaddr") || !service;
  const std::string host = effective("host", "PGHOST");
  const std::string hostaddr = effective("hostaddr", "PGHOSTADDR");
  const std::string port = effective("port", "PGPORT");
  std::vector<std::string> hosts = split_list(host), addrs = split_list(hostaddr),
                           ports = split_list(port);
  const std::size_t n = !hostaddr.empty() ? addrs.size() : !host.empty() ? hosts.size() : 1;
  const bool lists_match = (hostaddr.empty() || host.empty() || hosts.size() == n) &&
                           (port.empty() || ports.size() == 1 || ports.size() == n);
  if (n == 1 || !host_visible || !lists_match) {
    plan.attempts.push_back(std::move(whole));
    return plan;
  }

  plan.prefer_standby_passes =
      effective("target_session_attrs", "PGTARGETSESSIONATTRS") == "prefer-standby";
  for (std::size_t i = 0; i < n; ++i) {
    Attempt a;
    a.keywords = kw;
    std::string label;
    if (!host.empty()) {
      set(a.keywords, "host", hosts[i]);
      label = fmt::format("host={}", hosts[i]);
    }
    if (!hostaddr.empty()) {
      set(a.keywords, "hostaddr", addrs[i]);
      label += fmt::format("{}hostaddr={}", label.empty() ? "" : " ", addrs[i]);
    }
    if (!port.empty()) {
      const std::string& p = ports.size() == 1 ? ports[0] : ports[i];
      set(a.keywords, "port", p);
      label += fmt::format(" port={}", p);
    }
    a.label = std::move(label);
    plan.attempts.push_back(std::move(a));
  }
  return plan;
}

struct Failure {
  std::string label;
  std::string why;
  ErrorFields server;    // the server's, when it refused the login (sqlstate set)
  bool aborted = false;  // abort_fd became readable
};

std::string host_label(PGconn* conn, const std::string& planned) {
  if (!planned.empty()) return planned;
  const char* host = conn ? PQhost(conn) : nullptr;
  if (!host || !*host) return {};
  return fmt::format("host={} port={}", host, PQport(conn));
}

// One asynchronous attempt, until `until` (`per_host`: the per-host timeout set it).
// Returns the open connection, or nullptr with `failure` filled.
PGconn* attempt(const Attempt& a, Clock::time_point until, bool per_host, int abort_fd,
                Failure& failure) {
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : a.keywords) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  const auto started = Clock::now();
  PGconn* conn = PQconnectStartParams(keys.data(), values.data(), a.expand_dbname ? 1 : 0);
  failure.label = a.label;
  if (!conn) {
    failure.why = "out of memory";
    return nullptr;
  }
  // The server's error at login then carries its SQLSTATE (parse_login_error).
  PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
  auto fail = [&](std::string why) -> PGconn* {
    failure.label = host_label(conn, a.label);
    failure.why = std::move(why);
    PQfinish(conn);
    return nullptr;
  };
  PostgresPollingStatusType poll =
      PQstatus(conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
  while (poll != PGRES_POLLING_OK) {
    if (poll == PGRES_POLLING_FAILED) {
      failure.server = parse_login_error(trimmed(PQerrorMessage(conn)));
      return fail(error_line(failure.server));
    }
    switch (wait_socket_or_abort(conn, poll == PGRES_POLLING_WRITING, until, abort_fd)) {
      case Wait::ready:
        break;
      case Wait::aborted:
        failure.aborted = true;
        return fail("aborted (abort_fd is readable)");
      case Wait::timed_out:
        return fail(per_host ? fmt::format("timed out after {} ms (per-host timeout)",
                                           std::chrono::duration_cast<std::chrono::milliseconds>(
                                               Clock::now() - started).count())
                             : std::string("timed out"));
      case Wait::failed:
        return fail(fmt::format("cannot wait for the socket: {}",
                                PQsocket(conn) < 0 ? "no socket" : "poll failed"));
    }
    poll = PQconnectPoll(conn);
  }
  PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);  // statements' errors as usual
  return conn;
}

std::string failures_text(const std::vector<Failure>& failures) {
  auto one = [](const Failure& f) {
    return f.label.empty() ? f.why : fmt::format("[{}] {}", f.label, f.why);
  };
  if (failures.size() == 1) {
    const Failure& f = failures.front();
    return f.label.empty() ? ": " + f.why : fmt::format(" [{}]: {}", f.label, f.why);
  }
  std::string s = ":";  // one line: "; " between the hosts
  for (const auto& f : failures) s += (s.size() == 1 ? " " : "; ") + one(f);
  return s;
}

}  // namespace

std::string describe_conninfo(const std::string& conninfo, const ConnOptions& options) {
  std::string s = conninfo.empty() ? std::string("(libpq defaults)") : redact_conninfo(conninfo);
  for (const auto& [k, v] : options) s += fmt::format(" {}={}", k, is_secret_keyword(k) ? "***" : v);
  return s;
}

ErrorFields parse_login_error(const std::string& verbose) {
  ErrorFields out;
  std::string other;  // libpq's own lines, when no server error is in the text
  std::size_t pos = 0;
  while (pos <= verbose.size()) {
    auto nl = verbose.find('\n', pos);
    std::string line = verbose.substr(pos, nl == std::string::npos ? nl : nl - pos);
    // PQERRORS_VERBOSE: "[connection to server ... failed: ]SEVERITY:  SQLSTATE: message",
    // then DETAIL/HINT lines, then "LOCATION:  function, file:line".
    bool server_error = false;
    for (auto i = line.find(":  "); i != std::string::npos; i = line.find(":  ", i + 1)) {
      std::size_t c = i + 3;
      auto severity_start = line.rfind(' ', i);
      severity_start = severity_start == std::string::npos ? 0 : severity_start + 1;
      if (severity_start < i && c + 7 <= line.size() && line.compare(c + 5, 2, ": ") == 0 &&
          std::all_of(line.begin() + c, line.begin() + c + 5, [](char ch) {
            return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z');
          })) {
        out = ErrorFields{};  // the last server error wins
        out.severity = line.substr(severity_start, i - severity_start);
        out.sqlstate = line.substr(c, 5);
        out.message = line.substr(c + 7);
        server_error = true;
        break;
      }
    }
    if (!server_error) {
      if (!out.sqlstate.empty() && line.starts_with("DETAIL:  ")) {
        out.detail = line.substr(9);
      } else if (!out.sqlstate.empty() && line.starts_with("HINT:  ")) {
        out.hint = line.substr(7);
      } else if (!line.starts_with("LOCATION:  ")) {
        if (!other.empty()) other += ' ';
        other += line;
      }
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  if (out.sqlstate.empty()) out.message = other;
  ErrorFields primary;
  primary.message = std::move(out.message);
  out.message = error_line(primary);  // one line
  return out;
}

PGconn* connect_hosts(const std::string& conninfo, const ConnOptions& options,
                      const ConnectLimits& limits) {
  const std::string what = fmt::format("cannot connect to {}", describe_conninfo(conninfo, options));
  Plan plan = make_plan(conninfo, options, limits);
  if (!plan.error.empty()) throw ConnectionError(scrub(what + ": " + plan.error, conninfo, options), "08001");

  // prefer-standby over several hosts: libpq first looks for a standby on every host,
  // then takes any. Attempts of one host each would take the first host at once.
  std::vector<std::optional<std::string>> passes{std::nullopt};
  if (plan.prefer_standby_passes) passes = {std::string("standby"), std::string("any")};

  std::vector<Failure> failures;
  for (const auto& pass : passes) {
    for (Attempt a : plan.attempts) {
      if (pass) {
        set(a.keywords, "target_session_attrs", *pass);
        a.label += " target_session_attrs=" + *pass;
      }
      if (limits.abort_fd >= 0 && readable_now(limits.abort_fd))
        throw ConnectAborted(scrub(what + ": aborted (abort_fd is readable)", conninfo, options));
      auto now = Clock::now();
      if (now >= limits.deadline) {
        failures.push_back({a.label, "not tried: the deadline had passed", {}});
        continue;
      }
      bool per_host = plan.per_host.count() > 0 && now + plan.per_host < limits.deadline;
      Failure failure;
      PGconn* conn = attempt(a, per_host ? now + plan.per_host : limits.deadline, per_host,
                             limits.abort_fd, failure);
      if (conn) return conn;
      failures.push_back(std::move(failure));
      if (failures.back().aborted)
        throw ConnectAborted(scrub(what + failures_text({failures.back()}), conninfo, options));
      // The server refused the login: libpq stops there too, and so does the error class.
      if (!failures.back().server.sqlstate.empty())
        throw_database_error(failures.back().server,
                             scrub(what + failures_text(failures), conninfo, options));
    }
  }
  throw ConnectionError(scrub(what + failures_text(failures), conninfo, options), "08001");
}

}  // namespace usher::detail
