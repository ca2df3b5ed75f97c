#include "ws_client.hpp"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace parley::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

struct WsClient::Impl {
  asio::io_context ioc;
  // Keeps ioc.run() going while reading is paused.
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  asio::ssl::context ssl_ctx{asio::ssl::context::tls_client};
  std::optional<websocket::stream<beast::tcp_stream>> plain;
  std::optional<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> secure;
  beast::flat_buffer buffer;
  std::thread thread;

  std::mutex mutex;
  std::condition_variable arrived;
  std::deque<json::object> frames;
  std::deque<json::object> stashed_events;
  bool closed = false;
  bool paused = false;
  bool reading = false;  // an async_read is pending
  std::optional<int> code;
  int next_id = 1;

  template <class F>
  void with_stream(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(*plain);
    }
  }

  // Call with `reading` set to true by the caller (under the mutex).
  void read_loop() {
    with_stream([this](auto& ws) {
      ws.async_read(buffer, [this, &ws](beast::error_code ec, std::size_t) {
        std::unique_lock lock(mutex);
        reading = false;
        if (ec) {
          closed = true;
          if (ws.reason().code != websocket::close_code::none)
            code = static_cast<int>(ws.reason().code);
          arrived.notify_all();
          return;
        }
        const auto data = buffer.cdata();
        std::string text(static_cast<const char*>(data.data()), data.size());
        buffer.consume(buffer.size());
        json::error_code jec;
        auto value = json::parse(text, jec);
        if (!jec && value.is_object()) frames.push_back(std::move(value.get_object()));
        arrived.notify_all();
        if (!paused) {
          reading = true;
          lock.unlock();
          read_loop();
        }
      });
    });
  }

  void write(const std::string& data, bool text) {
    std::promise<beast::error_code> done;
    asio::post(ioc, [&] {
      with_stream([&](auto& ws) {
        ws.text(text);
        ws.async_write(asio::buffer(data),
                       [&](beast::error_code ec, std::size_t) { done.set_value(ec); });
      });
    });
    auto ec = done.get_future().get();
    if (ec) throw std::runtime_error("websocket write failed: " + ec.message());
  }
};

WsClient::WsClient(int port, Options options) : impl_(std::make_unique<Impl>()) {
  tcp::resolver resolver(impl_->ioc);
  auto endpoints = resolver.resolve("127.0.0.1", std::to_string(port));
  beast::tcp_stream stream(impl_->ioc);
  if (options.receive_buffer > 0) {
    stream.socket().open(tcp::v4());
    stream.socket().set_option(asio::socket_base::receive_buffer_size(options.receive_buffer));
  }
  stream.connect(endpoints);
  const auto decorate = [headers = options.headers](websocket::request_type& request) {
    for (const auto& [name, value] : headers) request.insert(name, value);
  };
  if (options.tls) {
    impl_->ssl_ctx.set_verify_mode(asio::ssl::verify_none);
    impl_->secure.emplace(beast::ssl_stream<beast::tcp_stream>(std::move(stream), impl_->ssl_ctx));
    impl_->secure->set_option(websocket::stream_base::decorator(decorate));
    impl_->secure->next_layer().handshake(asio::ssl::stream_base::client);
    impl_->secure->handshake("127.0.0.1", options.target);
  } else {
    impl_->plain.emplace(std::move(stream));
    impl_->plain->set_option(websocket::stream_base::decorator(decorate));
    impl_->plain->handshake("127.0.0.1", options.target);
  }
  impl_->reading = true;
  impl_->read_loop();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

WsClient::~WsClient() {
  asio::post(impl_->ioc, [this] {
    impl_->with_stream([](auto& ws) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws).socket().close(ignored);
    });
  });
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void WsClient::send_text(const std::string& text) {
  impl_->write(text, true);
}
void WsClient::send_binary(const std::string& data) {
  impl_->write(data, false);
}

std::optional<json::object> WsClient::receive(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  if (!impl_->arrived.wait_for(lock, timeout,
                               [&] { return !impl_->frames.empty() || impl_->closed; })) {
    return std::nullopt;
  }
  if (impl_->frames.empty()) return std::nullopt;
  auto frame = std::move(impl_->frames.front());
  impl_->frames.pop_front();
  return frame;
}

json::object WsClient::request(json::object request, std::chrono::milliseconds timeout) {
  std::string id;
  {
    std::lock_guard lock(impl_->mutex);
    id = "r" + std::to_string(impl_->next_id++);
  }
  request["id"] = id;
  send(request);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("no reply to " + json::serialize(request));
    auto frame = receive(left);
    if (!frame) throw std::runtime_error("no reply to " + json::serialize(request));
    if (auto re = frame->if_contains("re"); re && re->is_string() && re->get_string() == id)
      return *frame;
    std::lock_guard lock(impl_->mutex);
    impl_->stashed_events.push_back(std::move(*frame));
  }
}

std::optional<json::object> WsClient::next_event(const std::string& type,
                                                 std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(impl_->mutex);
    for (auto it = impl_->stashed_events.begin(); it != impl_->stashed_events.end(); ++it) {
      if (it->at("type").as_string() == type) {
        auto event = std::move(*it);
        impl_->stashed_events.erase(it);
        return event;
      }
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto frame = receive(left);
    if (!frame) return std::nullopt;
    if (!frame->contains("re") && frame->at("type").as_string() == type) return frame;
    std::lock_guard lock(impl_->mutex);
    impl_->stashed_events.push_back(std::move(*frame));
  }
}

bool WsClient::no_event(const std::string& type, std::chrono::milliseconds timeout) {
  return !next_event(type, timeout).has_value();
}

void WsClient::pause_reading() {
  std::lock_guard lock(impl_->mutex);
  impl_->paused = true;
}

void WsClient::resume_reading() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->paused = false;
    if (impl_->reading || impl_->closed) return;
    impl_->reading = true;
  }
  asio::post(impl_->ioc, [this] { impl_->read_loop(); });
}

bool WsClient::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->arrived.wait_for(lock, timeout, [&] { return impl_->closed; });
}

std::optional<int> WsClient::close_code() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->code;
}

HttpResult http_get(int port, const std::string& target,
                    const std::vector<std::pair<std::string, std::string>>& headers) {
  namespace http = beast::http;
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) req.set(name, value);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {static_cast<int>(res.result_int()), res.body()};
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace parley::test
