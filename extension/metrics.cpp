// usher.metrics(): connections, capacity and health in one Prometheus text document.
// The figures come from the same views and functions a DBA queries, read through SPI;
// the text is built in C++ with fmt, and returned as text once it is complete.
#include <string>

#include "common/prometheus_text.hpp"  // common/ before any PostgreSQL header
#include "guard.hpp"
#include "semaphore_state.hpp"
#include "shared_state.hpp"
#include "spi.hpp"

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
}

// Per-service admission figures: only where pg_usher is preloaded.
void write_services(TextWriter& out) {
  if (usher::shm::state() == nullptr) return;
  // statements_past_limit_total and rejected_full_total (1.1.0) are read by name from the
  // row, NULL (no sample) where the view is still 1.0.0's: a server running this module
  // before ALTER EXTENSION UPDATE.
  Table t = usher::spi::query(
      "SELECT service, current, max_connections, reserved_connections, peak, active, queued, max_active, "
      "admitted_total, rejected_quota_total, rejected_reservation_total, statements_admitted_total, "
      "queue_timeouts_total, queue_cancels_total, "
      "pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.->>) 'statements_past_limit_total'::pg_catalog.text, "
      "pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.->>) 'rejected_full_total'::pg_catalog.text "
      "FROM usher.service_status s ORDER BY 1");
  const char* gauges[][2] = {
      {"usher_service_connections", "Sessions admitted under the service and still connected."},
      {"usher_service_max_connections", "The service's connection quota (0: unlimited)."},
      {"usher_service_reserved_connections", "Connections reserved for the service."},
      {"usher_service_peak_connections", "Most sessions the service has had at once since server start."},
      {"usher_service_active_statements", "Statements of the service holding a gate slot now."},
      {"usher_service_queued_statements", "Statements of the service waiting at the gate now."},
      {"usher_service_max_active", "The service's limit of statements at once (0: unlimited)."}};
  for (size_t column = 1; column <= 7; column++) {
    out.family(gauges[column - 1][0], "gauge", gauges[column - 1][1]);
    for (size_t r = 0; r < t.rows(); r++) out.sample({{"service", cell_text(t, r, 0)}}, t.at(r, column));
  }
  out.family("usher_service_admitted_total", "counter", "Logins pg_usher admitted for the service.");
  for (size_t r = 0; r < t.rows(); r++) out.sample({{"service", cell_text(t, r, 0)}}, t.at(r, 8));
  out.family("usher_service_rejected_total", "counter",
             "Logins pg_usher refused, by reason: quota (the service's max_connections), reservation (the free "
             "slots are reserved for other services), full (no slot left for ordinary roles).");
  for (size_t r = 0; r < t.rows(); r++) {
    out.sample({{"service", cell_text(t, r, 0)}, {"reason", "quota"}}, t.at(r, 9));
    out.sample({{"service", cell_text(t, r, 0)}, {"reason", "reservation"}}, t.at(r, 10));
    out.sample({{"service", cell_text(t, r, 0)}, {"reason", "full"}}, t.at(r, 15));
  }
  const char* counters[][2] = {
      {"usher_service_statements_total", "Statements the gate admitted for the service."},
      {"usher_service_queue_timeouts_total", "Statements that waited longer than queue_timeout."},
      {"usher_service_queue_cancels_total", "Waits ended by cancel, statement_timeout or exit."},
      {"usher_service_statements_past_limit_total",
       "Statements admitted beyond max_active without waiting, because their transaction was already running."}};
  for (size_t column = 11; column <= 14; column++) {
    out.family(counters[column - 11][0], "counter", counters[column - 11][1]);
    for (size_t r = 0; r < t.rows(); r++) out.sample({{"service", cell_text(t, r, 0)}}, t.at(r, column));
  }
}

// Whether entry i is a listed service, and if so its name copied into `name`. Under the
// registry lock: a registry publication may reuse the entry and rewrite its name
// mid-read, as usher.service_status and the sampler guard against. Plain data only:
// LWLockAcquire raises when a backend holds too many LWLocks, so the caller runs this
// through pg::call while its C++ objects are alive.
bool copy_listed_name(usher::shm::State* s, int i, char* name) {
  const usher::shm::Service& service = s->services[i];
  LWLockAcquire(s->lock, LW_SHARED);
  bool listed = service.in_use && service.listed;
  if (listed) strlcpy(name, service.name, NAMEDATALEN);
  LWLockRelease(s->lock);
  return listed;
}

// The gate's wait-time histogram per service, read from shared memory (atomics).
// Statements admitted without waiting count in the first bucket.
void write_gate_wait_histogram(TextWriter& out) {
  usher::shm::State* s = usher::shm::state();
  if (s == nullptr) return;
  out.family("usher_gate_wait_seconds", "histogram",
             "Time statements waited at the service's gate before running.");
  for (int i = 0; i < s->service_capacity; i++) {
    usher::shm::Service& service = s->services[i];
    char listed_name[NAMEDATALEN];
    if (!usher::pg::call([&] { return copy_listed_name(s, i, listed_name); })) continue;
    std::string name = listed_name;
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
  write_gate_wait_histogram(out);
  write_semaphores(out);
  write_health(out);
  std::string document = out.take();
  text* result = usher::pg::call(
      [&] { return cstring_to_text_with_len(document.data(), static_cast<int>(document.size())); });
  return PointerGetDatum(result);
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(usher_metrics);
Datum usher_metrics(PG_FUNCTION_ARGS) {
  return usher::guard([] { return metrics(); });
}
}
