// The gateway's shared state and its request plumbing: what every
// connection shares (configuration, routing, metrics, caps), error frames,
// the per-connection request budget, and the sink that answers one request.
// Included only by gateway_server.cpp (Beast stays in that one unit).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>

#include "connection_caps.hpp"
#include "gateway_server.hpp"
#include "request_sequencer.hpp"
#include "static_files.hpp"

namespace parley::kernel::gateway_detail {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::size_t kMaxIdBytes = 64;
constexpr std::size_t kMaxHttpRequestBytes = 16 * 1024;
constexpr const char* kRefusedMetric = "parley_connections_refused_total";
constexpr const char* kRefusedHelp =
    "Connections refused, by cap: closed at accept, or their WebSocket upgrade answered 503";

inline const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
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
  // Every accepted socket's place under max_connections and
  // max_connections_per_address, from accept to close.
  ConnectionCaps caps;

  // Counts a refusal by `cap` (an over-cap socket closed at accept, or an
  // upgrade answered 503) and says why.
  std::string_view refused(ConnectionCaps::Cap cap) {
    if (cap == ConnectionCaps::Cap::total) {
      refused_total.add();
      return "the server has too many connections";
    }
    refused_per_address.add();
    return "too many connections from this address";
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
        refused_total(d.metrics.counter(kRefusedMetric, kRefusedHelp, "cap=\"max_connections\"")),
        refused_per_address(
            d.metrics.counter(kRefusedMetric, kRefusedHelp, "cap=\"max_connections_per_address\"")),
        caps(d.config.max_connections, d.config.max_connections_per_address,
             &d.metrics.gauge("parley_open_sockets",
                              "Accepted sockets open (HTTP, TLS handshakes, WebSockets): what "
                              "max_connections counts")) {
    d.metrics
        .gauge("parley_max_connections",
               "The max_connections in force: the configured one, lowered to fit the "
               "descriptor limit")
        .set(static_cast<double>(config.max_connections));

    if (!config.static_dir.empty()) {
      static_files.emplace(config.static_dir, config.static_content_security_policy);
      log->info("serving the files of {} at /", static_files->root().string());
    }
  }

  CounterMetric& errors(std::string_view code) {
    return metrics.counter(kErrorsMetric, "Error replies sent, by code",
                           "code=\"" + std::string(code) + "\"");
  }
  // One histogram per routed request type, looked up on every reply: cached
  // so the hot path takes a shared lock instead of the registry's mutex.
  HistogramMetric& latency(const std::string& type) {
    {
      std::shared_lock lock(latency_mutex);
      if (auto it = latency_by_type.find(type); it != latency_by_type.end()) return *it->second;
    }
    auto& histogram = metrics.histogram(
        kRequestDurationMetric, "Time from a request's arrival to its reply, by request type",
        "type=\"" + type + "\"", kLatencyBuckets);
    std::unique_lock lock(latency_mutex);
    latency_by_type.emplace(type, &histogram);
    return histogram;
  }
  std::shared_mutex latency_mutex;
  std::unordered_map<std::string, HistogramMetric*> latency_by_type;
};

inline std::shared_ptr<const std::string> error_frame(const std::string* re, ErrorCode code,
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

inline std::shared_ptr<const std::string> error_frame(const std::string* re, const Status& status) {
  return error_frame(re, status.code(), status.message(), status.reason());
}

// {"type":"ok","re":<re>, then the members of `result`}. Written directly
// when `result` names neither "type" nor "re" (every reply of the plugins
// in the tree): its members are serialised after the two fixed ones,
// without first copying them into a second object.
inline std::shared_ptr<const std::string> ok_frame(const std::string& re,
                                                   const json::object& result) {
  if (result.contains("type") || result.contains("re")) {
    json::object reply;
    reply.reserve(result.size() + 2);
    reply["type"] = "ok";
    reply["re"] = re;
    for (const auto& member : result) reply[member.key()] = member.value();
    return std::make_shared<const std::string>(json::serialize(reply));
  }
  json::serializer serializer;
  char chunk[4096];
  std::string text = R"({"type":"ok","re":)";
  serializer.reset(json::string_view(re));
  while (!serializer.done()) text.append(serializer.read(chunk, sizeof chunk));
  if (result.empty()) {
    text += '}';
    return std::make_shared<const std::string>(std::move(text));
  }
  // The members with their closing brace: the object's text after its '{'.
  text += ',';
  serializer.reset(&result);
  bool opening = true;
  while (!serializer.done()) {
    auto part = serializer.read(chunk, sizeof chunk);
    if (opening) part.remove_prefix(1);
    opening = false;
    text.append(part);
  }
  return std::make_shared<const std::string>(std::move(text));
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
      text = ok_frame(re_, result);
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

}  // namespace parley::kernel::gateway_detail
