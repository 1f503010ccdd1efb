// pg_usher's configuration parameters (GUCs): every usher.* setting is defined here, in
// one table in settings.cpp, and the modules read their values from the variables
// below. Health thresholds come in warning / critical pairs, one pair per health check,
// named usher.<check>_warning / _critical.
#pragma once

#include <span>

namespace usher::settings {

// How a threshold is measured, which fixes its GUC unit and how health() reports it.
// kilobytes: a GUC in kB (so '64MB' can be written), reported in bytes; flag: a
// condition that holds (1) or not (0).
enum class Unit { percent, milliseconds, transaction_ids, kilobytes, flag };

struct ThresholdPair {
  const char* check;           // health() check name
  const char* stem;            // GUC names are usher.<stem>_warning / _critical
  Unit unit;
  const char* description;     // what the check measures, for the GUC's short description
  int warning_default;
  int critical_default;
  int max;
  int warning;                 // current values, bound to the GUCs
  int critical;
};

// Defined only while preloading: server start (postmaster context), fixed until restart.
extern char* database;          // usher.database: where the registry lives
extern int max_services;        // usher.max_services
extern int max_role_mappings;   // usher.max_role_mappings
extern int max_semaphores;      // usher.max_semaphores
extern int history_samples;     // usher.history_samples: ticks the sampler's ring keeps

// Defined only while preloading: reloadable (SIGHUP), read by hooks installed only then.
extern int registry_wait_ms;    // usher.registry_wait: a login's wait for the first publication
extern bool gate;               // usher.gate: enforce the services' max_active
extern int max_active_total;    // usher.max_active_total: statements of all services (0: no limit)

// Defined whenever the library is loaded (also on first use, without preloading).
extern int sample_interval_ms;  // usher.sample_interval (SIGHUP)
extern int cpu_cores;           // usher.cpu_cores (superuser; 0 = detect)

// Defines every usher.* GUC. Called once from _PG_init, before any hook is installed.
void define();

// The health thresholds, in the order health() reports its checks.
std::span<const ThresholdPair> thresholds();

// The unit as health() reports values and thresholds: seconds, percent or xids.
const char* reported_unit(Unit unit);

}  // namespace usher::settings
