// One WebSocket connection: reads frames, checks them, hands each request
// to the router in arrival order (RequestSequencer), and writes from a
// bounded queue, all queued frames in one socket write (CoalescingStream).
// Included only by gateway_server.cpp.
#pragma once

#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/container/devector.hpp>
#include <boost/json/parse.hpp>

#include "coalescing_stream.hpp"  // kernel/src/asio
#include "gateway_shared.hpp"
#include "ip_address.hpp"
#include "parley/names.hpp"

namespace parley::kernel::gateway_detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// The client's address: the peer's, or the last X-Forwarded-For hop when the
// peer is a trusted proxy. The hop the proxy appended is the last of all the
// header's lines (RFC 7230 3.2.2: repeated lines are one comma-separated
// list; a proxy may add a line instead of extending one), and it must be an
// IP address: anything else, which the proxy did not write, is ignored and
// the peer's address stands.
template <class Stream>
std::string client_address(Stream& stream, const http::request<http::string_body>& request,
                           const ServerConfig& config) {
  beast::error_code ec;
  const auto peer = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
  std::string address = ec ? std::string() : unmapped(peer.address()).to_string();
  const auto& trusted = config.trusted_proxies;
  if (std::find(trusted.begin(), trusted.end(), address) == trusted.end()) return address;
  std::string_view last;
  const auto [lines, end] = request.equal_range("X-Forwarded-For");
  for (auto line = lines; line != end; ++line) {
    if (!line->value().empty()) last = std::string_view(line->value().data(), line->value().size());
  }
  if (const auto comma = last.rfind(','); comma != std::string_view::npos) {
    last.remove_prefix(comma + 1);
  }
  while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) last.remove_prefix(1);
  while (!last.empty() && (last.back() == ' ' || last.back() == '\t')) last.remove_suffix(1);
  const auto hop = asio::ip::make_address(last, ec);
  return ec ? address : unmapped(hop).to_string();
}

template <class Stream>
class WebSocketSession : public Connection,
                         public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  // `slot`, the connection's place under the caps since its accept, is
  // given back when the session ends.
  WebSocketSession(Stream&& stream, Shared& shared, std::string address, ConnectionCaps::Slot slot)
      : ws_(std::move(stream)),
        shared_(shared),
        remote_address_(std::move(address)),
        slot_(std::move(slot)),
        login_deadline_(ws_.get_executor()),
        id_(shared.next_id.fetch_add(1)),
        bucket_(shared.config.requests_per_second, shared.config.request_burst),
        sequencer_(std::make_shared<RequestSequencer>(shared.config.max_pending_requests,
                                                      shared.config.max_pending_request_bytes)),
        worker_strand_(asio::make_strand(shared.workers)) {}

  ~WebSocketSession() override {
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
    bool logged_out = false;
    {
      std::lock_guard lock(mutex_);
      logged_out = !user_id_.empty() && user_id.empty();
      user_id_ = std::move(user_id);
      activity_ = std::move(activity);
      holding_ = hold && !user_id_.empty();
      held_.clear();
      held_bytes_ = 0;
      sent_while_holding_.clear();
      // Logged out (or its login ended): anonymous again, so under the
      // login deadline again, from now.
      if (logged_out)
        login_deadline_at_ = std::chrono::steady_clock::now() + shared_.config.login_timeout;
    }
    if (logged_out) {
      asio::post(ws_.get_executor(), [self = this->shared_from_this()] { self->await_login(); });
    }
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
        // Held frames join the write queue at release, so they are held
        // within its limits: a client that stops reading during its
        // catch-up is cut off as a slow reader, not fed memory.
        if (held_.size() < shared_.config.max_queued_frames &&
            held_bytes_ + frame.text->size() <= shared_.config.max_queued_bytes) {
          held_bytes_ += frame.text->size();
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
      held_bytes_ = 0;
      holding_ = false;
    }
    if (overflowed) report_overflow();
  }

  void close_going_away() override {
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] {
      {
        std::lock_guard lock(self->mutex_);
        if (self->closing_ || self->goodbye_ || !self->accepted_) return;
        self->goodbye_ = websocket::close_reason(websocket::close_code::going_away);
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
  // At most this much is gathered into one socket write (one frame larger
  // than this goes alone).
  static constexpr std::size_t kWriteBatchBytes = 64 * 1024;
  // A client that sent nothing over its budget for this long backed off:
  // its count of frames over the budget starts again.
  static constexpr std::chrono::seconds kAbuseQuiet{1};
  static constexpr std::size_t kMaxBatchReserve = 256;
  // An idle connection keeps this much room in its write queue and batch
  // (a few hundred bytes) and frees more: freeing it all on every idle
  // moment costs an allocation per write on a busy connection.
  static constexpr std::size_t kIdleFrameRoom = 16;

  // Queues a frame for writing, with mutex_ held. False when the queue is
  // over its limit: the connection is then being cut off. A reply to the
  // client's own request is judged by what was queued before it, so that
  // one large reply never cuts off the client that asked for it; a client
  // that stops reading is still cut off at its next frame.
  bool enqueue(std::shared_ptr<const std::string> text, bool is_reply = false) {
    if (closing_ || goodbye_) return true;
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
    held_bytes_ = 0;
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
    {
      std::lock_guard lock(mutex_);
      login_deadline_at_ = std::chrono::steady_clock::now() + shared_.config.login_timeout;
    }
    await_login();
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

  // On the connection's strand: closes the connection (1008) if it is not
  // logged in at login_deadline_at_. Set again at every logout, which
  // calls this again (a wait already pending is cancelled).
  void await_login() {
    std::chrono::steady_clock::time_point deadline;
    {
      std::lock_guard lock(mutex_);
      deadline = login_deadline_at_;
    }
    login_deadline_.expires_at(deadline);
    login_deadline_.async_wait([weak = this->weak_from_this()](beast::error_code wait_ec) {
      auto self = weak.lock();
      if (wait_ec || !self) return;
      {
        std::lock_guard lock(self->mutex_);
        if (!self->user_id_.empty() || self->closing_) return;
        // A logout moved the deadline after this wait began; its own wait
        // is on the way.
        if (std::chrono::steady_clock::now() < self->login_deadline_at_) return;
        self->closing_ = true;
      }
      self->shared_.login_deadline_closes.add();
      self->ws_.async_close(
          websocket::close_reason(websocket::close_code::policy_error, "log in first"),
          [self](beast::error_code) {});
    });
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
    if (stopped_reading_) return;  // closing: Beast's close reads what still comes
    // A large idle buffer is returned instead of kept per connection (a
    // small one stays: Beast's read takes its room when it starts, before
    // any byte has arrived, so dropping it would buy nothing).
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
      // Repeated abuse: a client that keeps sending far past its budget is
      // cut off. A flood still gets a token now and then as the bucket
      // refills, so only a pause of kAbuseQuiet without a frame over the
      // budget (a client that backed off) forgives the count.
      last_over_budget_ = std::chrono::steady_clock::now();
      if (++over_budget_ > 2 * shared_.config.request_burst) return close_for_abuse();
      return reject(re ? &*re : nullptr, ErrorCode::rate_limited, "too many requests; retry later");
    }
    // Only a connection that went over its budget reads the clock here.
    if (over_budget_ > 0 && std::chrono::steady_clock::now() - last_over_budget_ >= kAbuseQuiet) {
      over_budget_ = 0;
    }
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
    const auto arrived = std::chrono::steady_clock::now();
    // A waiting request holds its parsed fields: its frame's size counts
    // against the connection's max_pending_request_bytes.
    const auto arrival = sequencer_->arrive(type, pipelined, buffer_.size(), [&] {
      return RequestSequencer::Job{
          type, pipelined,
          [self = this->weak_from_this(), route, type, request_id = *re, fields = std::move(fields),
           nonblocking, arrived]() mutable {
            auto session = self.lock();
            if (!session) return;
            auto run = [session, route = std::move(route), type = std::move(type),
                        request_id = std::move(request_id), fields = std::move(fields),
                        arrived]() mutable {
              session->sequencer_->began();
              session->start_request(std::move(route), std::move(type), std::move(request_id),
                                     std::move(fields), arrived);
            };
            if (nonblocking) {
              asio::post(session->ws_.get_executor(), std::move(run));
            } else {
              asio::post(session->worker_strand_, std::move(run));
            }
          }};
    });
    switch (arrival) {
      case RequestSequencer::Arrival::start_now:
        if (nonblocking) {
          // On this connection's strand, where the request arrived.
          return start_request(std::move(route), std::move(type), std::move(*re), std::move(fields),
                               arrived);
        }
        return asio::post(
            worker_strand_,
            [self = this->shared_from_this(), route = std::move(route), type = std::move(type),
             request_id = std::move(*re), fields = std::move(fields), arrived]() mutable {
              self->start_request(std::move(route), std::move(type), std::move(request_id),
                                  std::move(fields), arrived);
            });
      case RequestSequencer::Arrival::queued:
        return;
      case RequestSequencer::Arrival::refused:
        return reject(&*re, ErrorCode::rate_limited,
                      "too many requests waiting on this connection");
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
      // Closing, or about to: a request not started yet never starts.
      if (closing_ || goodbye_) return sequencer_->finished();
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

  // The answers already queued (the refusals before this frame) go out
  // first; then the close. Nothing more is read.
  void close_for_abuse() {
    stopped_reading_ = true;
    sequencer_->clear();  // requests still waiting their turn never start
    shared_.log->warn("connection {}: far past its request budget, closing", id_);
    {
      std::lock_guard lock(mutex_);
      if (closing_ || goodbye_) return;
      goodbye_ = websocket::close_reason(websocket::close_code::policy_error, "too many requests");
      if (writing_) return;  // write_next() closes when the queue is out
    }
    send_close();
  }

  void send_close() {
    websocket::close_reason reason;
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      closing_ = true;
      reason = goodbye_.value_or(websocket::close_reason(websocket::close_code::going_away));
    }
    ws_.async_close(reason, [self = this->shared_from_this()](beast::error_code) {});
  }

  // Encodes every queued frame (up to kWriteBatchBytes) into the stream's
  // memory and sends them in one system call. The frames stay in queue_,
  // counted against the limit, until they are on the socket.
  void write_next() {
    std::vector<std::function<void()>> written;  // run once the queue is empty
    bool say_goodbye = false;
    batch_.clear();
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty() || closing_) {
        writing_ = false;
        if (queue_.empty() && queue_.capacity() > kIdleFrameRoom) queue_.shrink_to_fit();
        if (!closing_) written.swap(written_callbacks_);
        say_goodbye = goodbye_ && !closing_;
      } else {
        batch_.reserve(std::min(queue_.size(), kMaxBatchReserve));
        std::size_t bytes = 0;
        for (const auto& frame : queue_) {
          if (!batch_.empty() && bytes + frame->size() > kWriteBatchBytes) break;
          bytes += frame->size();
          batch_.push_back(frame);
        }
      }
    }
    for (auto& callback : written) asio::post(shared_.workers, std::move(callback));
    if (batch_.empty()) {
      // Idle: a large batch's room is not kept.
      if (batch_.capacity() > kIdleFrameRoom)
        std::vector<std::shared_ptr<const std::string>>().swap(batch_);
      if (say_goodbye) send_close();
      return;
    }
    beast::error_code ec;
    for (const auto& frame : batch_) {
      ws_.write(asio::buffer(*frame), ec);
      if (ec) return on_write(ec);
    }
    ws_.next_layer().async_flush(
        [self = this->shared_from_this()](beast::error_code flush_ec, std::size_t) {
          self->on_write(flush_ec);
        });
  }

  void on_write(beast::error_code ec) {
    const std::size_t frames = batch_.size();
    batch_.clear();
    {
      std::lock_guard lock(mutex_);
      if (ec) {
        closing_ = true;
        queue_.clear();
        queued_bytes_ = 0;
        writing_ = false;
        written_callbacks_.clear();
        return;
      }
      // cut_off() may have emptied the queue meanwhile.
      for (std::size_t i = 0; i < frames && !queue_.empty(); ++i) {
        queued_bytes_ -= queue_.front()->size();
        queue_.pop_front();
      }
    }
    shared_.frames_out.add(static_cast<double>(frames));
    write_next();
  }

  websocket::stream<::parley::net::CoalescingStream<Stream>> ws_;
  // The frames of the write in progress; only touched on the connection's strand.
  std::vector<std::shared_ptr<const std::string>> batch_;
  Shared& shared_;
  const std::string remote_address_;
  const ConnectionCaps::Slot slot_;
  // A connection not logged in is closed server.login_timeout_seconds after
  // its upgrade or its last logout (login_deadline_at_).
  asio::steady_timer login_deadline_;
  const ConnectionId id_;
  beast::flat_buffer buffer_;
  TokenBucket bucket_;      // only touched on the connection's strand
  double over_budget_ = 0;  // frames over the budget since the last quiet kAbuseQuiet
  std::chrono::steady_clock::time_point last_over_budget_;
  bool registered_ = false;
  const std::shared_ptr<RequestSequencer> sequencer_;
  // Blocking handlers of this connection run here, one at a time, in order.
  asio::strand<asio::any_io_executor> worker_strand_;

  std::mutex mutex_;  // guards what follows; never held while logging or calling out
  std::string user_id_;
  std::chrono::steady_clock::time_point login_deadline_at_;
  std::shared_ptr<UserActivity> activity_;
  bool holding_ = false;
  std::vector<Frame> held_;
  std::size_t held_bytes_ = 0;
  std::unordered_set<std::string> sent_while_holding_;  // dedupe keys of the catch-up
  std::vector<std::function<void()>> written_callbacks_;
  // While the connection is idle, room for at most kIdleFrameRoom frames
  // (write_next).
  boost::container::devector<std::shared_ptr<const std::string>> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool accepted_ = false;
  bool closing_ = false;
  // Set when the connection is to close (the server stops, or the client
  // abused its budget): nothing more is queued, and it closes with this
  // once what was queued before is sent.
  std::optional<websocket::close_reason> goodbye_;
  bool stopped_reading_ = false;  // only touched on the connection's strand
};

}  // namespace parley::kernel::gateway_detail
