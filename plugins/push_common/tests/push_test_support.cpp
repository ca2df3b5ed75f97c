#include "push_test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

namespace parley::test {

void run_or_fail(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr) << command;
  std::string output;
  char chunk[4096];
  while (const std::size_t n = fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  ASSERT_EQ(pclose(pipe), 0) << command << "\n" << output;
}

std::pair<int, std::string> check_config(const std::string& plugins_yaml) {
  TempDir dir;
  const auto file =
      dir.write("parley.yaml", "plugin_dir: " + plugin_dir() + "\nplugins:\n" + plugins_yaml);
  FILE* pipe =
      popen((parleyd_binary() + " --check-config " + file.string() + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  char chunk[4096];
  while (const std::size_t n = fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TestKeys::TestKeys() {
  const auto d = dir.path();
  cert = d / "cert.pem";
  cert_key = d / "cert-key.pem";
  rsa_key = d / "service-account.pem";
  rsa_public = d / "service-account.pub.pem";
  ec_key = d / "AuthKey_TEST.p8";
  ec_public = d / "AuthKey_TEST.pub.pem";
  run_or_fail(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
      " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      cert_key.string() + " -out " + cert.string());
  run_or_fail("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " +
              rsa_key.string());
  run_or_fail("openssl pkey -in " + rsa_key.string() + " -pubout -out " + rsa_public.string());
  run_or_fail("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " +
              ec_key.string());
  run_or_fail("openssl pkey -in " + ec_key.string() + " -pubout -out " + ec_public.string());
}

FakeService::FakeService(const std::string& script, const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(pipe_fds[1], 1);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> argv;
    std::string python = "/usr/bin/python3";
    argv.push_back(python.data());
    std::string script_copy = script;
    argv.push_back(script_copy.data());
    std::vector<std::string> copies = args;
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(python.c_str(), argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  out_ = pipe_fds[0];
  const auto listening = wait_for(event_for("listening"), 1, std::chrono::seconds(20));
  if (listening.empty()) throw std::runtime_error(script + " did not start");
  port_ = static_cast<int>(listening.front().at("port").as_int64());
}

FakeService::~FakeService() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  if (out_ >= 0) close(out_);
}

bool FakeService::read_one(std::chrono::steady_clock::time_point deadline) {
  while (true) {
    const auto newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      const std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      try {
        events_.push_back(boost::json::parse(line).as_object());
      } catch (const std::exception&) {
        ADD_FAILURE() << "the fake printed a line that is not a JSON object: " << line;
      }
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fd{out_, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[65536];
    const ssize_t n = read(out_, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::vector<boost::json::object> FakeService::wait_for(
    const std::function<bool(const boost::json::object&)>& match, std::size_t count,
    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto matching = [&] {
    std::vector<boost::json::object> found;
    for (const auto& e : events_)
      if (match(e)) found.push_back(e);
    return found;
  };
  auto found = matching();
  while (found.size() < count && read_one(deadline)) {
    if (match(events_.back())) found.push_back(events_.back());
  }
  return found;
}

std::size_t FakeService::count(const std::function<bool(const boost::json::object&)>& match) const {
  return static_cast<std::size_t>(std::count_if(events_.begin(), events_.end(), match));
}

void FakeService::drain(std::chrono::milliseconds period) {
  const auto deadline = std::chrono::steady_clock::now() + period;
  while (read_one(deadline)) {
  }
}

std::function<bool(const boost::json::object&)> event_for(const std::string& type,
                                                          const std::string& token) {
  return [type, token](const boost::json::object& e) {
    if (e.at("event").as_string() != type) return false;
    if (token.empty()) return true;
    const auto* t = e.if_contains("token");
    return t && t->is_string() && t->get_string() == token;
  };
}

void PushTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string db = std::string(info->test_suite_name()) + "_" + info->name();
  for (auto& c : db) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  database_url_ = TestPostgres::shared().create_database(db.substr(0, 60));
  start_fakes();
  auto options = server_options();
  options.plugins_yaml += push_plugins_yaml();
  server_ = std::make_unique<ParleydProcess>(options);
}

std::vector<std::pair<std::string, std::string>> PushTest::devices_of(const User& user) {
  pqxx::connection conn(database_url_);
  pqxx::read_transaction tx(conn);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : tx.exec_params(
           "SELECT platform, token FROM devices WHERE user_id = $1 ORDER BY platform, token",
           std::stoll(user.id))) {
    out.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
  }
  return out;
}

bool PushTest::await_devices(const User& user,
                             std::vector<std::pair<std::string, std::string>> expected,
                             std::chrono::milliseconds timeout) {
  std::sort(expected.begin(), expected.end());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto now_devices = devices_of(user);
    if (now_devices == expected) return true;
    if (std::chrono::steady_clock::now() > deadline) {
      std::ostringstream seen;
      for (const auto& [p, t] : now_devices) seen << p << ":" << t << " ";
      ADD_FAILURE() << "devices of user " << user.id << " are: " << seen.str();
      return false;
    }
    // Polling the database: there is no event to wait on for a row going away.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

double PushTest::metric(const std::string& name) {
  const auto result = http_get(server_->port(), "/metrics");
  std::istringstream lines(result.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return 0;
}

double PushTest::await_metric(const std::string& name, double expected,
                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  double value = metric(name);
  while (value != expected && std::chrono::steady_clock::now() < deadline) {
    // /metrics has no change notification: poll it.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    value = metric(name);
  }
  return value;
}

User PushTest::offline_user_with_devices(
    const std::string& name, const std::vector<std::pair<std::string, std::string>>& devices) {
  auto client = connect();
  User user = register_user(*client, name);
  login(*client, user);
  for (const auto& [platform, token] : devices)
    expect_ok(register_device(*client, platform, token));
  expect_ok(client->request({{"type", "logout"}}));
  return user;
}

}  // namespace parley::test
