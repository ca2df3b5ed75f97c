// A protocol client (requests with ids, replies correlated by "re", events),
// the set of connections of one run (`Net`), and blocking helpers the
// scenarios use to set up many clients at once.
//
// Threading: a Client's state lives on its connection's strand. Its methods
// may be called from any thread; callbacks run on the strand. Scenario code
// runs on the main thread and waits for phases with `pipeline`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/json/object.hpp>

#include "ws_connection.hpp"

namespace parley::bench {

using Clock = std::chrono::steady_clock;
using Json = boost::json::object;
using Done = std::function<void(const std::string& error)>;  // empty error: success

class Net;

class Client {
 public:
  using ReplyFn = std::function<void(const Json& reply)>;  // an "ok" or an "error"
  using EventFn = std::function<void(const Json& event)>;

  Client(Net& net, std::size_t index);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::size_t index() const { return index_; }
  bool is_open() const { return open_.load(std::memory_order_relaxed); }

  // Events (frames without "re"), "synced" included. Set before connect().
  void set_event_handler(EventFn fn) { on_event_ = std::move(fn); }

  void connect(Done done);
  // Sends `fields` with a fresh "id"; `fn` gets the reply (a synthetic
  // {"type":"error","code":"closed"} when the connection ends first).
  void request(Json fields, ReplyFn fn);
  // The same for a frame the caller has already written as JSON members
  // without the braces and without "id" (e.g. `"type":"send","to":"7",...`):
  // the hot path of the scenarios, no JSON object built.
  void request_members(std::string members, ReplyFn fn);
  // Logs in (`credentials`: email and password, or token); `done` runs once
  // "synced" has arrived. Fills user_id and token.
  void login(Json credentials, Done done);
  void close();
  // Runs `fn` on this client's strand.
  void post(std::function<void()> fn);

  // Set by login(); read them on the strand or after login's `done`.
  std::string user_id;
  std::string token;

 private:
  friend class Net;
  void on_text(std::string_view text);
  void on_closed(const std::string& why);
  void detach();

  Net& net_;
  const std::size_t index_;
  std::shared_ptr<WsConnection> conn_;
  EventFn on_event_;
  std::unordered_map<std::uint64_t, ReplyFn> pending_;
  std::uint64_t next_id_ = 1;
  Done on_synced_;
  std::atomic<bool> open_{false};
  bool closing_ = false;
};

struct NetConfig {
  WsTarget target;
  std::vector<boost::asio::ip::address> sources;  // empty: the system chooses
  int threads = 1;
};

// The I/O threads and every client of a run. Destroying it stops the I/O
// threads first, so no callback runs afterwards: declare it after the state
// its callbacks use.
class Net {
 public:
  explicit Net(NetConfig config);
  ~Net();
  Net(const Net&) = delete;
  Net& operator=(const Net&) = delete;

  boost::asio::io_context& ioc() { return ioc_; }
  const NetConfig& config() const { return config_; }

  // A new client, owned by the Net (the reference stays valid). Main thread.
  Client& add_client();
  std::vector<Client*> add_clients(std::size_t n);

  std::optional<boost::asio::ip::address> next_source();

  // Connections that ended without the generator closing them.
  std::uint64_t unexpected_closes() const { return unexpected_closes_.load(); }
  std::string first_unexpected_close() const;

 private:
  friend class Client;
  void note_close(const std::string& why);

  NetConfig config_;
  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::deque<std::unique_ptr<Client>> clients_;
  std::atomic<std::size_t> next_source_{0};
  std::atomic<std::uint64_t> unexpected_closes_{0};
  mutable std::mutex mutex_;
  std::string first_close_;
};

// Whether a reply is an "ok"; otherwise "code: message".
bool is_ok(const Json& reply);
std::string error_text(const Json& reply);
std::string get_string(const Json& object, std::string_view key);

// Runs task(i, done) for i in [0, n) with at most `concurrency` running at
// once and blocks until all succeeded, or one failed (no new task starts
// then), or `timeout` passed. Returns the first error, empty on success.
struct PipelineResult {
  std::string error;
  std::size_t completed = 0;
  double seconds = 0;
};
PipelineResult pipeline(std::size_t n, std::size_t concurrency, std::chrono::milliseconds timeout,
                        std::function<void(std::size_t i, Done done)> task);

// A waitable counter for phases the scenario drives itself.
class Countdown {
 public:
  explicit Countdown(std::uint64_t n) : left_(n) {}
  void done(std::uint64_t n = 1);
  void fail(const std::string& why);
  // True when the count reached zero; false on failure or timeout.
  bool wait(std::chrono::milliseconds timeout);
  std::string error() const;
  std::uint64_t left() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t left_;
  std::string error_;
};

// Test accounts: unique emails per run, one password.
struct Account {
  std::string email;
  std::string name;
  std::string password;
  std::string user_id;  // after registration
  std::string token;    // after a password login
};
std::vector<Account> make_accounts(const std::string& run_id, const std::string& tag,
                                   std::size_t n);
// Registers every account over a few connections; fills user_id.
std::string register_accounts(Net& net, std::vector<Account>& accounts,
                              std::chrono::milliseconds timeout, std::size_t connections = 8,
                              std::size_t in_flight = 64);
// Connects `client` and logs it in as `account` (by token when `by_token`).
// A password login stores the token in the account.
void connect_and_login(Client& client, Account& account, bool by_token, Done done);

}  // namespace parley::bench
