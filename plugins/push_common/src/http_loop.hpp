// A libcurl multi loop on its own thread: the push plugins' HTTP client.
// Requests to one host share a connection (HTTP/2 multiplexing when the
// server speaks it). Everything but post() and stop() runs on the loop
// thread, including every callback, so platform code needs no locks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <parley/config.hpp>

namespace parley::push {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POSTed
};

struct HttpResponse {
  long status = 0;  // 0: no response (see error)
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string error;                           // transport failure, empty otherwise
  // Retry-After as delta-seconds or an HTTP-date (RFC 9110 allows both;
  // neither provider says which it sends), at most kMaxRetryAfter.
  std::optional<std::chrono::seconds> retry_after() const;
  // A longer Retry-After is taken as this: no push is worth keeping longer,
  // and a huge value must not overflow the timer arithmetic.
  static constexpr std::chrono::seconds kMaxRetryAfter{3600};
};

struct HttpLoopOptions {
  std::string ca_file;  // empty: the system's trust store
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
  // Connections per host; one lets every request multiplex on it.
  long max_host_connections = 1;

  // Reads ca_file, connect_timeout_ms, request_timeout_ms and
  // max_connections from a push plugin's config block.
  static HttpLoopOptions from_config(Config& config);
};

class HttpLoop {
 public:
  using Task = std::function<void()>;
  using ResponseHandler = std::function<void(HttpResponse)>;

  explicit HttpLoop(HttpLoopOptions options);
  ~HttpLoop();
  HttpLoop(const HttpLoop&) = delete;
  HttpLoop& operator=(const HttpLoop&) = delete;

  void start();
  // Joins the thread. Transfers still running are abandoned: their handlers
  // never run.
  void stop();

  // From any thread: runs `task` on the loop thread.
  void post(Task task);
  // Loop thread only.
  void after(std::chrono::milliseconds delay, Task task);
  void send(HttpRequest request, ResponseHandler on_response);

 private:
  struct Transfer;
  void run();
  void finish(void* easy, int result);

  HttpLoopOptions options_;
  void* multi_ = nullptr;
  std::thread thread_;

  std::mutex mutex_;
  std::deque<Task> posted_;
  bool stopping_ = false;

  std::multimap<std::chrono::steady_clock::time_point, Task> timers_;
  std::map<void*, std::unique_ptr<Transfer>> transfers_;
};

}  // namespace parley::push
