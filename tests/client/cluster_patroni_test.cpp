// usher::Cluster's nodes from Patroni's REST API (ClusterConfig::patroni_urls), against a
// real HTTP server the test starts (tests/client/patroni_stub.py: canned bodies, statuses,
// a redirect, a server that never finishes, huge bodies). PatroniRest* need no
// PostgreSQL; ClusterPatroni* run in tests/suites/client.sh's cluster run, where the
// member list names its real primary and streaming standby (USHER_TEST_PRIMARY_PORT,
// USHER_TEST_STANDBY_PORT).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_support.hpp"

namespace usher::test {
namespace {

// The stub: started in a scratch folder, stopped (SIGTERM) with the object.
class PatroniStub {
 public:
  PatroniStub() {
    char tmpl[] = "/tmp/usher-patroni-stub.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    int fds[2];
    if (::pipe(fds) != 0) {
      std::filesystem::remove_all(dir_);
      throw std::runtime_error("pipe failed");
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::execlp("python3", "python3", USHER_TEST_PATRONI_STUB, dir_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    FILE* out = ::fdopen(fds[0], "r");
    if (!out || std::fscanf(out, "%d", &port_) != 1) port_ = 0;
    if (out) std::fclose(out);
    if (port_ == 0) {
      stop();  // the destructor does not run when the constructor throws
      throw std::runtime_error("patroni_stub.py did not start (python3?)");
    }
  }
  ~PatroniStub() { stop(); }
  PatroniStub(const PatroniStub&) = delete;
  PatroniStub& operator=(const PatroniStub&) = delete;

  // The base URL of a behaviour ("file/good", "status/503", "slow", ...).
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
  }
  // Serves `body` as /file/NAME/cluster from now on (written whole, then renamed).
  std::string serve(const std::string& name, const std::string& body) const {
    auto tmp = dir_ + "/." + name;
    std::ofstream(tmp, std::ios::binary) << body;
    std::filesystem::rename(tmp, dir_ + "/" + name);
    return url("file/" + name);
  }
  // How many requests asked for `path` (e.g. "/file/good/cluster").
  int requests(const std::string& path) const {
    std::ifstream in(dir_ + "/requests.log");
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line == path;
    return n;
  }
  int port() const { return port_; }

 private:
  void stop() noexcept {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// One stub for the whole program (a python3 start is ~0.3 s on the loaded 2-core VM):
// each test serves its own file names.
PatroniStub& stub() {
  static PatroniStub s;
  return s;
}

// A port nothing listens on (bound, then closed).
int closed_port() {
  SilentServer s;
  return s.port();
}

std::string member(const std::string& name, const std::string& role, const std::string& host, int port,
                   const std::string& extra = "") {
  return "{\"name\": \"" + name + "\", \"role\": \"" + role + "\", \"state\": \"running\", \"api_url\": "
         "\"http://127.0.0.1:8008/patroni\", \"host\": \"" + host + "\", \"port\": " + std::to_string(port) +
         ", \"timeline\": 1" + extra + "}";
}
std::string members_json(const std::vector<std::string>& members) {
  std::string out = "{\"members\": [";
  for (std::size_t i = 0; i < members.size(); ++i) out += (i ? ", " : "") + members[i];
  return out + "], \"scope\": \"usher-test\"}";
}

PatroniError::Kind kind_of(const std::vector<std::string>& urls, std::string& what,
                           std::chrono::milliseconds timeout = 2s) {
  try {
    read_patroni_members(urls, timeout);
  } catch (const PatroniError& e) {
    what = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "no PatroniError for " << urls.front();
  return PatroniError::Kind::unreachable;
}

// Patroni 3.0.2's /cluster as it writes it (patroni/utils.py cluster_as_json): the
// leader has no lag, a replica's lag may be "unknown".
TEST(PatroniRest, ReadsPatronisMemberList) {
  auto url = stub().serve("listed", members_json({
      member("n1", "leader", "10.0.0.11", 5432),
      member("n2", "sync_standby", "10.0.0.12", 5433, ", \"lag\": 0"),
      member("n3", "replica", "::1", 5434, ", \"lag\": \"unknown\", \"tags\": {\"nofailover\": true}"),
      member("n4", "replica", "10.0.0.14", 5435, ", \"lag\": 1048576"),
  }));
  auto m = read_patroni_members({url + "/"}, 2s);  // a trailing slash is fine
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].name, "n1");
  EXPECT_EQ(m[0].role, "leader");
  EXPECT_EQ(m[0].state, "running");
  EXPECT_EQ(m[0].endpoint(), "10.0.0.11:5432");
  EXPECT_FALSE(m[0].lag_bytes);
  EXPECT_EQ(m[1].role, "sync_standby");
  EXPECT_EQ(m[1].lag_bytes, 0u);
  EXPECT_EQ(m[2].endpoint(), "[::1]:5434");
  EXPECT_FALSE(m[2].lag_bytes);  // "unknown"
  EXPECT_EQ(m[3].lag_bytes, 1048576u);
  EXPECT_EQ(stub().requests("/file/listed/cluster"), 1);
}

// Bodies that are not a member list: each a PatroniError of its kind naming what is
// wrong, never a crash or a partial list.
TEST(PatroniRest, HostileBodiesAreTypedErrors) {
  std::string many = "{\"members\": [";
  for (int i = 0; i < 10000; ++i) many += (i ? "," : "") + std::string("{\"host\":\"h\",\"port\":1,\"role\":\"replica\"}");
  many += "]}";
  using K = PatroniError::Kind;
  struct Case {
    std::string body;
    K kind;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"<html>not JSON</html>", K::not_json, "not JSON"},
      {"", K::not_json, "not JSON"},
      {"{\"members\": [", K::not_json, "not JSON"},
      {"[1, 2]", K::bad_members, "a JSON array, not an object"},
      {"{\"scope\": \"x\"}", K::bad_members, "no \"members\" array"},
      {"{\"members\": {\"a\": 1}}", K::bad_members, "no \"members\" array"},
      {"{\"members\": [42]}", K::bad_members, "members[0]: a JSON number, not an object"},
      {"{\"members\": [{\"name\": \"n1\", \"role\": \"leader\", \"port\": 5432}]}", K::bad_members,
       "members[0] (n1): no \"host\""},
      {"{\"members\": [{\"host\": 5, \"port\": 5432, \"role\": \"leader\"}]}", K::bad_members,
       "\"host\" is a JSON number, not a string"},
      {"{\"members\": [{\"host\": \"\", \"port\": 5432, \"role\": \"leader\"}]}", K::bad_members,
       "\"host\" \"\" is not one host name or address"},
      {"{\"members\": [{\"host\": \"a,b\", \"port\": 5432, \"role\": \"leader\"}]}", K::bad_members,
       "\"host\" \"a,b\" is not one host name or address"},
      {"{\"members\": [{\"host\": \"a b\", \"port\": 5432, \"role\": \"leader\"}]}", K::bad_members,
       "is not one host name or address"},
      {"{\"members\": [{\"host\": \"h\", \"port\": \"5432\", \"role\": \"leader\"}]}", K::bad_members,
       "\"port\" \"5432\" is not an integer"},
      {"{\"members\": [{\"host\": \"h\", \"port\": 5432.5, \"role\": \"leader\"}]}", K::bad_members,
       "\"port\" 5432.5 is not an integer"},
      {"{\"members\": [{\"host\": \"h\", \"port\": null, \"role\": \"leader\"}]}", K::bad_members,
       "\"port\" null is not an integer"},
      {"{\"members\": [{\"host\": \"h\", \"port\": 0, \"role\": \"leader\"}]}", K::bad_members,
       "\"port\" 0 is not 1 to 65535"},
      {"{\"members\": [{\"host\": \"h\", \"port\": 65536, \"role\": \"leader\"}]}", K::bad_members,
       "\"port\" 65536 is not 1 to 65535"},
      {"{\"members\": [{\"host\": \"h\", \"port\": -1, \"role\": \"leader\"}]}", K::bad_members,
       "\"port\" -1 is not 1 to 65535"},
      {"{\"members\": [{\"host\": \"h\", \"port\": 18446744073709551615, \"role\": \"leader\"}]}", K::bad_members,
       "is not 1 to 65535"},
      {"{\"members\": [{\"host\": \"h\", \"port\": 5432}]}", K::bad_members, "\"role\" is missing or not a string"},
      {"{\"members\": [{\"host\": \"h\", \"port\": 5432, \"role\": [\"leader\"]}]}", K::bad_members,
       "\"role\" is missing or not a string"},
      {members_json({member("a", "leader", "h", 1), member("b", "replica", "h", 1)}), K::bad_members,
       "h:1 is listed twice"},
      {many, K::bad_members, "10000 members: at most 64"},
      {std::string(200000, '[') + std::string(200000, ']'), K::bad_members, "nested deeper than 32 levels"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    auto name = "case" + std::to_string(i);
    std::string what;
    EXPECT_EQ(kind_of({stub().serve(name, c.body)}, what), c.kind) << name << ": " << what;
    EXPECT_NE(what.find(c.says), std::string::npos) << name << ": " << what;
    EXPECT_NE(what.find("/file/" + name + "/cluster"), std::string::npos) << what;  // names the URL
  }
}

// What the HTTP exchange can do wrong: each a PatroniError of its kind, every call
// bounded by the timeout, nothing followed or read past the cap.
TEST(PatroniRest, HostileServersAreTypedErrorsWithinTheTimeout) {
  stub().serve("good", members_json({member("n1", "leader", "h", 5432)}));
  using K = PatroniError::Kind;
  std::string what;
  EXPECT_EQ(kind_of({stub().url("status/500")}, what), K::http_status);
  EXPECT_NE(what.find("HTTP 500"), std::string::npos) << what;
  EXPECT_EQ(kind_of({stub().url("status/503")}, what), K::http_status);
  EXPECT_NE(what.find("HTTP 503"), std::string::npos) << what;
  EXPECT_EQ(kind_of({stub().url("redirect")}, what), K::redirect);
  EXPECT_NE(what.find("HTTP 302 to http://127.0.0.1:" + std::to_string(stub().port()) + "/file/good/cluster (redirects are not followed)"),
            std::string::npos) << what;
  EXPECT_EQ(stub().requests("/file/good/cluster"), 0);  // not followed
  EXPECT_EQ(kind_of({stub().url("huge")}, what), K::too_large);
  EXPECT_NE(what.find("larger than 1048576 bytes"), std::string::npos) << what;
  EXPECT_EQ(kind_of({stub().url("hugelen")}, what), K::too_large);
  EXPECT_EQ(kind_of({stub().url("slow")}, what, 300ms), K::timeout);  // never a hang
  EXPECT_NE(what.find("no answer within 300 ms"), std::string::npos) << what;
  EXPECT_EQ(kind_of({"http://127.0.0.1:" + std::to_string(closed_port())}, what), K::unreachable);
  EXPECT_EQ(kind_of({"file:///etc/passwd"}, what), K::unreachable);  // only http and https
  EXPECT_EQ(kind_of({"gopher://127.0.0.1:" + std::to_string(stub().port())}, what), K::unreachable);
  EXPECT_THROW(read_patroni_members({}, 1s), std::invalid_argument);
}

// The URLs in turn: the first that answers with a member list; when none does, every
// URL's reason, the last one's kind. A password in a URL is never shown.
TEST(PatroniRest, TriesEachUrlInTurnAndRedactsPasswords) {
  auto good = stub().serve("good2", members_json({member("n1", "leader", "h", 5432)}));
  auto with_pw = [&](const std::string& path) {
    return "http://patroni:s3cret@127.0.0.1:" + std::to_string(stub().port()) + "/" + path;
  };
  auto m = read_patroni_members({stub().url("status/503"), stub().url("slow"), with_pw("file/good2")}, 300ms);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].endpoint(), "h:5432");

  std::string what;
  auto bad = stub().serve("bad", "nope");
  EXPECT_EQ(kind_of({with_pw("status/503"), with_pw("file/bad"), "http://u:s3cret@127.0.0.1:" +
                     std::to_string(closed_port())}, what), PatroniError::Kind::unreachable);
  EXPECT_NE(what.find("no Patroni URL answered with a member list"), std::string::npos) << what;
  EXPECT_NE(what.find("HTTP 503"), std::string::npos) << what;
  EXPECT_NE(what.find("not JSON"), std::string::npos) << what;
  EXPECT_NE(what.find("patroni:***@127.0.0.1"), std::string::npos) << what;
  EXPECT_EQ(what.find("s3cret"), std::string::npos) << what;

  ClusterConfig both;
  both.endpoints = {"127.0.0.1:5432"};
  both.patroni_urls = {good};
  EXPECT_THROW(both.validate(), std::invalid_argument);
  ClusterConfig ftp;
  ftp.patroni_urls = {"ftp://user:s3cret@h/"};
  try {
    ftp.validate();
    ADD_FAILURE() << "ftp:// accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "ClusterConfig.patroni_urls: 'ftp://user:***@h/': only http:// and https:// URLs");
  }
}

// No URL answers when the cluster starts: it has no node, says why, and writes fail
// with NoPrimary naming it (primary_wait 0); no PostgreSQL is needed for that.
TEST(PatroniRest, AClusterWhosePatroniDoesNotAnswerHasNoNodeAndSaysWhy) {
  ClusterConfig c;
  c.patroni_urls = {stub().url("status/503")};
  c.pool = test_config("patroni-none");
  c.health_interval = 50ms;
  Cluster cluster(c);
  EXPECT_TRUE(cluster.nodes().empty());
  EXPECT_NE(cluster.members_error().find("HTTP 503"), std::string::npos) << cluster.members_error();
  try {
    cluster.write([](Connection&) {});
    ADD_FAILURE() << "a write without a node";
  } catch (const NoPrimary& e) {
    EXPECT_NE(std::string(e.what()).find("; Patroni: "), std::string::npos) << e.what();
  }
  EXPECT_THROW(cluster.pool(0), std::out_of_range);
}

// --- against the suite's primary and streaming standby --------------------------------

const char* patroni_env(const char* name) { return std::getenv(name); }
int patroni_port_of(const char* var) { return std::atoi(patroni_env(var)); }
bool patroni_in_recovery(Connection& c) {
  return c.exec("SELECT pg_catalog.pg_is_in_recovery()").scalar<bool>();
}

class ClusterPatroni : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!patroni_env("USHER_TEST_PRIMARY_PORT") || !patroni_env("USHER_TEST_STANDBY_PORT"))
      GTEST_SKIP() << "USHER_TEST_PRIMARY_PORT/STANDBY_PORT not set (tests/suites/client.sh sets them)";
    primary_port = patroni_port_of("USHER_TEST_PRIMARY_PORT");
    standby_port = patroni_port_of("USHER_TEST_STANDBY_PORT");
  }
  ClusterConfig config(const std::string& name, const std::string& url) {
    ClusterConfig c;
    // A URL nothing answers first: each is tried in turn.
    c.patroni_urls = {"http://127.0.0.1:" + std::to_string(closed_port()), url};
    c.pool = test_config(name, {.min_idle = 0, .max_size = 2});
    c.health_interval = 50ms;
    c.health_timeout = 5s;
    return c;
  }
  std::string primary_member(const std::string& role = "leader") {
    return member("pg1", role, "127.0.0.1", primary_port);
  }
  std::string standby_member(const std::string& role = "sync_standby") {
    return member("pg2", role, "127.0.0.1", standby_port, ", \"lag\": 0");
  }
  std::size_t count_nodes(Cluster& cluster) { return cluster.nodes().size(); }
  int primary_port = 0, standby_port = 0;
};

TEST_F(ClusterPatroni, FindsTheNodesThroughTheRestApiAndRoutesWritesAndReads) {
  const std::string file = "routes";
  auto url = stub().serve(file, members_json({primary_member(), standby_member()}));
  Cluster cluster(config("cp-routes", url));
  auto nodes = cluster.nodes();
  ASSERT_EQ(nodes.size(), 2u) << cluster.members_error();
  EXPECT_EQ(nodes[0].endpoint, "127.0.0.1:" + std::to_string(primary_port));
  EXPECT_EQ(nodes[0].patroni_role, "leader");
  EXPECT_EQ(nodes[0].patroni_state, "running");
  EXPECT_TRUE(nodes[0].is_primary);
  EXPECT_EQ(nodes[1].patroni_role, "sync_standby");
  EXPECT_EQ(nodes[1].patroni_lag_bytes, 0u);
  EXPECT_EQ(nodes[1].role, NodeRole::standby);
  EXPECT_TRUE(nodes[1].members_error.empty()) << nodes[1].members_error;
  EXPECT_FALSE(cluster.write([](Connection& c) { return patroni_in_recovery(c); }));
  EXPECT_FALSE(cluster.transaction([](Connection& c) { return patroni_in_recovery(c); }));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(cluster.read([](Connection& c) { return patroni_in_recovery(c); }));
  EXPECT_EQ(cluster.nodes()[1].reads, 3u);
}

// Patroni adds and removes members: the cluster follows at the next health round. A
// member list that cannot be read keeps the last one (and says why); the nodes' own
// answers still route.
TEST_F(ClusterPatroni, MembersJoinAndLeaveAsPatroniSaysAndABadListKeepsTheLastOne) {
  const std::string file = "join-leave";
  auto url = stub().serve(file, members_json({primary_member()}));
  Cluster cluster(config("cp-members", url));
  ASSERT_EQ(count_nodes(cluster), 1u);
  auto where = [](Connection& c) { return patroni_in_recovery(c); };
  EXPECT_FALSE(cluster.read(where));  // no standby: the primary

  stub().serve(file, members_json({primary_member(), standby_member("replica")}));
  ASSERT_TRUE(eventually([&] { return count_nodes(cluster) == 2; }));
  ASSERT_TRUE(eventually([&] { return cluster.read(where); }));  // the standby, once probed
  auto standby_index = cluster.nodes()[1].index;

  stub().serve(file, members_json({primary_member()}));
  ASSERT_TRUE(eventually([&] { return count_nodes(cluster) == 1; }));
  ReadOptions replica_only;
  replica_only.fallback = ReadFallback::fail;
  try {
    cluster.read(where, replica_only);
    ADD_FAILURE() << "a read went to a node Patroni no longer lists";
  } catch (const NoReplica& e) {
    EXPECT_EQ(std::string(e.what()).find("127.0.0.1:" + std::to_string(standby_port) + ":"), std::string::npos)
        << e.what();
  }

  stub().serve(file, members_json({primary_member(), standby_member()}));  // back, same slot
  ASSERT_TRUE(eventually([&] { return count_nodes(cluster) == 2 && cluster.read(where); }));
  EXPECT_EQ(cluster.nodes()[1].index, standby_index);

  stub().serve(file, "{\"members\": [{\"host\": 1}]}");
  ASSERT_TRUE(eventually([&] { return !cluster.members_error().empty(); }));
  auto nodes = cluster.nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_NE(nodes[0].members_error.find("\"host\" is a JSON number"), std::string::npos) << nodes[0].members_error;
  EXPECT_NE(nodes[0].members_error.find("no Patroni URL answered with a member list"), std::string::npos)
      << nodes[0].members_error;
  EXPECT_FALSE(cluster.write(where));
  EXPECT_TRUE(cluster.read(where));
}

// Precedence: Patroni names the leader, and the node must answer as primary itself. A
// node in recovery never takes a write, whatever Patroni says; a primary Patroni does
// not name takes none while Patroni's list is current.
TEST_F(ClusterPatroni, WritesGoOnlyToPatronisLeaderAndOnlyIfItIsNotInRecovery) {
  const std::string file = "precedence";
  auto url = stub().serve(file, members_json({primary_member("replica"), standby_member("leader")}));
  auto c = config("cp-precedence", url);
  Cluster cluster(c);
  ASSERT_EQ(count_nodes(cluster), 2u);
  for (const auto& n : cluster.nodes()) EXPECT_FALSE(n.is_primary) << n.endpoint;
  int runs = 0;
  EXPECT_THROW(cluster.write([&](Connection&) { ++runs; }), NoPrimary);
  EXPECT_EQ(runs, 0);

  stub().serve(file, members_json({primary_member(), standby_member()}));
  ASSERT_TRUE(eventually([&] { return cluster.nodes()[0].is_primary; }));
  EXPECT_FALSE(cluster.write([](Connection& c) { return patroni_in_recovery(c); }));
}

}  // namespace
}  // namespace usher::test
