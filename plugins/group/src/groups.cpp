#include "groups.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <unordered_set>

#include <fmt/format.h>

#include <parley/fields.hpp>
#include <parley/sql_arrays.hpp>

namespace parley::group {

namespace json = boost::json;
using fields::optional_int;
using fields::optional_string;
using fields::required_string;
using sql::bigint_array;

namespace {

// Groups per group.list reply by default and at most: with the default
// max_groups_per_user, one page holds all of a user's groups, as the
// unpaged reply did.
constexpr std::int64_t kGroupsPage = 1000;
// What the entries of one group.list reply may add up to (their JSON), as
// session's history and conversations pages: past it the page is cut short.
constexpr std::size_t kReplyBudgetBytes = 1 << 20;
constexpr std::string_view kTooManyGroups = "max_groups_per_user";
constexpr std::string_view kAddsRestricted = "adds_restricted";

// An id as the protocol writes it ("42"); nullopt for anything that cannot be one.
std::optional<std::int64_t> parse_id(std::string_view text) {
  if (text.empty() || text.size() > 18 || text[0] == '0') return std::nullopt;
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

std::int64_t group_id_of(const json::object& fields) {
  const auto id = parse_id(required_string(fields, "group_id"));
  if (!id) throw Failure(ErrorCode::not_found, "no such group");
  return *id;
}

std::size_t utf8_length(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

json::array id_strings(const std::vector<std::int64_t>& ids) {
  json::array out;
  out.reserve(ids.size());
  for (const auto id : ids) out.push_back(json::string(std::to_string(id)));
  return out;
}

// The `members` field: user ids in the order listed, duplicates and `skip`
// dropped. An id that cannot be a user's is not_found, like an unknown user.
// Missing or null is no one where the field is optional (create), else a
// bad_request: an add or remove that names no one is a client's mistake.
std::vector<std::int64_t> members_of(const json::object& fields, std::int64_t skip, bool required) {
  std::vector<std::int64_t> members;
  const auto* value = fields.if_contains("members");
  if (value == nullptr || value->is_null()) {
    if (required) throw Failure(ErrorCode::bad_request, "'members' is required");
    return members;
  }
  if (!value->is_array()) throw Failure(ErrorCode::bad_request, "'members' must be a list of ids");
  std::unordered_set<std::int64_t> seen{skip};
  for (const auto& item : value->as_array()) {
    if (!item.is_string()) throw Failure(ErrorCode::bad_request, "'members' must be a list of ids");
    const auto id = parse_id(item.as_string());
    if (!id) throw Failure(ErrorCode::not_found, "no such user: " + std::string(item.as_string()));
    if (seen.insert(*id).second) members.push_back(*id);
  }
  return members;
}

// A group name is shown to every member and copied into system messages
// ("Alice added Bob to ..."), so it follows the rule of user names: no
// control characters, no bidirectional embedding, override or isolate
// (U+202A-U+202E, U+2066-U+2069, which could make a name reorder the text
// around it), and not only spaces.
void check_display_text(std::string_view text, std::string_view field) {
  const auto refuse = [&](std::string_view why) {
    throw Failure(ErrorCode::bad_request, "'" + std::string(field) + "' " + std::string(why));
  };
  bool blank = true;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) refuse("must not contain control characters");
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      refuse("must not contain control characters");  // C1: U+0080-U+009F
    }
    if (c == 0xe2 && i + 2 < text.size()) {
      const auto b1 = static_cast<unsigned char>(text[i + 1]);
      const auto b2 = static_cast<unsigned char>(text[i + 2]);
      if ((b1 == 0x80 && b2 >= 0xaa && b2 <= 0xae) || (b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9)) {
        refuse("must not contain bidirectional formatting characters");
      }
    }
    if (c != ' ') blank = false;
  }
  if (blank) refuse("must not be blank");
}

std::string group_name_of(const json::object& fields, std::size_t max_length) {
  std::string name(required_string(fields, "name"));
  if (name.empty()) throw Failure(ErrorCode::bad_request, "'name' must not be empty");
  check_display_text(name, "name");
  if (utf8_length(name) > max_length) {
    throw Failure(ErrorCode::bad_request,
                  "'name' is longer than " + std::to_string(max_length) + " characters");
  }
  return name;
}

// A system message's text names people as {<user id>}, and the group as
// {title}: session_group_change() writes their names in (see its migration).
std::string name_of(std::int64_t user) {
  return fmt::format("{{{}}}", user);
}

// "{1}", "{1} and {2}", "{1}, {2} and {3}", "{1}, ..., {5} and 7 others" (users is not empty).
std::string names_of(const std::vector<std::int64_t>& users) {
  constexpr std::size_t kNamed = 5;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < users.size() && i < kNamed; ++i) names.push_back(name_of(users[i]));
  std::string last;
  if (users.size() > kNamed) {
    last = fmt::format("{} others", users.size() - kNamed);
  } else {
    last = names.back();
    names.pop_back();
  }
  if (names.empty()) return last;
  return fmt::format("{} and {}", fmt::join(names, ", "), last);
}

// Locks the group's row: every change of one group runs after the one
// before, so counts read below hold until commit. Empty for an unknown or
// ended group.
std::optional<std::string> lock_group(pqxx::work& tx, std::int64_t group) {
  const auto rows = tx.exec_params(
      "SELECT name FROM groups WHERE id = $1 AND ended_at IS NULL FOR UPDATE", group);
  if (rows.empty()) return std::nullopt;
  return rows[0][0].as<std::string>();
}

std::optional<std::string> role_of(pqxx::work& tx, std::int64_t group, std::int64_t user) {
  const auto rows = tx.exec_params(
      "SELECT role FROM group_members WHERE group_id = $1 AND user_id = $2", group, user);
  if (rows.empty()) return std::nullopt;
  return rows[0][0].as<std::string>();
}

// Writes the change into the group's conversation through session's
// session_group_change() (the system message and the delivery list, at one
// seq, in this transaction) and reads the members it leaves.
Groups::Applied record(pqxx::work& tx, std::int64_t group, const std::string& name,
                       std::string change, std::int64_t by, std::vector<std::int64_t> user_ids,
                       std::string text, const std::vector<std::int64_t>& added,
                       const std::vector<std::int64_t>& removed) {
  Groups::Applied applied;
  const auto row = tx.exec_params1(
      "SELECT message_id, seq,"
      " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), body"
      " FROM session_group_change($1, $2, $3, $4, $5::bigint[], $6::bigint[])",
      group, name, by, text, bigint_array(added), bigint_array(removed));
  applied.message_id = row[0].as<std::int64_t>();
  applied.seq = row[1].as<std::int64_t>();
  applied.timestamp = row[2].as<std::string>();
  applied.text = row[3].as<std::string>();
  applied.change = std::move(change);
  applied.by = by;
  applied.user_ids = std::move(user_ids);
  applied.departed = removed;
  for (const auto& member : tx.exec_params(
           "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY join_order", group)) {
    applied.members.push_back(member[0].as<std::int64_t>());
  }
  return applied;
}

// Adds `users` after the group's current members, in the order given.
void insert_members(pqxx::work& tx, std::int64_t group, const std::vector<std::int64_t>& users,
                    std::string_view first_role) {
  tx.exec_params(
      "INSERT INTO group_members (group_id, user_id, role, join_order)"
      " SELECT $1, v.u, CASE WHEN v.o = 1 THEN $3 ELSE 'member' END,"
      "  (SELECT coalesce(max(join_order), 0) FROM group_members WHERE group_id = $1) + v.o"
      " FROM unnest($2::bigint[]) WITH ORDINALITY AS v(u, o)",
      group, bigint_array(users), std::string(first_role));
}

void refuse(Groups::Outcome& outcome, ErrorCode code, std::string message) {
  outcome.refused = Status(code, std::move(message));
}

std::vector<std::int64_t> sorted(std::vector<std::int64_t> users) {
  std::sort(users.begin(), users.end());
  return users;
}

// Counts one more group for each of `users` who join one. Their rows are
// locked in user id order, so concurrent changes cannot deadlock, and
// held to commit, so concurrent joins of one user are counted one after
// another. Refuses the whole change (too_large) when one of them would be
// in more than `max_groups` groups.
void count_joins(pqxx::work& tx, const std::vector<std::int64_t>& users, std::int64_t me,
                 std::int64_t max_groups, Groups::Outcome& outcome) {
  std::vector<std::int64_t> over;
  for (const auto& row : tx.exec_params("INSERT INTO group_counts AS c (user_id, groups)"
                                        " SELECT u, 1 FROM unnest($1::bigint[]) AS u ORDER BY u"
                                        " ON CONFLICT (user_id) DO UPDATE SET groups = c.groups + 1"
                                        " RETURNING user_id, groups",
                                        bigint_array(sorted(users)))) {
    if (row[1].as<std::int64_t>() > max_groups) over.push_back(row[0].as<std::int64_t>());
  }
  if (over.empty()) return;
  const std::string limit = " (at most " + std::to_string(max_groups) + ")";
  const bool mine = std::find(over.begin(), over.end(), me) != over.end();
  outcome.refused = Status(
      ErrorCode::too_large,
      mine ? "you are in as many groups as one may be" + limit
           : fmt::format("in as many groups as one may be{}: {}", limit, fmt::join(over, ", ")),
      std::string(kTooManyGroups));
}

// Counts one group less for each of `users` who left one (removed or leaving).
void count_departures(pqxx::work& tx, const std::vector<std::int64_t>& users) {
  tx.exec_params(
      // Never below 0: a count that drifted (a member added by a server of
      // an older version, which kept no counts) must not block leaving.
      "UPDATE group_counts c SET groups = greatest(c.groups - 1, 0)"
      " FROM (SELECT user_id FROM group_counts WHERE user_id = ANY($1::bigint[])"
      "   ORDER BY user_id FOR UPDATE) locked"
      " WHERE c.user_id = locked.user_id",
      bigint_array(users));
}

// Refuses the change (forbidden) when one of `users` lets only their
// contacts add them (group.privacy) and is not one of the actor's
// `contacts`: users who wrote to the actor themselves (session.contacts'
// `wrote`). A message the actor sent them does not count, or one
// unsolicited "hi" would undo the setting.
void check_adds_allowed(pqxx::work& tx, const std::vector<std::int64_t>& users,
                        const std::vector<std::int64_t>& contacts, Groups::Outcome& outcome) {
  std::vector<std::int64_t> refusing;
  for (const auto& row : tx.exec_params("SELECT p.user_id FROM group_add_policies p"
                                        " WHERE p.user_id = ANY($1::bigint[])"
                                        " AND p.adds = 'contacts'"
                                        " AND NOT p.user_id = ANY($2::bigint[])"
                                        " ORDER BY p.user_id",
                                        bigint_array(users), bigint_array(contacts))) {
    refusing.push_back(row[0].as<std::int64_t>());
  }
  if (refusing.empty()) return;
  outcome.refused = Status(
      ErrorCode::forbidden,
      fmt::format("only their contacts may add them to groups: {}", fmt::join(refusing, ", ")),
      std::string(kAddsRestricted));
}

// The start of every change: locks the group (lock_group) and reads the
// caller's role. Nothing, with `outcome` refused, for an unknown or ended
// group (not_found) or a caller who is not a member (forbidden).
struct Membership {
  std::string group_name;
  std::string role;
};
std::optional<Membership> lock_as_member(pqxx::work& tx, std::int64_t group, std::int64_t me,
                                         Groups::Outcome& outcome) {
  outcome.group_id = group;
  auto name = lock_group(tx, group);
  if (!name) {
    refuse(outcome, ErrorCode::not_found, "no such group");
    return std::nullopt;
  }
  auto role = role_of(tx, group, me);
  if (!role) {
    refuse(outcome, ErrorCode::forbidden, "not a member of this group");
    return std::nullopt;
  }
  return Membership{std::move(*name), std::move(*role)};
}

}  // namespace

Groups::Groups(Host& host, const Settings& settings)
    : host_(host),
      db_(*host.database()),
      settings_(settings),
      create_limiter_(settings.creates_per_user_per_hour, std::chrono::hours(1)) {}

void Groups::register_handlers(Gateway& gateway) {
  const RequestOptions options{.before_login = false, .nonblocking = true};
  const auto bind = [this](void (Groups::*handler)(Request, Reply)) {
    return [this, handler](Request r, Reply reply) {
      (this->*handler)(std::move(r), std::move(reply));
    };
  };
  gateway.handle("group.create", bind(&Groups::on_create), options);
  gateway.handle("group.add", bind(&Groups::on_add), options);
  gateway.handle("group.remove", bind(&Groups::on_remove), options);
  gateway.handle("group.leave", bind(&Groups::on_leave), options);
  gateway.handle("group.role", bind(&Groups::on_role), options);
  gateway.handle("group.info", bind(&Groups::on_info), options);
  gateway.handle("group.list", bind(&Groups::on_list), options);
  gateway.handle("group.privacy", bind(&Groups::on_privacy), options);
}

void Groups::serve() {
  host_.bus().serve("group.shared", [this](const json::value& payload, ServiceReply reply) {
    on_shared(payload, std::move(reply));
  });
}

void Groups::require_users(
    const std::string& actor, const std::vector<std::int64_t>& users, Reply reply,
    std::function<void(Reply reply, std::vector<std::int64_t> contacts)> then) {
  if (users.empty()) return then(std::move(reply), {});
  host_.bus().request(
      "session.contacts",
      json::object{{"user_id", actor}, {"others", id_strings(users)}, {"wrote", true}},
      settings_.contacts_timeout,
      [reply = std::move(reply), then = std::move(then)](Response response) mutable {
        if (!response.ok() || !response.value.is_object()) {
          return reply.error(ErrorCode::unavailable, "cannot check the members now");
        }
        const auto* unknown = response.value.as_object().if_contains("unknown");
        if (unknown && unknown->is_array() && !unknown->as_array().empty()) {
          std::string names;
          for (const auto& id : unknown->as_array()) {
            if (!names.empty()) names += ", ";
            names += id.is_string() ? std::string(id.as_string()) : json::serialize(id);
          }
          return reply.error(ErrorCode::not_found, "no such user: " + names);
        }
        std::vector<std::int64_t> contacts;
        if (const auto* wrote = response.value.as_object().if_contains("wrote");
            wrote && wrote->is_array()) {
          for (const auto& id : wrote->as_array()) {
            if (!id.is_string()) continue;
            if (const auto parsed = parse_id(id.as_string())) contacts.push_back(*parsed);
          }
        }
        then(std::move(reply), std::move(contacts));
      });
}

void Groups::change(Work work, Reply reply, bool with_group_id) {
  auto outcome = std::make_shared<Outcome>();
  db_.run(
      [this, work = std::move(work), outcome](pqxx::connection& conn) {
        *outcome = Outcome{};  // the pool may run this twice (a dead connection)
        pqxx::work tx(conn);
        work(tx, *outcome);
        if (!outcome->refused.ok()) return;
        if (outcome->applied.empty()) return tx.commit();
        const auto ticket = take_ticket();
        try {
          tx.commit();
        } catch (...) {
          announce_in_order(ticket, nullptr);
          throw;
        }
        outcome->ticket = ticket;
      },
      [this, outcome, reply = std::move(reply), with_group_id](const Status& status) {
        if (!status.ok()) {
          // Not expected after a commit, but a ticket never given back
          // would hold every later announcement.
          if (outcome->ticket) announce_in_order(*outcome->ticket, nullptr);
          return reply.fail(status);
        }
        if (!outcome->refused.ok()) return reply.fail(outcome->refused);
        json::object result;
        if (with_group_id) result["group_id"] = std::to_string(outcome->group_id);
        if (!outcome->ticket) return reply.ok(std::move(result));
        announce_in_order(*outcome->ticket, outcome, [reply, result = std::move(result)]() mutable {
          reply.ok(std::move(result));
        });
      });
}

std::uint64_t Groups::take_ticket() {
  std::lock_guard lock(announce_mutex_);
  return next_ticket_++;
}

void Groups::announce_in_order(std::uint64_t ticket, std::shared_ptr<const Outcome> outcome,
                               std::function<void()> answer) {
  {
    std::lock_guard lock(announce_mutex_);
    ready_.emplace(ticket, Ready{std::move(outcome), std::move(answer)});
    if (announcing_) return;
    announcing_ = true;
  }
  // Whoever finds the next ticket ready announces it, and the ones after it.
  while (true) {
    Ready next;
    {
      std::lock_guard lock(announce_mutex_);
      const auto it = ready_.find(next_to_announce_);
      if (it == ready_.end()) {
        announcing_ = false;
        return;
      }
      next = std::move(it->second);
      ready_.erase(it);
      ++next_to_announce_;
    }
    if (next.outcome) {
      for (const auto& applied : next.outcome->applied) announce(next.outcome->group_id, applied);
    }
    if (next.answer) next.answer();
  }
}

void Groups::announce(std::int64_t group_id, const Applied& applied) {
  const std::string group = std::to_string(group_id);
  const std::string by = std::to_string(applied.by);
  const Frame group_frame = make_frame(json::object{{"type", "group"},
                                                    {"group_id", group},
                                                    {"change", applied.change},
                                                    {"user_ids", id_strings(applied.user_ids)},
                                                    {"by", by}});
  // The same message session shows in history and at login (same dedupe key).
  const Frame message_frame =
      make_frame(json::object{{"type", "message"},
                              {"message_id", std::to_string(applied.message_id)},
                              {"conversation", "g:" + group},
                              {"seq", applied.seq},
                              {"sender_id", by},
                              {"group_id", group},
                              {"message", applied.text},
                              {"status", "sent"},
                              {"eventType", "system"},
                              {"timestamp", applied.timestamp}},
                 "m:" + std::to_string(applied.message_id));
  std::vector<std::string> audience;
  audience.reserve(applied.members.size() + applied.departed.size());
  for (const auto* users : {&applied.members, &applied.departed}) {
    for (const auto user : *users) audience.push_back(std::to_string(user));
  }
  auto& gateway = host_.gateway();
  gateway.deliver_many(audience, group_frame);
  gateway.deliver_many(audience, message_frame);
  host_.bus().publish("group.changed", json::object{{"group_id", group},
                                                    {"change", applied.change},
                                                    {"user_ids", id_strings(applied.user_ids)},
                                                    {"by", by},
                                                    {"seq", applied.seq},
                                                    {"members", id_strings(applied.members)}});
}

void Groups::on_create(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  std::string name = group_name_of(request.fields, settings_.max_name_length);
  const auto members = members_of(request.fields, me, false);
  if (static_cast<std::int64_t>(members.size()) + 1 > settings_.max_members) {
    throw Failure(ErrorCode::group_full,
                  "a group has at most " + std::to_string(settings_.max_members) + " members");
  }
  if (!create_limiter_.take(me, host_.clock().now())) {
    throw Failure(
        ErrorCode::rate_limited,
        "at most " + std::to_string(settings_.creates_per_user_per_hour) + " group.create an hour");
  }
  const std::int64_t max_groups = settings_.max_groups_per_user;
  require_users(
      request.user_id, members, std::move(reply),
      [this, me, name = std::move(name), members, max_groups](Reply checked,
                                                              std::vector<std::int64_t> contacts) {
        change(
            [me, name, members, max_groups, contacts](pqxx::work& tx, Outcome& outcome) {
              std::vector<std::int64_t> everyone{me};
              everyone.insert(everyone.end(), members.begin(), members.end());
              count_joins(tx, everyone, me, max_groups, outcome);
              if (!outcome.refused.ok()) return;
              // After count_joins: it holds the members' count rows, which a
              // group.privacy change locks too, so the setting read here
              // stays as it is until this commits.
              check_adds_allowed(tx, members, contacts, outcome);
              if (!outcome.refused.ok()) return;
              outcome.group_id =
                  tx.exec_params1(
                        "INSERT INTO groups (name, created_by) VALUES ($1, $2) RETURNING id", name,
                        me)[0]
                      .as<std::int64_t>();
              insert_members(tx, outcome.group_id, everyone, "owner");
              outcome.applied.push_back(record(tx, outcome.group_id, name, "created", me, everyone,
                                               name_of(me) + " created the group \"{title}\"",
                                               everyone, {}));
            },
            std::move(checked), true);
      });
}

void Groups::on_add(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  const std::int64_t group = group_id_of(request.fields);
  const auto members = members_of(request.fields, 0, true);
  const std::int64_t max_members = settings_.max_members;
  const std::int64_t max_groups = settings_.max_groups_per_user;
  require_users(
      request.user_id, members, std::move(reply),
      [this, me, group, members, max_members, max_groups](Reply checked,
                                                          std::vector<std::int64_t> contacts) {
        change(
            [me, group, members, max_members, max_groups, contacts](pqxx::work& tx,
                                                                    Outcome& outcome) {
              const auto membership = lock_as_member(tx, group, me, outcome);
              if (!membership) return;
              const std::string& name = membership->group_name;
              const std::string& role = membership->role;
              if (role == "member") {
                return refuse(outcome, ErrorCode::forbidden,
                              "only the owner and admins add members");
              }
              std::unordered_set<std::int64_t> present;
              for (const auto& row :
                   tx.exec_params("SELECT user_id FROM group_members WHERE group_id = $1", group)) {
                present.insert(row[0].as<std::int64_t>());
              }
              std::vector<std::int64_t> added;
              for (const auto user : members) {
                if (!present.contains(user)) added.push_back(user);
              }
              if (added.empty()) return;
              // Counted under the group's row lock: concurrent adds are
              // counted one after another.
              if (static_cast<std::int64_t>(present.size() + added.size()) > max_members) {
                return refuse(outcome, ErrorCode::group_full,
                              "a group has at most " + std::to_string(max_members) + " members");
              }
              count_joins(tx, added, me, max_groups, outcome);
              if (!outcome.refused.ok()) return;
              check_adds_allowed(tx, added, contacts, outcome);  // after count_joins, as in create
              if (!outcome.refused.ok()) return;
              insert_members(tx, group, added, "member");
              outcome.applied.push_back(record(tx, group, name, "added", me, added,
                                               name_of(me) + " added " + names_of(added), added,
                                               {}));
            },
            std::move(checked));
      });
}

void Groups::on_remove(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  const std::int64_t group = group_id_of(request.fields);
  const auto members = members_of(request.fields, 0, true);
  require_users(
      request.user_id, members, std::move(reply),
      [this, me, group, members](Reply checked, std::vector<std::int64_t> /*contacts*/) {
        change(
            [me, group, members](pqxx::work& tx, Outcome& outcome) {
              const auto membership = lock_as_member(tx, group, me, outcome);
              if (!membership) return;
              const std::string& name = membership->group_name;
              const std::string& role = membership->role;
              if (role == "member") {
                return refuse(outcome, ErrorCode::forbidden,
                              "only the owner and admins remove members");
              }
              std::map<std::int64_t, std::string> roles;
              for (const auto& row :
                   tx.exec_params("SELECT user_id, role FROM group_members WHERE group_id = $1"
                                  " AND user_id = ANY($2::bigint[])",
                                  group, bigint_array(members))) {
                roles[row[0].as<std::int64_t>()] = row[1].as<std::string>();
              }
              std::vector<std::int64_t> removed;
              for (const auto user : members) {
                const auto it = roles.find(user);
                if (it == roles.end()) continue;
                if (it->second == "owner") {
                  return refuse(outcome, ErrorCode::forbidden, "nobody removes the owner");
                }
                if (it->second == "admin" && role != "owner") {
                  return refuse(outcome, ErrorCode::forbidden, "only the owner removes admins");
                }
                removed.push_back(user);
              }
              if (removed.empty()) return;
              tx.exec_params(
                  "DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::bigint[])",
                  group, bigint_array(removed));
              count_departures(tx, removed);
              outcome.applied.push_back(record(tx, group, name, "removed", me, removed,
                                               name_of(me) + " removed " + names_of(removed), {},
                                               removed));
            },
            std::move(checked));
      });
}

void Groups::on_leave(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  const std::int64_t group = group_id_of(request.fields);
  change(
      [me, group](pqxx::work& tx, Outcome& outcome) {
        const auto membership = lock_as_member(tx, group, me, outcome);
        if (!membership) return;
        const std::string& name = membership->group_name;
        const std::string& role = membership->role;
        tx.exec_params("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2", group, me);
        count_departures(tx, {me});
        outcome.applied.push_back(
            record(tx, group, name, "left", me, {me}, name_of(me) + " left", {}, {me}));
        if (outcome.applied.back().members.empty()) {
          tx.exec_params("UPDATE groups SET ended_at = now() WHERE id = $1", group);
          return;
        }
        if (role != "owner") return;
        // The earliest admin, else the earliest member, takes over.
        const auto heir = tx.exec_params1(
                                "SELECT user_id FROM group_members WHERE group_id = $1"
                                " ORDER BY role <> 'admin', join_order LIMIT 1",
                                group)[0]
                              .as<std::int64_t>();
        tx.exec_params(
            "UPDATE group_members SET role = 'owner' WHERE group_id = $1 AND user_id = $2", group,
            heir);
        outcome.applied.push_back(record(tx, group, name, "role", me, {heir},
                                         name_of(heir) + " is now the owner", {}, {}));
      },
      std::move(reply));
}

void Groups::on_role(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  const std::int64_t group = group_id_of(request.fields);
  const std::string role(required_string(request.fields, "role"));
  if (role != "admin" && role != "member") {
    throw Failure(ErrorCode::bad_request, "'role' must be \"admin\" or \"member\"");
  }
  const auto target = parse_id(required_string(request.fields, "user_id"));
  if (!target) throw Failure(ErrorCode::not_found, "no such member");
  change(
      [me, group, role, user = *target](pqxx::work& tx, Outcome& outcome) {
        const auto membership = lock_as_member(tx, group, me, outcome);
        if (!membership) return;
        const std::string& name = membership->group_name;
        const std::string& mine = membership->role;
        if (mine != "owner") {
          return refuse(outcome, ErrorCode::forbidden, "only the owner changes roles");
        }
        if (user == me) {
          return refuse(outcome, ErrorCode::bad_request, "the owner's role cannot be changed");
        }
        const auto current = role_of(tx, group, user);
        if (!current) return refuse(outcome, ErrorCode::not_found, "not a member of this group");
        if (*current == role) return;
        tx.exec_params("UPDATE group_members SET role = $3 WHERE group_id = $1 AND user_id = $2",
                       group, user, role);
        outcome.applied.push_back(record(
            tx, group, name, "role", me, {user},
            name_of(me) + " made " + name_of(user) + (role == "admin" ? " an admin" : " a member"),
            {}, {}));
      },
      std::move(reply));
}

void Groups::on_info(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  const std::int64_t group = group_id_of(request.fields);
  struct Result {
    Status refused;
    std::string name;
    json::array members;
  };
  auto result = std::make_shared<Result>();
  db_.run(
      [=](pqxx::connection& conn) {
        *result = Result{};  // the pool may run this twice (a dead connection)
        pqxx::read_transaction tx(conn);
        const auto rows =
            tx.exec_params("SELECT name FROM groups WHERE id = $1 AND ended_at IS NULL", group);
        if (rows.empty()) {
          result->refused = Status(ErrorCode::not_found, "no such group");
          return;
        }
        result->name = rows[0][0].as<std::string>();
        bool member = false;
        for (const auto& row : tx.exec_params("SELECT user_id, role FROM group_members"
                                              " WHERE group_id = $1 ORDER BY join_order",
                                              group)) {
          member = member || row[0].as<std::int64_t>() == me;
          result->members.push_back(json::object{{"user_id", row[0].as<std::string>()},
                                                 {"role", row[1].as<std::string>()}});
        }
        if (!member) result->refused = Status(ErrorCode::forbidden, "not a member of this group");
      },
      [=, this](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (!result->refused.ok()) return reply.fail(result->refused);
        reply.ok({{"group_id", std::to_string(group)},
                  {"name", result->name},
                  {"members", std::move(result->members)},
                  {"max_members", settings_.max_members}});
      });
}

// group.privacy (an extension of protocol-v1): who may add the caller to
// groups, "anyone" (protocol-v1's rule, and the default) or "contacts".
// Without `adds` it answers the setting as it is.
void Groups::on_privacy(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  std::optional<std::string> adds;
  if (const auto value = optional_string(request.fields, "adds")) adds = std::string(*value);
  if (adds && *adds != "anyone" && *adds != "contacts") {
    throw Failure(ErrorCode::bad_request, "'adds' must be \"anyone\" or \"contacts\"");
  }
  auto current = std::make_shared<std::string>();
  db_.run(
      [me, adds, current](pqxx::connection& conn) {
        pqxx::work tx(conn);
        if (adds) {
          // The user's count row is locked first, as a create or add that
          // joins them locks it (count_joins) before reading this setting:
          // one that read the old setting commits before the reply here.
          tx.exec_params(
              "INSERT INTO group_counts AS c (user_id, groups) VALUES ($1, 0)"
              " ON CONFLICT (user_id) DO UPDATE SET groups = c.groups",
              me);
          tx.exec_params(
              "INSERT INTO group_add_policies (user_id, adds) VALUES ($1, $2)"
              " ON CONFLICT (user_id) DO UPDATE SET adds = EXCLUDED.adds",
              me, *adds);
          *current = *adds;
        } else {
          const auto rows =
              tx.exec_params("SELECT adds FROM group_add_policies WHERE user_id = $1", me);
          *current = rows.empty() ? "anyone" : rows[0][0].as<std::string>();
        }
        tx.commit();
      },
      [reply, current](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        reply.ok({{"adds", *current}});
      });
}

void Groups::on_list(Request request, Reply reply) {
  const std::int64_t me = *parse_id(request.user_id);
  auto limit = optional_int(request.fields, "limit").value_or(kGroupsPage);
  if (limit < 1) throw Failure(ErrorCode::bad_request, "'limit' must be at least 1");
  limit = std::min(limit, kGroupsPage);
  // The cursor is the id of the last group of the previous page.
  std::optional<std::int64_t> after;
  if (const auto cursor = optional_string(request.fields, "cursor")) {
    after = parse_id(*cursor);
    if (!after) throw Failure(ErrorCode::bad_request, "'cursor' is not a cursor this server gave");
  }
  struct Page {
    json::array groups;
    std::string next_cursor;  // empty: no more
  };
  auto page = std::make_shared<Page>();
  db_.run(
      [=](pqxx::connection& conn) {
        *page = Page{};  // the pool may run this twice (a dead connection)
        pqxx::read_transaction tx(conn);
        std::size_t bytes = 0;
        std::string last;  // the id of the page's last group
        for (const auto& row :
             tx.exec_params("SELECT g.id, g.name FROM group_members m"
                            " JOIN groups g ON g.id = m.group_id"
                            " WHERE m.user_id = $1 AND ($2::bigint IS NULL OR m.group_id > $2)"
                            " ORDER BY m.group_id LIMIT $3",
                            me, after, limit + 1)) {
          if (static_cast<std::int64_t>(page->groups.size()) == limit) {
            page->next_cursor = last;
            break;
          }
          json::object entry{{"group_id", row[0].as<std::string>()},
                             {"name", row[1].as<std::string>()}};
          bytes += json::serialize(entry).size();
          if (!page->groups.empty() && bytes > kReplyBudgetBytes) {
            page->next_cursor = last;
            break;
          }
          last = row[0].as<std::string>();
          page->groups.push_back(std::move(entry));
        }
      },
      [=](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        json::object result{{"groups", std::move(page->groups)}};
        if (!page->next_cursor.empty()) result["next_cursor"] = page->next_cursor;
        reply.ok(std::move(result));
      });
}

void Groups::on_shared(const json::value& payload, ServiceReply reply) {
  const auto* object = payload.if_object();
  const auto* user_field = object ? object->if_contains("user_id") : nullptr;
  const auto* others_field = object ? object->if_contains("others") : nullptr;
  const auto user =
      user_field && user_field->is_string() ? parse_id(user_field->as_string()) : std::nullopt;
  if (!user || !others_field || !others_field->is_array()) {
    return reply.error(ErrorCode::bad_request,
                       "group.shared takes {\"user_id\": id, \"others\": [ids]}");
  }
  std::vector<std::int64_t> others;
  for (const auto& other : others_field->as_array()) {
    if (!other.is_string()) {
      return reply.error(ErrorCode::bad_request, "group.shared: 'others' holds string ids");
    }
    // An id that cannot be a user's shares no group.
    if (const auto id = parse_id(other.as_string())) others.push_back(*id);
  }
  auto shared = std::make_shared<json::array>();
  db_.run(
      [shared, me = *user, others](pqxx::connection& conn) {
        shared->clear();  // the pool may run this twice (a dead connection)
        pqxx::read_transaction tx(conn);
        for (const auto& row : tx.exec_params(
                 "SELECT DISTINCT o.user_id FROM group_members mine JOIN group_members o"
                 " ON o.group_id = mine.group_id"
                 " WHERE mine.user_id = $1 AND o.user_id = ANY($2::bigint[]) AND o.user_id <> $1"
                 " ORDER BY o.user_id",
                 me, bigint_array(others))) {
          shared->push_back(json::string(row[0].as<std::string>()));
        }
      },
      [shared, reply](const Status& status) {
        if (!status.ok()) return reply.error(status.code(), status.message());
        reply.ok(json::object{{"shared", std::move(*shared)}});
      });
}

}  // namespace parley::group
