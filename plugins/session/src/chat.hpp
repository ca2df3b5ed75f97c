// One-to-one and group chat: send, mark, history, conversations, typing, and the
// catch-up a connection gets at login.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <parley/sdk.hpp>

#include "message_writer.hpp"
#include "online_view.hpp"
#include "push_offers.hpp"
#include "settings.hpp"

namespace parley::session {

class Chat {
 public:
  // `online` tells who is offline, for push offers.
  Chat(Host& host, const Settings& settings, const OnlineView& online);

  void register_handlers(Gateway& gateway);

  // Records when the user went offline if no connection of theirs is left.
  void user_maybe_offline(const std::string& user_id);

 private:
  void on_send(Request request, Reply reply);
  void on_mark(Request request, Reply reply);
  void on_history(Request request, Reply reply);
  void on_conversations(Request request, Reply reply);
  void on_typing(Request request, Reply reply);

  void on_stored(const SendRequest& request, const StoredMessage& message, bool created,
                 const MessageWriter::Members& members);
  // Offers the message to the push plugins for those of `recipients` who
  // are offline.
  void offer_push(const StoredMessage& message, const std::vector<std::int64_t>& recipients);
  // Whom a 1:1 typing reaches: the peer once the conversation holds a
  // message, nobody before; unknown until looked up.
  enum class Reach { peer, nobody, unknown };
  Reach typing_reach(const std::string& direct_conversation);
  void remember_reach(const std::string& direct_conversation, bool holds_a_message);

  Host& host_;
  Database& db_;
  const Settings& settings_;
  MessageWriter writer_;
  PushOffers push_offers_;
  const OnlineView& online_;
  // Filled by typing's own lookups, so sends pay nothing for them. A
  // conversation never loses its messages, so `talked_` never goes stale;
  // one without a message is asked again after a few seconds, or at once
  // after a send there.
  std::mutex reach_mutex_;
  std::unordered_set<std::string> talked_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> quiet_until_;
  // quiet_until_'s size, read without the lock by every 1:1 send.
  std::atomic<std::size_t> quiet_entries_{0};
};

}  // namespace parley::session
