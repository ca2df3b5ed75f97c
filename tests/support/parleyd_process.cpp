#include "parleyd_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>
#include <thread>

#include "postgres.hpp"
#include "ws_client.hpp"

namespace parley::test {

std::string parleyd_binary() {
  return PARLEY_TEST_PARLEYD;
}
std::string plugin_dir() {
  return PARLEY_TEST_PLUGIN_DIR;
}

std::string session_plugin_yaml(const std::string& more_config) {
  return "  - name: session\n"
         "    config:\n"
         "      password_hashing:\n"
         "        ops_limit: 1\n"
         "        mem_limit_kib: 8\n" +
         more_config;
}

ParleydProcess::ParleydProcess(Options options) : options_(std::move(options)) {
  // Port 0: the kernel binds a free port and logs it; no bind-close-reuse race.
  std::string yaml = "server:\n  listen: 127.0.0.1\n  port: 0\n" + options_.server_yaml +
                     "\nworker_threads: 2\nshutdown_timeout_ms: 8000\nplugin_dir: " +
                     (options_.plugin_dir.empty() ? plugin_dir() : options_.plugin_dir) + "\n";
  if (!options_.database_url.empty()) {
    yaml += "database:\n  url: " + options_.database_url +
            "\n  pool_size: 3\n  reconnect_interval_seconds: 1\n" + options_.database_yaml;
  }
  yaml += "log:\n  level: info\n  format: " + options_.log_format + "\n";
  yaml += "plugins:\n" + options_.plugins_yaml + "\n";
  config_ = dir_.write("parley.yaml", yaml);
  start();
}

ParleydProcess::~ParleydProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void ParleydProcess::start() {
  const std::string log_file = (dir_.path() / "parleyd.log").string();
  log_offset_ = read_file(log_file).size();
  port_ = 0;
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    const std::string binary = parleyd_binary();
    const std::string config = config_.string();
    execl(binary.c_str(), binary.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (options_.wait_ready && !wait_ready()) {
    throw std::runtime_error("parleyd did not become ready; its log:\n" + log());
  }
}

int ParleydProcess::port() {
  if (port_ != 0) return port_;
  // The line the kernel logs once it is bound (text and JSON log formats).
  static const std::regex listening(R"(listening on [^\s"]*:([0-9]+))");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string since_start = read_file(dir_.path() / "parleyd.log").substr(log_offset_);
    std::smatch match;
    if (std::regex_search(since_start, match, listening)) {
      port_ = std::stoi(match[1].str());
      return port_;
    }
    if (!running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("parleyd did not report a listening port; its log:\n" + log());
}

bool ParleydProcess::wait_ready(int status, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return false;
    int bound = 0;
    try {
      bound = port();
    } catch (const std::exception&) {
      return false;
    }
    if (http_get(bound, "/readyz").status == status) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool ParleydProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int ParleydProcess::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void ParleydProcess::kill_hard() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::size_t ParleydProcess::rss_bytes() const {
  if (pid_ <= 0) return 0;
  const std::string status = read_file("/proc/" + std::to_string(pid_) + "/status");
  const auto pos = status.find("VmRSS:");
  if (pos == std::string::npos) return 0;
  return std::stoull(status.substr(pos + 6)) * 1024;
}

std::string ParleydProcess::log() const {
  return read_file(dir_.path() / "parleyd.log");
}

}  // namespace parley::test
