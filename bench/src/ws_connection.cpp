// The only translation unit of the load generator that includes Beast.
#include "ws_connection.hpp"

#include <netinet/in.h>

#include <cstdint>
#include <deque>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "coalescing_stream.hpp"  // kernel/src/asio

namespace parley::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

class BeastConnection final : public WsConnection,
                              public std::enable_shared_from_this<BeastConnection> {
 public:
  explicit BeastConnection(asio::io_context& ioc) : strand_(asio::make_strand(ioc)), ws_(strand_) {}

  void connect(const WsTarget& target, std::optional<asio::ip::address> source, Handlers handlers,
               Done done) override {
    asio::dispatch(ws_.get_executor(),
                   [self = shared_from_this(), target, source, handlers = std::move(handlers),
                    done = std::move(done)]() mutable {
                     self->start_connect(target, source, std::move(handlers), std::move(done));
                   });
  }

  void send(std::string text) override {
    asio::dispatch(ws_.get_executor(),
                   [self = shared_from_this(), text = std::move(text)]() mutable {
                     if (self->state_ != State::open) return;
                     self->queue_.push_back(std::move(text));
                     if (self->writing_) return;
                     self->writing_ = true;
                     if (self->reading_frame_) {
                       self->write_when_reads_settle(std::nullopt, 0);
                     } else {
                       // Not a reply to a frame (a timer's send): nothing to
                       // wait for but the rest of this handler.
                       asio::post(self->ws_.get_executor(), [self] { self->write_next(); });
                     }
                   });
  }

  void close() override {
    asio::dispatch(ws_.get_executor(), [self = shared_from_this()] {
      if (self->state_ == State::open) {
        self->state_ = State::closing;
        self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {});
      } else if (self->state_ == State::idle || self->state_ == State::connecting) {
        self->state_ = State::closed;
        beast::error_code ignored;
        beast::get_lowest_layer(self->ws_).socket().close(ignored);
      }
    });
  }

  void post(std::function<void()> fn) override { asio::post(ws_.get_executor(), std::move(fn)); }

  bool on_strand() const override { return strand_.running_in_this_thread(); }

 private:
  enum class State { idle, connecting, open, closing, closed };

  void start_connect(const WsTarget& target, std::optional<asio::ip::address> source,
                     Handlers handlers, Done done) {
    handlers_ = std::move(handlers);
    state_ = State::connecting;
    auto& stream = beast::get_lowest_layer(ws_);
    auto& socket = stream.socket();
    beast::error_code ec;
    socket.open(target.server.protocol(), ec);
    if (!ec && source) {
      // Choose the port at connect() time, by the whole 4-tuple: without this
      // every source address is limited to one ephemeral range in total.
      const int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      socket.bind(tcp::endpoint(*source, 0), ec);
    }
    if (ec) return fail(done, "socket: " + ec.message());
    stream.expires_after(target.connect_timeout);
    stream.async_connect(target.server, [self = shared_from_this(), target,
                                         done = std::move(done)](beast::error_code cec) mutable {
      if (cec) return self->fail(done, "connect: " + cec.message());
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true), ignored);
      self->ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(beast::http::field::user_agent, "parley-bench");
      }));
      self->ws_.async_handshake(
          target.host, target.path, [self, done = std::move(done)](beast::error_code hec) {
            if (hec) return self->fail(done, "handshake: " + hec.message());
            // Handshake done: no more deadline on the socket; the server's pings
            // are answered by Beast while a read is pending.
            beast::get_lowest_layer(self->ws_).expires_never();
            self->ws_.set_option(websocket::stream_base::timeout{
                std::chrono::seconds(30), websocket::stream_base::none(), false});
            self->ws_.text(true);
            if (self->state_ != State::connecting) return done("closed while connecting");
            self->state_ = State::open;
            self->read_next();
            done({});
          });
    });
  }

  void fail(const Done& done, const std::string& why) {
    state_ = State::closed;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    done(why);
  }

  void read_next() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  // For a send made while a frame is handled: starts the write once this
  // connection's reads stop completing back to back. The replies to a burst
  // of frames that arrived together then go out in one write, as a real
  // client would send them, instead of the first alone and the rest after
  // it: frames already received complete their reads as posted handlers,
  // which would otherwise run after a write posted by the first. The first
  // turn yields; each later one yields again while a read completed since
  // the turn before, up to kMaxTurns.
  void write_when_reads_settle(std::optional<std::uint64_t> reads_seen, int turn) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), reads_seen, turn] {
      if (reads_seen != self->reads_ && turn < kMaxTurns) {
        return self->write_when_reads_settle(self->reads_, turn + 1);
      }
      self->write_next();
    });
  }

  void on_read(beast::error_code ec) {
    ++reads_;
    if (ec)
      return closed(ec == websocket::error::closed
                        ? "closed by the server (code " +
                              std::to_string(static_cast<int>(ws_.reason().code)) + ")"
                        : "read: " + ec.message());
    const auto data = buffer_.cdata();
    if (handlers_.on_text) {
      reading_frame_ = true;
      handlers_.on_text(std::string_view(static_cast<const char*>(data.data()), data.size()));
      reading_frame_ = false;
    }
    buffer_.consume(buffer_.size());
    read_next();
  }

  // Every queued frame (up to kWriteBatchBytes) in one socket write, as the
  // server does (CoalescingStream).
  void write_next() {
    if (queue_.empty() || state_ != State::open) {
      writing_ = false;
      return;
    }
    writing_ = true;
    std::size_t frames = 0;
    std::size_t bytes = 0;
    beast::error_code ec;
    for (const auto& text : queue_) {
      if (frames > 0 && bytes + text.size() > kWriteBatchBytes) break;
      ws_.write(asio::buffer(text), ec);
      if (ec) {
        writing_ = false;
        return;  // the read side reports the end
      }
      ++frames;
      bytes += text.size();
    }
    ws_.next_layer().async_flush(
        [self = shared_from_this(), frames](beast::error_code flush_ec, std::size_t) {
          for (std::size_t i = 0; i < frames && !self->queue_.empty(); ++i) {
            self->queue_.pop_front();
          }
          if (flush_ec) {
            self->writing_ = false;
            return;  // the read side reports the end
          }
          self->write_next();
        });
  }

  void closed(const std::string& why) {
    const bool expected = state_ == State::closing;
    state_ = State::closed;  // a write in flight pops its frames when it ends
    auto handler = std::move(handlers_.on_closed);
    handlers_ = {};
    if (handler) handler(expected ? std::string("closed by us") : why);
  }

  // Named by its concrete type, as in the gateway: a type-erased
  // any_io_executor, copied by every asynchronous operation, costs calls
  // through its table each time.
  using Strand = asio::strand<asio::io_context::executor_type>;
  Strand strand_;
  static constexpr std::size_t kWriteBatchBytes = 64 * 1024;
  static constexpr int kMaxTurns = 16;

  websocket::stream<net::CoalescingStream<beast::basic_stream<tcp, Strand>>> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  std::uint64_t reads_ = 0;     // reads completed, for write_when_reads_settle
  bool reading_frame_ = false;  // on_text is running
  State state_ = State::idle;
  Handlers handlers_;
};

}  // namespace

std::shared_ptr<WsConnection> WsConnection::create(asio::io_context& ioc) {
  return std::make_shared<BeastConnection>(ioc);
}

}  // namespace parley::bench
