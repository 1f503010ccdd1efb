// Patroni's member list: GET <url>/cluster with libcurl, the body parsed with
// nlohmann::json (docs/ha.md, "How libusher finds the leader"; the choice of libraries
// in docs/client.md, "Dependencies"). Nothing here parses HTTP or JSON by hand.
#include "usher/patroni.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "usher/redact.hpp"

namespace usher {
namespace {

using PatroniKind = PatroniError::Kind;

[[noreturn]] void patroni_bad(const std::string& why) {
  throw PatroniError(PatroniKind::bad_members, fmt::format("Patroni /cluster: {}", why));
}

// Deeper JSON than this is refused before it is built (a member list is 3 levels deep).
constexpr std::size_t kPatroniMaxDepth = 32;

// Only checks the nesting depth (nlohmann's SAX interface), so that a hostile body of
// a million '[' is refused without building it.
struct PatroniDepthCheck : nlohmann::json_sax<nlohmann::json> {
  std::size_t depth = 0;
  bool too_deep = false;
  std::string error;
  bool open() {
    if (++depth > kPatroniMaxDepth) too_deep = true;
    return !too_deep;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { --depth; return true; }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { --depth; return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }
};

// A host libpq takes as one host: no list separator, no blank or control character.
bool patroni_plain_host(const std::string& h) {
  if (h.empty() || h.size() > 255) return false;
  for (unsigned char c : h)
    if (c <= ' ' || c == ',' || c == 0x7f) return false;
  return true;
}

// The body, capped; `over` says the cap stopped it.
struct PatroniBody {
  std::string text;
  bool over = false;
};

std::size_t patroni_write(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<PatroniBody*>(user);
  std::size_t len = size * n;
  if (body->text.size() + len > kPatroniMaxBody) {
    body->over = true;
    return 0;  // libcurl stops the transfer: CURLE_WRITE_ERROR
  }
  body->text.append(data, len);
  return len;
}

void patroni_curl_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  });
}

// A URL's password (user:password@), to take out of libcurl's own messages.
std::string patroni_password(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  char* pw = nullptr;
  if (curl_url_get(u.get(), CURLUPART_PASSWORD, &pw, 0) != CURLUE_OK || !pw) return {};
  std::string out = pw;
  curl_free(pw);
  return out;
}

std::string patroni_scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

std::string patroni_cluster_url(const std::string& base) {
  std::string url = base;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/cluster";
}

// GET `url`; the body of a 200, else throws PatroniError naming the URL.
std::string patroni_get(const std::string& url, std::chrono::milliseconds timeout) {
  patroni_curl_init();
  const std::string shown = redact_url(url);
  const std::string secret = patroni_password(url);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> h(curl_easy_init(), &curl_easy_cleanup);
  if (!h) throw PatroniError(PatroniKind::unreachable, fmt::format("{}: curl_easy_init failed", shown));
  PatroniBody body;
  char errbuf[CURL_ERROR_SIZE] = {};
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
      curl_slist_append(nullptr, "Accept: application/json"), &curl_slist_free_all);
  long ms = static_cast<long>(std::max<std::chrono::milliseconds::rep>(1, timeout.count()));
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT_MS, ms);
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_PROXY, "");  // the nodes are reached directly
  curl_easy_setopt(h.get(), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kPatroniMaxBody));
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &patroni_write);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h.get(), CURLOPT_USERAGENT, "libusher");
  CURLcode rc = curl_easy_perform(h.get());
  if (body.over || rc == CURLE_FILESIZE_EXCEEDED)
    throw PatroniError(PatroniKind::too_large,
                       fmt::format("{}: the answer is larger than {} bytes", shown, kPatroniMaxBody));
  if (rc != CURLE_OK) {
    std::string why = patroni_scrub(*errbuf ? errbuf : curl_easy_strerror(rc), secret);
    throw PatroniError(rc == CURLE_OPERATION_TIMEDOUT ? PatroniKind::timeout : PatroniKind::unreachable,
                       rc == CURLE_OPERATION_TIMEDOUT
                           ? fmt::format("{}: no answer within {} ms ({})", shown, timeout.count(), why)
                           : fmt::format("{}: {}", shown, why));
  }
  long status = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status >= 300 && status < 400) {
    char* to = nullptr;
    curl_easy_getinfo(h.get(), CURLINFO_REDIRECT_URL, &to);
    throw PatroniError(PatroniKind::redirect,
                       fmt::format("{}: HTTP {} to {} (redirects are not followed)", shown, status,
                                   to ? patroni_scrub(redact_url(to), secret) : "?"));
  }
  if (status != 200)
    throw PatroniError(PatroniKind::http_status, fmt::format("{}: HTTP {}", shown, status));
  return std::move(body.text);
}

}  // namespace

std::string_view to_string(PatroniError::Kind kind) noexcept {
  switch (kind) {
    case PatroniKind::unreachable: return "unreachable";
    case PatroniKind::timeout: return "timeout";
    case PatroniKind::http_status: return "http_status";
    case PatroniKind::redirect: return "redirect";
    case PatroniKind::too_large: return "too_large";
    case PatroniKind::not_json: return "not_json";
    case PatroniKind::bad_members: return "bad_members";
  }
  return "unknown";
}

std::string PatroniMember::endpoint() const {
  bool v6 = host.find(':') != std::string::npos && !host.starts_with('/');
  std::string h = v6 ? "[" + host + "]" : host;
  return port ? fmt::format("{}:{}", h, *port) : h;
}

std::vector<PatroniMember> parse_patroni_cluster(std::string_view text) {
  PatroniDepthCheck check;
  if (!nlohmann::json::sax_parse(text.begin(), text.end(), &check)) {
    if (check.too_deep) patroni_bad(fmt::format("JSON nested deeper than {} levels", kPatroniMaxDepth));
    throw PatroniError(PatroniKind::not_json, fmt::format("Patroni /cluster: not JSON: {}", check.error));
  }
  auto j = nlohmann::json::parse(text.begin(), text.end());  // valid: checked above
  if (!j.is_object()) patroni_bad(fmt::format("a JSON {}, not an object", j.type_name()));
  auto members = j.find("members");
  if (members == j.end() || !members->is_array()) patroni_bad("no \"members\" array");
  if (members->size() > kPatroniMaxMembers)
    patroni_bad(fmt::format("{} members: at most {}", members->size(), kPatroniMaxMembers));
  std::vector<PatroniMember> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < members->size(); ++i) {
    const auto& m = (*members)[i];
    if (!m.is_object()) patroni_bad(fmt::format("members[{}]: a JSON {}, not an object", i, m.type_name()));
    PatroniMember pm;
    if (auto n = m.find("name"); n != m.end() && n->is_string()) pm.name = n->get<std::string>();
    auto at = [&](std::string_view what) {
      return pm.name.empty() ? fmt::format("members[{}]: {}", i, what)
                             : fmt::format("members[{}] ({}): {}", i, pm.name, what);
    };
    auto host = m.find("host");
    if (host == m.end()) patroni_bad(at("no \"host\""));
    if (!host->is_string()) patroni_bad(at(fmt::format("\"host\" is a JSON {}, not a string", host->type_name())));
    pm.host = host->get<std::string>();
    if (!patroni_plain_host(pm.host)) patroni_bad(at(fmt::format("\"host\" {} is not one host name or address", host->dump())));
    if (auto port = m.find("port"); port != m.end()) {
      if (!port->is_number_integer())
        patroni_bad(at(fmt::format("\"port\" {} is not an integer", port->dump())));
      auto p = port->is_number_unsigned() ? static_cast<std::int64_t>(std::min<std::uint64_t>(port->get<std::uint64_t>(), 1u << 20))
                                          : port->get<std::int64_t>();
      if (p < 1 || p > 65535) patroni_bad(at(fmt::format("\"port\" {} is not 1 to 65535", port->dump())));
      pm.port = static_cast<int>(p);
    }
    auto role = m.find("role");
    if (role == m.end() || !role->is_string() || role->get<std::string>().empty())
      patroni_bad(at("\"role\" is missing or not a string"));
    pm.role = role->get<std::string>();
    if (auto s = m.find("state"); s != m.end() && s->is_string()) pm.state = s->get<std::string>();
    if (auto lag = m.find("lag"); lag != m.end() && lag->is_number_unsigned())
      pm.lag_bytes = lag->get<std::uint64_t>();
    if (!seen.insert(pm.endpoint()).second) patroni_bad(at(fmt::format("{} is listed twice", pm.endpoint())));
    out.push_back(std::move(pm));
  }
  return out;
}

std::vector<PatroniMember> read_patroni_members(const std::vector<std::string>& urls,
                                                std::chrono::milliseconds timeout) {
  if (urls.empty()) throw std::invalid_argument("read_patroni_members: no URL");
  std::string reasons;
  PatroniKind last = PatroniKind::unreachable;
  for (const auto& base : urls) {
    auto url = patroni_cluster_url(base);
    try {
      auto body = patroni_get(url, timeout);
      try {
        return parse_patroni_cluster(body);
      } catch (const PatroniError& e) {
        throw PatroniError(e.kind(), fmt::format("{}: {}", redact_url(url), e.what()));
      }
    } catch (const PatroniError& e) {
      last = e.kind();
      reasons += reasons.empty() ? "" : "; ";
      reasons += e.what();
    }
  }
  if (urls.size() == 1) throw PatroniError(last, reasons);
  throw PatroniError(last, fmt::format("no Patroni URL answered with a member list: {}", reasons));
}

}  // namespace usher
