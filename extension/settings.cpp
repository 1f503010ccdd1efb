// Defines the usher.* GUCs. Thresholds are superuser-settable (PGC_SUSET): a health
// probe must not be able to hide a problem by raising its own session's thresholds;
// on PostgreSQL 15+ a DBA can GRANT SET ON PARAMETER to a monitoring role instead.
#include "settings.hpp"

#include <array>

#include "pg_includes.hpp"
#include "semaphore_state.hpp"

namespace usher::settings {

namespace {

constexpr int seconds(int s) { return s * 1000; }

// 0 disables a threshold. A warning above its critical threshold simply never shows:
// the value is critical first. (Cross-checking the pair in check hooks would reject
// valid postgresql.conf files depending on the order the two lines are applied.)
std::array<ThresholdPair, 8> pairs{{
    {"connection_saturation", "connection_saturation", Unit::percent,
     "client backends as a percentage of max_connections", 80, 95, 100},
    {"idle_in_transaction", "idle_in_transaction", Unit::milliseconds,
     "longest time a session has been idle inside an open transaction", seconds(60),
     seconds(300), INT_MAX},
    {"long_transactions", "long_transactions", Unit::milliseconds, "age of the oldest open transaction",
     seconds(300), seconds(1800), INT_MAX},
    {"lock_waits", "lock_waits", Unit::milliseconds, "longest time a session has waited for a lock",
     seconds(30), seconds(120), INT_MAX},
    {"replication_lag", "replication_lag", Unit::milliseconds,
     "replay delay of a standby (on the primary: per standby)", seconds(30),
     seconds(300), INT_MAX},
    {"wraparound", "wraparound", Unit::transaction_ids,
     "transaction ID (or multixact) age of the oldest database", 1000000000, 1500000000,
     2000000000},
    {"prepared_transactions", "prepared_transactions", Unit::milliseconds,
     "age of the oldest prepared (two-phase) transaction", seconds(300), seconds(1800),
     INT_MAX},
    {"leases", "lease", Unit::milliseconds,
     "age of the oldest lease (usher.checkout) on an idle backend: a suspected leak",
     seconds(60), seconds(600), INT_MAX},
}};

// GUC names and descriptions must outlive the backend; build them once in static
// storage from the table above.
struct GucText {
  char name[96];
  char description[192];
};
std::array<std::array<GucText, 2>, pairs.size()> guc_text;

int guc_flags(Unit unit) { return unit == Unit::milliseconds ? GUC_UNIT_MS : 0; }

}  // namespace

char* database = nullptr;
int max_services = 64;
int max_role_mappings = 256;

// Server-wide settings exist only when pg_usher is preloaded: PostgreSQL cannot define
// postmaster-context settings later, and nothing uses them without shared memory.
static void define_server_settings() {
  DefineCustomStringVariable(
      "usher.database", "Database holding the service registry (usher.service) that pg_usher enforces.",
      "The background worker connects here at server start to publish the registry; registry "
      "changes are accepted only in this database.",
      &database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "usher.max_services", "Number of services pg_usher can track in shared memory.", nullptr,
      &max_services, 64, 2, 10000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "usher.max_role_mappings", "Number of role-to-service mappings pg_usher can publish.", nullptr,
      &max_role_mappings, 256, 0, 100000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  usher::sem::define_settings();
}

void define() {
  if (process_shared_preload_libraries_in_progress) define_server_settings();
  for (size_t i = 0; i < pairs.size(); i++) {
    ThresholdPair& pair = pairs[i];
    pair.warning = pair.warning_default;
    pair.critical = pair.critical_default;
    const char* levels[2] = {"warning", "critical"};
    int* targets[2] = {&pair.warning, &pair.critical};
    int defaults[2] = {pair.warning_default, pair.critical_default};
    for (int level = 0; level < 2; level++) {
      GucText& text = guc_text[i][level];
      snprintf(text.name, sizeof text.name, "usher.%s_%s", pair.stem, levels[level]);
      snprintf(text.description, sizeof text.description,
               "health() reports %s when the %s reaches this value (0 disables).",
               levels[level], pair.description);
      DefineCustomIntVariable(text.name, text.description, nullptr, targets[level],
                              defaults[level], 0, pair.max, PGC_SUSET,
                              guc_flags(pair.unit), nullptr, nullptr, nullptr);
    }
  }
}

std::span<const ThresholdPair> thresholds() { return pairs; }

const char* reported_unit(Unit unit) {
  switch (unit) {
    case Unit::percent: return "percent";
    case Unit::milliseconds: return "seconds";
    case Unit::transaction_ids: return "transaction_ids";
  }
  return "";
}

}  // namespace usher::settings
