// A fresh connection's HTTP side: the operator endpoints, static files, and
// the upgrade to WebSocket at /ws (with the connection caps and the Origin
// check). Included only by gateway_server.cpp.
#pragma once

#include "websocket_session.hpp"

namespace parley::kernel::gateway_detail {

// Reads HTTP requests on a fresh connection: operator endpoints, or the
// upgrade to WebSocket at /ws.
template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  // `slot` is the connection's place under the caps, taken at accept.
  HttpSession(Stream&& stream, Shared& shared, ConnectionCaps::Slot slot)
      : stream_(std::move(stream)), shared_(shared), slot_(std::move(slot)) {}

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
      // The query is not part of the path (RFC 3986); clients add one, for
      // example a cache-buster or a version tag, and it is ignored.
      const auto target = request.target();
      if (target.substr(0, target.find('?')) != "/ws")
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
      // A trusted proxy's socket took only its place in all at accept: the
      // client it forwards for is known now, and counts from here on.
      if (!shared_.caps.add_address(slot_, address_group(address))) {
        return respond(request, http::status::service_unavailable, "text/plain",
                       std::string(shared_.refused(ConnectionCaps::Cap::per_address)) + "\n");
      }
      beast::get_lowest_layer(stream_).expires_never();
      std::make_shared<WebSocketSession<Stream>>(std::move(stream_), shared_, std::move(address),
                                                 std::move(slot_))
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
      if (const auto& token = shared_.config.metrics_token; token.empty()) {
        // Without a token the metrics (connection counts, error rates, the
        // database's state) are for this machine only: a scraper elsewhere
        // needs the token. A request a proxy passed on is never local, even
        // from a proxy on this machine that names no client: the socket's
        // own peer must be loopback, not a trusted proxy, and the request
        // must carry no forwarding header.
        if (!local_request(request)) {
          return respond(request, http::status::forbidden, "text/plain",
                         "set server.metrics_token to read /metrics from another machine\n");
        }
      } else if (request[http::field::authorization] != "Bearer " + token) {
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

  bool local_request(const http::request<http::string_body>& request) {
    for (const auto header : {"X-Forwarded-For", "Forwarded", "X-Real-IP"}) {
      if (request.find(header) != request.end()) return false;
    }
    beast::error_code ec;
    const auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (ec) return false;
    const std::string address = unmapped(peer.address()).to_string();
    const auto& trusted = shared_.config.trusted_proxies;
    return is_loopback(address) &&
           std::find(trusted.begin(), trusted.end(), address) == trusted.end();
  }

  void respond(const http::request<http::string_body>& request, http::status status,
               std::string_view content_type, std::string body,
               const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    auto response = std::make_shared<http::response<http::string_body>>(status, request.version());
    response->set(http::field::server, "parley");
    response->set(http::field::content_type, content_type);
    for (const auto& [name, value] : headers) response->set(name, value);
    // A connection's budget of requests (like nginx's keepalive_requests):
    // the last one it may make is answered with Connection: close.
    response->keep_alive(request.keep_alive() &&
                         ++requests_answered_ < shared_.config.http_keepalive_requests);
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
  ConnectionCaps::Slot slot_;
  std::size_t requests_answered_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace parley::kernel::gateway_detail
