// A real parleyd process for end-to-end tests: writes its config, starts it,
// waits until /readyz answers (on the port it reports), stops it with a signal or SIGKILL.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "temp_dir.hpp"

namespace parley::test {

class ParleydProcess {
 public:
  // `plugins_yaml` is the text of the `plugins:` list; `extra_yaml` is
  // appended at the top level (e.g. a `server:` override is merged by
  // writing `server_yaml`).
  struct Options {
    std::string database_url;
    std::string plugins_yaml;
    std::string server_yaml;    // extra keys under server:, indented by 2
    std::string database_yaml;  // extra keys under database:, indented by 2
    bool wait_ready = true;
    std::string plugin_dir;  // default: the build's plugin directory
    std::string log_format = "text";
  };

  explicit ParleydProcess(Options options);
  ~ParleydProcess();

  void start();
  // SIGTERM and wait; returns the exit status.
  int stop();
  void kill_hard();  // SIGKILL
  bool running();

  // The port this run of the server bound (port 0 in its config), read from
  // its log; waits for the line, throws if the server exits first.
  int port();
  pid_t pid() const { return pid_; }
  // Resident memory of the process, from /proc (0 when not running).
  std::size_t rss_bytes() const;
  std::string log() const;
  const std::filesystem::path& config_file() const { return config_; }
  // Waits until GET /readyz gives `status`.
  bool wait_ready(int status = 200, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  Options options_;
  TempDir dir_;
  std::filesystem::path config_;
  int port_ = 0;
  std::size_t log_offset_ = 0;  // the log's size when this run started
  pid_t pid_ = -1;
};

// The path of the built parleyd and of the build's plugin directory.
std::string parleyd_binary();
std::string plugin_dir();

// The session plugin's entry for Options::plugins_yaml, with the cheapest
// password hashing (tests register many users; hashing is not what they
// test), followed by `more_config`: further keys of its config, indented by 6.
std::string session_plugin_yaml(const std::string& more_config = {});

}  // namespace parley::test
