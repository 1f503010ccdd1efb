// usher.health_thresholds(): the warning / critical threshold of every health check, in
// the unit health() reports, NULL where a threshold is 0 (disabled). health() joins it.
#include "settings.hpp"
#include "sql_function.hpp"

namespace {

// Thresholds are stored in GUC units (ms for times, kB for WAL); health() reports
// seconds and bytes.
Datum reported_value(const usher::settings::ThresholdPair& pair, int value, bool* isnull) {
  *isnull = value == 0;
  double scaled = value;
  if (pair.unit == usher::settings::Unit::milliseconds) scaled = value / 1000.0;
  if (pair.unit == usher::settings::Unit::kilobytes) scaled = value * 1024.0;
  return Float8GetDatum(scaled);
}

// The columns of usher.health_thresholds(), in its declared order.
enum Column { col_check, col_unit, col_warning, col_critical, column_count };

Datum health_thresholds(FunctionCallInfo fcinfo) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  for (const auto& pair : usher::settings::thresholds()) {
    Datum values[column_count];
    bool nulls[column_count] = {};
    values[col_check] = CStringGetTextDatum(pair.check);
    values[col_unit] = CStringGetTextDatum(usher::settings::reported_unit(pair.unit));
    values[col_warning] = reported_value(pair, pair.warning, &nulls[col_warning]);
    values[col_critical] = reported_value(pair, pair.critical, &nulls[col_critical]);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return (Datum)0;
}

}  // namespace

USHER_SQL_FUNCTION(usher_health_thresholds) { return health_thresholds(fcinfo); }
