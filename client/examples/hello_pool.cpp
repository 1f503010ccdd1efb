// A small tour of libusher: a pool, a parameterised query, an error, the statistics.
//
//   hello_pool ["host=... dbname=..."]     (default: libpq's PG* environment variables)
#include <usher/usher.hpp>

#include <iostream>

int main(int argc, char** argv) {
  usher::PoolConfig config;
  config.conninfo = argc > 1 ? argv[1] : "";
  config.name = "hello";
  config.min_idle = 1;
  config.max_size = 4;
  config.acquire_timeout = std::chrono::seconds(2);
  try {
    usher::Pool pool(config);
    {
      auto conn = pool.acquire();  // returned when `conn` goes out of scope
      auto r = conn->exec("SELECT $1::int + $2::int AS sum, $3::text AS greeting", 40, 2, "hello");
      std::cout << r.get<std::string>(0, "greeting") << ", the answer is "
                << r.get<int>(0, "sum") << "\n";
      try {
        conn->exec("SELECT 1 / $1::int", 0);
      } catch (const usher::DatabaseError& e) {
        std::cout << "SQLSTATE " << e.sqlstate() << (e.is_transient() ? " (transient)" : "")
                  << ": division by zero caught\n";
      }
    }
    auto s = pool.stats();
    std::cout << "connections: " << s.total << " open, " << s.acquired << " lent\n";
    return 0;
  } catch (const usher::Error& e) {
    std::cerr << "hello_pool: " << e.what() << "\n";
    return 1;
  }
}
