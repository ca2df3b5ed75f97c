// The load generator keeps working: every scenario, tiny, against a real
// parleyd and PostgreSQL. Not a timed test: it checks the JSON's shape and
// that nothing was lost, not the figures.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <boost/json.hpp>

#include "parleyd_process.hpp"
#include "postgres.hpp"
#include "temp_dir.hpp"

namespace parley::test {
namespace {

namespace json = boost::json;

class BenchSmoke : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_url_ = new std::string(TestPostgres::shared().create_database("bench_smoke"));
    ParleydProcess::Options options;
    options.database_url = *database_url_;
    // Cheap password hashing: registering users is not what is measured.
    options.plugins_yaml = session_plugin_yaml(
                               "      limits:\n"
                               "        registrations_per_address_per_hour: 1000000000\n"
                               "        password_logins_per_address_per_15min: 1000000000\n"
                               "        password_hashes_at_once_per_address: 1000000\n") +
                           // For the presence scenario: no grace period to count as delay.
                           "  - name: presence\n"
                           "    config:\n"
                           "      grace_seconds: 0\n"
                           // For the group scenario: groups of its --members.
                           "  - name: group\n"
                           "    config:\n"
                           "      max_members: 8\n";
    options.server_yaml =
        "  rate_limit:\n"
        "    requests_per_second: 100000\n"
        "    burst: 100000\n";
    server_ = new ParleydProcess(options);
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete database_url_;
    database_url_ = nullptr;
  }

  // The pid of parleyd: the process whose command line names its config.
  static std::string server_pid() {
    const std::string config = server_->config_file().string();
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(entry.path() / "cmdline");
      std::stringstream ss;
      ss << in.rdbuf();
      std::string cmdline = ss.str();
      for (auto& c : cmdline) {
        if (c == '\0') c = ' ';
      }
      if (cmdline.find("parleyd") != std::string::npos && cmdline.find(config) != std::string::npos)
        return name;
    }
    return {};
  }

  // Runs parley-bench; returns its JSON (the test fails on a non-zero exit).
  json::object bench(const std::string& args, bool to_server = true) {
    const auto out = dir_.path() / "result.json";
    const auto err = dir_.path() / "stderr.txt";
    const std::string url = "ws://127.0.0.1:" + std::to_string(server_->port()) + "/ws";
    const std::string command = std::string(PARLEY_BENCH_BINARY) + " " + args +
                                (to_server ? " --url " + url : "") + " --output " + out.string() +
                                " 2>" + err.string();
    const int status = std::system(command.c_str());
    const std::string errors = read_file(err);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << "\nstderr:\n"
                                                               << errors << "\nparleyd log:\n"
                                                               << server_->log();
    json::error_code ec;
    auto value = json::parse(read_file(out), ec);
    if (ec || !value.is_object()) {
      ADD_FAILURE() << "no JSON from: " << command << "\nstderr:\n" << errors;
      return {};
    }
    return value.as_object();
  }

  static double num(const json::value& v) { return v.to_number<double>(); }

  static void check_common(const json::object& run, const std::string& scenario) {
    EXPECT_EQ(run.at("scenario"), scenario.c_str());
    EXPECT_EQ(run.at("ok"), true) << json::serialize(run);
    EXPECT_TRUE(run.at("failures").as_array().empty());
    EXPECT_GE(num(run.at("machine").at("nproc")), 1);
    EXPECT_EQ(run.at("machine").at("loadavg_before").as_array().size(), 3u);
    EXPECT_TRUE(run.at("params").is_object());
  }

  static void check_latency(const json::value& h) {
    EXPECT_GT(num(h.at("count")), 0);
    EXPECT_GT(num(h.at("p50_ms")), 0);
    EXPECT_LE(num(h.at("p50_ms")), num(h.at("p90_ms")));
    EXPECT_LE(num(h.at("p90_ms")), num(h.at("p99_ms")));
    EXPECT_LE(num(h.at("p99_ms")), num(h.at("max_ms")));
  }

  // Two full groups of 8: every acknowledged message reaches the 7 other
  // members exactly once, in both loops.
  static void check_group(const json::object& run) {
    const auto& r = run.at("results");
    EXPECT_EQ(num(r.at("connections")), 16);
    EXPECT_GT(num(r.at("messages_per_second")), 0);
    EXPECT_GT(num(r.at("deliveries_per_second")), 0);
    EXPECT_GT(num(r.at("ok_total")), 0);
    EXPECT_EQ(num(r.at("expected_deliveries")), 7 * num(r.at("ok_total")));
    EXPECT_EQ(num(r.at("delivered_total")), num(r.at("expected_deliveries")));
    EXPECT_EQ(num(r.at("missing_deliveries")), 0);
    EXPECT_EQ(num(r.at("duplicate_deliveries")), 0);
    EXPECT_EQ(num(r.at("deliveries_to_sender")), 0);
    EXPECT_EQ(num(r.at("unacknowledged_deliveries")), 0);
    EXPECT_EQ(num(r.at("errors")), 0);
    EXPECT_TRUE(r.as_object().contains("server_cpu_us_per_delivery"));
    EXPECT_TRUE(r.as_object().contains("server_cpu_us_per_message"));
    check_latency(r.at("send_to_ok"));
    check_latency(r.at("send_to_delivery_last_member"));
    check_latency(r.at("send_to_delivery_all_members"));
    // The last member is one of the members.
    EXPECT_LT(num(r.at("send_to_delivery_last_member").at("count")),
              num(r.at("send_to_delivery_all_members").at("count")));
  }

  static std::string* database_url_;
  static ParleydProcess* server_;
  TempDir dir_;
};

std::string* BenchSmoke::database_url_ = nullptr;
ParleydProcess* BenchSmoke::server_ = nullptr;

TEST_F(BenchSmoke, MessagingClosedLoop) {
  const auto run = bench("messaging --mode closed --pairs 2 --window 4 --warmup 0.3 --duration 1");
  ASSERT_FALSE(run.empty());
  check_common(run, "messaging");
  const auto& r = run.at("results");
  EXPECT_GT(num(r.at("messages_per_second")), 0);
  EXPECT_GT(num(r.at("ok_total")), 0);
  EXPECT_EQ(num(r.at("delivered_total")), num(r.at("ok_total")));
  EXPECT_EQ(num(r.at("missing_deliveries")), 0);
  EXPECT_EQ(num(r.at("duplicate_deliveries")), 0);
  EXPECT_EQ(num(r.at("errors")), 0);
  check_latency(r.at("send_to_ok"));
  check_latency(r.at("send_to_delivery"));
}

TEST_F(BenchSmoke, MessagingOpenLoop) {
  const auto run = bench("messaging --mode open --rate 200 --pairs 2 --warmup 0.3 --duration 1");
  ASSERT_FALSE(run.empty());
  check_common(run, "messaging");
  const auto& r = run.at("results");
  EXPECT_GT(num(r.at("messages_per_second")), 100);
  EXPECT_EQ(num(r.at("missing_deliveries")), 0);
  check_latency(r.at("send_to_delivery"));
  // One slot per 100 ms of the 1 s window; the slots' largest is the
  // histogram's largest (to the 0.1 ms the slots are rounded to).
  const auto& timeline = r.at("send_to_delivery_timeline").as_object();
  const auto& slot_max = timeline.at("max_ms").as_array();
  ASSERT_EQ(slot_max.size(), 10u);
  EXPECT_EQ(timeline.at("over_10ms").as_array().size(), 10u);
  double largest = 0;
  for (const auto& v : slot_max) largest = std::max(largest, num(v));
  EXPECT_NEAR(largest, num(r.at("send_to_delivery").at("max_ms")), 0.1);
}

TEST_F(BenchSmoke, Idle) {
  const std::string pid = server_pid();
  ASSERT_FALSE(pid.empty());
  const auto run = bench("idle --connections 20 --users 5 --settle 0.3 --server-pid " + pid);
  ASSERT_FALSE(run.empty());
  check_common(run, "idle");
  const auto& r = run.at("results");
  EXPECT_EQ(num(r.at("connections")), 20);
  EXPECT_EQ(num(r.at("still_open")), 20);
  EXPECT_GT(num(r.at("server_rss_before_bytes")), 0);
  EXPECT_TRUE(r.as_object().contains("bytes_per_connection"));
}

TEST_F(BenchSmoke, Reconnect) {
  const auto run = bench("reconnect --users 5 --messages 3");
  ASSERT_FALSE(run.empty());
  check_common(run, "reconnect");
  const auto& r = run.at("results");
  EXPECT_EQ(num(r.at("synced_users")), 5);
  EXPECT_EQ(num(r.at("wrong_message_counts")), 0);
  EXPECT_GT(num(r.at("storm_seconds")), 0);
  check_latency(r.at("login_to_synced"));
}

TEST_F(BenchSmoke, Presence) {
  const std::string pid = server_pid();
  ASSERT_FALSE(pid.empty());
  const auto run = bench(
      "presence --users 12 --contacts 3 --churn-per-second 10 --duration 1 --away-ms 200 "
      "--server-pid " +
      pid);
  ASSERT_FALSE(run.empty());
  check_common(run, "presence");
  const auto& r = run.at("results");
  EXPECT_EQ(num(r.at("subscriptions")), 36);
  EXPECT_GT(num(r.at("churned_users")), 0);
  EXPECT_GT(num(r.at("presence_events")), 0);
  EXPECT_EQ(num(r.at("return_failures")), 0);
  check_latency(r.at("offline_delay"));
  check_latency(r.at("online_delay"));
}

TEST_F(BenchSmoke, GroupClosedLoop) {
  const std::string pid = server_pid();
  ASSERT_FALSE(pid.empty());
  const auto run = bench(
      "group --mode closed --groups 2 --members 8 --senders 2 --window 2 --warmup 0.3 "
      "--duration 1 --server-pid " +
      pid);
  ASSERT_FALSE(run.empty());
  check_common(run, "group");
  check_group(run);
}

TEST_F(BenchSmoke, GroupOpenLoop) {
  const std::string pid = server_pid();
  ASSERT_FALSE(pid.empty());
  const auto run = bench(
      "group --mode open --rate 100 --groups 2 --members 8 --senders 2 --warmup 0.3 "
      "--duration 1 --server-pid " +
      pid);
  ASSERT_FALSE(run.empty());
  check_common(run, "group");
  check_group(run);
  EXPECT_GT(num(run.at("results").at("messages_per_second")), 50);
}

TEST_F(BenchSmoke, Ceiling) {
  const auto run = bench(
      "ceiling --duration 1 --warmup 0.2 --batch 200 --database-url " + *database_url_, false);
  ASSERT_FALSE(run.empty());
  check_common(run, "ceiling");
  const auto& r = run.at("results");
  EXPECT_GT(num(r.at("rows_per_second")), 0);
  EXPECT_GT(num(r.at("batches_in_window")), 0);
  check_latency(r.at("batch_latency"));
}

}  // namespace
}  // namespace parley::test
