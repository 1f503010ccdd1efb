// Which service a session belongs to, from its application_name: the text before the
// first '/', so "orders/worker-3" is service "orders"; an empty name is "default".
#pragma once

#include <cstddef>
#include <string_view>

namespace usher {

inline constexpr std::string_view default_service = "default";

constexpr std::string_view service_of_application(std::string_view application_name) {
  std::string_view service = application_name.substr(0, application_name.find('/'));
  return service.empty() ? default_service : service;
}

}  // namespace usher
