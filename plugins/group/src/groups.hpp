// The group.* requests, the group.shared service, and the events of a
// membership change. See plugins/group/README.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <parley/sdk.hpp>

#include "create_limiter.hpp"
#include "settings.hpp"

namespace parley::group {

class Groups {
 public:
  Groups(Host& host, const Settings& settings);

  void register_handlers(Gateway& gateway);
  // Serves group.shared on the bus.
  void serve();

  // One change as committed: its system message and who hears of it.
  struct Applied {
    std::string change;  // created, added, removed, left, role
    std::vector<std::int64_t> user_ids;
    std::int64_t by = 0;
    std::int64_t message_id = 0;
    std::int64_t seq = 0;
    std::string timestamp;
    std::string text;
    std::vector<std::int64_t> members;   // after the change, in join order
    std::vector<std::int64_t> departed;  // removed or leaving: told once more
  };
  // What a request's transaction did: refused (nothing changed), or the
  // changes it committed (none for a request that changed nothing).
  struct Outcome {
    Status refused;
    std::int64_t group_id = 0;
    std::vector<Applied> applied;
    // Its place in the order of announcements, taken just before commit.
    std::optional<std::uint64_t> ticket;
  };
  using Work = std::function<void(pqxx::work& tx, Outcome& outcome)>;

 private:
  void on_create(Request request, Reply reply);
  void on_add(Request request, Reply reply);
  void on_remove(Request request, Reply reply);
  void on_leave(Request request, Reply reply);
  void on_role(Request request, Reply reply);
  void on_info(Request request, Reply reply);
  void on_list(Request request, Reply reply);
  void on_privacy(Request request, Reply reply);
  void on_shared(const boost::json::value& payload, ServiceReply reply);

  // Asks session.contacts whether `users` exist; runs `then` with those of
  // them who have written to the actor in their 1:1 conversation when they
  // all do, else answers not_found (or unavailable).
  void require_users(const std::string& actor, const std::vector<std::int64_t>& users, Reply reply,
                     std::function<void(Reply reply, std::vector<std::int64_t> contacts)> then);
  // Runs `work` in one transaction; commits unless it refused. Then
  // announces every change and answers (with the group id when
  // `with_group_id`): the caller's next request, a send to the group for
  // one, comes after the change's system message at every member.
  void change(Work work, Reply reply, bool with_group_id = false);
  // Tickets order announcements as their transactions committed: one is
  // taken while the group's row lock is held, just before the commit, so
  // the changes of one group are announced in seq order. A ticket whose
  // commit failed is given back empty (nullptr).
  std::uint64_t take_ticket();
  // `answer` runs once the outcome is announced.
  void announce_in_order(std::uint64_t ticket, std::shared_ptr<const Outcome> outcome,
                         std::function<void()> answer = {});
  void announce(std::int64_t group_id, const Applied& applied);

  Host& host_;
  Database& db_;
  const Settings& settings_;
  CreateLimiter create_limiter_;

  std::mutex announce_mutex_;
  std::uint64_t next_ticket_ = 0;
  std::uint64_t next_to_announce_ = 0;
  struct Ready {
    std::shared_ptr<const Outcome> outcome;
    std::function<void()> answer;
  };
  std::map<std::uint64_t, Ready> ready_;
  bool announcing_ = false;
};

}  // namespace parley::group
