// Who is online, decided from connection and activity facts and the clock,
// with no I/O: the plugin feeds it kernel events and ticks it at
// next_deadline(); tests drive it with a manual clock.
//
// A user is online while they are connected (or within the grace period
// after their last connection went away) and their last activity is less
// than `offline_after` old. Every call returns the transitions it caused.
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <parley/clock.hpp>

namespace parley::presence {

using TimePoint = std::chrono::system_clock::time_point;

struct Timing {
  std::chrono::milliseconds offline_after{std::chrono::seconds(300)};
  std::chrono::milliseconds grace{std::chrono::seconds(10)};
};

struct Transition {
  std::string user_id;
  bool online = false;
  std::optional<TimePoint> last_active;
};

class PresenceState {
 public:
  PresenceState(const Clock& clock, Timing timing) : clock_(clock), timing_(timing) {}

  // Whether the user holds a connection now (the gateway is the truth;
  // events only say when to look). `last_active` is the gateway's own
  // record of the user's last frame, if it has one.
  std::vector<Transition> set_connected(const std::string& user_id, bool connected,
                                        std::optional<TimePoint> last_active);
  // The user sent a frame at `at`; `connected` as in set_connected.
  std::vector<Transition> activity(const std::string& user_id, TimePoint at, bool connected);
  // Applies every deadline that has passed (silence, end of grace).
  std::vector<Transition> tick();
  // When tick() next has something to do, if ever.
  std::optional<TimePoint> next_deadline() const;

  bool online(const std::string& user_id) const;
  std::optional<TimePoint> last_active(const std::string& user_id) const;
  // Whether last_active is known for the user: seen here or loaded.
  bool known(const std::string& user_id) const;
  // A last_active read from storage; the newer of it and what is in memory wins.
  void load(const std::string& user_id, std::optional<TimePoint> stored);

  // The last_active values changed since the previous call, for storage.
  std::vector<std::pair<std::string, TimePoint>> take_changed();
  // Puts back values whose write failed, unless newer ones arrived meanwhile.
  void restore_changed(const std::vector<std::pair<std::string, TimePoint>>& values);

 private:
  struct User {
    bool connected = false;
    bool online = false;
    std::optional<TimePoint> last_active;
    std::optional<TimePoint> grace_until;
    // The entry of this user in deadlines_, if any.
    std::optional<TimePoint> deadline;
    // last_active differs from what storage last got.
    bool changed = false;
    // Storage was asked for last_active (it may have had none).
    bool loaded = false;
  };

  // Recomputes whether the user is online and their next deadline.
  void settle(const std::string& user_id, User& user, TimePoint now, std::vector<Transition>& out);
  void note_activity(const std::string& user_id, User& user, TimePoint at);
  void note_connected(User& user, bool connected, TimePoint now) const;

  const Clock& clock_;
  Timing timing_;
  std::unordered_map<std::string, User> users_;
  std::set<std::pair<TimePoint, std::string>> deadlines_;
  std::vector<std::string> changed_;
};

}  // namespace parley::presence
