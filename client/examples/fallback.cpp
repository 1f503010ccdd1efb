// Pool::run with a retry policy and a fallback: answers from the database while it is
// up, from a cache while it is not. Point it at an address where nothing answers to see
// the breaker open and the fallback answer without waiting out timeouts:
//
//   fallback "host=127.0.0.1 port=1"       (default: libpq's PG* environment variables)
#include <usher/usher.hpp>

#include <iostream>
#include <map>
#include <thread>

int main(int argc, char** argv) {
  usher::PoolConfig config;
  config.conninfo = argc > 1 ? argv[1] : "";
  config.name = "fallback";
  config.min_idle = 1;
  config.acquire_timeout = std::chrono::seconds(1);
  config.logger = [](usher::LogLevel, std::string_view) {};  // the events say it below
  config.on_event = [](const usher::PoolEvent& e) {
    if (e.type == usher::PoolEventType::breaker) std::cout << "breaker: " << e.reason << "\n";
  };
  usher::Pool pool(config);
  std::map<int, std::string> cache{{1, "1 (cached)"}};

  usher::RetryPolicy policy;
  policy.max_attempts = 3;
  policy.max_elapsed = std::chrono::milliseconds(500);
  for (int i = 0; i < 8; ++i) {
    auto start = std::chrono::steady_clock::now();
    std::string answer = pool.run(
        [&](usher::Connection& c) {
          auto v = c.exec("SELECT $1::int::text", 1).scalar<std::string>();
          cache[1] = v + " (cached)";
          return v;
        },
        policy, [&](const usher::Error& e) { return cache[1] + " because: " + e.what(); });
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    std::cout << "answer " << answer << " [" << ms.count() << " ms]\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto s = pool.stats();
  std::cout << "breaker " << usher::to_string(s.breaker.state) << ", refused " << s.circuit_open
            << " acquires\n";
}
