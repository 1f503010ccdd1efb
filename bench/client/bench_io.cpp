// Bulk paths of libusher against a server (bench/client/ab_io.sh runs it): one run of
// MODE, its wall time printed in seconds. Every mode starts from an empty table
// bench_io (id bigint, body text), created and truncated here.
//   pipelined   10,000 single-row INSERTs through Connection::exec_pipeline, 100 a batch
//   single      the same 10,000 INSERTs through exec(), one round trip each
//   copy        1,000,000 rows through Connection::copy_from (CopyWriter::row)
//   batched     the same 1,000,000 rows as multi-row INSERT ... VALUES, 1,000 rows
//               (2,000 parameters) a statement
// Usage: bench_io MODE   (connection from the PG* environment)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <usher/usher.hpp>

namespace {

constexpr int single_rows = 10'000, batch = 100;
constexpr long bulk_rows = 1'000'000;
constexpr int values_per_insert = 1'000;

std::string body(long i) { return "row " + std::to_string(i); }

void pipelined(usher::Connection& c) {
  for (int done = 0; done < single_rows; done += batch) {
    usher::Pipeline p;
    for (int i = done; i < done + batch; ++i) p.add("INSERT INTO bench_io VALUES ($1, $2)", i, body(i));
    c.exec_pipeline(p);
  }
}

void single(usher::Connection& c) {
  for (int i = 0; i < single_rows; ++i) c.exec("INSERT INTO bench_io VALUES ($1, $2)", i, body(i));
}

void copy(usher::Connection& c) {
  c.copy_from("COPY bench_io (id, body) FROM STDIN", [](usher::CopyWriter& w) {
    for (long i = 0; i < bulk_rows; ++i) w.row(i, body(i));
  });
}

void batched(usher::Connection& c) {
  std::string sql = "INSERT INTO bench_io VALUES ";
  for (int k = 0; k < values_per_insert; ++k)
    sql += (k ? ", ($" : "($") + std::to_string(2 * k + 1) + "::bigint, $" + std::to_string(2 * k + 2) + ")";
  std::vector<usher::Param> params(2 * values_per_insert);
  for (long done = 0; done < bulk_rows; done += values_per_insert) {
    for (int k = 0; k < values_per_insert; ++k) {
      params[2 * k] = usher::to_param(done + k);
      params[2 * k + 1] = usher::to_param(body(done + k));
    }
    c.exec_params(sql, params);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: bench_io pipelined|single|copy|batched\n");
    return 2;
  }
  auto conn = usher::Connection::open("", std::chrono::seconds(10));
  conn.exec("CREATE TABLE IF NOT EXISTS bench_io (id bigint, body text)");
  conn.exec("TRUNCATE bench_io");
  void (*run)(usher::Connection&) = nullptr;
  long expect = bulk_rows;
  if (!std::strcmp(argv[1], "pipelined")) run = pipelined, expect = single_rows;
  else if (!std::strcmp(argv[1], "single")) run = single, expect = single_rows;
  else if (!std::strcmp(argv[1], "copy")) run = copy;
  else if (!std::strcmp(argv[1], "batched")) run = batched;
  else return 2;
  auto start = std::chrono::steady_clock::now();
  run(conn);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long n = conn.exec("SELECT count(*) FROM bench_io").scalar<long>();
  if (n != expect) {
    std::fprintf(stderr, "%s: %ld rows, expected %ld\n", argv[1], n, expect);
    return 1;
  }
  std::printf("%.4f\n", s);
}
