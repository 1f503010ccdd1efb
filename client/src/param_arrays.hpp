#pragma once
// Internal: Params as libpq's parallel arrays (values, types, lengths, formats), for
// Connection::exec_params (every statement, the pool's own included): every value is
// sent whole, and what libpq would cut short is refused (statement.cpp).

#include <libpq-fe.h>

#include <span>
#include <vector>

#include "usher/connection.hpp"

namespace usher::detail {

struct ParamArrays {
  // Throws usher::InvalidParameter for a text value with a NUL byte (22021) or a value
  // longer than libpq's int length (54000), naming the parameter.
  explicit ParamArrays(std::span<const Param> params);
  int count() const noexcept { return static_cast<int>(values.size()); }

  std::vector<const char*> values;
  std::vector<Oid> types;
  std::vector<int> lengths, formats;
};

}  // namespace usher::detail
