// pg_usher's configuration parameters (GUCs). Health thresholds come in warning /
// critical pairs, one pair per health check, named usher.<check>_warning / _critical.
#pragma once

#include <span>

namespace usher::settings {

// How a threshold is measured, which fixes its GUC unit and how health() reports it.
enum class Unit { percent, milliseconds, transaction_ids };

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

// Server-wide settings (postmaster context: fixed at server start).
extern char* database;          // usher.database: where the registry lives
extern int max_services;        // usher.max_services
extern int max_role_mappings;   // usher.max_role_mappings

// Defines every usher.* GUC. Called once from _PG_init.
void define();

// The health thresholds, in the order health() reports its checks.
std::span<const ThresholdPair> thresholds();

// The unit as health() reports values and thresholds: seconds, percent or xids.
const char* reported_unit(Unit unit);

}  // namespace usher::settings
