// The byte stream under a connection's websocket::stream: what is written
// to it is gathered in memory and goes to the socket in one system call per
// batch instead of one per WebSocket frame.
//
// Beast writes one message per operation and serialises its own control
// frames (pong, ping, close) internally, so frames cannot be coalesced above
// it. Below it they can: the session encodes every queued frame with the
// synchronous write (which lands here as a memory copy) and then flushes
// once; Beast's own control frames arrive through async_write_some, are
// appended whole, and complete when their bytes are on the socket (so a
// close frame is out before the teardown). Frames are appended whole, in
// the order they were written, so they never interleave.
//
// Only one strand touches a stream (the connection's), so there is no lock.
// Used by the gateway's WebSocket sessions and by the load generator's
// client connections (which mask their frames: the synchronous write masks
// into Beast's own buffer before the bytes land here).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace parley::net {

// Write buffers of streams gone idle, kept for the next stream on the same
// thread that starts writing. An idle stream keeps no buffer (most
// connections are idle most of the time), and a busy one empties many
// times a second: handing its buffers to malloc and back, at sizes past
// glibc's per-thread cache, was a visible share of the gateway's CPU. At
// most kMaxBuffers of at most kMaxCapacity bytes each are kept per thread.
class WriteBufferCache {
 public:
  static constexpr std::size_t kInitialCapacity = 2048;
  static constexpr std::size_t kMaxCapacity = 16 * 1024;
  static constexpr std::size_t kMaxBuffers = 64;

  // An empty buffer with room for at least kInitialCapacity bytes.
  static std::string take() {
    auto& kept = buffers();
    if (kept.empty()) {
      std::string buffer;
      buffer.reserve(kInitialCapacity);
      return buffer;
    }
    std::string buffer = std::move(kept.back());
    kept.pop_back();
    return buffer;
  }

  // Takes `buffer`'s memory, keeping it when it is of a size worth keeping
  // and there is room; `buffer` is left empty, without memory.
  static void give(std::string& buffer) {
    std::string released;
    released.swap(buffer);
    auto& kept = buffers();
    if (released.capacity() < kInitialCapacity || released.capacity() > kMaxCapacity ||
        kept.size() >= kMaxBuffers) {
      return;
    }
    released.clear();
    kept.push_back(std::move(released));
  }

 private:
  static std::vector<std::string>& buffers() {
    thread_local std::vector<std::string> kept;
    return kept;
  }
};

template <class Inner>
class CoalescingStream {
 public:
  using executor_type = typename Inner::executor_type;
  using next_layer_type = Inner;
  using error_code = boost::system::error_code;
  using WriteHandler = boost::asio::any_completion_handler<void(error_code, std::size_t)>;

  template <class... Args>
  explicit CoalescingStream(Args&&... args)
      : state_(std::make_shared<State>(std::forward<Args>(args)...)) {}
  CoalescingStream(CoalescingStream&&) = default;
  CoalescingStream& operator=(CoalescingStream&&) = delete;
  ~CoalescingStream() {
    if (!state_) return;
    // A socket write in flight keeps the state (and the socket) alive: close
    // the socket on the stream's strand so that write ends, and start no
    // other.
    auto executor = state_->inner.get_executor();
    boost::asio::post(executor, [state = std::move(state_)] {
      state->destroyed = true;
      boost::beast::close_socket(boost::beast::get_lowest_layer(state->inner));
    });
  }

  executor_type get_executor() noexcept { return state_->inner.get_executor(); }
  Inner& next_layer() noexcept { return state_->inner; }
  const Inner& next_layer() const noexcept { return state_->inner; }

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    return state_->inner.read_some(buffers, ec);
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    return state_->inner.read_some(buffers);
  }
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return state_->inner.async_read_some(buffers, std::forward<Token>(token));
  }

  // Appends; the bytes reach the socket at the next flush (or with the next
  // control frame Beast writes).
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, error_code& ec) {
    if (state_->failure) {
      ec = state_->failure;
      return 0;
    }
    ec = {};
    return state_->append(buffers);
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  // Completes once these bytes (and everything appended before them) are on
  // the socket.
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [](auto handler, std::shared_ptr<State> state, const ConstBuffers& data) {
          const std::size_t n = state->append(data);
          State::enqueue(std::move(state), WriteHandler(std::move(handler)), n);
        },
        token, state_, buffers);
  }

  // Sends everything appended so far; `handler` completes when it is on the
  // socket or the socket failed.
  template <class Token>
  auto async_flush(Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [](auto handler, std::shared_ptr<State> state) {
          State::enqueue(std::move(state), WriteHandler(std::move(handler)), 0);
        },
        token, state_);
  }

 private:
  struct Waiter {
    WriteHandler handler;
    std::size_t bytes;
  };

  struct State {
    template <class... Args>
    explicit State(Args&&... args) : inner(std::forward<Args>(args)...) {}

    template <class ConstBuffers>
    std::size_t append(const ConstBuffers& buffers) {
      // Room taken at the first frame after idling: a batch of replies and
      // events usually fits without growing.
      if (pending.empty() && pending.capacity() < WriteBufferCache::kInitialCapacity) {
        pending = WriteBufferCache::take();
      }
      std::size_t n = 0;
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        const boost::asio::const_buffer buffer(*it);
        pending.append(static_cast<const char*>(buffer.data()), buffer.size());
        n += buffer.size();
      }
      return n;
    }

    static void enqueue(std::shared_ptr<State> self, WriteHandler handler, std::size_t bytes) {
      if (self->failure) {
        // Never from inside the initiating call: as if posted.
        auto executor = self->inner.get_executor();
        boost::asio::post(executor, [handler = std::move(handler), ec = self->failure]() mutable {
          std::move(handler)(ec, 0);
        });
        return;
      }
      self->waiting.push_back(Waiter{std::move(handler), bytes});
      start(std::move(self));
    }

    static void start(std::shared_ptr<State> self) {
      if (self->writing || self->waiting.empty()) return;
      self->writing = true;
      self->in_flight.swap(self->pending);
      self->pending.clear();
      self->flushing.swap(self->waiting);
      auto& inner = self->inner;
      auto& bytes = self->in_flight;
      boost::asio::async_write(inner, boost::asio::buffer(bytes),
                               [self = std::move(self)](error_code ec, std::size_t) mutable {
                                 written(std::move(self), ec);
                               });
    }

    static void written(std::shared_ptr<State> self, error_code ec) {
      self->writing = false;
      self->in_flight.clear();
      if (ec && !self->failure) self->failure = ec;
      if (self->destroyed && !self->failure) self->failure = boost::asio::error::operation_aborted;
      std::vector<Waiter> done;
      done.swap(self->flushing);
      if (self->failure) {
        for (auto& waiter : self->waiting) done.push_back(std::move(waiter));
        self->waiting.clear();
        self->pending.clear();
      }
      for (auto& waiter : done) {
        std::move(waiter.handler)(self->failure, self->failure ? 0 : waiter.bytes);
      }
      // A handler above may have started the next write (its bytes are in
      // in_flight now): nothing to free or start then.
      if (self->failure || self->writing) return;
      if (self->waiting.empty() && self->pending.empty()) {
        // Idle: most connections are, most of the time, and they keep no
        // write buffers (a catch-up page would otherwise stay with them).
        WriteBufferCache::give(self->in_flight);
        WriteBufferCache::give(self->pending);
        return;
      }
      start(std::move(self));
    }

    Inner inner;
    std::string pending;           // appended, not yet handed to the socket
    std::string in_flight;         // the socket write in progress
    std::vector<Waiter> waiting;   // complete after the write that follows
    std::vector<Waiter> flushing;  // complete when the write in progress ends
    bool writing = false;
    bool destroyed = false;
    error_code failure;
  };

  std::shared_ptr<State> state_;
};

template <class Inner>
void teardown(boost::beast::role_type role, CoalescingStream<Inner>& stream,
              boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class Inner, class TeardownHandler>
void async_teardown(boost::beast::role_type role, CoalescingStream<Inner>& stream,
                    TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace parley::net
