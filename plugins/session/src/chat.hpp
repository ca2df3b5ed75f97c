// One-to-one and group chat: send, mark, history, conversations, typing, and the
// catch-up a connection gets at login.
#pragma once

#include <memory>
#include <string>

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

  Host& host_;
  Database& db_;
  const Settings& settings_;
  MessageWriter writer_;
  PushOffers push_offers_;
  const OnlineView& online_;
};

}  // namespace parley::session
