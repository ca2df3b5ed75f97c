// The login catch-up: a connection that logs in gets its user's pending
// messages, then the receipts that moved while the user had no connection,
// then "synced"; live events wait behind it (Gateway bind with hold_events).
//
// Pending messages are read and sent in pages, the next page only once the
// client has read the previous one (Gateway::when_written): any backlog the
// server accepted reaches a client that reads, however large, without
// counting against the connection's send-queue limit for slow readers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <parley/sdk.hpp>

namespace parley::session {

class CatchUp {
 public:
  // `user_maybe_offline` records that a user went offline when no
  // connection of theirs is left (the session's own bookkeeping).
  CatchUp(Host& host, std::function<void(const std::string&)> user_maybe_offline);

  // Runs the catch-up of `connection`, just bound to `user_id`; the login's
  // `reply` is answered ok (with `login_result`) before the first page. If
  // the first read fails, the connection is logged out again and the login
  // fails; a later page that fails ends the login with a session_ended event.
  void start(const std::string& user_id, ConnectionId connection, bool had_connection,
             boost::json::object login_result, Reply reply);

 private:
  struct Progress;
  // Reads the page of pending messages after `progress.cursor` into `page`;
  // returns whether more may follow.
  static bool read_page(pqxx::transaction_base& tx, Progress& progress, std::vector<Frame>& page);
  void send_page(const std::shared_ptr<Progress>& progress, std::vector<Frame> page, bool more);
  void read_next_page(const std::shared_ptr<Progress>& progress);

  Host& host_;
  Database& db_;
  std::function<void(const std::string&)> user_maybe_offline_;
};

}  // namespace parley::session
