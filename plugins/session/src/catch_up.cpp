#include "catch_up.hpp"

#include "queries.hpp"
#include "wire.hpp"

namespace parley::session {

namespace json = boost::json;

namespace {

// A page holds at most this many messages and, past the first message,
// this many bytes of frames: far below any sane max_queued_bytes.
constexpr std::int64_t kPageRows = 200;
constexpr std::size_t kPageBytes = 256 * 1024;

}  // namespace

struct CatchUp::Progress {
  std::string user_id;
  std::int64_t me = 0;
  ConnectionId connection = 0;
  std::int64_t cursor = 0;      // the id of the last message sent
  std::vector<Frame> receipts;  // sent after the last page, before synced
};

CatchUp::CatchUp(Host& host, std::function<void(const std::string&)> user_maybe_offline)
    : host_(host), db_(*host.database()), user_maybe_offline_(std::move(user_maybe_offline)) {}

bool CatchUp::read_page(pqxx::transaction_base& tx, Progress& progress, std::vector<Frame>& page) {
  // Per conversation of the user, its pending messages by the (conversation,
  // seq) index: the cost follows the user's own conversations and backlog,
  // never the size of the whole message table.
  const auto rows =
      tx.exec_params("SELECT " + message_columns("m") + std::string(queries::kPendingPage),
                     progress.me, progress.cursor, kPageRows);
  std::size_t bytes = 0;
  for (const auto& row : rows) {
    if (!page.empty() && bytes >= kPageBytes) return true;
    const auto m = read_message(row);
    page.push_back(message_event(m, "sent"));
    bytes += page.back().text->size();
    progress.cursor = m.id;
  }
  return static_cast<std::int64_t>(rows.size()) == kPageRows;
}

void CatchUp::start(const std::string& user_id, ConnectionId connection, bool had_connection,
                    json::object login_result, Reply reply) {
  auto progress = std::make_shared<Progress>();
  progress->user_id = user_id;
  progress->me = *parse_user_id(user_id);
  progress->connection = connection;
  auto page = std::make_shared<std::vector<Frame>>();
  auto more = std::make_shared<bool>(false);
  db_.run(
      [=](pqxx::connection& conn) {
        page->clear();  // the pool may run this twice (a dead connection)
        progress->receipts.clear();
        progress->cursor = 0;
        pqxx::work tx(conn);
        // This transaction only clears offline_since; losing that to a crash
        // re-sends a few receipts at worst, so it need not wait for a flush.
        tx.exec("SET LOCAL synchronous_commit = off");
        const auto since_row = tx.exec_params1(
            "SELECT coalesce(offline_since, now()) FROM users WHERE id = $1 FOR UPDATE",
            progress->me);
        const auto since = since_row[0].as<std::string>();
        tx.exec_params("UPDATE users SET offline_since = NULL WHERE id = $1", progress->me);
        *more = read_page(tx, *progress, *page);
        if (!had_connection) {
          for (const auto& row :
               tx.exec_params(std::string(queries::kMovedReceipts), progress->me, since)) {
            const auto conversation = row[0].as<std::string>();
            const auto reader = row[1].as<std::string>();
            auto receipt = [&](std::string_view status, std::int64_t seq) {
              progress->receipts.push_back(make_frame(json::object{{"type", "receipt"},
                                                                   {"conversation", conversation},
                                                                   {"user_id", reader},
                                                                   {"status", status},
                                                                   {"seq", seq}}));
            };
            if (row[4].as<bool>(false)) receipt("delivered", row[2].as<std::int64_t>());
            if (row[5].as<bool>(false)) receipt("read", row[3].as<std::int64_t>());
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
        if (!gateway.is_connected(user_id)) {
          // The connection closed during the login, maybe before its close
          // was handled: record the user offline again, or the next login
          // would find offline_since cleared and replay no receipts.
          user_maybe_offline_(user_id);
        }
        reply.ok(std::move(login_result));
        send_page(progress, std::move(*page), *more);
      });
}

void CatchUp::send_page(const std::shared_ptr<Progress>& progress, std::vector<Frame> page,
                        bool more) {
  auto& gateway = host_.gateway();
  for (auto& frame : page) gateway.send(progress->connection, std::move(frame));
  if (!more) {
    progress->receipts.push_back(make_frame(json::object{{"type", "synced"}}));
    gateway.release_events(progress->connection, std::move(progress->receipts));
    return;
  }
  gateway.when_written(progress->connection, [this, progress] { read_next_page(progress); });
}

void CatchUp::read_next_page(const std::shared_ptr<Progress>& progress) {
  auto page = std::make_shared<std::vector<Frame>>();
  auto more = std::make_shared<bool>(false);
  const std::int64_t from = progress->cursor;
  db_.run(
      [=](pqxx::connection& conn) {
        page->clear();
        progress->cursor = from;
        pqxx::read_transaction tx(conn);
        *more = read_page(tx, *progress, *page);
      },
      [=, this](const Status& status) {
        if (!status.ok()) {
          // The login was answered already: end it, so the client logs in again.
          host_.log().warn("catch-up of user {} failed: {}", progress->user_id, status.message());
          auto& gateway = host_.gateway();
          gateway.unbind_user(progress->connection);
          gateway.send(progress->connection, make_frame(json::object{{"type", "session_ended"},
                                                                     {"reason", "unavailable"}}));
          return;
        }
        send_page(progress, std::move(*page), *more);
      });
}

}  // namespace parley::session
