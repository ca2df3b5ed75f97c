// What the push plugins' end-to-end tests share: test keys and a TLS
// certificate made with openssl, a fake push service (a Python script on
// loopback) whose stdout events are read with timeouts, and a fixture that
// runs parleyd with session plus push plugins over a private PostgreSQL.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "session_fixture.hpp"
#include "temp_dir.hpp"

namespace parley::test {

// Runs `command` with /bin/sh; fails the test when it exits non-zero.
void run_or_fail(const std::string& command);

// parleyd --check-config on a file with `plugins_yaml` as its plugin list:
// the exit status and what it printed.
std::pair<int, std::string> check_config(const std::string& plugins_yaml);

// Keys and a certificate for one test, in a private directory.
struct TestKeys {
  TempDir dir;
  std::filesystem::path cert;  // self-signed for 127.0.0.1; also the CA file
  std::filesystem::path cert_key;
  std::filesystem::path rsa_key;  // the FCM service account's key
  std::filesystem::path rsa_public;
  std::filesystem::path ec_key;  // the APNs .p8 key (PKCS#8, P-256)
  std::filesystem::path ec_public;
  TestKeys();
};

// A fake service: /usr/bin/python3 <script> <args...> (Debian's interpreter,
// which python3-h2 and python3-cryptography install into, whatever python3
// comes first on PATH). Its first stdout line
// is {"event":"listening","port":N}; every later line is one event.
class FakeService {
 public:
  FakeService(const std::string& script, const std::vector<std::string>& args);
  ~FakeService();
  FakeService(const FakeService&) = delete;
  FakeService& operator=(const FakeService&) = delete;

  int port() const { return port_; }
  std::string base_url() const { return "https://127.0.0.1:" + std::to_string(port_); }

  // Reads events until `count` events for which `match` holds have been seen
  // (counting those read before), or `timeout` passes. Returns them all.
  std::vector<boost::json::object> wait_for(
      const std::function<bool(const boost::json::object&)>& match, std::size_t count,
      std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // How many events read so far satisfy `match`.
  std::size_t count(const std::function<bool(const boost::json::object&)>& match) const;
  // Every event read so far.
  const std::vector<boost::json::object>& events() const { return events_; }
  // Reads what arrives within `period` (to show something did NOT happen).
  void drain(std::chrono::milliseconds period);

 private:
  bool read_one(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  std::string buffer_;
  std::vector<boost::json::object> events_;
};

// Predicate: an event of `type` whose "token" (a request's device token) is `token`.
std::function<bool(const boost::json::object&)> event_for(const std::string& type,
                                                          const std::string& token = "");

// A SessionTest whose server also runs the plugins in push_plugins_yaml().
class PushTest : public SessionTest {
 protected:
  // Entries appended to the plugins list (indented by 2, like session's).
  virtual std::string push_plugins_yaml() = 0;
  // Starts the fakes the plugins talk to; runs before the server starts.
  virtual void start_fakes() {}

  void SetUp() override;

  // The devices session holds for `user`, as (platform, token), sorted.
  std::vector<std::pair<std::string, std::string>> devices_of(const User& user);
  // Waits until devices_of(user) equals `expected` (sorted).
  bool await_devices(const User& user, std::vector<std::pair<std::string, std::string>> expected,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The value of a /metrics sample, 0 when absent.
  double metric(const std::string& name);
  // The sample once it equals `expected`, or its value when `timeout` passed
  // (counters move after the fake has seen the request).
  double await_metric(const std::string& name, double expected,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  json::object register_device(WsClient& client, const std::string& platform,
                               const std::string& token) {
    return client.request({{"type", "device.register"}, {"platform", platform}, {"token", token}});
  }
  // A user with the given devices who then logs out: offline, so messages
  // to them are pushed.
  User offline_user_with_devices(const std::string& name,
                                 const std::vector<std::pair<std::string, std::string>>& devices);

  TestKeys keys_;
};

}  // namespace parley::test
