#include "gateway_server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>

#include "parley/names.hpp"
#include "request_sequencer.hpp"
#include "static_files.hpp"

namespace parley::kernel {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxIdBytes = 64;
constexpr std::size_t kMaxHttpRequestBytes = 16 * 1024;

const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,   0.25,   0.5,   1,    2.5};

// What every connection shares: configuration, routing, metrics.
struct Shared {
  ServerConfig config;
  Router& router;
  ConnectionRegistry& connections;
  MetricsRegistry& metrics;
  EventBus& bus;
  asio::any_io_executor workers;
  std::function<bool()> ready;
  std::shared_ptr<spdlog::logger> log;
  // Unique across servers sharing a database: the node id above bit 32
  // (below 2^53, so JSON readers in any language keep it exact).
  std::atomic<ConnectionId> next_id;
  std::optional<StaticFiles> static_files;

  GaugeMetric& open_connections;
  CounterMetric& frames_in;
  CounterMetric& frames_out;
  CounterMetric& slow_disconnects;
  CounterMetric& oversize_closes;
  CounterMetric& accept_errors;
  CounterMetric& login_deadline_closes;
  CounterMetric& refused_total;
  CounterMetric& refused_per_address;
  // Open WebSocket connections per client address (server.max_connections_per_address).
  std::mutex per_address_mutex;
  std::unordered_map<std::string, std::size_t> per_address;
  std::atomic<std::size_t> open_websockets{0};

  // Admits one more WebSocket from `address`, or says which cap refused it.
  std::optional<std::string_view> admit(const std::string& address) {
    if (open_websockets.fetch_add(1) >= config.max_connections) {
      open_websockets.fetch_sub(1);
      refused_total.add();
      return "the server has too many connections";
    }
    std::lock_guard lock(per_address_mutex);
    auto& count = per_address[address];
    if (count >= config.max_connections_per_address) {
      if (count == 0) per_address.erase(address);
      open_websockets.fetch_sub(1);
      refused_per_address.add();
      return "too many connections from this address";
    }
    ++count;
    return std::nullopt;
  }
  void release(const std::string& address) {
    open_websockets.fetch_sub(1);
    std::lock_guard lock(per_address_mutex);
    if (auto it = per_address.find(address); it != per_address.end() && --it->second == 0)
      per_address.erase(it);
  }

  Shared(GatewayDependencies& d)
      : config(d.config),
        router(d.router),
        connections(d.connections),
        metrics(d.metrics),
        bus(d.bus),
        workers(d.workers),
        ready(d.ready),
        log(d.log),
        next_id((static_cast<ConnectionId>(d.config.node_id) << 32) + 1),
        open_connections(d.metrics.gauge("parley_connections", "Open WebSocket connections")),
        frames_in(d.metrics.counter("parley_frames_in_total", "WebSocket data frames received")),
        frames_out(d.metrics.counter("parley_frames_out_total", "WebSocket data frames sent")),
        slow_disconnects(
            d.metrics.counter("parley_slow_consumer_disconnects_total",
                              "Connections closed because their send queue passed its limit")),
        oversize_closes(
            d.metrics.counter("parley_oversize_frame_closes_total",
                              "Connections closed (1009) for a frame over max_frame_bytes")),
        accept_errors(d.metrics.counter("parley_accept_errors_total",
                                        "Failed accepts (e.g. EMFILE), each followed by a pause")),
        login_deadline_closes(d.metrics.counter(
            "parley_login_deadline_closes_total",
            "Connections closed for not logging in within login_timeout_seconds")),
        refused_total(d.metrics.counter("parley_connections_refused_total",
                                        "WebSocket upgrades refused (503), by cap",
                                        "cap=\"max_connections\"")),
        refused_per_address(d.metrics.counter("parley_connections_refused_total",
                                              "WebSocket upgrades refused (503), by cap",
                                              "cap=\"max_connections_per_address\"")) {
    if (!config.static_dir.empty()) {
      static_files.emplace(config.static_dir);
      log->info("serving the files of {} at /", static_files->root().string());
    }
  }

  CounterMetric& errors(std::string_view code) {
    return metrics.counter("parley_errors_total", "Error replies sent, by code",
                           "code=\"" + std::string(code) + "\"");
  }
  // One histogram per routed request type, looked up on every reply: cached
  // so the hot path takes a shared lock instead of the registry's mutex.
  HistogramMetric& latency(const std::string& type) {
    {
      std::shared_lock lock(latency_mutex);
      if (auto it = latency_by_type.find(type); it != latency_by_type.end()) return *it->second;
    }
    auto& histogram =
        metrics.histogram("parley_request_duration_seconds",
                          "Time from a request's arrival to its reply, by request type",
                          "type=\"" + type + "\"", kLatencyBuckets);
    std::unique_lock lock(latency_mutex);
    latency_by_type.emplace(type, &histogram);
    return histogram;
  }
  std::shared_mutex latency_mutex;
  std::unordered_map<std::string, HistogramMetric*> latency_by_type;
};

std::shared_ptr<const std::string> error_frame(const std::string* re, ErrorCode code,
                                               std::string_view message,
                                               std::string_view reason = {}) {
  json::object obj;
  obj["type"] = "error";
  if (re != nullptr) obj["re"] = *re;
  obj["code"] = wire_name(code);
  obj["message"] = message;
  if (!reason.empty()) obj["reason"] = reason;
  return std::make_shared<const std::string>(json::serialize(obj));
}

std::shared_ptr<const std::string> error_frame(const std::string* re, const Status& status) {
  return error_frame(re, status.code(), status.message(), status.reason());
}

// Per-connection request budget.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  bool take() {
    const auto now = std::chrono::steady_clock::now();
    const std::chrono::duration<double> elapsed = now - last_;
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// The reply to one request: serialised and queued on its connection once;
// then the connection's next request may start.
class RequestReplySink : public ReplySink {
 public:
  RequestReplySink(std::weak_ptr<Connection> connection,
                   std::shared_ptr<RequestSequencer> sequencer, Shared& shared, std::string re,
                   std::shared_ptr<const Router::Route> route, std::string type,
                   std::chrono::steady_clock::time_point arrived)
      : connection_(std::move(connection)),
        sequencer_(std::move(sequencer)),
        shared_(shared),
        re_(std::move(re)),
        route_(std::move(route)),
        type_(std::move(type)),
        arrived_(arrived) {}

  ~RequestReplySink() override {
    if (!answered_.load()) {
      shared_.log->error("plugin '{}' did not answer a '{}' request", route_->owner->name, type_);
      answer(Status(ErrorCode::internal, "the request was not answered"), {});
    }
  }

  void answer(Status status, json::object result) override {
    if (answered_.exchange(true)) return;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - arrived_;
    shared_.latency(type_).observe(took.count());
    std::shared_ptr<const std::string> text;
    if (status.ok()) {
      json::object reply;
      reply.reserve(result.size() + 2);
      reply["type"] = "ok";
      reply["re"] = re_;
      for (auto& kv : result) reply[kv.key()] = std::move(kv.value());
      text = std::make_shared<const std::string>(json::serialize(reply));
    } else {
      shared_.errors(wire_name(status.code())).add();
      text = error_frame(&re_, status);
    }
    if (auto c = connection_.lock()) c->send_reply(std::move(text));
    sequencer_->finished();
  }

 private:
  std::weak_ptr<Connection> connection_;
  std::shared_ptr<RequestSequencer> sequencer_;
  Shared& shared_;
  std::string re_;
  std::shared_ptr<const Router::Route> route_;
  std::string type_;
  std::chrono::steady_clock::time_point arrived_;
  std::atomic<bool> answered_{false};
};

// The client's address: the peer's, or the last X-Forwarded-For hop when the
// peer is a trusted proxy.
template <class Stream>
std::string client_address(Stream& stream, const http::request<http::string_body>& request,
                           const ServerConfig& config) {
  beast::error_code ec;
  const auto peer = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
  std::string address = ec ? std::string() : peer.address().to_string();
  const auto& trusted = config.trusted_proxies;
  if (std::find(trusted.begin(), trusted.end(), address) == trusted.end()) return address;
  const auto forwarded = request["X-Forwarded-For"];
  if (forwarded.empty()) return address;
  std::string_view last(forwarded.data(), forwarded.size());
  if (const auto comma = last.rfind(','); comma != std::string_view::npos) {
    last.remove_prefix(comma + 1);
  }
  while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
  while (!last.empty() && last.back() == ' ') last.remove_suffix(1);
  return last.empty() ? address : std::string(last);
}

template <class Stream>
class WebSocketSession : public Connection,
                         public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  // `address` was admitted by Shared::admit; released when the session ends.
  WebSocketSession(Stream&& stream, Shared& shared, std::string address)
      : ws_(std::move(stream)),
        shared_(shared),
        remote_address_(std::move(address)),
        login_deadline_(ws_.get_executor()),
        id_(shared.next_id.fetch_add(1)),
        bucket_(shared.config.requests_per_second, shared.config.request_burst),
        sequencer_(std::make_shared<RequestSequencer>(shared.config.max_pending_requests)),
        worker_strand_(asio::make_strand(shared.workers)) {}

  ~WebSocketSession() override {
    shared_.release(remote_address_);
    if (registered_) {
      const std::string user = shared_.connections.remove(id_);
      shared_.open_connections.add(-1);
      json::object event{{"connection", id_}, {"user_id", user}};
      if (!user.empty()) event["user_connected"] = shared_.connections.is_connected(user);
      shared_.bus.publish(std::string(names::kConnectionClosed), std::move(event));
    }
  }

  void run(http::request<http::string_body> request) {
    ws_.set_option(websocket::stream_base::timeout{shared_.config.handshake_timeout,
                                                   shared_.config.idle_timeout,
                                                   /*keep_alive_pings=*/true});
    ws_.read_message_max(shared_.config.max_frame_bytes);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "parley"); }));
    ws_.async_accept(
        request, beast::bind_front_handler(&WebSocketSession::on_accept, this->shared_from_this()));
  }

  ConnectionId id() const override { return id_; }

  void set_user(std::string user_id, std::shared_ptr<UserActivity> activity, bool hold) override {
    std::lock_guard lock(mutex_);
    user_id_ = std::move(user_id);
    if (!user_id_.empty()) ever_logged_in_ = true;
    activity_ = std::move(activity);
    holding_ = hold && !user_id_.empty();
    held_.clear();
    sent_while_holding_.clear();
  }

  void send(std::shared_ptr<const std::string> text) override {
    bool overflowed = false;
    {
      std::lock_guard lock(mutex_);
      overflowed = !enqueue(std::move(text));
    }
    if (overflowed) report_overflow();
  }

  void send_reply(std::shared_ptr<const std::string> text) override {
    bool overflowed = false;
    {
      std::lock_guard lock(mutex_);
      overflowed = !enqueue(std::move(text), /*is_reply=*/true);
    }
    if (overflowed) report_overflow();
  }

  void send_frame(const Frame& frame) override {
    bool overflowed = false;
    {
      std::lock_guard lock(mutex_);
      if (holding_ && !frame.dedupe_key.empty()) sent_while_holding_.insert(frame.dedupe_key);
      overflowed = !enqueue(frame.text);
    }
    if (overflowed) report_overflow();
  }

  void when_written(std::function<void()> callback) override {
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      if (writing_ || !queue_.empty()) {
        written_callbacks_.push_back(std::move(callback));
        return;
      }
    }
    asio::post(shared_.workers, std::move(callback));
  }

  void deliver(const Frame& frame) override {
    bool overflowed = false;
    {
      std::lock_guard lock(mutex_);
      if (user_id_.empty()) return;  // logged out since the frame was addressed
      if (holding_) {
        if (held_.size() < kMaxHeldFrames) {
          held_.push_back(frame);
          return;
        }
        overflowed = true;
        cut_off();
      } else {
        overflowed = !enqueue(frame.text);
      }
    }
    if (overflowed) report_overflow();
  }

  void release(std::vector<Frame> first) override {
    bool overflowed = false;
    {
      std::lock_guard lock(mutex_);
      // Logged out during its catch-up (its token was revoked): the rest of
      // the catch-up is no longer this connection's to receive.
      if (user_id_.empty()) return;
      std::unordered_set<std::string> sent_keys = std::move(sent_while_holding_);
      sent_while_holding_.clear();
      for (const Frame& frame : first) {
        if (!frame.dedupe_key.empty()) sent_keys.insert(frame.dedupe_key);
        if (!overflowed) overflowed = !enqueue(frame.text);
      }
      for (const Frame& frame : held_) {
        if (overflowed) break;
        if (!frame.dedupe_key.empty() && sent_keys.contains(frame.dedupe_key)) continue;
        overflowed = !enqueue(frame.text);
      }
      held_.clear();
      holding_ = false;
    }
    if (overflowed) report_overflow();
  }

  void close_going_away() override {
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] {
      {
        std::lock_guard lock(self->mutex_);
        if (self->closing_ || self->going_away_ || !self->accepted_) return;
        self->going_away_ = true;
        // What is queued goes first; write_next() closes when it is out.
        if (self->writing_) return;
      }
      self->send_close();
    });
  }

  void disconnect() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      queue_.clear();
      queued_bytes_ = 0;
    }
    close_socket();
  }

 private:
  // A connection holds at most this many frames during a login catch-up.
  static constexpr std::size_t kMaxHeldFrames = 65536;

  // Queues a frame for writing, with mutex_ held. False when the queue is
  // over its limit: the connection is then being cut off. A reply to the
  // client's own request is judged by what was queued before it, so that
  // one large reply never cuts off the client that asked for it; a client
  // that stops reading is still cut off at its next frame.
  bool enqueue(std::shared_ptr<const std::string> text, bool is_reply = false) {
    if (closing_ || going_away_) return true;
    const std::size_t counted = is_reply ? 0 : text->size();
    if (queue_.size() >= shared_.config.max_queued_frames ||
        queued_bytes_ + counted > shared_.config.max_queued_bytes) {
      cut_off();
      return false;
    }
    queued_bytes_ += text->size();
    queue_.push_back(std::move(text));
    if (!writing_ && accepted_) {
      writing_ = true;
      asio::post(ws_.get_executor(), [self = this->shared_from_this()] { self->write_next(); });
    }
    return true;
  }

  // With mutex_ held: stops writing and closes the socket.
  void cut_off() {
    closing_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    held_.clear();
    holding_ = false;
    written_callbacks_.clear();
    close_socket();
  }

  // Outside mutex_: logging is I/O.
  void report_overflow() {
    shared_.slow_disconnects.add();
    shared_.log->warn("connection {}: send queue over its limit, disconnecting", id_);
  }

  void close_socket() {
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    });
  }

  void on_accept(beast::error_code ec) {
    if (ec) return;
    ws_.text(true);
    login_deadline_.expires_after(shared_.config.login_timeout);
    login_deadline_.async_wait([weak = this->weak_from_this()](beast::error_code wait_ec) {
      auto self = weak.lock();
      if (wait_ec || !self) return;
      {
        std::lock_guard lock(self->mutex_);
        if (self->ever_logged_in_ || self->closing_) return;
        self->closing_ = true;
      }
      self->shared_.login_deadline_closes.add();
      self->ws_.async_close(
          websocket::close_reason(websocket::close_code::policy_error, "log in first"),
          [self](beast::error_code) {});
    });
    shared_.connections.add(this->shared_from_this());
    shared_.open_connections.add(1);
    registered_ = true;
    {
      std::lock_guard lock(mutex_);
      accepted_ = true;
      if (!queue_.empty() && !writing_) {
        writing_ = true;
        asio::post(ws_.get_executor(), [self = this->shared_from_this()] { self->write_next(); });
      }
    }
    read_next();
  }

  void read_next() {
    buffer_.clear();
    ws_.async_read(buffer_,
                   beast::bind_front_handler(&WebSocketSession::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == websocket::error::message_too_big) {
      shared_.oversize_closes.add();
      sequencer_->clear();
      return;  // Beast has already sent close 1009.
    }
    if (ec) {
      // Requests still waiting for earlier ones are dropped with the connection.
      sequencer_->clear();
      return;
    }
    shared_.frames_in.add();
    handle_frame();
    // A large idle buffer is returned instead of kept per connection.
    if (buffer_.capacity() > 16 * 1024) buffer_ = beast::flat_buffer();
    read_next();
  }

  void reject(const std::string* re, ErrorCode code, std::string_view message) {
    shared_.errors(wire_name(code)).add();
    send(error_frame(re, code, message));
  }

  void handle_frame() {
    // Every frame spends from the budget, readable or not. The id, when one
    // can be read, goes into the answer.
    const bool within_budget = bucket_.take();
    {
      // Every data frame of a logged-in user is activity (O(1), no allocation).
      std::lock_guard lock(mutex_);
      if (activity_) activity_->touch();
    }
    std::optional<std::string> re;
    std::optional<std::pair<ErrorCode, std::string_view>> problem;
    json::value parsed;
    if (!ws_.got_text()) {
      problem.emplace(ErrorCode::bad_request, "binary frames are not accepted");
    } else {
      const auto data = buffer_.cdata();
      beast::error_code ec;
      parsed =
          json::parse(std::string_view(static_cast<const char*>(data.data()), data.size()), ec);
      if (ec) {
        problem.emplace(ErrorCode::bad_request, "the frame is not valid JSON");
      } else if (!parsed.is_object()) {
        problem.emplace(ErrorCode::bad_request, "a request must be a JSON object");
      } else if (const auto* id = parsed.get_object().if_contains("id");
                 id == nullptr || !id->is_string() || id->get_string().empty() ||
                 id->get_string().size() > kMaxIdBytes) {
        problem.emplace(ErrorCode::bad_request, "'id' must be a string of 1 to 64 bytes");
      } else {
        re.emplace(id->get_string());
      }
    }
    if (!within_budget) {
      // Repeated abuse: a client that keeps sending far past its budget is cut off.
      if (++over_budget_in_a_row_ > 2 * shared_.config.request_burst) return close_for_abuse();
      return reject(re ? &*re : nullptr, ErrorCode::rate_limited, "too many requests; retry later");
    }
    over_budget_in_a_row_ = 0;
    if (problem) return reject(re ? &*re : nullptr, problem->first, problem->second);

    json::object& fields = parsed.get_object();
    const auto type_it = fields.find("type");
    if (type_it == fields.end() || !type_it->value().is_string()) {
      return reject(&*re, ErrorCode::bad_request, "'type' must be a string");
    }
    std::string type(type_it->value().get_string());

    auto route = shared_.router.find(type);
    if (!route) {
      if (type == names::kPing) {
        send(std::make_shared<const std::string>(
            json::serialize(json::object{{"type", "ok"}, {"re", *re}})));
        return;
      }
      return reject(&*re, ErrorCode::unsupported, "no enabled plugin handles '" + type + "'");
    }
    const bool nonblocking = route->options.nonblocking;
    const bool pipelined = route->options.pipelined;
    RequestSequencer::Job job{
        type, pipelined,
        [self = this->weak_from_this(), route = std::move(route), type, request_id = *re,
         fields = std::move(fields), nonblocking,
         arrived = std::chrono::steady_clock::now()]() mutable {
          auto session = self.lock();
          if (!session) return;
          auto run = [session, route = std::move(route), type = std::move(type),
                      request_id = std::move(request_id), fields = std::move(fields),
                      arrived]() mutable {
            session->start_request(std::move(route), std::move(type), std::move(request_id),
                                   std::move(fields), arrived);
          };
          if (nonblocking) {
            asio::post(session->ws_.get_executor(), std::move(run));
          } else {
            asio::post(session->worker_strand_, std::move(run));
          }
        }};
    if (!sequencer_->arrive(std::move(job))) {
      reject(&*re, ErrorCode::rate_limited, "too many requests waiting on this connection");
    }
  }

  // Runs a request whose turn has come, on the thread its route asks for.
  // Whether it may run before login is decided now, not on arrival: a
  // request pipelined behind a login sees that login's outcome.
  void start_request(std::shared_ptr<const Router::Route> route, std::string type,
                     std::string request_id, json::object fields,
                     std::chrono::steady_clock::time_point arrived) {
    std::string user;
    {
      std::lock_guard lock(mutex_);
      if (closing_) return sequencer_->finished();
      user = user_id_;
    }
    auto sink = std::make_shared<RequestReplySink>(this->weak_from_this(), sequencer_, shared_,
                                                   std::move(request_id), route, type, arrived);
    Reply reply(std::move(sink));
    if (user.empty() && !route->options.before_login) {
      shared_.errors(wire_name(ErrorCode::unauthenticated)).add();
      return reply.error(ErrorCode::unauthenticated, "log in first");
    }
    shared_.router.invoke(
        *route, Request{std::move(type), std::move(fields), id_, std::move(user), remote_address_},
        reply);
  }

  void close_for_abuse() {
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      closing_ = true;
    }
    shared_.log->warn("connection {}: far past its request budget, closing", id_);
    ws_.async_close(
        websocket::close_reason(websocket::close_code::policy_error, "too many requests"),
        [self = this->shared_from_this()](beast::error_code) {});
  }

  void send_close() {
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      closing_ = true;
    }
    ws_.async_close(websocket::close_code::going_away,
                    [self = this->shared_from_this()](beast::error_code) {});
  }

  void write_next() {
    std::shared_ptr<const std::string> next;
    std::vector<std::function<void()>> written;  // run once the queue is empty
    bool say_goodbye = false;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty() || closing_) {
        writing_ = false;
        if (!closing_) written.swap(written_callbacks_);
        say_goodbye = going_away_ && !closing_;
      } else {
        next = queue_.front();
      }
    }
    for (auto& callback : written) asio::post(shared_.workers, std::move(callback));
    if (!next) {
      if (say_goodbye) send_close();
      return;
    }
    ws_.async_write(asio::buffer(*next),
                    [self = this->shared_from_this(), next](beast::error_code ec, std::size_t) {
                      self->on_write(ec);
                    });
  }

  void on_write(beast::error_code ec) {
    {
      std::lock_guard lock(mutex_);
      if (!queue_.empty()) {
        queued_bytes_ -= queue_.front()->size();
        queue_.pop_front();
      }
      if (ec) {
        closing_ = true;
        queue_.clear();
        queued_bytes_ = 0;
        writing_ = false;
        written_callbacks_.clear();
        return;
      }
    }
    shared_.frames_out.add();
    write_next();
  }

  websocket::stream<Stream> ws_;
  Shared& shared_;
  const std::string remote_address_;
  // A connection that never logs in is closed after server.login_timeout_seconds.
  asio::steady_timer login_deadline_;
  const ConnectionId id_;
  beast::flat_buffer buffer_;
  TokenBucket bucket_;  // only touched on the connection's strand
  double over_budget_in_a_row_ = 0;
  bool registered_ = false;
  const std::shared_ptr<RequestSequencer> sequencer_;
  // Blocking handlers of this connection run here, one at a time, in order.
  asio::strand<asio::any_io_executor> worker_strand_;

  std::mutex mutex_;  // guards what follows; never held while logging or calling out
  std::string user_id_;
  bool ever_logged_in_ = false;
  std::shared_ptr<UserActivity> activity_;
  bool holding_ = false;
  std::vector<Frame> held_;
  std::unordered_set<std::string> sent_while_holding_;  // dedupe keys of the catch-up
  std::vector<std::function<void()>> written_callbacks_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool accepted_ = false;
  bool closing_ = false;
  bool going_away_ = false;  // the server is stopping: close once the queue is sent
};

// Reads HTTP requests on a fresh connection: operator endpoints, or the
// upgrade to WebSocket at /ws.
template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream&& stream, Shared& shared) : stream_(std::move(stream)), shared_(shared) {}

  void run() { read_request(); }

 private:
  void read_request() {
    parser_.emplace();
    parser_->body_limit(kMaxHttpRequestBytes);
    parser_->header_limit(kMaxHttpRequestBytes);
    beast::get_lowest_layer(stream_).expires_after(shared_.config.handshake_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return;
    auto request = parser_->release();
    if (websocket::is_upgrade(request)) {
      if (request.target() != "/ws")
        return respond(request, http::status::not_found, "text/plain", "not found\n");
      // Browsers send Origin: with an allow-list, other sites' pages cannot
      // open connections with the user's cookies or network position.
      if (const auto& allowed = shared_.config.allowed_origins; !allowed.empty()) {
        const auto origin = request[http::field::origin];
        if (std::find(allowed.begin(), allowed.end(), std::string_view(origin)) == allowed.end()) {
          return respond(request, http::status::forbidden, "text/plain", "origin not allowed\n");
        }
      }
      std::string address = client_address(stream_, request, shared_.config);
      if (const auto refused = shared_.admit(address)) {
        return respond(request, http::status::service_unavailable, "text/plain",
                       std::string(*refused) + "\n");
      }
      beast::get_lowest_layer(stream_).expires_never();
      std::make_shared<WebSocketSession<Stream>>(std::move(stream_), shared_, std::move(address))
          ->run(std::move(request));
      return;
    }
    const auto target = request.target();
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      return respond(request, http::status::method_not_allowed, "text/plain", "only GET\n");
    }
    if (target == "/healthz") return respond(request, http::status::ok, "text/plain", "ok\n");
    if (target == "/readyz") {
      const bool ready = shared_.ready();
      return respond(request, ready ? http::status::ok : http::status::service_unavailable,
                     "text/plain", ready ? "ready\n" : "not ready\n");
    }
    if (target == "/metrics") {
      if (const auto& token = shared_.config.metrics_token;
          !token.empty() && request[http::field::authorization] != "Bearer " + token) {
        return respond(request, http::status::unauthorized, "text/plain",
                       "a bearer token is required\n");
      }
      return respond(request, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                     shared_.metrics.render());
    }
    if (shared_.static_files) {
      auto file = shared_.static_files->serve(target, request[http::field::if_none_match]);
      return respond(request, static_cast<http::status>(file.status), file.content_type,
                     std::move(file.body), file.headers);
    }
    respond(request, http::status::not_found, "text/plain", "not found\n");
  }

  void respond(const http::request<http::string_body>& request, http::status status,
               std::string_view content_type, std::string body,
               const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    auto response = std::make_shared<http::response<http::string_body>>(status, request.version());
    response->set(http::field::server, "parley");
    response->set(http::field::content_type, content_type);
    for (const auto& [name, value] : headers) response->set(name, value);
    response->keep_alive(request.keep_alive());
    response->body() = std::move(body);
    response->prepare_payload();
    if (request.method() == http::verb::head) response->body().clear();
    http::async_write(
        stream_, *response,
        [self = this->shared_from_this(), response](beast::error_code ec, std::size_t) {
          if (ec) return;
          if (response->keep_alive()) {
            self->read_request();
          } else {
            beast::error_code ignored;
            beast::get_lowest_layer(self->stream_)
                .socket()
                .shutdown(tcp::socket::shutdown_send, ignored);
          }
        });
  }

  Stream stream_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

struct GatewayServer::Impl {
  Shared shared;
  asio::io_context ioc;
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  explicit Impl(GatewayDependencies& d)
      : shared(d),
        ioc(d.config.io_threads),
        acceptor(asio::make_strand(ioc)),
        accept_timer(acceptor.get_executor()) {}
  asio::steady_timer accept_timer;  // on the acceptor's strand
  std::chrono::milliseconds accept_backoff{0};
  std::chrono::steady_clock::time_point last_accept_log{};

  // When accept fails (EMFILE: out of descriptors), the loop waits before
  // trying again, doubling up to a second, instead of spinning a core; it
  // logs at most once per kAcceptLogInterval and counts every failure.
  static constexpr std::chrono::milliseconds kAcceptLogInterval{10000};
  void accept_later(const beast::error_code& ec) {
    shared.accept_errors.add();
    accept_backoff = std::min(std::max(accept_backoff * 2, std::chrono::milliseconds(10)),
                              std::chrono::milliseconds(1000));
    const auto now = std::chrono::steady_clock::now();
    if (now - last_accept_log >= kAcceptLogInterval) {
      last_accept_log = now;
      shared.log->error("cannot accept connections: {}; retrying in {} ms", ec.message(),
                        accept_backoff.count());
    }
    accept_timer.expires_after(accept_backoff);
    accept_timer.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) accept();
    });
  }

  void accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) return accept_later(ec);
      accept_backoff = std::chrono::milliseconds(0);
      {
        socket.set_option(tcp::no_delay(true), ec);
        beast::tcp_stream stream(std::move(socket));
        if (tls) {
          auto ssl =
              std::make_shared<beast::ssl_stream<beast::tcp_stream>>(std::move(stream), *tls);
          beast::get_lowest_layer(*ssl).expires_after(shared.config.handshake_timeout);
          ssl->async_handshake(asio::ssl::stream_base::server, [this, ssl](beast::error_code hec) {
            if (hec) return;
            std::make_shared<HttpSession<beast::ssl_stream<beast::tcp_stream>>>(std::move(*ssl),
                                                                                shared)
                ->run();
          });
        } else {
          std::make_shared<HttpSession<beast::tcp_stream>>(std::move(stream), shared)->run();
        }
      }
      accept();
    });
  }
};

GatewayServer::GatewayServer(GatewayDependencies deps) : impl_(std::make_unique<Impl>(deps)) {}

GatewayServer::~GatewayServer() {
  stop();
}

void GatewayServer::start() {
  const auto& config = impl_->shared.config;
  if (config.tls) {
    impl_->tls.emplace(asio::ssl::context::tls_server);
    impl_->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
    try {
      impl_->tls->use_certificate_chain_file(config.tls->certificate_file);
      impl_->tls->use_private_key_file(config.tls->private_key_file, asio::ssl::context::pem);
    } catch (const std::exception& e) {
      throw std::runtime_error("server.tls: cannot load certificate or key: " +
                               std::string(e.what()));
    }
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(config.listen, ec);
  if (ec) throw std::runtime_error("server.listen: '" + config.listen + "' is not an IP address");
  const tcp::endpoint endpoint(address, config.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + config.listen + ":" +
                             std::to_string(config.port) + ": " + ec.message());
  }
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->accept();
  for (int i = 0; i < config.io_threads; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->shared.log->info("listening on {}:{}{}", config.listen, port(),
                          config.tls ? " (TLS)" : "");
}

void GatewayServer::stop() {
  if (!impl_ || impl_->threads.empty()) return;
  asio::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->accept_timer.cancel();
  });
  impl_->work.reset();
  // Connections are told the server is going away; what does not finish in
  // time is cut when the I/O threads stop.
  impl_->shared.connections.for_each([](Connection& c) { c.close_going_away(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (impl_->shared.connections.connection_count() > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

std::uint16_t GatewayServer::port() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

}  // namespace parley::kernel
