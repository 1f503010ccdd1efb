// The service-name rule, one for both halves. A session belongs to the service named by
// its application_name up to the first '/': "orders/worker-3" is service "orders", and a
// name with nothing before the first '/' (or none at all) is "default". The extension
// applies it at login (admission.cpp) and in usher.backends; libusher builds the
// application_name its connections send from it (PoolConfig::effective_application_name).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/pure_cpp.hpp"  // must be the last include

namespace usher {

inline constexpr std::string_view default_service = "default";
inline constexpr char service_separator = '/';
// PostgreSQL keeps NAMEDATALEN - 1 bytes of an application_name.
inline constexpr std::size_t max_application_name_bytes = 63;

constexpr std::string_view service_of_application(std::string_view application_name) {
  std::string_view service = application_name.substr(0, application_name.find(service_separator));
  return service.empty() ? default_service : service;
}

// The application_name that puts a client under `service`: "<service>/<instance>", cut to
// max_application_name_bytes. service_of_application gives `service` back whenever the
// service has no '/' and is not longer than that.
inline std::string application_name_for(std::string_view service, std::string_view instance) {
  std::string name;
  name.reserve(service.size() + 1 + instance.size());
  name.append(service).append(1, service_separator).append(instance);
  name.resize(std::min(name.size(), max_application_name_bytes));
  return name;
}

}  // namespace usher
