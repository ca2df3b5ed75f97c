// OnlineView in-process: what presence.changed says, or the gateway's
// connections when no presence plugin serves presence.online.
#include "online_view.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace parley::session {
namespace {

class FakeBus : public Bus {
 public:
  void publish(std::string name, boost::json::value payload) override {
    for (auto& handler : subscribers[name]) handler(Event{name, payload});
  }
  void subscribe(std::string name, EventHandler handler) override {
    subscribers[name].push_back(std::move(handler));
  }
  void hook(std::string, int, HookHandler, HookOptions) override {}
  Status run_hooks(std::string_view, boost::json::object&) override { return {}; }
  bool has_subscribers(std::string_view) const override { return true; }
  bool has_hooks(std::string_view) const override { return false; }
  void serve(std::string name, ServiceHandler) override { services.insert(name); }
  bool has_service(std::string_view name) const override {
    return services.contains(std::string(name));
  }
  void request(std::string, boost::json::value, std::chrono::milliseconds,
               ResponseHandler) override {
    ADD_FAILURE() << "the view must not ask the bus";
  }

  std::map<std::string, std::vector<EventHandler>> subscribers;
  std::set<std::string> services;
};

class FakeGateway : public Gateway {
 public:
  void handle(std::string, RequestHandler, RequestOptions) override {}
  void send(ConnectionId, Frame) override {}
  void when_written(ConnectionId, std::function<void()>) override {}
  void deliver(std::string_view, const Frame&, ConnectionId) override {}
  void deliver_many(std::span<const std::string>, const Frame&, ConnectionId) override {}
  bool is_connected(std::string_view user_id) const override {
    return connected.contains(std::string(user_id));
  }
  void bind_user(ConnectionId, Binding) override {}
  void release_events(ConnectionId, std::vector<Frame>) override {}
  void unbind_user(ConnectionId) override {}
  std::size_t end_login(std::string_view, const Frame&) override { return 0; }
  std::string user_of(ConnectionId) const override { return {}; }
  std::optional<std::chrono::system_clock::time_point> last_active(
      std::string_view) const override {
    return std::nullopt;
  }

  std::set<std::string> connected;
};

class SilentLog : public Log {
 public:
  bool enabled(LogLevel) const override { return false; }
  void write(LogLevel, std::string_view) override {}
};

class FakeHost : public Host {
 public:
  std::string_view plugin_name() const override { return "session"; }
  Log& log() override { return log_; }
  Bus& bus() override { return bus_; }
  const Clock& clock() const override { return clock_; }
  Metrics& metrics() override { throw std::logic_error("not used"); }
  Gateway& gateway() override { return gateway_; }
  Database* database() override { return nullptr; }
  void post(std::function<void()> task) override { task(); }
  bool offload(std::function<void()> task) override {
    task();
    return true;
  }
  std::shared_ptr<Timer> schedule(std::chrono::milliseconds, std::function<void()>) override {
    return nullptr;
  }

  FakeBus bus_;
  FakeGateway gateway_;

 private:
  class SystemClock : public Clock {
   public:
    std::chrono::system_clock::time_point now() const override {
      return std::chrono::system_clock::now();
    }
  } clock_;
  SilentLog log_;
};

void changed(FakeBus& bus, const std::string& user, bool online) {
  bus.publish("presence.changed",
              boost::json::object{{"user_id", user}, {"online", online}, {"last_active", nullptr}});
}

TEST(OnlineViewTest, FollowsPresenceChangedWhenPresenceIsServed) {
  FakeHost host;
  host.bus_.serve("presence.online", nullptr);
  OnlineView view(host);
  host.gateway_.connected.insert("1");
  EXPECT_FALSE(view.online("1")) << "connected but idle is offline by presence";
  changed(host.bus_, "1", true);
  changed(host.bus_, "2", true);
  EXPECT_TRUE(view.online("1"));
  EXPECT_TRUE(view.online("2"));
  changed(host.bus_, "1", false);
  EXPECT_FALSE(view.online("1"));
  EXPECT_TRUE(view.online("2"));
}

TEST(OnlineViewTest, WithoutPresenceOnlineMeansConnected) {
  FakeHost host;
  OnlineView view(host);
  host.gateway_.connected.insert("1");
  EXPECT_TRUE(view.online("1"));
  EXPECT_FALSE(view.online("2"));
}

TEST(OnlineViewTest, MalformedEventsChangeNothing) {
  FakeHost host;
  host.bus_.serve("presence.online", nullptr);
  OnlineView view(host);
  changed(host.bus_, "1", true);
  host.bus_.publish("presence.changed", boost::json::object{{"user_id", "1"}});
  host.bus_.publish("presence.changed", boost::json::object{{"user_id", 1}, {"online", false}});
  host.bus_.publish("presence.changed", "nonsense");
  EXPECT_TRUE(view.online("1"));
}

}  // namespace
}  // namespace parley::session
