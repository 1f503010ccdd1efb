#pragma once
// Connection strings carry passwords; everything libusher prints goes through here.

#include <string>
#include <string_view>

namespace usher {

// Returns `conninfo` (keyword=value form or a postgres:// URI) with the values of
// password and sslpassword replaced by "***". A keyword=value string that stops
// parsing is cut there and ends with "...", so a malformed string never leaks a secret.
std::string redact_conninfo(std::string_view conninfo);

// Returns `url` (any scheme://, e.g. a Patroni REST URL) with the password of its user
// information (user:password@) and of a password= query parameter replaced by "***".
std::string redact_url(std::string_view url);

}  // namespace usher
