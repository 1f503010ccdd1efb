// usher top's samples: the statements it runs (every one on views and functions pg_usher
// grants to pg_monitor), their rows, and refusal rates from two samples.
#include <cstdlib>
#include <string>
#include <vector>

#include "usher/connection.hpp"

#include "table.hpp"
#include "top.hpp"

namespace usher::cli::top {
namespace {

// Every statement reads the views and functions pg_usher grants to pg_monitor; the
// session's search_path is pinned to pg_catalog first (connect_pinned), so the
// operators and functions below resolve to the built-in ones. $1: the filter (a
// substring of the service name), NULL for none.
const char* const kServicesSql =
    "WITH b AS MATERIALIZED ("
    "  SELECT coalesce(service_enforced, service) AS service, state FROM usher.backends"
    "   WHERE pid <> pg_backend_pid()),"
    " bs AS (SELECT service, count(*) FILTER (WHERE state = 'active') AS active,"
    "   count(*) FILTER (WHERE state = 'idle') AS idle,"
    "   count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_xact"
    "   FROM b GROUP BY service),"
    " l AS (SELECT service, count(*) AS leases, count(*) FILTER (WHERE suspect) AS suspects"
    "   FROM usher.leases GROUP BY service)"
    " SELECT s.service, s.listed, s.enabled, s.current, s.max_connections, s.active, s.queued, s.max_active,"
    "  s.rejected_total, s.queue_timeouts_total + s.rejected_full_total,"
    "  coalesce(bs.active, 0), coalesce(bs.idle, 0), coalesce(bs.idle_in_xact, 0),"
    "  coalesce(l.leases, 0), coalesce(l.suspects, 0)"
    " FROM usher.service_status s"
    " LEFT JOIN bs ON bs.service = s.service LEFT JOIN l ON l.service = s.service"
    " WHERE $1::text IS NULL OR strpos(s.service, $1::text) > 0";

const char* const kHealthSql =
    "SELECT \"check\", status FROM usher.health()"
    " ORDER BY CASE status WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, \"check\"";

const char* const kSuspectsSql =
    "SELECT pid, service, extract(epoch FROM lease_age)::float8, holder FROM usher.leases"
    " WHERE suspect AND ($1::text IS NULL OR strpos(service, $1::text) > 0)"
    " ORDER BY lease_age DESC, pid LIMIT 100";

long to_long(std::string_view v) { return std::strtol(std::string(v).c_str(), nullptr, 10); }
long long to_ll(std::string_view v) { return std::strtoll(std::string(v).c_str(), nullptr, 10); }

ExecOptions bounded(int abort_fd) {
  ExecOptions o;
  o.deadline = Clock::now() + std::chrono::seconds(10);
  o.abort_fd = abort_fd;
  return o;
}

}  // namespace

Session connect_pinned(const Args& args) {
  Session s = connect(args);
  s.conn.exec("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)");
  return s;
}

Sample take_sample(usher::Connection& conn, const ViewState& view, int abort_fd) {
  Sample s;
  std::vector<usher::Param> params = {text_param(view.filter)};
  auto r = conn.exec_params(kServicesSql, params, bounded(abort_fd));
  for (std::size_t i = 0; i < r.rows(); ++i) {
    ServiceRow row;
    row.name = std::string(r.text(i, 0));
    row.listed = r.text(i, 1) == "t";
    row.enabled = r.text(i, 2) == "t";
    row.current = to_long(r.text(i, 3));
    row.max_connections = to_long(r.text(i, 4));
    row.gate_active = to_long(r.text(i, 5));
    row.queued = to_long(r.text(i, 6));
    row.max_active = to_long(r.text(i, 7));
    row.refused = to_ll(r.text(i, 8));
    row.gate_refused = to_ll(r.text(i, 9));
    row.active = to_long(r.text(i, 10));
    row.idle = to_long(r.text(i, 11));
    row.idle_in_xact = to_long(r.text(i, 12));
    row.leases = to_long(r.text(i, 13));
    row.suspects = to_long(r.text(i, 14));
    s.rows.push_back(std::move(row));
  }
  auto h = conn.exec_params(kHealthSql, {}, bounded(abort_fd));
  for (std::size_t i = 0; i < h.rows(); ++i) s.checks.emplace_back(h.text(i, 0), h.text(i, 1));
  auto l = conn.exec_params(kSuspectsSql, params, bounded(abort_fd));
  for (std::size_t i = 0; i < l.rows(); ++i)
    s.suspects.push_back({std::string(l.text(i, 0)), std::string(l.text(i, 1)), human_age(l.text(i, 2)),
                          std::string(l.text(i, 3))});
  s.wall = std::time(nullptr);
  return s;
}

void Rates::apply(Sample& s, Clock::time_point at) {
  double dt = std::chrono::duration<double>(at - at_).count();
  for (auto& row : s.rows) {
    auto it = last_.find(row.name);
    if (it != last_.end() && dt > 0 && row.refused >= it->second.first && row.gate_refused >= it->second.second) {
      row.refused_rate = static_cast<double>(row.refused - it->second.first) / dt;
      row.gate_rate = static_cast<double>(row.gate_refused - it->second.second) / dt;
    }
    last_[row.name] = {row.refused, row.gate_refused};
  }
  at_ = at;
}

}  // namespace usher::cli::top
