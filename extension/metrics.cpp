// usher.metrics(): connections, capacity and health in one Prometheus text document.
// The figures come from the same views and functions a DBA queries, read through SPI,
// and the per-service ones from one snapshot of shared memory (the same copy
// usher.service_status shows); the text is built in C++ with fmt, and returned as text
// once it is complete.
#include <string>

#include "common/prometheus_text.hpp"  // common/ before any PostgreSQL header
#include "guard.hpp"
#include "semaphore_state.hpp"
#include "shared_state.hpp"
#include "spi.hpp"
#include "sql_function.hpp"

extern "C" {
#include "catalog/pg_collation.h"
#include "utils/varlena.h"
}

namespace {

using usher::prometheus::TextWriter;
using usher::spi::Table;

const std::string& cell_text(const Table& t, size_t row, size_t column) {
  static const std::string empty;
  const auto& cell = t.at(row, column);
  return cell ? *cell : empty;
}

void write_connections(TextWriter& out) {
  Table t = usher::spi::query(
      "SELECT service, database, role, coalesce(state, 'unknown'), count, "
      "extract(epoch FROM oldest_state_age), extract(epoch FROM oldest_xact_age) "
      "FROM usher.connections ORDER BY 1, 2, 3, 4");
  const char* families[][2] = {
      {"usher_connections", "Client backends by service, database, role and state."},
      {"usher_connection_state_age_max_seconds",
       "Longest time a backend of the group has been in its current state."},
      {"usher_connection_transaction_age_max_seconds",
       "Age of the oldest open transaction in the group."}};
  for (size_t column = 4; column <= 6; column++) {
    out.family(families[column - 4][0], "gauge", families[column - 4][1]);
    for (size_t r = 0; r < t.rows(); r++)
      out.sample({{"service", cell_text(t, r, 0)}, {"database", cell_text(t, r, 1)},
                  {"role", cell_text(t, r, 2)}, {"state", cell_text(t, r, 3)}},
                 t.at(r, column));
  }
}

void write_capacity(TextWriter& out) {
  Table t = usher::spi::query(
      "SELECT scope, coalesce(name, ''), max_connections, reserved, used, free, "
      "headroom_percent / 100.0 FROM usher.capacity ORDER BY 1, 2");
  const char* families[][2] = {
      {"usher_capacity_max_connections", "Connection limit (server: max_connections)."},
      {"usher_capacity_reserved_connections", "Connections reserved for superusers (server only)."},
      {"usher_capacity_used_connections", "Client backends counted against the limit."},
      {"usher_capacity_free_connections", "Connections that ordinary roles can still open."},
      {"usher_capacity_headroom_ratio", "Free connections as a fraction of the usable limit."}};
  for (size_t column = 2; column <= 6; column++) {
    out.family(families[column - 2][0], "gauge", families[column - 2][1]);
    for (size_t r = 0; r < t.rows(); r++)
      out.sample({{"scope", cell_text(t, r, 0)}, {"name", cell_text(t, r, 1)}}, t.at(r, column));
  }
}

// usher.replication_status(): this node's role, and the lag of each standby it streams
// to (labels standby, client_addr) or, on a standby, its own (label upstream: the
// primary it follows). A primary with no standby has no lag series.
// Under 1.0.0's SQL (the new module before ALTER EXTENSION UPDATE) there is no
// replication_status(): only usher_replication_is_standby is written.
void write_replication(TextWriter& out) {
  Table role = usher::spi::query(
      "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END, "
      "to_regprocedure('usher.replication_status()') IS NOT NULL");
  bool standby = cell_text(role, 0, 0) == "1";
  out.family("usher_replication_is_standby", "gauge", "1 on a standby (in recovery), 0 on a primary.");
  out.sample({}, role.at(0, 0));
  if (cell_text(role, 0, 1) != "t") return;
  Table t = usher::spi::query(
      "SELECT role, coalesce(standby_name, ''), coalesce(host(client_addr), 'local'), "
      "coalesce(upstream_host || ':' || upstream_port, ''), lag_bytes, lag_seconds, "
      "CASE WHEN state = 'streaming' THEN 1 ELSE 0 END, CASE WHEN replay_paused THEN 1 ELSE 0 END "
      "FROM usher.replication_status() WHERE state IS NOT NULL ORDER BY 2, 3");
  auto sample = [&](size_t r, size_t column) {
    if (standby)
      out.sample({{"upstream", cell_text(t, r, 3)}}, t.at(r, column));
    else
      out.sample({{"standby", cell_text(t, r, 1)}, {"client_addr", cell_text(t, r, 2)}}, t.at(r, column));
  };
  const char* families[][2] = {
      {"usher_replication_lag_bytes",
       "WAL not yet replayed: on a standby, received but not replayed; on a primary, per standby, written but not "
       "replayed there."},
      {"usher_replication_lag_seconds",
       "Replay lag in seconds (0 when everything received is replayed); see usher.replication_status()."},
      {"usher_replication_streaming", "1 when WAL is streaming (the standby's receiver, or the primary's sender)."}};
  for (size_t column = 4; column <= 6; column++) {
    out.family(families[column - 4][0], "gauge", families[column - 4][1]);
    for (size_t r = 0; r < t.rows(); r++) sample(r, column);
  }
  if (!standby) return;
  out.family("usher_replication_replay_paused", "gauge", "1 when replay is paused on this standby.");
  for (size_t r = 0; r < t.rows(); r++) sample(r, 7);
}

// A check that reports several rows (replication lag per standby) is summarised by its
// worst row; the per-standby figures follow as their own family.
void write_health(TextWriter& out) {
  Table t = usher::spi::query(
      "SELECT \"check\", max(CASE status WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END), "
      "max(value) FROM usher.health() GROUP BY 1 ORDER BY 1");
  out.family("usher_health_status", "gauge",
             "Health check status: 0 ok, 1 warning, 2 critical (worst row of the check).");
  bool ready = true;
  for (size_t r = 0; r < t.rows(); r++) {
    out.sample({{"check", cell_text(t, r, 0)}}, t.at(r, 1));
    if (cell_text(t, r, 1) == "2") ready = false;
  }
  out.family("usher_health_value", "gauge",
             "Health check value in the unit of usher.health_thresholds() (largest row).");
  for (size_t r = 0; r < t.rows(); r++) out.sample({{"check", cell_text(t, r, 0)}}, t.at(r, 2));
  out.family("usher_ready", "gauge", "1 when no health check is critical (usher.ready()).");
  out.sample({}, ready ? 1.0 : 0.0);

  // WAL senders joined to their own activity row (pg_stat_replication would build a
  // row for every backend to find them).
  Table standbys = usher::spi::query(
      "SELECT a.application_name, coalesce(host(a.client_addr), 'local'), "
      "coalesce(extract(epoch FROM w.replay_lag), 0), "
      "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), w.replay_lsn), 0) "
      "FROM pg_stat_get_wal_senders() w CROSS JOIN LATERAL pg_stat_get_activity(w.pid) a "
      "WHERE NOT pg_is_in_recovery() ORDER BY 1, 2");
  out.family("usher_replication_replay_lag_seconds", "gauge",
             "Replay lag of each connected standby, seen from the primary.");
  for (size_t r = 0; r < standbys.rows(); r++)
    out.sample({{"standby", cell_text(standbys, r, 0)}, {"client_addr", cell_text(standbys, r, 1)}},
               standbys.at(r, 2));
  out.family("usher_replication_replay_lag_bytes", "gauge",
             "WAL bytes each connected standby has yet to replay, seen from the primary.");
  for (size_t r = 0; r < standbys.rows(); r++)
    out.sample({{"standby", cell_text(standbys, r, 0)}, {"client_addr", cell_text(standbys, r, 1)}},
               standbys.at(r, 3));
  write_replication(out);
}

// The visible services of one snapshot of shared state (shared_state.hpp), ordered by
// name as ORDER BY on their text would order them (the database's default collation).
// Plain data: allocating, taking the lock and comparing under the collation can raise,
// so the caller runs this through pg::call while its C++ objects are alive.
struct ServicesByName {
  int count;
  usher::shm::ServiceCopy** services;
};

int compare_names(const void* a, const void* b) {
  const char* x = (*static_cast<usher::shm::ServiceCopy* const*>(a))->service.name;
  const char* y = (*static_cast<usher::shm::ServiceCopy* const*>(b))->service.name;
  return varstr_cmp(x, static_cast<int>(strlen(x)), y, static_cast<int>(strlen(y)), DEFAULT_COLLATION_OID);
}

ServicesByName services_by_name(usher::shm::State* s) {
  usher::shm::Snapshot* snapshot = usher::shm::new_snapshot(s, CurrentMemoryContext, false);
  usher::shm::take_snapshot(s, snapshot);
  ServicesByName list{snapshot->service_count, static_cast<usher::shm::ServiceCopy**>(
                                                    palloc(sizeof(usher::shm::ServiceCopy*) * (snapshot->service_count + 1)))};
  for (int i = 0; i < list.count; i++) list.services[i] = &snapshot->services[i];
  qsort(list.services, list.count, sizeof(usher::shm::ServiceCopy*), compare_names);
  return list;
}

// One per-service family: a figure of the snapshot's copy.
struct ServiceFamily {
  const char* name;
  const char* type;
  const char* help;
  int64 (*value)(usher::shm::ServiceCopy& copy);  // as the view's integer / bigint column
};

int64 gauge(pg_atomic_uint32& value) { return static_cast<int32>(pg_atomic_read_u32(&value)); }
int64 counter(pg_atomic_uint64& value) { return static_cast<int64>(pg_atomic_read_u64(&value)); }
int64 counter(uint64 value) { return static_cast<int64>(value); }

void write_family(TextWriter& out, const ServiceFamily& family, const ServicesByName& list) {
  out.family(family.name, family.type, family.help);
  for (int i = 0; i < list.count; i++)
    out.sample({{"service", list.services[i]->service.name}}, std::to_string(family.value(*list.services[i])));
}

// Per-service admission figures and the gate's wait-time histogram, from one snapshot
// of shared memory: only where pg_usher is preloaded.
void write_services(TextWriter& out) {
  usher::shm::State* s = usher::shm::state();
  if (s == nullptr) return;
  ServicesByName list = usher::pg::call([&] { return services_by_name(s); });
  using Copy = usher::shm::ServiceCopy;
  const ServiceFamily logins[] = {
      {"usher_service_connections", "gauge", "Sessions admitted under the service and still connected.",
       [](Copy& c) -> int64 { return c.sessions; }},
      {"usher_service_max_connections", "gauge", "The service's connection quota (0: unlimited).",
       [](Copy& c) -> int64 { return c.service.max_connections; }},
      {"usher_service_reserved_connections", "gauge", "Connections reserved for the service.",
       [](Copy& c) -> int64 { return c.service.reserved_connections; }},
      {"usher_service_peak_connections", "gauge", "Most sessions the service has had at once since server start.",
       [](Copy& c) -> int64 { return c.service.peak; }},
      {"usher_service_active_statements", "gauge", "Statements of the service holding a gate slot now.",
       [](Copy& c) { return gauge(c.service.gate.active); }},
      {"usher_service_queued_statements", "gauge", "Statements of the service waiting at the gate now.",
       [](Copy& c) { return gauge(c.service.gate.queued); }},
      {"usher_service_max_active", "gauge", "The service's limit of statements at once (0: unlimited).",
       [](Copy& c) -> int64 { return c.service.max_active; }},
      {"usher_service_admitted_total", "counter", "Logins pg_usher admitted for the service.",
       [](Copy& c) { return counter(c.service.admitted_total); }}};
  for (const ServiceFamily& family : logins) write_family(out, family, list);

  out.family("usher_service_rejected_total", "counter",
             "Logins pg_usher refused, by reason: quota (the service's max_connections), reservation (the free "
             "slots are reserved for other services), full (no slot left for ordinary roles).");
  for (int i = 0; i < list.count; i++) {
    const usher::shm::Service& sv = list.services[i]->service;
    out.sample({{"service", sv.name}, {"reason", "quota"}}, std::to_string(counter(sv.rejected_quota_total)));
    out.sample({{"service", sv.name}, {"reason", "reservation"}},
               std::to_string(counter(sv.rejected_reservation_total)));
    out.sample({{"service", sv.name}, {"reason", "full"}}, std::to_string(counter(sv.rejected_full_total)));
  }

  const ServiceFamily counters[] = {
      {"usher_service_statements_total", "counter", "Statements the gate admitted for the service.",
       [](Copy& c) { return counter(c.service.gate.admitted_total); }},
      {"usher_service_queue_timeouts_total", "counter", "Statements that waited longer than queue_timeout.",
       [](Copy& c) { return counter(c.service.gate.queue_timeouts_total); }},
      {"usher_service_queue_cancels_total", "counter", "Waits ended by cancel, statement_timeout or exit.",
       [](Copy& c) { return counter(c.service.gate.queue_cancels_total); }},
      {"usher_service_statements_past_limit_total", "counter",
       "Statements admitted beyond max_active without waiting, because their transaction was already running.",
       [](Copy& c) { return counter(c.service.gate.past_limit_total); }}};
  for (const ServiceFamily& family : counters) write_family(out, family, list);

  // The gate's wait-time histogram. Statements admitted without waiting count in the
  // first bucket.
  out.family("usher_gate_wait_seconds", "histogram", "Time statements waited at the service's gate before running.");
  for (int i = 0; i < list.count; i++) {
    usher::shm::Service& service = list.services[i]->service;
    std::string_view name = service.name;
    usher::shm::Gate& gate = service.gate;
    uint64 admitted = pg_atomic_read_u64(&gate.admitted_total);
    uint64 waited = pg_atomic_read_u64(&gate.waited_total);
    uint64 cumulative = admitted >= waited ? admitted - waited : 0;
    for (int b = 0; b < usher::shm::wait_buckets; b++) {
      cumulative += pg_atomic_read_u64(&gate.wait_histogram[b]);
      std::string le = b < usher::shm::wait_buckets - 1 ? fmt::format("{}", usher::shm::wait_bucket_bounds[b]) : "+Inf";
      out.sample_as("_bucket", {{"service", name}, {"le", le}}, static_cast<double>(cumulative));
    }
    out.sample_as("_sum", {{"service", name}}, static_cast<double>(pg_atomic_read_u64(&gate.wait_us_sum)) / 1e6);
    out.sample_as("_count", {{"service", name}}, static_cast<double>(cumulative));
  }
}

// Application semaphores: the usher.semaphores view (defined ones, and dropped ones
// still held or waited on). Only where pg_usher is preloaded.
void write_semaphores(TextWriter& out) {
  if (usher::sem::state() == nullptr) return;
  Table t = usher::spi::query(
      "SELECT name, capacity, held, waiters, holders, acquired_total, timeouts_total "
      "FROM usher.semaphores ORDER BY 1");
  const char* families[][3] = {
      {"usher_semaphore_capacity", "gauge", "Permits the semaphore allows to be held at once."},
      {"usher_semaphore_held", "gauge", "Permits of the semaphore held now."},
      {"usher_semaphore_waiters", "gauge", "Sessions waiting in usher.acquire() for the semaphore now."},
      {"usher_semaphore_holders", "gauge", "Sessions holding permits of the semaphore now."},
      {"usher_semaphore_acquired_total", "counter", "Successful usher.acquire() calls since server start."},
      {"usher_semaphore_timeouts_total", "counter", "usher.acquire() calls whose timeout passed (returned false)."}};
  for (size_t column = 1; column <= 6; column++) {
    out.family(families[column - 1][0], families[column - 1][1], families[column - 1][2]);
    for (size_t r = 0; r < t.rows(); r++) out.sample({{"semaphore", cell_text(t, r, 0)}}, t.at(r, column));
  }
}

Datum metrics() {
  TextWriter out;
  write_connections(out);
  write_capacity(out);
  write_services(out);
  write_semaphores(out);
  write_health(out);
  std::string document = out.take();
  text* result = usher::pg::call(
      [&] { return cstring_to_text_with_len(document.data(), static_cast<int>(document.size())); });
  return PointerGetDatum(result);
}

}  // namespace

USHER_SQL_FUNCTION(usher_metrics) { return metrics(); }
