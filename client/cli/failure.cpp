#include "failure.hpp"

#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "usher/errors.hpp"

#include "args.hpp"
#include "exit_codes.hpp"
#include "session.hpp"

namespace usher::cli {

std::string one_line(const std::string& message) {
  std::istringstream in(message);
  std::string line, first, hint;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (first.empty()) {
      for (const char* prefix : {"ERROR:  ", "FATAL:  "})
        if (line.starts_with(prefix)) line.erase(0, std::string_view(prefix).size());
      first = line;
    } else if (line.starts_with("HINT:  ")) {
      hint = line.substr(7);
    }
  }
  return hint.empty() ? first : fmt::format("{} (hint: {})", first, hint);
}

Failure describe_current_exception() {
  try {
    throw;
  } catch (const UsageError& e) {
    return {exit_code::usage, e.what()};
  } catch (const NoPermission& e) {
    return {exit_code::no_permission, e.what()};
  } catch (const ExtensionMissing& e) {
    return {exit_code::config, e.what()};
  } catch (const usher::ConnectionError& e) {
    // libusher's message names the server with any password replaced by ***.
    return {exit_code::unavailable, one_line(e.what())};
  } catch (const usher::PermissionDenied& e) {
    return {exit_code::no_permission,
            fmt::format("{}: the role needs pg_monitor to read pg_usher's views (GRANT pg_monitor TO <role>)",
                        one_line(e.what()))};
  } catch (const usher::DatabaseError& e) {
    const auto& state = e.sqlstate();
    if (state == "55000")
      return {exit_code::config,
              fmt::format("{}: pg_usher must be in shared_preload_libraries (then restart the server)",
                          one_line(e.what()))};
    // Installed, but an older version without the object asked for.
    if (state == "3F000" || state == "42P01" || state == "42883")
      return {exit_code::config,
              fmt::format("{}: pg_usher is missing or too old in this database (CREATE EXTENSION pg_usher, "
                          "or ALTER EXTENSION pg_usher UPDATE)",
                          one_line(e.what()))};
    // A value refused, or naming something that does not exist (42704: no such service).
    if (state.starts_with("22") || state == "42704") return {exit_code::data_error, one_line(e.what())};
    return {exit_code::software, fmt::format("server error {}: {}", state, one_line(e.what()))};
  } catch (const std::exception& e) {
    return {exit_code::software, one_line(e.what())};
  }
}

}  // namespace usher::cli
