#include "http_loop.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <stdexcept>

#include <curl/curl.h>

#include "jwt.hpp"

namespace parley::push {

namespace {

// Error bodies are short; a server sending more is not worth the memory.
constexpr std::size_t kMaxBodyBytes = 64 * 1024;

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const std::size_t bytes = size * count;
  body->append(data, std::min(bytes, kMaxBodyBytes - std::min(kMaxBodyBytes, body->size())));
  return bytes;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  const std::size_t bytes = size * count;
  std::string_view line(data, bytes);
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  (*headers)[std::move(name)] = std::string(value);
  return bytes;
}

void global_init() {
  static const CURLcode status = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (status != CURLE_OK) throw std::runtime_error("libcurl could not be initialised");
}

}  // namespace

std::optional<std::chrono::seconds> HttpResponse::retry_after() const {
  const auto it = headers.find("retry-after");
  if (it == headers.end()) return std::nullopt;
  const auto& text = it->second;
  long long seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc::result_out_of_range) return kMaxRetryAfter;
  if (ec != std::errc() || end != text.data() + text.size()) {
    const time_t date = curl_getdate(text.c_str(), nullptr);
    if (date < 0) return std::nullopt;
    seconds = std::max<long long>(0, static_cast<long long>(date) - std::time(nullptr));
  }
  if (seconds < 0) return std::nullopt;
  return std::min(std::chrono::seconds(seconds), kMaxRetryAfter);
}

struct HttpLoop::Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest request;
  HttpResponse response;
  ResponseHandler on_response;
  ~Transfer() {
    curl_slist_free_all(headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

HttpLoop::HttpLoop(HttpLoopOptions options) : options_(std::move(options)) {}

HttpLoop::~HttpLoop() {
  stop();
}

void HttpLoop::start() {
  global_init();
  multi_ = curl_multi_init();
  if (multi_ == nullptr) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_host_connections);
  thread_ = std::thread([this] { run(); });
}

void HttpLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (multi_ != nullptr) curl_multi_wakeup(multi_);
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  for (auto& [easy, transfer] : transfers_) curl_multi_remove_handle(multi_, easy);
  transfers_.clear();
  timers_.clear();
  if (multi_ != nullptr) {
    curl_multi_cleanup(multi_);
    multi_ = nullptr;
  }
}

void HttpLoop::post(Task task) {
  // The wakeup happens under the lock so that stop() cannot free the multi
  // handle between the check and the call.
  std::lock_guard lock(mutex_);
  if (stopping_ || multi_ == nullptr) return;
  posted_.push_back(std::move(task));
  curl_multi_wakeup(multi_);
}

void HttpLoop::after(std::chrono::milliseconds delay, Task task) {
  timers_.emplace(std::chrono::steady_clock::now() + delay, std::move(task));
}

void HttpLoop::send(HttpRequest request, ResponseHandler on_response) {
  auto transfer = std::make_unique<Transfer>();
  transfer->request = std::move(request);
  transfer->on_response = std::move(on_response);
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    HttpResponse failed;
    failed.error = "curl_easy_init failed";
    transfer->on_response(std::move(failed));
    return;
  }
  transfer->easy = easy;
  for (const auto& header : transfer->request.headers) {
    transfer->headers = curl_slist_append(transfer->headers, header.c_str());
  }
  // Over HTTP/1.1 curl would wait for "100 Continue" before larger bodies
  // (the OAuth2 assertion); no push service asks for that round trip.
  transfer->headers = curl_slist_append(transfer->headers, "Expect:");
  curl_easy_setopt(easy, CURLOPT_URL, transfer->request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, transfer->request.body.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(transfer->request.body.size()));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  // Wait for the connection being set up rather than open a second one:
  // that is what puts concurrent requests on one HTTP/2 connection.
  curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  // stop() removes transfers still running; one still resolving a name
  // would make libcurl join its resolver thread, and a hanging DNS lookup
  // would hold the stop past the kernel's shutdown bound. QUICK_EXIT
  // (libcurl 7.87; Debian 12 has 7.88) forgets the thread instead.
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  if (!options_.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer->response.body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer->response.headers);
  if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
    HttpResponse failed;
    failed.error = "curl_multi_add_handle failed";
    transfer->on_response(std::move(failed));
    return;
  }
  transfers_.emplace(easy, std::move(transfer));
}

void HttpLoop::finish(void* easy, int result) {
  const auto it = transfers_.find(easy);
  if (it == transfers_.end()) return;
  std::unique_ptr<Transfer> transfer = std::move(it->second);
  transfers_.erase(it);
  curl_multi_remove_handle(multi_, easy);
  if (result == CURLE_OK) {
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &transfer->response.status);
  } else {
    transfer->response.status = 0;
    transfer->response.error = curl_easy_strerror(static_cast<CURLcode>(result));
  }
  transfer->on_response(std::move(transfer->response));
}

void HttpLoop::run() {
  while (true) {
    std::deque<Task> tasks;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      tasks.swap(posted_);
    }
    for (auto& task : tasks) task();
    const auto now = std::chrono::steady_clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto task = std::move(timers_.begin()->second);
      timers_.erase(timers_.begin());
      task();
    }
    int running = 0;
    curl_multi_perform(multi_, &running);
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
      if (message->msg == CURLMSG_DONE) finish(message->easy_handle, message->data.result);
    }
    // A handler may have sent a new request: let curl start it at once.
    if (!transfers_.empty()) curl_multi_perform(multi_, &running);
    int wait_ms = 1000;
    if (!timers_.empty()) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
          timers_.begin()->first - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::clamp<long long>(until.count(), 0, wait_ms));
    }
    curl_multi_poll(multi_, nullptr, 0, wait_ms, nullptr);
  }
}

HttpLoopOptions HttpLoopOptions::from_config(Config& config) {
  HttpLoopOptions o;
  o.ca_file = config.string_or("ca_file", "");
  // Read now, so that --check-config reports it: otherwise the first push,
  // maybe days later, fails every TLS handshake.
  if (!o.ca_file.empty()) {
    std::string pem;
    try {
      pem = read_text_file(o.ca_file);
    } catch (const std::exception& e) {
      config.fail("ca_file", o.ca_file + ": " + e.what());
    }
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      config.fail("ca_file", o.ca_file + ": no PEM certificate in it");
    }
  }
  o.connect_timeout = std::chrono::milliseconds(
      config.int_in("connect_timeout_ms", o.connect_timeout.count(), 1, 600000));
  o.request_timeout = std::chrono::milliseconds(
      config.int_in("request_timeout_ms", o.request_timeout.count(), 1, 600000));
  o.max_host_connections =
      static_cast<long>(config.int_in("max_connections", o.max_host_connections, 1, 100));
  return o;
}

}  // namespace parley::push
