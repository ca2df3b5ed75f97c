#include "chat.hpp"

#include <algorithm>
#include <map>

#include <parley/fields.hpp>

#include "queries.hpp"

namespace parley::session {

namespace json = boost::json;
using fields::optional_int;
using fields::optional_string;
using fields::required_int;
using fields::required_string;

namespace {

constexpr std::size_t kMaxClientMsgIdBytes = 64;
// The hook run before a message is stored, and the event after.
constexpr std::string_view kBeforeStore = "session.message.before_store";
constexpr std::string_view kStored = "session.message.stored";
constexpr std::int64_t kDefaultHistory = 50;
constexpr std::int64_t kMaxHistory = 200;
// Conversations per reply by default and at most (the client pages on with
// next_cursor).
constexpr std::int64_t kDefaultConversations = 200;
constexpr std::int64_t kMaxConversations = 500;
// What the entries of one history or conversations reply may add up to
// (their JSON); past it the page is cut short and says so. Far below the
// connection's max_queued_bytes, and what a client can count on.
constexpr std::size_t kReplyBudgetBytes = 1 << 20;

// A conversation a request names. A 1:1 one is checked against the caller
// at once; a group one (`group` set) in the database, by group_access().
struct Target {
  std::pair<std::string, std::string> direct;
  std::int64_t group = 0;
};

// bad_request for an id that is not a conversation, forbidden for an
// outsider of a 1:1 conversation.
Target target_of(std::string_view conversation, const std::string& user_id) {
  Target target;
  if (conversation.substr(0, 2) == "g:") {
    const auto group = parse_user_id(conversation.substr(2));
    if (!group) throw Failure(ErrorCode::bad_request, "'conversation' is not a conversation id");
    target.group = *group;
    return target;
  }
  auto members = direct_participants(conversation);
  if (!members) throw Failure(ErrorCode::bad_request, "'conversation' is not a conversation id");
  if (members->first != user_id && members->second != user_id) {
    throw Failure(ErrorCode::forbidden, "not a participant of this conversation");
  }
  target.direct = std::move(*members);
  return target;
}

// The caller's standing in a group conversation, read from participants
// (session's own delivery list; it never asks the group plugin).
struct GroupAccess {
  bool active = false;      // the group has current members: it exists and has not ended
  bool was_member = false;  // the caller is or was a member
  std::optional<std::int64_t> left_seq;

  bool current() const { return was_member && !left_seq; }
  // For writing (send, mark, typing): an unknown or ended group is
  // not_found, a group the caller is not in forbidden.
  Status to_write() const {
    if (!active) return Status(ErrorCode::not_found, "no such group");
    if (!current()) return Status(ErrorCode::forbidden, "not a member of this group");
    return {};
  }
  // For marking: former members mark up to their removal, even after the
  // group ended, so what they were sent stops being pending and unread.
  Status to_mark() const {
    if (was_member) return {};
    return to_write();
  }
  // For reading history: former members read up to their removal, even
  // after the group ended.
  Status to_read() const {
    if (was_member) return {};
    if (!active) return Status(ErrorCode::not_found, "no such group");
    return Status(ErrorCode::forbidden, "not a member of this group");
  }
};

GroupAccess group_access(pqxx::transaction_base& tx, const std::string& conversation,
                         std::int64_t user) {
  const auto row = tx.exec_params1(
      "SELECT EXISTS (SELECT 1 FROM participants WHERE conversation = $1 AND left_seq IS NULL),"
      " p.user_id IS NOT NULL, p.left_seq"
      " FROM (SELECT 1) AS one LEFT JOIN participants p ON p.conversation = $1 AND p.user_id = $2",
      conversation, user);
  GroupAccess access;
  access.active = row[0].as<bool>();
  access.was_member = row[1].as<bool>();
  if (!row[2].is_null()) access.left_seq = row[2].as<std::int64_t>();
  return access;
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

// A group message's status for its sender, from the other current members
// who were there when it was written: how many, how many have it delivered,
// how many read it.
std::string_view group_status(std::int64_t others, std::int64_t delivered_by,
                              std::int64_t read_by) {
  if (others > 0 && read_by == others) return "read";
  if (others > 0 && delivered_by == others) return "delivered";
  return "sent";
}

}  // namespace

Chat::Chat(Host& host, const Settings& settings, const OnlineView& online)
    : host_(host),
      db_(*host.database()),
      settings_(settings),
      writer_(*host.database(), host.clock(), host.metrics(), settings.write_batch_max,
              settings.write_queue_max_bytes,
              [this](const SendRequest& r, const StoredMessage& m, bool created,
                     const MessageWriter::Members& members) { on_stored(r, m, created, members); }),
      push_offers_(host, settings),
      online_(online) {}

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
  SendRequest send;
  send.sender_id = *parse_user_id(request.user_id);
  if (group_id) {
    // Whether the group exists and the sender is in it is decided in the
    // transaction that gives the message its seq (MessageWriter).
    const auto group = parse_user_id(*group_id);
    if (!group) throw Failure(ErrorCode::not_found, "no such group");
    send.group_id = *group;
    send.conversation = "g:" + std::string(*group_id);
  } else {
    if (*to == request.user_id)
      throw Failure(ErrorCode::bad_request, "cannot send a message to oneself");
    const auto recipient = parse_user_id(*to);
    if (!recipient) throw Failure(ErrorCode::not_found, "no such user");
    send.recipient_id = *recipient;
    send.conversation = direct_conversation(request.user_id, *to);
    // A typing looked up before the conversation's first message is asked
    // again at the next one: the sender's next requests come after this one
    // (the order of a connection), so their typing is not lost to the
    // lookup's wait. Free when nobody typed to a stranger.
    if (quiet_entries_.load(std::memory_order_relaxed) > 0) {
      const std::lock_guard lock(reach_mutex_);
      quiet_until_.erase(send.conversation);
      quiet_entries_.store(quiet_until_.size(), std::memory_order_relaxed);
    }
  }
  send.body = std::string(*text);
  send.client_msg_id = std::string(client_msg_id);
  send.origin = request.connection;

  // Plugins may veto or rewrite a message before it is stored. A veto goes
  // through the writer too: a repeat of an already stored client_msg_id
  // gets its first ok, as the protocol promises, whatever the hooks say now.
  // The payload is built only when a hook is registered.
  if (host_.bus().has_hooks(kBeforeStore)) {
    json::object hook_payload{{"sender_id", request.user_id}};
    if (group_id) {
      hook_payload["group_id"] = *group_id;
    } else {
      hook_payload["recipient_id"] = *to;
    }
    hook_payload["conversation"] = send.conversation;
    hook_payload["message"] = send.body;
    hook_payload["client_msg_id"] = send.client_msg_id;
    const Status verdict = host_.bus().run_hooks(kBeforeStore, hook_payload);
    if (!verdict.ok()) {
      send.refused = verdict;
    } else if (const auto* rewritten = hook_payload.if_contains("message");
               rewritten && rewritten->is_string()) {
      send.body = std::string(rewritten->get_string());
      if (send.body.empty()) throw Failure(ErrorCode::bad_request, "the message became empty");
    }
  }
  writer_.submit(std::move(send), std::move(reply));
}

void Chat::on_stored(const SendRequest& request, const StoredMessage& message, bool created,
                     const MessageWriter::Members& members) {
  if (!created) return;
  const Frame frame = message_event(message, "sent");
  auto& gateway = host_.gateway();
  std::vector<std::int64_t> recipients;
  if (members) {
    // The members as of this message's seq; the sender is one of them.
    std::vector<std::string> users;
    users.reserve(members->size());
    for (const auto member : *members) {
      users.push_back(std::to_string(member));
      if (member != request.sender_id) recipients.push_back(member);
    }
    gateway.deliver_many(users, frame, request.origin);
  } else {
    gateway.deliver(std::to_string(request.recipient_id), frame);
    gateway.deliver(std::to_string(request.sender_id), frame, request.origin);
    recipients.push_back(request.recipient_id);
  }
  if (host_.bus().has_subscribers(kStored)) {
    host_.bus().publish(std::string(kStored), message_object(message, "sent"));
  }
  offer_push(message, recipients);
}

void Chat::offer_push(const StoredMessage& message, const std::vector<std::int64_t>& recipients) {
  std::vector<std::int64_t> offline;
  for (const auto recipient : recipients) {
    // Offline by presence (silent past offline_after, or gone): offered a
    // push even while an idle connection still receives the frame.
    if (!online_.online(std::to_string(recipient))) offline.push_back(recipient);
  }
  push_offers_.offer(message, std::move(offline));
}

namespace {
// For a 1:1 conversation without a message yet: not_found when the peer is
// not a user (the conversation can never exist), ok otherwise.
Status direct_peer_exists(pqxx::transaction_base& tx, std::int64_t peer) {
  if (tx.exec_params("SELECT 1 FROM users WHERE id = $1", peer).empty()) {
    return Status(ErrorCode::not_found, "no such user");
  }
  return {};
}
}  // namespace

void Chat::on_mark(Request request, Reply reply) {
  const std::string conversation(required_string(request.fields, "conversation"));
  const std::string status(required_string(request.fields, "status"));
  if (status != "delivered" && status != "read") {
    throw Failure(ErrorCode::bad_request, "'status' must be \"delivered\" or \"read\"");
  }
  const std::int64_t seq = required_int(request.fields, "seq");
  if (seq < 1) throw Failure(ErrorCode::bad_request, "'seq' must be at least 1");
  const auto target = target_of(conversation, request.user_id);
  const std::int64_t me = *parse_user_id(request.user_id);
  const bool is_read = status == "read";

  struct Result {
    Status refused;
    std::int64_t moved_to = 0;  // 0: nothing moved
    std::vector<std::string> senders;
  };
  auto result = std::make_shared<Result>();
  db_.run(
      [=](pqxx::connection& conn) {
        *result = Result{};  // the pool may run this twice (a dead connection)
        pqxx::work tx(conn);
        if (target.group != 0) {
          result->refused = group_access(tx, conversation, me).to_mark();
          if (!result->refused.ok()) return;
        }
        // A former member's marks stop at their removal (left_seq).
        auto rows = tx.exec_params(
            "SELECT p.delivered_seq, p.read_seq, least(c.last_seq, p.left_seq) FROM participants p"
            " JOIN conversations c ON c.id = p.conversation"
            " WHERE p.conversation = $1 AND p.user_id = $2 FOR UPDATE OF p",
            conversation, me);
        if (rows.empty()) {
          // No message yet: nothing to mark, unless the peer does not exist.
          if (target.group == 0) {
            result->refused =
                direct_peer_exists(tx, *parse_user_id(peer_of(target.direct, std::to_string(me))));
          }
          return;
        }
        const auto delivered = rows[0][0].as<std::int64_t>();
        const auto read = rows[0][1].as<std::int64_t>();
        const auto upto = std::min(seq, rows[0][2].as<std::int64_t>());
        const auto new_read = is_read ? std::max(read, upto) : read;
        const auto new_delivered = std::max({delivered, upto, new_read});
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
          // Senders who left a group get no more of its receipts.
          for (const auto& row :
               tx.exec_params("SELECT DISTINCT m.sender_id FROM messages m JOIN participants s"
                              " ON s.conversation = m.conversation AND s.user_id = m.sender_id"
                              " AND s.left_seq IS NULL"
                              " WHERE m.conversation = $1 AND m.seq > $2 AND m.seq <= $3"
                              " AND m.sender_id <> $4",
                              conversation, from, to, me)) {
            result->senders.push_back(row[0].as<std::string>());
          }
        }
        tx.commit();
      },
      [=, this, connection = request.connection,
       user_id = request.user_id](const Status& db_status) {
        if (!db_status.ok()) return reply.fail(db_status);
        if (!result->refused.ok()) return reply.fail(result->refused);
        reply.ok();
        if (result->moved_to == 0) return;
        json::object receipt{{"type", "receipt"},
                             {"conversation", conversation},
                             {"user_id", user_id},
                             {"status", status},
                             {"seq", result->moved_to}};
        const Frame frame = make_frame(receipt);
        auto& gateway = host_.gateway();
        gateway.deliver_many(result->senders, frame);
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
  const auto target = target_of(conversation, request.user_id);
  const std::int64_t me = *parse_user_id(request.user_id);
  const std::int64_t peer =
      target.group != 0 ? 0 : *parse_user_id(peer_of(target.direct, request.user_id));

  struct Result {
    Status refused;
    json::array messages;
    bool more = false;  // cut short by the byte budget
  };
  auto result = std::make_shared<Result>();
  db_.run(
      [=](pqxx::connection& conn) {
        *result = Result{};  // the pool may run this twice (a dead connection)
        pqxx::read_transaction tx(conn);
        std::optional<std::int64_t> upto;  // a former member reads up to their removal
        if (target.group != 0) {
          const auto access = group_access(tx, conversation, me);
          result->refused = access.to_read();
          if (!result->refused.ok()) return;
          upto = access.left_seq;
        }
        struct Marks {
          std::int64_t delivered = 0, read = 0, joined = 0;
          bool current = true;
        };
        std::map<std::int64_t, Marks> marks;
        for (const auto& row :
             tx.exec_params("SELECT user_id, delivered_seq, read_seq, joined_seq, left_seq IS NULL"
                            " FROM participants WHERE conversation = $1",
                            conversation)) {
          marks[row[0].as<std::int64_t>()] = {row[1].as<std::int64_t>(), row[2].as<std::int64_t>(),
                                              row[3].as<std::int64_t>(), row[4].as<bool>()};
        }
        auto rows = tx.exec_params("SELECT " + message_columns("m") +
                                       " FROM messages m WHERE m.conversation = $1"
                                       " AND ($2::bigint IS NULL OR m.seq < $2)"
                                       " AND ($4::bigint IS NULL OR m.seq <= $4)"
                                       " ORDER BY m.seq DESC LIMIT $3",
                                   conversation, before, limit, upto);
        // Newest first until the byte budget; the page is then returned in
        // ascending order, its oldest messages left for the next page.
        std::vector<json::object> newest_first;
        std::size_t bytes = 0;
        for (const auto& row : rows) {
          const auto m = read_message(row);
          json::object object;
          if (target.group == 0) {
            // The sender sees the peer's progress; the reader sees their own.
            const auto& mark = marks[m.sender_id == me ? peer : me];
            object = message_object(m, status_for(m.seq, mark.delivered, mark.read));
          } else {
            // The members who had the message: current, other than its
            // sender, and there when it was written.
            std::int64_t others = 0, delivered_by = 0, read_by = 0;
            for (const auto& [user, mark] : marks) {
              if (user == m.sender_id || !mark.current || mark.joined > m.seq) continue;
              ++others;
              if (mark.delivered >= m.seq) ++delivered_by;
              if (mark.read >= m.seq) ++read_by;
            }
            const auto& mine = marks[me];
            object =
                message_object(m, m.sender_id == me ? group_status(others, delivered_by, read_by)
                                                    : status_for(m.seq, mine.delivered, mine.read));
            object["read_by"] = read_by;
          }
          bytes += json::serialize(object).size();
          if (!newest_first.empty() && bytes > kReplyBudgetBytes) {
            result->more = true;
            break;
          }
          newest_first.push_back(std::move(object));
        }
        if (rows.empty() && target.group == 0) {
          result->refused = direct_peer_exists(tx, peer);
          if (!result->refused.ok()) return;
        }
        for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
          result->messages.push_back(std::move(*it));
        }
      },
      [=](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (!result->refused.ok()) return reply.fail(result->refused);
        json::object page{{"messages", std::move(result->messages)}};
        if (result->more) page["more"] = true;
        reply.ok(std::move(page));
      });
}

void Chat::on_conversations(Request request, Reply reply) {
  const std::int64_t me = *parse_user_id(request.user_id);
  auto limit = optional_int(request.fields, "limit").value_or(kDefaultConversations);
  if (limit < 1) throw Failure(ErrorCode::bad_request, "'limit' must be at least 1");
  limit = std::min(limit, kMaxConversations);
  // The cursor is where the previous page stopped: the last activity (as
  // PostgreSQL printed it) and the conversation id, newest first.
  std::optional<std::string> after_activity;
  std::optional<std::string> after_conversation;
  if (const auto cursor = optional_string(request.fields, "cursor")) {
    const auto bar = cursor->find('|');
    // The activity part is PostgreSQL's text of a timestamptz
    // ("2024-09-13 18:56:02.41+00"): checked here, so that a forged one is
    // a bad_request, not a failed statement in both servers' logs.
    const auto activity = cursor->substr(0, std::min(bar, cursor->size()));
    const bool timestamp_like =
        activity.size() >= 19 && activity.size() <= 40 &&
        activity.find_first_not_of("0123456789-:. +") == std::string_view::npos &&
        activity.find_first_not_of("0123456789") == 4 && activity[4] == '-';
    if (bar == std::string_view::npos || !timestamp_like || bar + 1 == cursor->size()) {
      throw Failure(ErrorCode::bad_request, "'cursor' is not a cursor this server gave");
    }
    after_activity = std::string(cursor->substr(0, bar));
    after_conversation = std::string(cursor->substr(bar + 1));
  }
  struct Page {
    json::array list;
    std::string next_cursor;  // empty: no more
    bool bad_cursor = false;  // shaped like a timestamp, but none (a 13th month)
  };
  auto page = std::make_shared<Page>();
  db_.run(
      [=](pqxx::connection& conn) {
        *page = Page{};  // the pool may run this twice (a dead connection)
        auto* list = &page->list;
        pqxx::read_transaction tx(conn);
        // A group's peers are its other current members; a former member
        // sees the group as it was up to their removal.
        pqxx::result rows;
        try {
          rows = tx.exec_params(
              "SELECT p.conversation, p.delivered_seq, p.read_seq,"
              // least() skips a NULL left_seq: only a former member's is capped.
              " least((SELECT min(q.read_seq) FROM participants q"
              "   WHERE q.conversation = p.conversation AND q.user_id <> $1"
              "   AND q.left_seq IS NULL), p.left_seq),"
              " least((SELECT min(q.delivered_seq) FROM participants q"
              "   WHERE q.conversation = p.conversation AND q.user_id <> $1"
              "   AND q.left_seq IS NULL), p.left_seq), " +
                  std::string(queries::kConversationsUnread) + ", " + message_columns("m") +
                  ", r.others, r.delivered_by, r.read_by, p.last_activity::text" +
                  std::string(queries::kConversationsPage),
              me, after_activity, after_conversation, limit + 1, queries::kUnreadWindow);
        } catch (const pqxx::data_exception&) {
          page->bad_cursor = true;
          return;
        }
        std::size_t bytes = 0;
        std::string last_cursor;  // of the last entry in the page
        for (const auto& row : rows) {
          if (static_cast<std::int64_t>(list->size()) == limit) {
            page->next_cursor = last_cursor;
            break;
          }
          const auto delivered = row[1].as<std::int64_t>();
          const auto read = row[2].as<std::int64_t>();
          const auto peer_read = row[3].is_null() ? 0 : row[3].as<std::int64_t>();
          const auto peer_delivered = row[4].is_null() ? 0 : row[4].as<std::int64_t>();
          json::object entry{{"conversation", row[0].as<std::string>()},
                             {"unread", row[5].as<std::int64_t>()},
                             {"read_seq", read},
                             {"peer_read_seq", peer_read}};
          if (row[6].as<bool>()) entry["unread_capped"] = true;
          if (row[7].is_null()) {
            entry["last_message"] = nullptr;
          } else {
            const auto m = read_message(row, 7);
            std::string_view status = status_for(m.seq, delivered, read);
            if (m.sender_id == me) {
              status = m.group_id
                           ? group_status(row[16].as<std::int64_t>(), row[17].as<std::int64_t>(),
                                          row[18].as<std::int64_t>())
                           : status_for(m.seq, peer_delivered, peer_read);
            }
            auto object = message_object(m, status);
            if (m.group_id) object["read_by"] = row[18].as<std::int64_t>();
            entry["last_message"] = std::move(object);
          }
          bytes += json::serialize(entry).size();
          if (!list->empty() && bytes > kReplyBudgetBytes) {
            page->next_cursor = last_cursor;
            break;
          }
          last_cursor = row[19].as<std::string>() + "|" + row[0].as<std::string>();
          list->push_back(std::move(entry));
        }
      },
      [=](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (page->bad_cursor) {
          return reply.error(ErrorCode::bad_request, "'cursor' is not a cursor this server gave");
        }
        json::object result{{"conversations", std::move(page->list)}};
        if (!page->next_cursor.empty()) result["next_cursor"] = page->next_cursor;
        reply.ok(std::move(result));
      });
}

void Chat::on_typing(Request request, Reply reply) {
  const std::string conversation(required_string(request.fields, "conversation"));
  const auto target = target_of(conversation, request.user_id);
  const Frame frame = make_frame(json::object{
      {"type", "typing"}, {"conversation", conversation}, {"user_id", request.user_id}});
  if (target.group == 0) {
    // Only to someone the typer has exchanged a message with: a stranger
    // is not sent typing events (answered ok all the same, as typing to a
    // user who does not exist, so it tells nothing).
    const std::string peer = peer_of(target.direct, request.user_id);
    switch (typing_reach(conversation)) {
      case Reach::peer:
        host_.gateway().deliver(peer, frame);
        return reply.ok();
      case Reach::nobody:
        return reply.ok();
      case Reach::unknown:
        break;
    }
    auto talked = std::make_shared<bool>(false);
    return db_.run(
        [=](pqxx::connection& conn) {
          pqxx::read_transaction tx(conn);
          const auto rows = tx.exec_params(
              "SELECT 1 FROM conversations WHERE id = $1 AND last_seq > 0", conversation);
          *talked = !rows.empty();
        },
        [=, this](const Status& status) {
          if (!status.ok()) return reply.fail(status);
          remember_reach(conversation, *talked);
          if (*talked) host_.gateway().deliver(peer, frame);
          reply.ok();
        });
  }
  const std::int64_t me = *parse_user_id(request.user_id);
  struct Result {
    Status refused;
    std::vector<std::string> others;
  };
  auto result = std::make_shared<Result>();
  db_.run(
      [=](pqxx::connection& conn) {
        *result = Result{};  // the pool may run this twice (a dead connection)
        pqxx::read_transaction tx(conn);
        result->refused = group_access(tx, conversation, me).to_write();
        if (!result->refused.ok()) return;
        for (const auto& row : tx.exec_params("SELECT user_id FROM participants WHERE conversation "
                                              "= $1 AND left_seq IS NULL AND user_id <> $2",
                                              conversation, me)) {
          result->others.push_back(row[0].as<std::string>());
        }
      },
      [=, this](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (!result->refused.ok()) return reply.fail(result->refused);
        host_.gateway().deliver_many(result->others, frame);
        reply.ok();
      });
}

Chat::Reach Chat::typing_reach(const std::string& direct_conversation) {
  const std::lock_guard lock(reach_mutex_);
  if (talked_.contains(direct_conversation)) return Reach::peer;
  const auto quiet = quiet_until_.find(direct_conversation);
  if (quiet == quiet_until_.end()) return Reach::unknown;
  if (std::chrono::steady_clock::now() < quiet->second) return Reach::nobody;
  quiet_until_.erase(quiet);
  quiet_entries_.store(quiet_until_.size(), std::memory_order_relaxed);
  return Reach::unknown;
}

void Chat::remember_reach(const std::string& direct_conversation, bool holds_a_message) {
  // Bounded: forgetting costs one lookup at the next typing.
  constexpr std::size_t kMaxRemembered = 100000;
  // A stranger's typing is looked up at most this often per conversation,
  // however fast it comes (a send there ends the wait).
  constexpr auto kQuiet = std::chrono::seconds(5);
  const std::lock_guard lock(reach_mutex_);
  if (holds_a_message) {
    if (talked_.size() >= kMaxRemembered) talked_.clear();
    talked_.insert(direct_conversation);
    quiet_until_.erase(direct_conversation);
  } else {
    if (quiet_until_.size() >= kMaxRemembered) quiet_until_.clear();
    quiet_until_[direct_conversation] = std::chrono::steady_clock::now() + kQuiet;
  }
  quiet_entries_.store(quiet_until_.size(), std::memory_order_relaxed);
}

void Chat::user_maybe_offline(const std::string& user_id) {
  if (host_.gateway().is_connected(user_id)) return;
  const auto me = parse_user_id(user_id);
  if (!me) return;
  db_.run(
      [id = *me](pqxx::connection& conn) {
        pqxx::work tx(conn);
        tx.exec("SET LOCAL synchronous_commit = off");  // see CatchUp::start
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
