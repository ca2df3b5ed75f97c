#include "chat.hpp"

#include <algorithm>
#include <map>

#include <parley/fields.hpp>

namespace parley::session {

namespace json = boost::json;
using fields::optional_int;
using fields::optional_string;
using fields::required_int;
using fields::required_string;

namespace {

constexpr std::size_t kMaxClientMsgIdBytes = 64;
constexpr std::int64_t kDefaultHistory = 50;
constexpr std::int64_t kMaxHistory = 200;
// Pending messages sent in one login catch-up; the rest follow at the next
// login once these are marked delivered.
constexpr std::int64_t kMaxSyncMessages = 1000;

// The participants of a 1:1 conversation, checking that `user_id` is one of
// them: bad_request for an id that is not a conversation, forbidden for an
// outsider and for a group conversation (group membership belongs to the
// group plugin; without it nobody is a member).
std::pair<std::string, std::string> direct_members(std::string_view conversation,
                                                   const std::string& user_id) {
  if (conversation.substr(0, 2) == "g:") {
    throw Failure(ErrorCode::forbidden, "not a member of this conversation");
  }
  auto members = direct_participants(conversation);
  if (!members) throw Failure(ErrorCode::bad_request, "'conversation' is not a conversation id");
  if (members->first != user_id && members->second != user_id) {
    throw Failure(ErrorCode::forbidden, "not a participant of this conversation");
  }
  return *members;
}

const std::string& peer_of(const std::pair<std::string, std::string>& members,
                           const std::string& user_id) {
  return members.first == user_id ? members.second : members.first;
}

std::string_view status_for(std::int64_t seq, std::int64_t delivered, std::int64_t read) {
  if (seq <= read) return "read";
  if (seq <= delivered) return "delivered";
  return "sent";
}

}  // namespace

Chat::Chat(Host& host, const Settings& settings)
    : host_(host),
      db_(*host.database()),
      settings_(settings),
      writer_(*host.database(), host.clock(), host.metrics(), settings.write_batch_max,
              [this](const SendRequest& r, const StoredMessage& m, bool created) {
                on_stored(r, m, created);
              }) {}

void Chat::register_handlers(Gateway& gateway) {
  // Every chat handler only validates and queues work (the writer, the
  // database pool, a delivery), so it runs on the network thread. A run of
  // sends from one connection is pipelined: the writer's FIFO keeps their
  // order, so the next send need not wait for the previous commit.
  const RequestOptions queues_only{.nonblocking = true};
  const RequestOptions ordered_by_writer{.nonblocking = true, .pipelined = true};
  gateway.handle(
      "send", [this](Request r, Reply reply) { on_send(std::move(r), std::move(reply)); },
      ordered_by_writer);
  gateway.handle(
      "mark", [this](Request r, Reply reply) { on_mark(std::move(r), std::move(reply)); },
      queues_only);
  gateway.handle(
      "history", [this](Request r, Reply reply) { on_history(std::move(r), std::move(reply)); },
      queues_only);
  gateway.handle(
      "conversations",
      [this](Request r, Reply reply) { on_conversations(std::move(r), std::move(reply)); },
      queues_only);
  // Typing has no lasting effect: nothing after it depends on it.
  gateway.handle(
      "typing", [this](Request r, Reply reply) { on_typing(std::move(r), std::move(reply)); },
      RequestOptions{.nonblocking = true, .pipelined = true});
}

void Chat::check_message_text(std::string_view text) const {
  if (text.empty()) throw Failure(ErrorCode::bad_request, "'message' must be a non-empty string");
  if (text.find('\0') != std::string_view::npos) {
    throw Failure(ErrorCode::bad_request, "'message' must not contain NUL characters");
  }
  if (utf8_length(text) > settings_.max_message_length) {
    throw Failure(
        ErrorCode::too_large,
        "'message' is longer than " + std::to_string(settings_.max_message_length) + " characters");
  }
}

void Chat::on_send(Request request, Reply reply) {
  const auto& f = request.fields;
  const auto to = optional_string(f, "to");
  const auto group_id = optional_string(f, "group_id");
  if (to.has_value() == group_id.has_value()) {
    throw Failure(ErrorCode::bad_request, "send needs exactly one of 'to' and 'group_id'");
  }
  const auto text = optional_string(f, "message");
  if (!text || text->empty())
    throw Failure(ErrorCode::bad_request, "'message' must be a non-empty string");
  if (text->find('\0') != std::string_view::npos) {
    throw Failure(ErrorCode::bad_request, "'message' must not contain NUL characters");
  }
  if (utf8_length(*text) > settings_.max_message_length) {
    throw Failure(
        ErrorCode::too_large,
        "'message' is longer than " + std::to_string(settings_.max_message_length) + " characters");
  }
  const auto client_msg_id = required_string(f, "client_msg_id");
  if (client_msg_id.empty() || client_msg_id.size() > kMaxClientMsgIdBytes ||
      client_msg_id.find('\0') != std::string_view::npos) {
    throw Failure(ErrorCode::bad_request, "'client_msg_id' must be a string of 1 to 64 bytes");
  }
  if (group_id) throw Failure(ErrorCode::unsupported, "group messages need the group plugin");
  if (*to == request.user_id)
    throw Failure(ErrorCode::bad_request, "cannot send a message to oneself");
  const auto recipient = parse_user_id(*to);
  if (!recipient) throw Failure(ErrorCode::not_found, "no such user");

  SendRequest send;
  send.sender_id = *parse_user_id(request.user_id);
  send.recipient_id = *recipient;
  send.conversation = direct_conversation(request.user_id, *to);
  send.body = std::string(*text);
  send.client_msg_id = std::string(client_msg_id);
  send.origin = request.connection;

  // Plugins may veto or rewrite a message before it is stored.
  json::object hook_payload{{"sender_id", request.user_id},
                            {"recipient_id", std::string(*to)},
                            {"conversation", send.conversation},
                            {"message", send.body}};
  const Status verdict = host_.bus().run_hooks("session.message.before_store", hook_payload);
  if (!verdict.ok()) return reply.fail(verdict);
  if (const auto* rewritten = hook_payload.if_contains("message");
      rewritten && rewritten->is_string()) {
    send.body = std::string(rewritten->get_string());
    if (send.body.empty()) throw Failure(ErrorCode::bad_request, "the message became empty");
  }
  writer_.submit(std::move(send), std::move(reply));
}

void Chat::on_stored(const SendRequest& request, const StoredMessage& message, bool created) {
  if (!created) return;
  const Frame frame = make_frame(message_event(message, "sent"), "m:" + std::to_string(message.id));
  auto& gateway = host_.gateway();
  gateway.deliver(std::to_string(request.recipient_id), frame);
  gateway.deliver(std::to_string(request.sender_id), frame, request.origin);
  host_.bus().publish("session.message.stored", message_object(message, "sent"));
  offer_push(message);
}

void Chat::offer_push(const StoredMessage& message) {
  const std::string recipient = std::to_string(*message.recipient_id);
  auto& bus = host_.bus();
  if (!bus.has_service("presence.status")) {
    if (!host_.gateway().is_connected(recipient)) publish_push(message);
    return;
  }
  bus.request("presence.status", json::object{{"user_id", recipient}}, settings_.presence_timeout,
              [this, message, recipient](Response response) {
                const bool online = response.ok() && response.value.is_object() &&
                                            response.value.as_object().contains("online")
                                        ? response.value.at("online").as_bool()
                                        : host_.gateway().is_connected(recipient);
                if (!online) publish_push(message);
              });
}

void Chat::publish_push(const StoredMessage& message) {
  struct Details {
    std::string sender_name;
    std::int64_t unread = 0;
  };
  auto details = std::make_shared<Details>();
  db_.run(
      [message, details](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        const auto row = tx.exec_params1(
            "SELECT (SELECT name FROM users WHERE id = $1),"
            " (SELECT count(*) FROM participants p JOIN messages m ON m.conversation = "
            "p.conversation"
            "  AND m.seq > p.read_seq AND m.sender_id <> p.user_id WHERE p.user_id = $2)",
            message.sender_id, *message.recipient_id);
        details->sender_name = row[0].is_null() ? "" : row[0].as<std::string>();
        details->unread = row[1].as<std::int64_t>();
      },
      [this, message, details](const Status& status) {
        if (!status.ok()) {
          host_.log().warn("push for message {} not offered: {}", message.id, status.message());
          return;
        }
        host_.bus().publish(
            "push.notify",
            json::object{
                {"user_id", std::to_string(*message.recipient_id)},
                {"title", details->sender_name},
                {"body", settings_.push_show_content ? message.body : settings_.push_generic_text},
                {"badge", details->unread},
                {"data", json::object{{"conversation", message.conversation},
                                      {"message_id", std::to_string(message.id)}}}});
      });
}

void Chat::on_mark(Request request, Reply reply) {
  const std::string conversation(required_string(request.fields, "conversation"));
  const std::string status(required_string(request.fields, "status"));
  if (status != "delivered" && status != "read") {
    throw Failure(ErrorCode::bad_request, "'status' must be \"delivered\" or \"read\"");
  }
  const std::int64_t seq = required_int(request.fields, "seq");
  if (seq < 1) throw Failure(ErrorCode::bad_request, "'seq' must be at least 1");
  direct_members(conversation, request.user_id);
  const std::int64_t me = *parse_user_id(request.user_id);
  const bool is_read = status == "read";

  struct Result {
    std::int64_t moved_to = 0;  // 0: nothing moved
    std::vector<std::string> senders;
  };
  auto result = std::make_shared<Result>();
  db_.run(
      [=](pqxx::connection& conn) {
        *result = Result{};  // the pool may run this twice (a dead connection)
        pqxx::work tx(conn);
        auto rows = tx.exec_params(
            "SELECT p.delivered_seq, p.read_seq, c.last_seq FROM participants p"
            " JOIN conversations c ON c.id = p.conversation"
            " WHERE p.conversation = $1 AND p.user_id = $2 FOR UPDATE OF p",
            conversation, me);
        if (rows.empty()) return;  // no message yet: nothing to mark
        const auto delivered = rows[0][0].as<std::int64_t>();
        const auto read = rows[0][1].as<std::int64_t>();
        const auto target = std::min(seq, rows[0][2].as<std::int64_t>());
        const auto new_read = is_read ? std::max(read, target) : read;
        const auto new_delivered = std::max({delivered, target, new_read});
        if (new_read == read && new_delivered == delivered) return;
        tx.exec_params(
            "UPDATE participants SET delivered_seq = $3, read_seq = $4,"
            " delivered_at = CASE WHEN $3 > delivered_seq THEN now() ELSE delivered_at END,"
            " read_at = CASE WHEN $4 > read_seq THEN now() ELSE read_at END"
            " WHERE conversation = $1 AND user_id = $2",
            conversation, me, new_delivered, new_read);
        const auto from = is_read ? read : delivered;
        const auto to = is_read ? new_read : new_delivered;
        if (to > from) {
          result->moved_to = to;
          for (const auto& row : tx.exec_params("SELECT DISTINCT sender_id FROM messages WHERE "
                                                "conversation = $1 AND seq > $2 AND seq <= $3"
                                                " AND sender_id <> $4",
                                                conversation, from, to, me)) {
            result->senders.push_back(row[0].as<std::string>());
          }
        }
        tx.commit();
      },
      [=, this, connection = request.connection,
       user_id = request.user_id](const Status& db_status) {
        if (!db_status.ok()) return reply.fail(db_status);
        reply.ok();
        if (result->moved_to == 0) return;
        json::object receipt{{"type", "receipt"},
                             {"conversation", conversation},
                             {"user_id", user_id},
                             {"status", status},
                             {"seq", result->moved_to}};
        const Frame frame = make_frame(receipt);
        auto& gateway = host_.gateway();
        for (const auto& sender : result->senders) gateway.deliver(sender, frame);
        gateway.deliver(user_id, frame, connection);
        receipt.erase("type");
        host_.bus().publish("session.receipt", std::move(receipt));
      });
}

void Chat::on_history(Request request, Reply reply) {
  const std::string conversation(required_string(request.fields, "conversation"));
  const auto before = optional_int(request.fields, "before_seq");
  auto limit = optional_int(request.fields, "limit").value_or(kDefaultHistory);
  if (limit < 1) throw Failure(ErrorCode::bad_request, "'limit' must be at least 1");
  limit = std::min(limit, kMaxHistory);
  const auto members = direct_members(conversation, request.user_id);
  const std::int64_t me = *parse_user_id(request.user_id);
  const std::int64_t peer = *parse_user_id(peer_of(members, request.user_id));

  auto messages = std::make_shared<json::array>();
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>>
            marks;  // user -> delivered, read
        for (const auto& row : tx.exec_params("SELECT user_id, delivered_seq, read_seq FROM "
                                              "participants WHERE conversation = $1",
                                              conversation)) {
          marks[row[0].as<std::int64_t>()] = {row[1].as<std::int64_t>(), row[2].as<std::int64_t>()};
        }
        auto rows = tx.exec_params(
            "SELECT " + message_columns("m") +
                " FROM messages m WHERE m.conversation = $1"
                " AND ($2::bigint IS NULL OR m.seq < $2) ORDER BY m.seq DESC LIMIT $3",
            conversation, before, limit);
        for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
          const auto m = read_message(*it);
          // The sender sees the peer's progress; the reader sees their own.
          const auto& [delivered, read] = marks[m.sender_id == me ? peer : me];
          messages->push_back(message_object(m, status_for(m.seq, delivered, read)));
        }
      },
      [=](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        reply.ok({{"messages", std::move(*messages)}});
      });
}

void Chat::on_conversations(Request request, Reply reply) {
  const std::int64_t me = *parse_user_id(request.user_id);
  auto list = std::make_shared<json::array>();
  db_.run(
      [=](pqxx::connection& conn) {
        list->clear();  // the pool may run this twice (a dead connection)
        pqxx::read_transaction tx(conn);
        auto rows = tx.exec_params(
            "SELECT p.conversation, p.delivered_seq, p.read_seq,"
            " (SELECT min(q.read_seq) FROM participants q WHERE q.conversation = p.conversation "
            "AND q.user_id <> $1),"
            " (SELECT min(q.delivered_seq) FROM participants q"
            "   WHERE q.conversation = p.conversation AND q.user_id <> $1),"
            " (SELECT count(*) FROM messages u WHERE u.conversation = p.conversation AND u.seq > "
            "p.read_seq"
            "   AND u.sender_id <> $1), " +
                message_columns("m") +
                " FROM participants p JOIN conversations c ON c.id = p.conversation"
                " LEFT JOIN LATERAL (SELECT * FROM messages x WHERE x.conversation = p.conversation"
                "   ORDER BY x.seq DESC LIMIT 1) m ON true"
                " WHERE p.user_id = $1 ORDER BY c.last_activity DESC, p.conversation",
            me);
        for (const auto& row : rows) {
          const auto delivered = row[1].as<std::int64_t>();
          const auto read = row[2].as<std::int64_t>();
          const auto peer_read = row[3].is_null() ? 0 : row[3].as<std::int64_t>();
          const auto peer_delivered = row[4].is_null() ? 0 : row[4].as<std::int64_t>();
          json::object entry{{"conversation", row[0].as<std::string>()},
                             {"unread", row[5].as<std::int64_t>()},
                             {"read_seq", read},
                             {"peer_read_seq", peer_read}};
          if (row[6].is_null()) {
            entry["last_message"] = nullptr;
          } else {
            const auto m = read_message(row, 6);
            entry["last_message"] =
                message_object(m, m.sender_id == me ? status_for(m.seq, peer_delivered, peer_read)
                                                    : status_for(m.seq, delivered, read));
          }
          list->push_back(std::move(entry));
        }
      },
      [=](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        reply.ok({{"conversations", std::move(*list)}});
      });
}

void Chat::on_typing(Request request, Reply reply) {
  const std::string conversation(required_string(request.fields, "conversation"));
  const auto members = direct_members(conversation, request.user_id);
  host_.gateway().deliver(
      peer_of(members, request.user_id),
      make_frame(json::object{
          {"type", "typing"}, {"conversation", conversation}, {"user_id", request.user_id}}));
  reply.ok();
}

void Chat::login_sync(const std::string& user_id, ConnectionId connection, bool had_connection,
                      json::object login_result, Reply reply) {
  const std::int64_t me = *parse_user_id(user_id);
  auto frames = std::make_shared<std::vector<Frame>>();
  db_.run(
      [=](pqxx::connection& conn) {
        frames->clear();  // the pool may run this twice (a dead connection)
        pqxx::work tx(conn);
        // This transaction only clears offline_since; losing that to a crash
        // re-sends a few receipts at worst, so it need not wait for a flush.
        tx.exec("SET LOCAL synchronous_commit = off");
        const auto since_row = tx.exec_params1(
            "SELECT coalesce(offline_since, now()) FROM users WHERE id = $1 FOR UPDATE", me);
        const auto since = since_row[0].as<std::string>();
        tx.exec_params("UPDATE users SET offline_since = NULL WHERE id = $1", me);

        for (const auto& row : tx.exec_params(
                 "SELECT " + message_columns("m") +
                     " FROM participants p JOIN messages m ON m.conversation = p.conversation"
                     " AND m.seq > p.delivered_seq AND m.sender_id <> p.user_id"
                     " WHERE p.user_id = $1 ORDER BY m.id LIMIT $2",
                 me, kMaxSyncMessages)) {
          const auto m = read_message(row);
          frames->push_back(make_frame(message_event(m, "sent"), "m:" + std::to_string(m.id)));
        }

        if (!had_connection) {
          for (const auto& row :
               tx.exec_params("SELECT o.conversation, o.user_id, o.delivered_seq, o.read_seq,"
                              " o.delivered_at > $2::timestamptz, o.read_at > $2::timestamptz"
                              " FROM participants me JOIN participants o"
                              " ON o.conversation = me.conversation AND o.user_id <> me.user_id"
                              " WHERE me.user_id = $1 AND (o.delivered_at > $2::timestamptz OR "
                              "o.read_at > $2::timestamptz)"
                              " ORDER BY greatest(o.delivered_at, o.read_at)",
                              me, since)) {
            const auto conversation = row[0].as<std::string>();
            const auto reader = row[1].as<std::string>();
            if (row[4].as<bool>(false)) {
              frames->push_back(make_frame(json::object{{"type", "receipt"},
                                                        {"conversation", conversation},
                                                        {"user_id", reader},
                                                        {"status", "delivered"},
                                                        {"seq", row[2].as<std::int64_t>()}}));
            }
            if (row[5].as<bool>(false)) {
              frames->push_back(make_frame(json::object{{"type", "receipt"},
                                                        {"conversation", conversation},
                                                        {"user_id", reader},
                                                        {"status", "read"},
                                                        {"seq", row[3].as<std::int64_t>()}}));
            }
          }
        }
        tx.commit();
      },
      [=, this, login_result = std::move(login_result)](const Status& status) mutable {
        auto& gateway = host_.gateway();
        if (!status.ok()) {
          gateway.unbind_user(connection);
          return reply.fail(status);
        }
        frames->push_back(make_frame(json::object{{"type", "synced"}}));
        reply.ok(std::move(login_result));
        gateway.release_events(connection, std::move(*frames));
      });
}

void Chat::user_maybe_offline(const std::string& user_id) {
  if (host_.gateway().is_connected(user_id)) return;
  const auto me = parse_user_id(user_id);
  if (!me) return;
  db_.run(
      [id = *me](pqxx::connection& conn) {
        pqxx::work tx(conn);
        tx.exec("SET LOCAL synchronous_commit = off");  // see login_sync
        tx.exec_params(
            "UPDATE users SET offline_since = now() WHERE id = $1 AND offline_since IS NULL", id);
        tx.commit();
      },
      [this, user_id](const Status& status) {
        if (!status.ok())
          host_.log().warn("could not record that user {} went offline: {}", user_id,
                           status.message());
      });
}

}  // namespace parley::session
