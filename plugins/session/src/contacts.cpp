#include "contacts.hpp"

#include <memory>

#include "wire.hpp"

namespace parley::session {

namespace json = boost::json;

namespace {
// More ids than this in one question is a caller's bug, not a contact list.
constexpr std::size_t kMaxOthers = 100000;
// `wrote` looks at this many of a conversation's newest messages: a bounded
// read whatever the conversation's length (and what the other side has
// sent since, if long, counts more than an old reply).
constexpr int kWroteWindow = 1000;
}  // namespace

Contacts::Contacts(Host& host) : host_(host) {}

void Contacts::serve() {
  host_.bus().serve("session.contacts", [this](const json::value& payload, ServiceReply reply) {
    answer(payload, std::move(reply));
  });
}

void Contacts::answer(const json::value& payload, ServiceReply reply) {
  const auto* object = payload.if_object();
  const auto* user_field = object ? object->if_contains("user_id") : nullptr;
  const auto* others_field = object ? object->if_contains("others") : nullptr;
  if (!user_field || !user_field->is_string() || !others_field || !others_field->is_array() ||
      others_field->as_array().size() > kMaxOthers) {
    return reply.error(ErrorCode::bad_request,
                       "session.contacts takes {\"user_id\": id, \"others\": [ids]}");
  }
  const std::string user(user_field->as_string());
  const auto user_id = parse_user_id(user);
  const auto* wrote_field = object->if_contains("wrote");
  const bool ask_wrote = wrote_field && wrote_field->is_bool() && wrote_field->get_bool();
  // Ids that cannot be user ids are unknown without asking the database.
  auto unknown = std::make_shared<json::array>();
  std::vector<std::int64_t> ids;
  std::vector<std::string> conversations;
  for (const auto& other : others_field->as_array()) {
    if (!other.is_string()) {
      return reply.error(ErrorCode::bad_request, "session.contacts: 'others' holds string ids");
    }
    const std::string text(other.as_string());
    const auto id = parse_user_id(text);
    if (!id) {
      unknown->push_back(json::string(text));
      continue;
    }
    ids.push_back(*id);
    conversations.push_back(user_id && text != user ? direct_conversation(user, text) : "");
  }
  auto shared = std::make_shared<json::array>();
  auto wrote = std::make_shared<json::array>();
  const auto malformed = unknown->size();
  host_.database()->run(
      [=](pqxx::connection& conn) {
        unknown->resize(malformed);  // the pool may run this twice (a dead connection)
        shared->clear();
        wrote->clear();
        pqxx::read_transaction tx(conn);
        for (const auto& row : tx.exec_params(
                 "SELECT v.id::text, u.id IS NOT NULL, c.last_seq > 0,"
                 " $3 AND c.last_seq > 0 AND EXISTS (SELECT 1 FROM (SELECT m.sender_id"
                 "  FROM messages m WHERE m.conversation = v.conversation"
                 "  ORDER BY m.seq DESC LIMIT $4) recent WHERE recent.sender_id = v.id)"
                 " FROM unnest($1::bigint[], $2::text[]) AS v(id, conversation)"
                 " LEFT JOIN users u ON u.id = v.id"
                 " LEFT JOIN conversations c ON c.id = v.conversation",
                 bigint_array(ids), text_array(conversations), ask_wrote, kWroteWindow)) {
          if (!row[1].as<bool>()) {
            unknown->push_back(json::string(row[0].as<std::string>()));
            continue;
          }
          if (row[2].as<bool>(false)) shared->push_back(json::string(row[0].as<std::string>()));
          if (row[3].as<bool>(false)) wrote->push_back(json::string(row[0].as<std::string>()));
        }
      },
      [unknown, shared, wrote, ask_wrote, reply](const Status& status) {
        if (!status.ok()) return reply.error(status.code(), status.message());
        json::object answer{{"unknown", std::move(*unknown)}, {"shared", std::move(*shared)}};
        if (ask_wrote) answer["wrote"] = std::move(*wrote);
        reply.ok(std::move(answer));
      });
}

}  // namespace parley::session
