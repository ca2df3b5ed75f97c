// The event bus: how plugins talk to each other without knowing each other.
//
// Three kinds of traffic, each keyed by a stable dotted name such as
// "session.message.stored" and carrying a JSON payload, so that a later
// cluster bridge can carry them between nodes unchanged:
//
//  * Events (publish/subscribe): notifications of what happened. Delivery is
//    asynchronous, on the kernel's worker threads. The handlers of one
//    subscription run one at a time, in publish order; different
//    subscriptions run in parallel.
//  * Requests (serve/request): one plugin asks a named service and gets an
//    answer, an error, or a timeout. The service handler runs on a worker
//    thread and may answer later from any thread; the response callback runs
//    on a worker thread.
//  * Hooks (hook/run_hooks): a chain run synchronously on the caller's thread,
//    highest priority first, that may rewrite the payload or veto the action
//    (a filter before a message is stored). A veto stops the chain.
//
// A handler that throws is logged with its plugin's name; other handlers still
// run (for a service, the caller gets `internal`). A hook that throws
// parley::Failure vetoes with its code, as a request handler would; a hook
// that throws anything else vetoes with `internal` when it was registered
// fail-closed (HookOptions), and otherwise counts as "proceed". Registrations belong to the plugin
// that made them and are removed by the kernel when it stops; register them in start().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "parley/status.hpp"

namespace parley {

struct Event {
  std::string name;
  boost::json::value payload;
};

// The JSON form of an event: {"event": name, "payload": payload}.
inline std::string to_json(const Event& event) {
  return boost::json::serialize(
      boost::json::object{{"event", event.name}, {"payload", event.payload}});
}

using EventHandler = std::function<void(const Event& event)>;

// What a hook decides: go on (possibly after rewriting the payload) or veto
// with an error code and a message for whoever caused the action.
struct HookResult {
  Status status;
  static HookResult proceed() { return {}; }
  // `reason`, when given, reaches the client as the error's "reason" field.
  static HookResult veto(ErrorCode code, std::string message, std::string reason = {}) {
    return {Status(code, std::move(message), std::move(reason))};
  }
};

struct HookOptions {
  // A hook that throws something other than parley::Failure vetoes with
  // `internal` instead of letting the action proceed (for filters whose
  // failure must not let content through).
  bool fail_closed = false;
};
using HookHandler = std::function<HookResult(boost::json::object& payload)>;

// The answer to a bus request: ok with a value, or an error (`timeout` when
// the service did not answer in time, `unsupported` when nobody serves it).
struct Response {
  Status status;
  boost::json::value value;
  bool ok() const { return status.ok(); }
};
using ResponseHandler = std::function<void(Response response)>;

// Answers one bus request. The first answer counts; later ones are ignored.
// If every copy is destroyed without an answer, the caller gets `internal`.
class ServiceReplySink {
 public:
  virtual ~ServiceReplySink() = default;
  virtual void answer(Response response) = 0;
};
class ServiceReply {
 public:
  explicit ServiceReply(std::shared_ptr<ServiceReplySink> sink) : sink_(std::move(sink)) {}
  void ok(boost::json::value value = nullptr) const { sink_->answer({Status(), std::move(value)}); }
  void error(ErrorCode code, std::string message) const {
    sink_->answer({Status(code, std::move(message)), nullptr});
  }

 private:
  std::shared_ptr<ServiceReplySink> sink_;
};
using ServiceHandler = std::function<void(const boost::json::value& payload, ServiceReply reply)>;

class Bus {
 public:
  virtual ~Bus() = default;

  virtual void publish(std::string name, boost::json::value payload) = 0;
  // `name` may end in ".*" to receive every event whose name starts with
  // what precedes the "*" ("gateway.user.*"): one subscription, so events
  // of different names arrive in the order they were published.
  virtual void subscribe(std::string name, EventHandler handler) = 0;

  // Higher priority runs first; equal priorities run in registration order.
  virtual void hook(std::string name, int priority, HookHandler handler,
                    HookOptions options = {}) = 0;
  // Runs the chain for `name` over `payload`. Returns the veto, or ok.
  virtual Status run_hooks(std::string_view name, boost::json::object& payload) = 0;

  // Throws if another plugin already serves `name` (the message names both).
  virtual void serve(std::string name, ServiceHandler handler) = 0;
  virtual bool has_service(std::string_view name) const = 0;
  virtual void request(std::string name, boost::json::value payload,
                       std::chrono::milliseconds timeout, ResponseHandler on_response) = 0;

  // Since SDK 2.1. Whether an event named `name` published now would reach
  // a subscriber (exact or "prefix.*"; a cluster bridge carrying events to
  // other nodes subscribes like any plugin), and whether run_hooks(name)
  // would run a hook. For a publisher whose payload costs to build on a hot
  // path: build it only when someone listens. Plugins start and stop, so
  // ask each time rather than once.
  virtual bool has_subscribers(std::string_view name) const = 0;
  virtual bool has_hooks(std::string_view name) const = 0;
};

}  // namespace parley
