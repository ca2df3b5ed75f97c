// The gateway end to end: a real parleyd with a test plugin, real WebSocket
// clients on loopback. Bad input gets its error and the connection stays
// usable; oversized frames close with 1009; a client that stops reading is
// cut off with the server's memory bounded; the operator endpoints answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "parleyd_process.hpp"
#include "temp_dir.hpp"
#include "ws_client.hpp"

namespace parley::test {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;

class GatewayTest : public ::testing::Test {
 protected:
  ParleydProcess::Options options(const std::string& server_yaml = "") {
    ParleydProcess::Options o;
    o.plugin_dir = TEST_PLUGIN_DIR;
    o.plugins_yaml =
        "  - name: alpha\n    config:\n      journal: " + (dir_.path() / "journal").string() + "\n";
    o.server_yaml = server_yaml;
    return o;
  }
  TempDir dir_;
};

void expect_error(const std::optional<json::object>& frame, const std::string& code, bool with_re) {
  ASSERT_TRUE(frame.has_value()) << "no answer";
  EXPECT_EQ(frame->at("type").as_string(), "error") << json::serialize(*frame);
  EXPECT_EQ(frame->at("code").as_string(), code) << json::serialize(*frame);
  EXPECT_EQ(frame->contains("re"), with_re) << json::serialize(*frame);
  EXPECT_TRUE(frame->at("message").is_string());
}

void expect_usable(WsClient& client) {
  auto reply = client.request({{"type", "ping"}});
  EXPECT_EQ(reply.at("type").as_string(), "ok");
}

TEST_F(GatewayTest, PingBeforeLoginAndRequestRouting) {
  ParleydProcess server(options());
  WsClient client(server.port());
  expect_usable(client);
  auto reply = client.request({{"type", "alpha.echo"}});
  EXPECT_EQ(reply.at("type").as_string(), "ok");
  EXPECT_EQ(reply.at("greeting").as_string(), "hello");
}

TEST_F(GatewayTest, MalformedJsonIsBadRequestWithoutRe) {
  ParleydProcess server(options());
  WsClient client(server.port());
  client.send_text("{\"type\": \"ping\", ");
  expect_error(client.receive(), "bad_request", false);
  expect_usable(client);
}

TEST_F(GatewayTest, JsonArrayIsBadRequestWithoutRe) {
  ParleydProcess server(options());
  WsClient client(server.port());
  client.send_text("[1, 2, 3]");
  expect_error(client.receive(), "bad_request", false);
  expect_usable(client);
}

TEST_F(GatewayTest, MissingOrInvalidIdIsBadRequestWithoutRe) {
  ParleydProcess server(options());
  WsClient client(server.port());
  client.send_text(R"({"type": "ping"})");
  expect_error(client.receive(), "bad_request", false);
  client.send_text(R"({"type": "ping", "id": 7})");
  expect_error(client.receive(), "bad_request", false);
  client.send_text(R"({"type": "ping", "id": ""})");
  expect_error(client.receive(), "bad_request", false);
  client.send_text(R"({"type": "ping", "id": ")" + std::string(65, 'i') + "\"}");
  expect_error(client.receive(), "bad_request", false);
  expect_usable(client);
}

TEST_F(GatewayTest, MissingTypeIsBadRequestWithRe) {
  ParleydProcess server(options());
  WsClient client(server.port());
  client.send_text(R"({"id": "abc"})");
  auto frame = client.receive();
  expect_error(frame, "bad_request", true);
  EXPECT_EQ(frame->at("re").as_string(), "abc");
  expect_usable(client);
}

TEST_F(GatewayTest, UnknownTypeIsUnsupported) {
  ParleydProcess server(options());
  WsClient client(server.port());
  auto reply = client.request({{"type", "no.such.thing"}});
  EXPECT_EQ(reply.at("code").as_string(), "unsupported");
  expect_usable(client);
}

TEST_F(GatewayTest, BinaryFrameIsBadRequest) {
  ParleydProcess server(options());
  WsClient client(server.port());
  client.send_binary(R"({"type": "ping", "id": "1"})");
  expect_error(client.receive(), "bad_request", false);
  expect_usable(client);
}

TEST_F(GatewayTest, InvalidUtf8InBinaryFrameIsBadRequest) {
  ParleydProcess server(options());
  WsClient client(server.port());
  client.send_binary(std::string("\xff\xfe\x80", 3));
  expect_error(client.receive(), "bad_request", false);
  expect_usable(client);
}

TEST_F(GatewayTest, InvalidUtf8InTextFrameClosesWith1007PerRfc6455) {
  // Beast enforces RFC 6455 section 8.1 here; see docs/protocol.md.
  ParleydProcess server(options());
  WsClient client(server.port());
  client.send_text(std::string("{\"id\":\"1\",\"type\":\"ping\",\"x\":\"\xff\"}"));
  ASSERT_TRUE(client.wait_closed());
  EXPECT_EQ(client.close_code(), 1007);
  WsClient other(server.port());
  expect_usable(other);
}

TEST_F(GatewayTest, OversizedFrameClosesWith1009AndOthersAreServed) {
  ParleydProcess server(options("  max_frame_bytes: 1024\n"));
  WsClient bystander(server.port());
  WsClient client(server.port());
  client.send_text(R"({"type":"ping","id":"1","pad":")" + std::string(2000, 'x') + "\"}");
  ASSERT_TRUE(client.wait_closed());
  EXPECT_EQ(client.close_code(), 1009);
  expect_usable(bystander);
  WsClient newcomer(server.port());
  expect_usable(newcomer);
}

TEST_F(GatewayTest, FrameJustUnderTheLimitIsServed) {
  ParleydProcess server(options("  max_frame_bytes: 1024\n"));
  WsClient client(server.port());
  const std::string head = R"({"type":"ping","id":"1","pad":")";
  client.send_text(head + std::string(1024 - head.size() - 2, 'x') + "\"}");
  auto frame = client.receive();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->at("type").as_string(), "ok");
}

TEST_F(GatewayTest, RateLimitAnswersRateLimited) {
  ParleydProcess server(options("  rate_limit:\n    requests_per_second: 1\n    burst: 3\n"));
  WsClient client(server.port());
  for (int i = 0; i < 6; ++i)
    client.send_text(R"({"type":"ping","id":"p)" + std::to_string(i) + "\"}");
  int ok = 0, limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto frame = client.receive();
    ASSERT_TRUE(frame);
    if (frame->at("type").as_string() == "ok") ++ok;
    if (frame->contains("code") && frame->at("code").as_string() == "rate_limited") ++limited;
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(limited, 3);
}

TEST_F(GatewayTest, UnreadableFramesSpendTheBudgetToo) {
  ParleydProcess server(options("  rate_limit:\n    requests_per_second: 1\n    burst: 2\n"));
  WsClient client(server.port());
  for (int i = 0; i < 3; ++i) client.send_text("not json");
  expect_error(client.receive(), "bad_request", false);
  expect_error(client.receive(), "bad_request", false);
  expect_error(client.receive(), "rate_limited", false);
}

TEST_F(GatewayTest, RepeatedAbuseClosesTheConnectionWith1008) {
  ParleydProcess server(options("  rate_limit:\n    requests_per_second: 0.0167\n    burst: 2\n"));
  WsClient client(server.port());
  for (int i = 0; i < 12; ++i) {
    try {
      client.send_text(R"({"type":"ping","id":"p)" + std::to_string(i) + "\"}");
    } catch (const std::exception&) {
      break;  // the server closed on us mid-burst: what this test expects
    }
  }
  ASSERT_TRUE(client.wait_closed());
  EXPECT_EQ(client.close_code(), 1008);
  WsClient other(server.port());
  expect_usable(other);
}

TEST_F(GatewayTest, AFloodIsClosedEvenThoughTheRefillingBucketLetsSomeFramesThrough) {
  // 100 tokens a second, burst 10: a client sending about 1000 frames a
  // second gets a token every tenth frame or so. Those tokens must not
  // forgive the frames over the budget between them; only a quiet second
  // does.
  ParleydProcess server(options("  rate_limit:\n    requests_per_second: 100\n    burst: 10\n"));
  WsClient client(server.port());
  bool closed = false;
  for (int i = 0; i < 5000 && !closed; ++i) {
    try {
      client.send_text(R"({"type":"ping","id":"p)" + std::to_string(i) + "\"}");
    } catch (const std::exception&) {
      closed = true;  // the server closed on us mid-flood: what this test expects
    }
    std::this_thread::sleep_for(1ms);  // a steady flood, not one burst
  }
  ASSERT_TRUE(client.wait_closed());
  EXPECT_EQ(client.close_code(), 1008);
}

TEST_F(GatewayTest, AClientThatBacksOffAfterRateLimitedIsNeverClosed) {
  ParleydProcess server(options("  rate_limit:\n    requests_per_second: 100\n    burst: 10\n"));
  WsClient client(server.port());
  int limited = 0;
  for (int round = 0; round < 3; ++round) {
    // Twice the burst at once: half refused, each round; three rounds pass
    // 2 x burst refusals in all, a quiet second apart.
    for (int i = 0; i < 20; ++i) {
      client.send_text(R"({"type":"ping","id":"r)" + std::to_string(round * 100 + i) + "\"}");
    }
    for (int i = 0; i < 20; ++i) {
      auto frame = client.receive();
      ASSERT_TRUE(frame) << "closed in round " << round;
      if (frame->contains("code")) ++limited;
    }
    std::this_thread::sleep_for(1100ms);  // backing off, as a client should
  }
  EXPECT_GT(limited, 20);
  expect_usable(client);
}

// Behind a trusted proxy, the client is the hop the proxy appended: the
// last of all X-Forwarded-For lines, and only if it is an IP address.
TEST_F(GatewayTest, TheClientBehindATrustedProxyIsTheLastHopNotWhatItClaims) {
  ParleydProcess server(
      options("  trusted_proxies: [\"127.0.0.1\"]\n  max_connections_per_address: 1\n"));
  const auto from = [&](std::vector<std::pair<std::string, std::string>> headers) {
    return std::make_unique<WsClient>(server.port(),
                                      WsClient::Options{.headers = std::move(headers)});
  };
  auto first = from({{"X-Forwarded-For", "192.0.2.7"}});
  expect_usable(*first);
  // The client wrote a line of its own; the proxy added the real address.
  EXPECT_ANY_THROW(from({{"X-Forwarded-For", "198.51.100.1"}, {"X-Forwarded-For", "192.0.2.7"}}))
      << "the cap of 192.0.2.7 was bypassed";
  auto other = from({{"X-Forwarded-For", "198.51.100.1, 192.0.2.8"}});
  expect_usable(*other);
  // Not an address: the proxy did not write it; the peer (127.0.0.1) counts.
  auto named = from({{"X-Forwarded-For", "not-an-address"}});
  expect_usable(*named);
  EXPECT_ANY_THROW(from({{"X-Forwarded-For", "another-name"}}))
      << "any string was taken as a new address";
}

TEST_F(GatewayTest, EveryFrameBeforeTheAbuseCloseIsAnswered) {
  // burst 2: the 2 first pings are served, the next 4 (2 x burst) refused,
  // and the one after them closes the connection, after those answers. (A
  // token a minute: none comes back during the test, however slow.)
  ParleydProcess server(options("  rate_limit:\n    requests_per_second: 0.0167\n    burst: 2\n"));
  WsClient client(server.port());
  for (int i = 0; i < 7; ++i)
    client.send_text(R"({"type":"ping","id":"p)" + std::to_string(i) + "\"}");
  for (int i = 0; i < 6; ++i) {
    const auto frame = client.receive();
    ASSERT_TRUE(frame) << "no answer to p" << i;
    EXPECT_EQ(frame->at("re").as_string(), "p" + std::to_string(i));
    if (i < 2) {
      EXPECT_EQ(frame->at("type").as_string(), "ok");
    } else {
      expect_error(frame, "rate_limited", true);
    }
  }
  ASSERT_TRUE(client.wait_closed());
  EXPECT_EQ(client.close_code(), 1008);
}

TEST_F(GatewayTest, ClientThatStopsReadingIsDisconnectedAndMemoryStaysBounded) {
  ParleydProcess server(options("  max_queued_frames: 100000\n  max_queued_bytes: 8388608\n"));
  WsClient slow(server.port(), {.receive_buffer = 4096});
  slow.pause_reading();
  const std::size_t before = server.rss_bytes();
  // 50 MB of events towards a client that reads nothing.
  slow.send(json::object{{"type", "alpha.flood"}, {"id", "f"}, {"count", 5000}, {"size", 10000}});
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (server.log().find("send queue over its limit") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_THAT(server.log(), HasSubstr("send queue over its limit"));
  const std::size_t after = server.rss_bytes();
  EXPECT_LT(after, before + 40u * 1024 * 1024)
      << "server memory grew by " << (after - before) / 1024 << " KiB";
  slow.resume_reading();
  EXPECT_TRUE(slow.wait_closed(10s)) << "the slow client was not disconnected";
  WsClient other(server.port());
  expect_usable(other);
}

TEST_F(GatewayTest, HealthReadyAndUnknownPaths) {
  ParleydProcess server(options());
  EXPECT_EQ(http_get(server.port(), "/healthz").status, 200);
  EXPECT_EQ(http_get(server.port(), "/readyz").status, 200);
  EXPECT_EQ(http_get(server.port(), "/nope").status, 404);
}

TEST_F(GatewayTest, TheUpgradeIgnoresAQueryButNotAnotherPath) {
  ParleydProcess server(options());
  WsClient with_query(server.port(), {.target = "/ws?v=1&cache=no"});
  expect_usable(with_query);
  EXPECT_THROW(WsClient(server.port(), {.target = "/wsx"}), std::exception);
  EXPECT_THROW(WsClient(server.port(), {.target = "/ws/x?y"}), std::exception);
}

// Every line of the exposition is a comment, blank, or `name{labels} value`.
TEST_F(GatewayTest, MetricsParseAsPrometheusText) {
  ParleydProcess server(options());
  {
    WsClient client(server.port());
    EXPECT_EQ(client.request({{"type", "alpha.echo"}}).at("type").as_string(), "ok");
    client.send_text("not json");
    client.receive();
  }
  auto result = http_get(server.port(), "/metrics");
  ASSERT_EQ(result.status, 200);
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? )"
      R"(([+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|[+-]?Inf|NaN)$)");
  const std::regex help(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::istringstream in(result.body);
  int samples = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      EXPECT_TRUE(std::regex_match(line, help)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 5);
  EXPECT_THAT(result.body, HasSubstr("parley_connections "));
  EXPECT_THAT(result.body, HasSubstr("parley_frames_in_total "));
  EXPECT_THAT(result.body, HasSubstr("parley_errors_total{code=\"bad_request\"} 1"));
  EXPECT_THAT(result.body, HasSubstr("parley_request_duration_seconds_bucket{type=\"alpha.echo\""));
}

TEST_F(GatewayTest, TlsServesWss) {
  const auto cert = dir_.path() / "cert.pem";
  const auto key = dir_.path() / "key.pem";
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 -keyout " +
      key.string() + " -out " + cert.string() + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);
  auto o = options("  tls:\n    certificate: " + cert.string() +
                   "\n    private_key: " + key.string() + "\n");
  o.wait_ready = false;
  ParleydProcess server(o);
  WsClient client(server.port(), {.tls = true});
  expect_usable(client);
}

TEST_F(GatewayTest, JsonLogsAreOneObjectPerLine) {
  auto o = options();
  o.log_format = "json";
  ParleydProcess server(o);
  EXPECT_EQ(server.stop(), 0);
  std::istringstream in(server.log());
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("parleyd: ", 0) == 0)
      continue;  // the signal notice, printed before logging stops
    boost::system::error_code ec;
    auto value = json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    ASSERT_TRUE(value.is_object()) << line;
    for (const char* key : {"time", "level", "logger", "msg"})
      EXPECT_TRUE(value.as_object().contains(key)) << line;
    ++lines;
  }
  EXPECT_GE(lines, 3);
  EXPECT_THAT(server.log(),
              HasSubstr(R"("logger":"kernel","msg":"starting plugin 'alpha' 1.0.0")"));
}

TEST_F(GatewayTest, SigtermClosesConnectionsWithGoingAway) {
  ParleydProcess server(options());
  WsClient client(server.port());
  expect_usable(client);
  EXPECT_EQ(server.stop(), 0);
  ASSERT_TRUE(client.wait_closed());
  EXPECT_EQ(client.close_code(), 1001);
}

TEST_F(GatewayTest, TheKernelsThreadsCarryTheirNames) {
  ParleydProcess server(options());
  std::map<std::string, int> names;
  const auto tasks = std::filesystem::path("/proc") / std::to_string(server.pid()) / "task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    auto comm = read_file(task.path() / "comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (task.path().filename() == std::to_string(server.pid())) {
      EXPECT_EQ(comm, "parleyd") << "the main thread";
      continue;
    }
    ++names[comm];
  }
  // No database is configured here, so no parley-db threads. A thread that
  // kept the process's name is not the kernel's (a sanitizer's runtime).
  EXPECT_EQ(names["parley-io"], 1);
  EXPECT_GE(names["parley-worker"], 1);
  EXPECT_GE(names["parley-cpu"], 1);
  for (const auto& [name, count] : names) {
    EXPECT_TRUE(name == "parley-io" || name == "parley-worker" || name == "parley-cpu" ||
                name == "parleyd")
        << count << " thread(s) named " << name;
  }
}

TEST_F(GatewayTest, SigtermStopsPluginsAndExitsZero) {
  ParleydProcess server(options());
  EXPECT_EQ(server.stop(), 0);
  EXPECT_EQ(read_file(dir_.path() / "journal"), "start alpha\nstop alpha\n");
}

}  // namespace
}  // namespace parley::test

namespace parley::test {
namespace {

class GatewayLimitsTest : public GatewayTest {};

TEST_F(GatewayLimitsTest, AConnectionThatNeverLogsInIsClosedAtTheDeadline) {
  ParleydProcess server(options("  login_timeout_seconds: 1\n"));
  WsClient idle(server.port());
  // It answers the server's pings (the client library does) but never logs in.
  ASSERT_TRUE(idle.wait_closed(10s)) << "still open past the login deadline";
  EXPECT_EQ(idle.close_code(), 1008);
  EXPECT_THAT(http_get(server.port(), "/metrics").body,
              HasSubstr("parley_login_deadline_closes_total 1"));
}

// A TCP connection to the server from `source` (any 127.x.y.z reaches the
// server on loopback, so a test can stand for several addresses).
class RawConnection {
 public:
  explicit RawConnection(int port, const std::string& source = "127.0.0.1")
      : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
      throw std::runtime_error("cannot bind " + source);
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_port = htons(static_cast<std::uint16_t>(port));
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0)
      throw std::runtime_error("cannot connect");
    const timeval wait{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  }
  ~RawConnection() { close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void send(const std::string& text) {
    if (write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw std::runtime_error("write failed");
  }
  void send_get(const std::string& target, bool keep_alive = true) {
    send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         (keep_alive ? "" : "Connection: close\r\n") + "\r\n");
  }
  // What the server sent until it closed the connection; nullopt when it
  // kept it open for 5 s.
  std::optional<std::string> read_until_closed() {
    std::string text;
    char buffer[4096];
    for (;;) {
      const ssize_t n = read(fd_, buffer, sizeof buffer);
      if (n > 0) {
        text.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno == ECONNRESET) {
        return text;
      } else {
        return std::nullopt;
      }
    }
  }
  // A keep-alive GET /healthz and its whole answer: whether it was served.
  bool healthz() {
    send_get("/healthz");
    std::string text;
    char buffer[4096];
    while (text.find("ok\n") == std::string::npos) {
      const ssize_t n = read(fd_, buffer, sizeof buffer);
      if (n <= 0) return false;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    return text.rfind("HTTP/1.1 200", 0) == 0;
  }

 private:
  int fd_;
};

// GET `target` from `source`, the whole answer (head and body).
std::string http_from(int port, const std::string& source, const std::string& target) {
  RawConnection connection(port, source);
  connection.send_get(target, /*keep_alive=*/false);
  return connection.read_until_closed().value_or("");
}

// Attack review, finding 13: after a logout the connection stayed open and
// anonymous for good. Anonymous again, it is under the login deadline again.
TEST_F(GatewayLimitsTest, AConnectionThatLoggedOutIsClosedAtTheLoginDeadline) {
  ParleydProcess server(options("  login_timeout_seconds: 1\n"));
  WsClient staying(server.port());
  WsClient leaving(server.port());
  ASSERT_EQ(staying.request({{"type", "alpha.login"}, {"user", "u1"}}).at("type").as_string(),
            "ok");
  ASSERT_EQ(leaving.request({{"type", "alpha.login"}, {"user", "u2"}}).at("type").as_string(),
            "ok");
  ASSERT_EQ(leaving.request({{"type", "alpha.logout"}}).at("type").as_string(), "ok");
  ASSERT_TRUE(leaving.wait_closed(10s)) << "still open past the login deadline after its logout";
  EXPECT_EQ(leaving.close_code(), 1008);
  expect_usable(staying);  // logged in all along: its deadline never applies
  EXPECT_THAT(http_get(server.port(), "/metrics").body,
              HasSubstr("parley_login_deadline_closes_total 1"));
}

TEST_F(GatewayLimitsTest, ConnectionsPerAddressAreCapped) {
  ParleydProcess server(options("  max_connections_per_address: 2\n"));
  auto first = std::make_unique<WsClient>(server.port());
  WsClient second(server.port());
  expect_usable(*first);
  // An upgraded connection counts once, not once more at its upgrade.
  expect_usable(second);
  EXPECT_THROW(WsClient third(server.port()), std::exception) << "a third upgrade was accepted";
  EXPECT_THAT(http_from(server.port(), "127.0.0.2", "/metrics"),
              HasSubstr("parley_connections_refused_total{cap=\"max_connections_per_address\"} 1"));
  // A closed connection's place is free again, once the server has seen it go.
  first.reset();
  std::unique_ptr<WsClient> again;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!again && std::chrono::steady_clock::now() < deadline) {
    try {
      again = std::make_unique<WsClient>(server.port());
    } catch (const std::exception&) {
      std::this_thread::sleep_for(20ms);
    }
  }
  ASSERT_TRUE(again) << "the closed connection's place was never given back";
  expect_usable(*again);
}

// Attack review, finding 3: one address held hundreds of keep-alive HTTP
// connections, none counted, until no descriptor was left for WebSockets.
TEST_F(GatewayLimitsTest, PlainHttpConnectionsCountTowardThePerAddressCap) {
  ParleydProcess server(options("  max_connections_per_address: 3\n"));
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawConnection>(server.port()));
    ASSERT_TRUE(held.back()->healthz()) << "keep-alive connection " << i << " was not served";
  }
  RawConnection over(server.port());
  over.send_get("/healthz");
  EXPECT_EQ(over.read_until_closed(), "") << "an over-cap socket is closed, unanswered";
  EXPECT_THROW(WsClient(server.port()), std::exception) << "an upgrade past the cap was accepted";
  EXPECT_TRUE(held.front()->healthz()) << "the connections within the cap are still served";
  const auto metrics = http_from(server.port(), "127.0.0.2", "/metrics");
  EXPECT_THAT(metrics,
              HasSubstr("parley_connections_refused_total{cap=\"max_connections_per_address\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("parley_open_sockets 4")) << "3 held and the scrape's own";
}

TEST_F(GatewayLimitsTest, EveryAcceptedSocketCountsTowardTheTotalCap) {
  ParleydProcess server(options("  max_connections: 3\n"));
  std::vector<std::unique_ptr<RawConnection>> held;
  for (const char* source : {"127.0.0.2", "127.0.0.3"}) {
    held.push_back(std::make_unique<RawConnection>(server.port(), source));
    ASSERT_TRUE(held.back()->healthz());
  }
  WsClient websocket(server.port());
  expect_usable(websocket);
  RawConnection over(server.port(), "127.0.0.4");
  over.send_get("/healthz");
  EXPECT_EQ(over.read_until_closed(), "") << "an over-cap socket is closed, unanswered";
  EXPECT_TRUE(held.front()->healthz());
  expect_usable(websocket);
  // A place comes free when a held connection closes.
  held.pop_back();
  std::string metrics;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (metrics.empty() && std::chrono::steady_clock::now() < deadline) {
    metrics = http_from(server.port(), "127.0.0.5", "/metrics");
    if (metrics.empty()) std::this_thread::sleep_for(20ms);
  }
  // At least the over-cap socket above (a scrape that found no place while
  // the freed one was being given back counts too).
  EXPECT_THAT(metrics, HasSubstr("parley_connections_refused_total{cap=\"max_connections\"} "));
  EXPECT_THAT(
      metrics,
      ::testing::Not(HasSubstr("parley_connections_refused_total{cap=\"max_connections\"} 0\n")));
  EXPECT_THAT(metrics, HasSubstr("parley_max_connections 3\n"));
}

TEST_F(GatewayLimitsTest, AKeepAliveConnectionIsClosedAfterItsRequestBudget) {
  ParleydProcess server(options("  http_keepalive_requests: 3\n"));
  RawConnection connection(server.port());
  for (int i = 0; i < 4; ++i) connection.send_get("/healthz");
  const auto text = connection.read_until_closed();
  ASSERT_TRUE(text) << "the connection stayed open past its budget";
  std::size_t answers = 0;
  for (auto at = text->find("HTTP/1.1 200"); at != std::string::npos;
       at = text->find("HTTP/1.1 200", at + 1)) {
    ++answers;
  }
  EXPECT_EQ(answers, 3u) << *text;
  EXPECT_THAT(*text, HasSubstr("Connection: close"));
}

// The default cap (100,000) cannot act before the descriptors run out: it is
// lowered to what the process's limit holds, and said so.
TEST_F(GatewayLimitsTest, MaxConnectionsIsLoweredToFitTheDescriptorLimit) {
  rlimit files{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  ParleydProcess server(options());
  // parleyd raises its soft limit to the hard one; no database: the fixed reserve.
  const auto expected = std::min<rlim_t>(100000, files.rlim_max - 64);
  EXPECT_THAT(http_get(server.port(), "/metrics").body,
              HasSubstr("parley_max_connections " + std::to_string(expected) + "\n"));
  EXPECT_THAT(server.log(), HasSubstr("(max_connections " + std::to_string(expected) + ")"));
  if (expected < 100000) {
    EXPECT_THAT(server.log(),
                HasSubstr("server.max_connections is 100000 but the descriptor limit"));
  }
}

TEST_F(GatewayLimitsTest, MetricsCanRequireABearerToken) {
  ParleydProcess server(options("  metrics_token: s3cret\n"));
  EXPECT_EQ(http_get(server.port(), "/metrics").status, 401);
  EXPECT_EQ(http_get(server.port(), "/metrics", {{"Authorization", "Bearer wrong"}}).status, 401);
  const auto ok = http_get(server.port(), "/metrics", {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_THAT(ok.body, HasSubstr("parley_connections "));
  EXPECT_EQ(http_get(server.port(), "/healthz").status, 200) << "only /metrics is guarded";
}

// Without a token, /metrics is for this machine only. The peer counts as
// the gateway computes it: behind a trusted proxy, the forwarded client.
TEST_F(GatewayLimitsTest, WithoutATokenMetricsAreServedOnlyToLoopback) {
  ParleydProcess server(options());
  EXPECT_EQ(http_get(server.port(), "/metrics").status, 200);
  // A proxy on this machine passing on a request from elsewhere, whether
  // or not it names the client: not local.
  for (const auto& header :
       std::vector<std::pair<std::string, std::string>>{{"X-Forwarded-For", "192.0.2.7"},
                                                        {"X-Forwarded-For", "127.0.0.1"},
                                                        {"Forwarded", "for=192.0.2.7"},
                                                        {"X-Real-IP", "192.0.2.7"}}) {
    const auto remote = http_get(server.port(), "/metrics", {header});
    EXPECT_EQ(remote.status, 403) << header.first << ": " << header.second;
    EXPECT_THAT(remote.body, ::testing::Not(HasSubstr("parley_connections")));
  }
  EXPECT_EQ(http_get(server.port(), "/healthz", {{"X-Forwarded-For", "192.0.2.7"}}).status, 200)
      << "only /metrics is guarded";
}

TEST_F(GatewayLimitsTest, WithoutATokenATrustedProxysRequestsGetNoMetrics) {
  // A trusted proxy on loopback that sends no X-Forwarded-For: its requests
  // come from elsewhere all the same.
  ParleydProcess server(options("  trusted_proxies: [\"127.0.0.1\"]\n"));
  EXPECT_EQ(http_get(server.port(), "/metrics").status, 403);
  EXPECT_EQ(http_get(server.port(), "/metrics", {{"X-Forwarded-For", "::1"}}).status, 403);
}

TEST_F(GatewayLimitsTest, WithATokenMetricsAreServedToAnyAddressThatHasIt) {
  ParleydProcess server(options("  trusted_proxies: [\"127.0.0.1\"]\n  metrics_token: s3cret\n"));
  const std::pair<std::string, std::string> remote{"X-Forwarded-For", "192.0.2.7"};
  EXPECT_EQ(http_get(server.port(), "/metrics", {remote}).status, 401);
  EXPECT_EQ(
      http_get(server.port(), "/metrics", {remote, {"Authorization", "Bearer s3cret"}}).status,
      200);
}

TEST_F(GatewayLimitsTest, WithAnOriginAllowListOtherSitesCannotOpenAWebSocket) {
  ParleydProcess server(options("  allowed_origins: [https://chat.example.org]\n"));
  const std::vector<std::pair<std::string, std::string>> upgrade = {
      {"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
      {"Sec-WebSocket-Version", "13"}};
  auto with_origin = [&](const std::string& origin) {
    auto headers = upgrade;
    headers.emplace_back("Origin", origin);
    return http_get(server.port(), "/ws", headers).status;
  };
  EXPECT_EQ(with_origin("https://evil.example.com"), 403);
  EXPECT_EQ(with_origin("https://chat.example.org"), 101);
}

TEST_F(GatewayLimitsTest, OutOfDescriptorsTheAcceptLoopBacksOffInsteadOfSpinning) {
  ParleydProcess server(options());
  const int port = server.port();
  // Leave parleyd no room for another descriptor: its accepts fail (EMFILE).
  // Only the soft limit moves: raising a hard limit back needs privileges.
  const std::string limit = "prlimit --pid " + std::to_string(server.pid()) + " --nofile=";
  // The limit bounds descriptor numbers: below every open one, so that
  // each new descriptor fails while the open ones keep working.
  ASSERT_EQ(std::system((limit + "3:").c_str()), 0);
  // A connection waits in the listen backlog; parleyd's accept fails.
  const int waiting = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(waiting, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server.log().find("cannot accept connections") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  close(waiting);
  ASSERT_EQ(std::system((limit + "4096:").c_str()), 0);
  // It serves again once descriptors are back.
  EXPECT_EQ(http_get(port, "/healthz").status, 200);
  const auto body = http_get(port, "/metrics").body;
  EXPECT_THAT(server.log(), HasSubstr("cannot accept connections"));
  // Every failure is counted and followed by a pause (10 ms doubling to a
  // second): a few dozen at most while the test waited, where a spinning
  // loop makes hundreds of thousands.
  const std::string name = "\nparley_accept_errors_total ";
  const auto at = body.find(name);
  ASSERT_NE(at, std::string::npos) << body;
  const double failures = std::stod(body.substr(at + name.size()));
  EXPECT_GE(failures, 1);
  EXPECT_LT(failures, 1000);
}

}  // namespace
}  // namespace parley::test
