// The presence service: requests, kernel events, sharing checks, events to
// subscribers, and the batched writes of last_active. Callbacks hold it by
// shared_ptr, so late answers from the bus or the database find it alive.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <parley/event_loop.hpp>
#include <parley/sdk.hpp>

#include "last_active_store.hpp"
#include "presence_state.hpp"
#include "settings.hpp"
#include "subscriptions.hpp"

namespace parley::presence {

class Presence : public std::enable_shared_from_this<Presence> {
 public:
  Presence(Host& host, const Settings& settings);

  void start();
  // Stops the thread and writes what is left of last_active.
  void stop();

 private:
  // Which of `others` `user_id` may not see, and which are no users at all.
  struct Sharing {
    Status status;
    std::vector<std::string> unknown;
    std::vector<std::string> not_shared;
  };
  using SharingHandler = std::function<void(Sharing)>;

  void on_subscribe(Request request, Reply reply);
  void on_unsubscribe(Request request, Reply reply);
  void on_online_query(const boost::json::value& payload, ServiceReply reply);
  void on_group_changed(const Event& event);

  void check_sharing(const std::string& user_id, std::vector<std::string> others,
                     SharingHandler done);
  void ask_group(const std::string& user_id, Sharing sharing, SharingHandler done);
  // On the loop: loads unknown last_active values, then subscribes and answers.
  void subscribe_checked(ConnectionId connection, const std::string& subscriber,
                         std::vector<std::string> users, Reply reply);
  void finish_subscribe(ConnectionId connection, const std::string& subscriber,
                        const std::vector<std::string>& users, const Reply& reply);
  // On the loop: ends the watches whose subscriber no longer shares with the target.
  void recheck(std::vector<Watch> watches);

  void publish(const std::vector<Transition>& transitions);
  void flush();
  void final_flush();

  Host& host_;
  const Settings& settings_;
  EventLoop loop_;
  std::unique_ptr<LastActiveStore> store_;
  // Touched only on the loop's thread.
  PresenceState state_;
  Subscriptions subscriptions_;
  TimePoint next_flush_;
  // Per subscriber, the others session.contacts said they share a 1:1
  // conversation with: that never ends, so a re-subscribe after a reconnect
  // need not ask again. Filled and read from the threads that check sharing;
  // cleared whole when it holds too many users.
  std::mutex one_to_one_mutex_;
  std::unordered_map<std::string, std::unordered_set<std::string>> one_to_one_;

  Gauge& subscriptions_gauge_;
  Gauge& online_gauge_;
  Counter& events_sent_;
};

}  // namespace parley::presence
