// The settings registry: every usher.* GUC is defined here, from one table (and the
// health thresholds from the table of pairs), before _PG_init installs any hook; the
// modules read the variables declared in settings.hpp. Thresholds are superuser-settable
// (PGC_SUSET): a health probe must not be able to hide a problem by raising its own
// session's thresholds; on PostgreSQL 15+ a DBA can GRANT SET ON PARAMETER to a
// monitoring role instead.
#include "settings.hpp"

#include <array>

#include "pg_includes.hpp"

namespace usher::settings {

namespace {

constexpr int seconds(int s) { return s * 1000; }

// 0 disables a threshold. A warning above its critical threshold simply never shows:
// the value is critical first. (Cross-checking the pair in check hooks would reject
// valid postgresql.conf files depending on the order the two lines are applied.)
std::array<ThresholdPair, 10> pairs{{
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
    {"replication_lag_bytes", "replication_lag_bytes", Unit::kilobytes,
     "WAL a standby has yet to replay (received there, or written on the primary)", 64 * 1024,
     1024 * 1024, INT_MAX},
    {"replication_state", "replication_state", Unit::flag,
     "replication flag (1: replay paused, or WAL not streaming)", 1, 0, 1},
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

int guc_flags(Unit unit) {
  switch (unit) {
    case Unit::milliseconds: return GUC_UNIT_MS;
    case Unit::kilobytes: return GUC_UNIT_KB;
    default: return 0;
  }
}

}  // namespace

// The variables the modules read. Their initial values are the defaults below, so
// that code reading one before define() (or without preloading, where some are never
// defined) sees the default.
char* database = nullptr;
int max_services = 64;
int max_role_mappings = 256;
int max_semaphores = 64;
int history_samples = 3600;
int registry_wait_ms = 10000;
bool gate = true;
int max_active_total = 0;
int sample_interval_ms = 1000;
int cpu_cores = 0;

namespace {

// When a setting exists. PostgreSQL cannot define a postmaster-context setting after
// start, and the settings of shared memory, the login hook and the gate mean nothing
// without them: those exist only when pg_usher is preloaded.
enum class Loaded { always, preloaded };

// One usher.* setting: what DefineCustom*Variable takes, and when it is defined. The
// variable is one of `integer`, `boolean` or `string`, with its default (and, for an
// integer, its bounds).
struct Setting {
  const char* name;
  const char* description;  // short_desc
  const char* details;      // long_desc, or nullptr
  GucContext context;
  Loaded loaded;
  int flags = 0;
  int* integer = nullptr;
  int integer_default = 0;
  int min = 0;
  int max = 0;
  bool* boolean = nullptr;
  bool boolean_default = false;
  char** string = nullptr;
  const char* string_default = nullptr;
};

constexpr int minutes(int m) { return seconds(m * 60); }

// Every usher.* setting but the health thresholds (generated from `pairs` above), with
// the module that reads it. docs/reference.md describes each; keep them in step.
const Setting plain_settings[] = {
    // registry.cpp, worker.cpp, publish_on_commit.cpp
    {.name = "usher.database",
     .description = "Database holding the service registry (usher.service) that pg_usher enforces.",
     .details = "The background worker connects here at server start to publish the registry; registry "
                "changes are accepted only in this database.",
     .context = PGC_POSTMASTER, .loaded = Loaded::preloaded,
     .string = &database, .string_default = "postgres"},
    // shared_state.cpp
    {.name = "usher.max_services", .description = "Number of services pg_usher can track in shared memory.",
     .details = nullptr, .context = PGC_POSTMASTER, .loaded = Loaded::preloaded,
     .integer = &max_services, .integer_default = 64, .min = 2, .max = 10000},
    {.name = "usher.max_role_mappings", .description = "Number of role-to-service mappings pg_usher can publish.",
     .details = nullptr, .context = PGC_POSTMASTER, .loaded = Loaded::preloaded,
     .integer = &max_role_mappings, .integer_default = 256, .min = 0, .max = 100000},
    // semaphore_state.cpp
    {.name = "usher.max_semaphores",
     .description = "Number of application semaphores (usher.set_semaphore) pg_usher can hold in shared memory.",
     .details = nullptr, .context = PGC_POSTMASTER, .loaded = Loaded::preloaded,
     .integer = &max_semaphores, .integer_default = 64, .min = 1, .max = 10000},
    // sampler.cpp
    {.name = "usher.history_samples", .description = "Samples usher.activity_history keeps per service (a ring buffer).",
     .details = "Shared memory used: about 32 bytes x usher.history_samples x usher.max_services.",
     .context = PGC_POSTMASTER, .loaded = Loaded::preloaded,
     .integer = &history_samples, .integer_default = 3600, .min = 10, .max = 1000000},
    // admission.cpp
    {.name = "usher.registry_wait",
     .description = "How long a login of an ordinary role waits, after a server start, for the service registry to "
                    "be published.",
     .details = "Until then no login could be counted under its service. A login still waiting when this passes "
                "is refused (57P03); superusers never wait.",
     .context = PGC_SIGHUP, .loaded = Loaded::preloaded, .flags = GUC_UNIT_MS,
     .integer = &registry_wait_ms, .integer_default = seconds(10), .min = 0, .max = minutes(60)},
    // gate.cpp
    {.name = "usher.gate", .description = "Enforces the services' max_active statement limits.",
     .details = "Off: statements are not gated; statements already waiting keep waiting for their turn.",
     .context = PGC_SIGHUP, .loaded = Loaded::preloaded,
     .boolean = &gate, .boolean_default = true},
    {.name = "usher.max_active_total",
     .description = "Statements of all services that may run at once (0: no server-wide limit).",
     .details = "Waiting statements are admitted by their service's priority, then in arrival order. "
                "Superusers are not counted.",
     .context = PGC_SIGHUP, .loaded = Loaded::preloaded,
     .integer = &max_active_total, .integer_default = 0, .min = 0, .max = 100000},
    // sampler.cpp, worker.cpp
    {.name = "usher.sample_interval",
     .description = "How often the launcher samples per-service activity into usher.activity_history.",
     .details = nullptr, .context = PGC_SIGHUP, .loaded = Loaded::always, .flags = GUC_UNIT_MS,
     .integer = &sample_interval_ms, .integer_default = seconds(1), .min = 100, .max = minutes(60)},
    // sampler.cpp (usher.pool_advice)
    {.name = "usher.cpu_cores", .description = "CPU cores usher.pool_advice() assumes (0: detect with sysconf).",
     .details = nullptr, .context = PGC_SUSET, .loaded = Loaded::always,
     .integer = &cpu_cores, .integer_default = 0, .min = 0, .max = 65536},
};

void define_setting(const Setting& s) {
  if (s.integer != nullptr)
    DefineCustomIntVariable(s.name, s.description, s.details, s.integer, s.integer_default, s.min, s.max, s.context,
                            s.flags, nullptr, nullptr, nullptr);
  else if (s.boolean != nullptr)
    DefineCustomBoolVariable(s.name, s.description, s.details, s.boolean, s.boolean_default, s.context, s.flags,
                             nullptr, nullptr, nullptr);
  else
    DefineCustomStringVariable(s.name, s.description, s.details, s.string, s.string_default, s.context, s.flags,
                               nullptr, nullptr, nullptr);
}

// A threshold pair's two settings, named and described from its row in `pairs`.
void define_thresholds(size_t i) {
  ThresholdPair& pair = pairs[i];
  const char* levels[2] = {"warning", "critical"};
  int* targets[2] = {&pair.warning, &pair.critical};
  int defaults[2] = {pair.warning_default, pair.critical_default};
  for (int level = 0; level < 2; level++) {
    GucText& text = guc_text[i][level];
    snprintf(text.name, sizeof text.name, "usher.%s_%s", pair.stem, levels[level]);
    snprintf(text.description, sizeof text.description,
             "health() reports %s when the %s reaches this value (0 disables).", levels[level], pair.description);
    *targets[level] = defaults[level];
    define_setting({.name = text.name, .description = text.description, .details = nullptr,
                    .context = PGC_SUSET, .loaded = Loaded::always, .flags = guc_flags(pair.unit),
                    .integer = targets[level], .integer_default = defaults[level], .min = 0, .max = pair.max});
  }
}

}  // namespace

void define() {
  for (const Setting& setting : plain_settings)
    if (setting.loaded == Loaded::always || process_shared_preload_libraries_in_progress) define_setting(setting);
  for (size_t i = 0; i < pairs.size(); i++) define_thresholds(i);
}

std::span<const ThresholdPair> thresholds() { return pairs; }

const char* reported_unit(Unit unit) {
  switch (unit) {
    case Unit::percent: return "percent";
    case Unit::milliseconds: return "seconds";
    case Unit::transaction_ids: return "transaction_ids";
    case Unit::kilobytes: return "bytes";
    case Unit::flag: return "flag";
  }
  return "";
}

}  // namespace usher::settings
