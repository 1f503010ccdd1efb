#pragma once
// Everything libusher offers.
#include "usher/connection.hpp"
#include "usher/errors.hpp"
#include "usher/pool.hpp"
#include "usher/pool_advice.hpp"
#include "usher/pool_config.hpp"
#include "usher/pool_events.hpp"
#include "usher/pool_stats.hpp"
#include "usher/redact.hpp"
#include "usher/result.hpp"
#include "usher/transaction.hpp"
#include "usher/value_traits.hpp"
