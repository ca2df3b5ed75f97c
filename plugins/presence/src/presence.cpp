#include "presence.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <future>
#include <unordered_map>

#include <parley/names.hpp>
#include <parley/timestamp.hpp>

namespace parley::presence {
namespace {

namespace json = boost::json;

// The write at stop waits at most this long, within the kernel's shutdown time.
constexpr std::chrono::seconds kFinalFlushWait{5};
// Users whose confirmed 1:1 contacts are remembered, at most.
constexpr std::size_t kRememberedUsers = 100000;

json::value timestamp_or_null(const std::optional<TimePoint>& at) {
  if (!at) return nullptr;
  return json::string(format_timestamp(*at));
}

// "2026-11-30T12:00:00.123Z" as the kernel writes it.
std::optional<TimePoint> parse_timestamp(std::string_view text) {
  std::tm tm{};
  int millis = 0;
  const std::string copy(text);
  if (std::sscanf(copy.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis) < 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm)) + std::chrono::milliseconds(millis);
}

// The `users` of a request: strings, each once, in order.
std::vector<std::string> requested_users(const json::object& fields, std::size_t cap) {
  const auto* users = fields.if_contains("users");
  if (users == nullptr || !users->is_array()) {
    throw Failure(ErrorCode::bad_request, "users must be an array of user ids");
  }
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const auto& user : users->as_array()) {
    if (!user.is_string() || user.as_string().empty()) {
      throw Failure(ErrorCode::bad_request, "users must be an array of user ids");
    }
    std::string id(user.as_string());
    if (seen.insert(id).second) out.push_back(std::move(id));
  }
  if (out.size() > cap) {
    throw Failure(ErrorCode::too_large,
                  "at most " + std::to_string(cap) + " subscriptions per connection");
  }
  return out;
}

std::vector<std::string> string_list(const json::value& value, std::string_view key) {
  std::vector<std::string> out;
  if (!value.is_object()) return out;
  const auto* list = value.as_object().if_contains(key);
  if (list == nullptr || !list->is_array()) return out;
  for (const auto& item : list->as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

std::vector<std::string> without(std::vector<std::string> from,
                                 const std::vector<std::string>& remove) {
  const std::unordered_set<std::string> gone(remove.begin(), remove.end());
  std::erase_if(from, [&](const std::string& id) { return gone.contains(id); });
  return from;
}

Status lookup_failure(const Response& response, std::string_view service) {
  const auto code = response.status.code() == ErrorCode::timeout ||
                            response.status.code() == ErrorCode::unsupported
                        ? ErrorCode::unavailable
                        : response.status.code();
  return {code, std::string(service) + ": " + response.status.message()};
}

}  // namespace

Presence::Presence(Host& host, const Settings& settings)
    : host_(host),
      settings_(settings),
      loop_(host.clock()),
      store_(std::make_unique<LastActiveStore>(*host.database())),
      state_(host.clock(), settings.timing),
      subscriptions_(settings.max_subscriptions_per_connection),
      subscriptions_gauge_(host.metrics().gauge("subscriptions", "presence subscriptions held")),
      online_gauge_(host.metrics().gauge("online_users", "users online by presence")),
      events_sent_(host.metrics().counter("events_sent_total",
                                          "presence events sent to subscriber connections")) {}

void Presence::start() {
  next_flush_ = host_.clock().now() + settings_.flush_interval;
  loop_.start(
      [this]() -> std::optional<TimePoint> {
        const auto deadline = state_.next_deadline();
        return deadline && *deadline < next_flush_ ? *deadline : next_flush_;
      },
      [this] {
        publish(state_.tick());
        if (host_.clock().now() >= next_flush_) {
          flush();
          next_flush_ = host_.clock().now() + settings_.flush_interval;
        }
        subscriptions_gauge_.set(static_cast<double>(subscriptions_.size()));
      });

  auto self = shared_from_this();
  auto& bus = host_.bus();
  // The gateway is asked whether the user is connected when the event is
  // handled: events of different names may arrive out of order (a quick
  // reconnect's `online` before the close's `offline`).
  bus.subscribe(std::string(names::kUserOnline), [self](const Event& event) {
    std::string user(event.payload.at("user_id").as_string());
    self->loop_.post([self, user] {
      auto& gateway = self->host_.gateway();
      self->publish(
          self->state_.set_connected(user, gateway.is_connected(user), gateway.last_active(user)));
    });
  });
  bus.subscribe(std::string(names::kUserOffline), [self](const Event& event) {
    std::string user(event.payload.at("user_id").as_string());
    self->loop_.post([self, user] {
      const bool connected = self->host_.gateway().is_connected(user);
      self->publish(self->state_.set_connected(user, connected, std::nullopt));
      // Also the end of subscriptions of a user who logged out everywhere.
      if (!connected) self->subscriptions_.drop_subscriber(user);
    });
  });
  bus.subscribe(std::string(names::kUserActive), [self](const Event& event) {
    const auto& payload = event.payload.as_object();
    std::string user(payload.at("user_id").as_string());
    std::optional<TimePoint> at;
    if (const auto* text = payload.if_contains("at"); text != nullptr && text->is_string()) {
      at = parse_timestamp(text->as_string());
    }
    self->loop_.post([self, user, at] {
      auto& gateway = self->host_.gateway();
      const auto when = gateway.last_active(user).value_or(at.value_or(self->host_.clock().now()));
      self->publish(self->state_.activity(user, when, gateway.is_connected(user)));
    });
  });
  bus.subscribe(std::string(names::kConnectionClosed), [self](const Event& event) {
    const auto connection = event.payload.at("connection").to_number<ConnectionId>();
    self->loop_.post([self, connection] { self->subscriptions_.drop_connection(connection); });
  });
  // A connection that logged out (and perhaps in as someone else) keeps no
  // watches of the user it was; those of its new user stay.
  bus.subscribe(std::string(names::kConnectionUnbound), [self](const Event& event) {
    const auto connection = event.payload.at("connection").to_number<ConnectionId>();
    std::string user(event.payload.at("user_id").as_string());
    self->loop_.post(
        [self, connection, user] { self->subscriptions_.drop_connection_of(connection, user); });
  });
  bus.subscribe("group.changed", [self](const Event& event) { self->on_group_changed(event); });

  bus.serve("presence.online", [self](const json::value& payload, ServiceReply reply) {
    self->on_online_query(payload, std::move(reply));
  });
  host_.gateway().handle("presence.subscribe",
                         [self](Request request, Reply reply) {
                           self->on_subscribe(std::move(request), std::move(reply));
                         },
                         {.nonblocking = true});
  host_.gateway().handle("presence.unsubscribe",
                         [self](Request request, Reply reply) {
                           self->on_unsubscribe(std::move(request), std::move(reply));
                         },
                         {.nonblocking = true});
}

void Presence::stop() {
  loop_.stop();
  final_flush();
}

void Presence::on_subscribe(Request request, Reply reply) {
  auto users = requested_users(request.fields, settings_.max_subscriptions_per_connection);
  std::vector<std::string> others;
  for (const auto& user : users) {
    if (user != request.user_id) others.push_back(user);
  }
  auto self = shared_from_this();
  check_sharing(
      request.user_id, std::move(others),
      [self, connection = request.connection, subscriber = request.user_id,
       users = std::move(users), reply = std::move(reply)](Sharing sharing) mutable {
        if (!sharing.status.ok()) return reply.fail(sharing.status);
        if (!sharing.unknown.empty()) {
          return reply.error(ErrorCode::not_found, "no such user: " + sharing.unknown[0]);
        }
        if (!sharing.not_shared.empty()) {
          return reply.error(ErrorCode::forbidden,
                             "no conversation or group shared with user " + sharing.not_shared[0]);
        }
        self->loop_.post([self, connection, subscriber, users = std::move(users),
                          reply = std::move(reply)]() mutable {
          self->subscribe_checked(connection, subscriber, std::move(users), std::move(reply));
        });
      });
}

void Presence::on_unsubscribe(Request request, Reply reply) {
  auto users = requested_users(request.fields, settings_.max_subscriptions_per_connection);
  auto self = shared_from_this();
  loop_.post(
      [self, connection = request.connection, users = std::move(users), reply = std::move(reply)] {
        self->subscriptions_.remove(connection, users);
        reply.ok();
      });
}

void Presence::on_online_query(const json::value& payload, ServiceReply reply) {
  if (!payload.is_object() || !payload.as_object().contains("user_ids") ||
      !payload.at("user_ids").is_array()) {
    return reply.error(ErrorCode::bad_request, "user_ids must be an array of user ids");
  }
  auto self = shared_from_this();
  loop_.post([self, users = string_list(payload, "user_ids"), reply = std::move(reply)] {
    json::array online;
    for (const auto& user : users) {
      if (self->state_.online(user)) online.emplace_back(user);
    }
    reply.ok(json::object{{"online", std::move(online)}});
  });
}

void Presence::check_sharing(const std::string& user_id, std::vector<std::string> others,
                             SharingHandler done) {
  {
    std::lock_guard lock(one_to_one_mutex_);
    if (const auto known = one_to_one_.find(user_id); known != one_to_one_.end()) {
      std::erase_if(others, [&](const std::string& id) { return known->second.contains(id); });
    }
  }
  if (others.empty()) return done({});
  auto self = shared_from_this();
  json::array asked(others.begin(), others.end());
  host_.bus().request(
      "session.contacts", json::object{{"user_id", user_id}, {"others", std::move(asked)}},
      settings_.lookup_timeout,
      [self, user_id, others = std::move(others), done = std::move(done)](Response response) {
        if (!response.ok()) return done({lookup_failure(response, "session.contacts"), {}, {}});
        Sharing sharing;
        sharing.unknown = string_list(response.value, "unknown");
        auto shared = string_list(response.value, "shared");
        {
          // A 1:1 conversation with a message in it never stops being one.
          std::lock_guard lock(self->one_to_one_mutex_);
          // Forgetting is always correct: the next subscribes ask again.
          if (self->one_to_one_.size() >= kRememberedUsers) self->one_to_one_.clear();
          auto& known = self->one_to_one_[user_id];
          known.insert(shared.begin(), shared.end());
        }
        sharing.not_shared = without(without(others, sharing.unknown), shared);
        self->ask_group(user_id, std::move(sharing), done);
      });
}

void Presence::ask_group(const std::string& user_id, Sharing sharing, SharingHandler done) {
  // Without the group plugin only 1:1 conversations count.
  if (sharing.not_shared.empty() || !host_.bus().has_service("group.shared")) {
    return done(std::move(sharing));
  }
  json::array asked(sharing.not_shared.begin(), sharing.not_shared.end());
  host_.bus().request(
      "group.shared", json::object{{"user_id", user_id}, {"others", std::move(asked)}},
      settings_.lookup_timeout,
      [sharing = std::move(sharing), done = std::move(done)](Response response) mutable {
        if (!response.ok()) return done({lookup_failure(response, "group.shared"), {}, {}});
        sharing.not_shared =
            without(std::move(sharing.not_shared), string_list(response.value, "shared"));
        done(std::move(sharing));
      });
}

void Presence::subscribe_checked(ConnectionId connection, const std::string& subscriber,
                                 std::vector<std::string> users, Reply reply) {
  std::vector<std::string> unknown;
  for (const auto& user : users) {
    if (!state_.known(user)) unknown.push_back(user);
  }
  if (unknown.empty()) return finish_subscribe(connection, subscriber, users, reply);
  auto self = shared_from_this();
  store_->load(std::move(unknown),
               [self, connection, subscriber, users = std::move(users), reply = std::move(reply)](
                   const Status& status, StoredValues values) mutable {
                 if (!status.ok()) return reply.fail(status);
                 self->loop_.post([self, connection, subscriber, users = std::move(users),
                                   reply = std::move(reply), values = std::move(values)] {
                   for (const auto& [user, stored] : values) self->state_.load(user, stored);
                   self->finish_subscribe(connection, subscriber, users, reply);
                 });
               });
}

void Presence::finish_subscribe(ConnectionId connection, const std::string& subscriber,
                                const std::vector<std::string>& users, const Reply& reply) {
  // The checks took a while: the connection may have closed or logged out
  // since. Its close or unbound event comes to this loop after this task
  // (both are published after the change user_of sees), so whatever is
  // added here while it is still the subscriber's is removed by them.
  if (host_.gateway().user_of(connection) != subscriber) return reply.ok();
  if (!subscriptions_.add(connection, subscriber, users)) {
    return reply.error(ErrorCode::too_large,
                       "at most " + std::to_string(settings_.max_subscriptions_per_connection) +
                           " subscriptions per connection");
  }
  json::array presence;
  for (const auto& user : users) {
    presence.emplace_back(
        json::object{{"user_id", user},
                     {"online", state_.online(user)},
                     {"last_active", timestamp_or_null(state_.last_active(user))}});
  }
  reply.ok({{"presence", std::move(presence)}});
}

void Presence::on_group_changed(const Event& event) {
  if (!event.payload.is_object()) return;
  const auto members_list = string_list(event.payload, "members");
  const std::unordered_set<std::string> members(members_list.begin(), members_list.end());
  std::vector<std::string> gone;
  for (auto& user : string_list(event.payload, "user_ids")) {
    if (!members.contains(user)) gone.push_back(std::move(user));
  }
  if (gone.empty()) return;
  auto self = shared_from_this();
  loop_.post([self, gone = std::move(gone), members] {
    std::vector<Watch> watches;
    for (const auto& user : gone) {
      auto found = self->subscriptions_.between(user, members);
      watches.insert(watches.end(), found.begin(), found.end());
    }
    if (!watches.empty()) self->recheck(std::move(watches));
  });
}

void Presence::recheck(std::vector<Watch> watches) {
  // One sharing check per subscriber, over all the targets in question.
  std::unordered_map<std::string, std::vector<std::string>> targets;
  for (const auto& watch : watches) {
    auto& list = targets[watch.subscriber];
    if (std::find(list.begin(), list.end(), watch.target) == list.end()) {
      list.push_back(watch.target);
    }
  }
  auto shared_watches = std::make_shared<std::vector<Watch>>(std::move(watches));
  auto self = shared_from_this();
  for (auto& [subscriber, others] : targets) {
    check_sharing(subscriber, std::move(others),
                  [self, subscriber, shared_watches](Sharing sharing) {
                    if (!sharing.status.ok()) {
                      self->host_.log().warn("presence of {} not re-checked: {}", subscriber,
                                             sharing.status.message());
                      return;
                    }
                    auto lost = std::move(sharing.not_shared);
                    lost.insert(lost.end(), sharing.unknown.begin(), sharing.unknown.end());
                    if (lost.empty()) return;
                    self->loop_.post([self, subscriber, shared_watches, lost = std::move(lost)] {
                      const std::unordered_set<std::string> ended(lost.begin(), lost.end());
                      for (const auto& watch : *shared_watches) {
                        if (watch.subscriber != subscriber || !ended.contains(watch.target))
                          continue;
                        self->subscriptions_.remove(watch.connection, {watch.target});
                        // The last word: offline, and no last_active for someone no longer shared
                        // with.
                        self->host_.gateway().send(
                            watch.connection, make_frame(json::object{{"type", "presence"},
                                                                      {"user_id", watch.target},
                                                                      {"online", false},
                                                                      {"last_active", nullptr}}));
                        self->events_sent_.add();
                      }
                    });
                  });
  }
}

void Presence::publish(const std::vector<Transition>& transitions) {
  for (const auto& change : transitions) {
    online_gauge_.add(change.online ? 1 : -1);
    auto last_active = timestamp_or_null(change.last_active);
    const auto& watchers = subscriptions_.watchers(change.user_id);
    if (!watchers.empty()) {
      const auto frame = make_frame(json::object{{"type", "presence"},
                                                 {"user_id", change.user_id},
                                                 {"online", change.online},
                                                 {"last_active", last_active}});
      for (const auto connection : watchers) host_.gateway().send(connection, frame);
      events_sent_.add(static_cast<double>(watchers.size()));
    }
    host_.bus().publish("presence.changed", json::object{{"user_id", change.user_id},
                                                         {"online", change.online},
                                                         {"last_active", last_active}});
  }
}

void Presence::flush() {
  auto values = state_.take_changed();
  if (values.empty()) return;
  auto self = shared_from_this();
  auto kept = std::make_shared<std::vector<std::pair<std::string, TimePoint>>>(values);
  store_->save(std::move(values), [self, kept](const Status& status) {
    if (status.ok()) return;
    self->host_.log().warn("last_active of {} users not stored yet: {}", kept->size(),
                           status.message());
    self->loop_.post([self, kept] { self->state_.restore_changed(*kept); });
  });
}

void Presence::final_flush() {
  auto values = state_.take_changed();
  if (values.empty()) return;
  const auto count = values.size();
  auto written = std::make_shared<std::promise<Status>>();
  auto result = written->get_future();
  store_->save(std::move(values), [written](const Status& status) { written->set_value(status); });
  if (result.wait_for(kFinalFlushWait) != std::future_status::ready) {
    host_.log().warn("last_active of {} users not stored at stop: the database did not answer",
                     count);
    return;
  }
  if (const auto status = result.get(); !status.ok()) {
    host_.log().warn("last_active of {} users not stored at stop: {}", count, status.message());
  }
}

}  // namespace parley::presence
