#include "gateway_server.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "http_session.hpp"
#include "thread_names.hpp"

// The listener: accepts connections (TLS first when configured) and hands
// each to an HttpSession. The sessions live in http_session.hpp and
// websocket_session.hpp, their shared state in gateway_shared.hpp.
namespace parley::kernel {

using gateway_detail::HttpSession;
using gateway_detail::Shared;
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// Each connection runs on its own strand of the network io_context, named
// by its concrete type rather than as any_io_executor: every asynchronous
// operation copies its executor, and the type-erased copies were about 5 %
// of parleyd's CPU samples in the 1:1 closed loop.
using ConnectionExecutor = asio::strand<asio::io_context::executor_type>;
using TcpStream = beast::basic_stream<tcp, ConnectionExecutor>;

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
    acceptor.async_accept(asio::make_strand(ioc),
                          [this](beast::error_code ec, TcpStream::socket_type socket) {
                            if (ec == asio::error::operation_aborted) return;
                            if (ec) return accept_later(ec);
                            accept_backoff = std::chrono::milliseconds(0);
                            if (auto slot = admit(socket)) {
                              socket.set_option(tcp::no_delay(true), ec);
                              serve(TcpStream(std::move(socket)), std::move(slot));
                            }
                            // Else the socket closes here, unread: an over-cap peer costs no
                            // handshake, no buffer and no timer.
                            accept();
                          });
  }

  // Every accepted socket takes its place under the caps before anything
  // is read from it. A trusted proxy's sockets carry many clients: they
  // count in all now, and for their client's address at the WebSocket
  // upgrade that names it (HttpSession).
  ConnectionCaps::Slot admit(const TcpStream::socket_type& socket) {
    beast::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec) return {};  // already gone
    const auto address = unmapped(peer.address()).to_string();
    const auto& trusted = shared.config.trusted_proxies;
    const bool proxy = std::find(trusted.begin(), trusted.end(), address) != trusted.end();
    ConnectionCaps::Cap cap{};
    auto slot = shared.caps.admit(proxy ? std::string() : address_group(address), cap);
    if (!slot) shared.refused(cap);
    return slot;
  }

  void serve(TcpStream stream, ConnectionCaps::Slot slot) {
    if (!tls) {
      std::make_shared<HttpSession<TcpStream>>(std::move(stream), shared, std::move(slot))->run();
      return;
    }
    auto ssl = std::make_shared<beast::ssl_stream<TcpStream>>(std::move(stream), *tls);
    auto held = std::make_shared<ConnectionCaps::Slot>(std::move(slot));
    beast::get_lowest_layer(*ssl).expires_after(shared.config.handshake_timeout);
    ssl->async_handshake(asio::ssl::stream_base::server, [this, ssl, held](beast::error_code hec) {
      if (hec) return;
      std::make_shared<HttpSession<beast::ssl_stream<TcpStream>>>(std::move(*ssl), shared,
                                                                  std::move(*held))
          ->run();
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
    impl_->threads.emplace_back([this] {
      name_this_thread("parley-io");
      impl_->ioc.run();
    });
  impl_->shared.log->info("listening on {}:{}{} (max_connections {})", config.listen, port(),
                          config.tls ? " (TLS)" : "", config.max_connections);
}

void GatewayServer::stop(std::chrono::milliseconds close_wait) {
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
  const auto deadline = std::chrono::steady_clock::now() + close_wait;
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
