#include "push_offers.hpp"

#include <map>
#include <memory>

namespace parley::session {

namespace json = boost::json;

namespace {

// Unread messages counted per conversation at most: a badge says "many"
// beyond that, and the count stays an index range scan of bounded length.
constexpr int kMaxUnreadPerConversation = 1000;

struct Recipient {
  std::map<std::string, json::array> tokens_by_platform;
  std::int64_t badge = 0;
};

struct OfferData {
  std::string sender_name;
  std::string group_name;
  std::map<std::int64_t, Recipient> recipients;
};

}  // namespace

PushOffers::PushOffers(Host& host, const Settings& settings)
    : host_(host),
      db_(*host.database()),
      settings_(settings),
      offers_(host.metrics().counter(
          "push_offers_total",
          "push.offer.<platform> events published (one per user and platform)")) {}

void PushOffers::offer(const StoredMessage& message, std::vector<std::int64_t> recipients) {
  if (recipients.empty()) return;
  auto data = std::make_shared<OfferData>();
  db_.run(
      [message, recipients = std::move(recipients), data](pqxx::connection& conn) {
        *data = OfferData{};  // the pool may run this twice (a dead connection)
        pqxx::read_transaction tx(conn);
        const auto ids = bigint_array(recipients);
        for (const auto& row : tx.exec_params(
                 "SELECT user_id, platform, token FROM devices WHERE user_id = ANY($1::bigint[])"
                 " ORDER BY user_id, platform, registered_at",
                 ids)) {
          data->recipients[row[0].as<std::int64_t>()]
              .tokens_by_platform[row[1].as<std::string>()]
              .emplace_back(row[2].as<std::string>());
        }
        if (data->recipients.empty()) return;
        std::vector<std::int64_t> with_devices;
        for (const auto& [user, _] : data->recipients) with_devices.push_back(user);
        // The badge: per conversation with something unread (last_seq above
        // read_seq), the others' messages above read_seq, read through the
        // (conversation, seq) index and capped, never a count over all the
        // user's messages.
        for (const auto& row : tx.exec_params(
                 "SELECT p.user_id, sum(u.n)::bigint FROM participants p"
                 " JOIN conversations c ON c.id = p.conversation AND c.last_seq > p.read_seq"
                 " CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM messages m"
                 "   WHERE m.conversation = p.conversation AND m.seq > p.read_seq"
                 "   AND m.sender_id <> p.user_id"
                 "   AND (p.left_seq IS NULL OR m.seq <= p.left_seq) LIMIT $2) unread) u"
                 " WHERE p.user_id = ANY($1::bigint[]) GROUP BY p.user_id",
                 bigint_array(with_devices), kMaxUnreadPerConversation)) {
          data->recipients[row[0].as<std::int64_t>()].badge = row[1].as<std::int64_t>();
        }
        const auto name = tx.exec_params("SELECT name FROM users WHERE id = $1", message.sender_id);
        if (!name.empty()) data->sender_name = name[0][0].as<std::string>();
        if (message.group_id) {
          const auto title =
              tx.exec_params("SELECT title FROM conversations WHERE id = $1", message.conversation);
          if (!title.empty() && !title[0][0].is_null())
            data->group_name = title[0][0].as<std::string>();
        }
      },
      [this, message, data](const Status& status) {
        if (!status.ok()) {
          host_.log().warn("push for message {} not offered: {}", message.id, status.message());
          return;
        }
        const std::string text =
            settings_.push_show_content ? message.body : settings_.push_generic_text;
        // A group push is titled with the group's name and says who wrote.
        const std::string& title = message.group_id ? data->group_name : data->sender_name;
        const std::string body = message.group_id ? data->sender_name + ": " + text : text;
        for (auto& [user, recipient] : data->recipients) {
          for (auto& [platform, tokens] : recipient.tokens_by_platform) {
            json::object offer{{"user_id", std::to_string(user)},
                               {"tokens", std::move(tokens)},
                               {"title", title},
                               {"body", body},
                               {"badge", recipient.badge},
                               {"conversation", message.conversation},
                               {"message_id", std::to_string(message.id)}};
            if (message.group_id) offer["group_id"] = std::to_string(*message.group_id);
            offers_.add();
            host_.bus().publish("push.offer." + platform, std::move(offer));
          }
        }
      });
}

}  // namespace parley::session
