// Runs one browser scenario of the web client (tests/web/<scenario>.mjs, in
// Debian's chromium through playwright-core) against a real parleyd that
// serves web/ over a private PostgreSQL. The scenario drives the pages; this
// side owns the server and shows its log when the scenario fails.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "parleyd_process.hpp"
#include "postgres.hpp"

namespace parley::test {
namespace {

namespace fs = std::filesystem;

std::string plugins_yaml() {
  std::string yaml = session_plugin_yaml();
#ifdef PARLEY_WEB_WITH_GROUP
  // A small cap, so the group scenario can meet group_full.
  yaml += "  - name: group\n    config:\n      max_members: 3\n";
#endif
#ifdef PARLEY_WEB_WITH_PRESENCE
  // No grace period: a closed page shows offline at once.
  yaml += "  - name: presence\n    config:\n      grace_seconds: 0\n";
#endif
  return yaml;
}

// Runs `command` through the shell; its exit status.
int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void run_scenario(const std::string& scenario) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("web_") + info->name();
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto database = TestPostgres::shared().create_database(name);
  ParleydProcess::Options options;
  options.database_url = database;
  options.plugins_yaml = plugins_yaml();
  options.server_yaml = std::string("  static_dir: ") + PARLEY_WEB_DIR + "\n";
  ParleydProcess server(options);

  const fs::path screenshots = fs::path(PARLEY_WEB_SCREENSHOTS) / scenario;
  fs::remove_all(screenshots);
  fs::create_directories(screenshots);
  const std::string command = std::string("cd ") + PARLEY_WEB_TESTS +
                              " && PARLEY_URL=http://127.0.0.1:" + std::to_string(server.port()) +
                              "/ PARLEY_SCREENSHOTS=" + screenshots.string() + " node " + scenario +
                              ".mjs";
  const int status = run(command);
  EXPECT_EQ(status, 0) << "the browser scenario " << scenario << " failed (screenshots in "
                       << screenshots << "); parleyd's log:\n"
                       << server.log();
}

TEST(WebClient, OneToOne) {
  run_scenario("one_to_one");
}
TEST(WebClient, Group) {
  run_scenario("group");
}
TEST(WebClient, Presence) {
  run_scenario("presence");
}
TEST(WebClient, PresenceView) {
  run_scenario("presence_view");
}
TEST(WebClient, Limits) {
  run_scenario("limits");
}
TEST(WebClient, SessionEnded) {
  run_scenario("session_ended");
}
TEST(WebClient, RetryOrder) {
  run_scenario("retry_order");
}
TEST(WebClient, CatchUpMark) {
  run_scenario("catch_up_mark");
}
TEST(WebClient, Resume) {
  run_scenario("resume");
}
TEST(WebClient, Reconnect) {
  run_scenario("reconnect");
}
TEST(WebClient, OutboxReload) {
  run_scenario("outbox_reload");
}
TEST(WebClient, Paging) {
  run_scenario("paging");
}
TEST(WebClient, HalfOpen) {
  run_scenario("half_open");
}
TEST(WebClient, GroupPrivacy) {
  run_scenario("group_privacy");
}

}  // namespace
}  // namespace parley::test
