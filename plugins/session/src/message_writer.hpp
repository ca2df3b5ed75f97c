// The write path of `send`: requests from all connections are queued and
// written in batches (a handful of statements and one commit for up to
// write_batch_max messages), one batch at a time. While a batch commits the
// next one fills, so throughput grows with load while each `ok` still waits
// for its own commit.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <parley/sdk.hpp>

#include "wire.hpp"

namespace parley::session {

struct SendRequest {
  std::int64_t sender_id = 0;
  std::int64_t recipient_id = 0;  // 1:1 only
  std::int64_t group_id = 0;      // group only
  std::string conversation;
  std::string body;
  std::string client_msg_id;
  ConnectionId origin = 0;
  // Vetoed by a hook: answered with this, unless the client_msg_id is
  // already stored (a retry), which gets the stored message.
  std::optional<Status> refused;
};

class MessageWriter {
 public:
  // The current members of a group conversation, as read in the transaction
  // that gave the message its seq.
  using Members = std::shared_ptr<const std::vector<std::int64_t>>;
  // Called on a database thread after the batch holding `request` committed:
  // `created` is false when the client_msg_id had been stored before;
  // `members` is set for a new group message.
  using OnStored = std::function<void(const SendRequest& request, const StoredMessage& message,
                                      bool created, const Members& members)>;

  MessageWriter(Database& db, const Clock& clock, Metrics& metrics, std::size_t batch_max,
                std::size_t queue_max_bytes, OnStored on_stored);

  // Queues `request`; `reply` gets the ok (or not_found for an unknown
  // recipient or group, forbidden for a sender who is not a current member
  // of the group, or unavailable) once its batch is committed. A send that
  // would take the queue past queue_max_bytes is answered unavailable at
  // once: senders on many connections must not grow it without end while
  // the database falls behind.
  void submit(SendRequest request, Reply reply);

 private:
  struct Pending {
    SendRequest request;
    Reply reply;
    std::chrono::steady_clock::time_point queued_at;
    std::size_t bytes = 0;  // what it holds, counted against queue_max_bytes
  };
  struct Outcome {
    Status status;
    StoredMessage message;
    bool created = false;
    Members members;
  };
  // One batch, shared by its database job and the job's completion: the
  // pool may answer the completion (query_timeout_ms) while the job still
  // runs and reads the batch.
  struct Run {
    std::vector<Pending> batch;
    std::vector<Outcome> outcomes;
    std::mutex mutex;
    bool answered = false;   // the completion came: a job starting now does nothing
    bool started = false;    // a run of the job began (the pool may run it twice)
    bool finished = false;   // ... and ended
    bool abandoned = false;  // answered while the job still ran
  };

  // A send's idempotency key, viewing the request's client_msg_id.
  struct SendKey {
    std::int64_t sender_id;
    std::string_view client_msg_id;
    bool operator==(const SendKey&) const = default;
  };
  struct SendKeyHash {
    std::size_t operator()(const SendKey& key) const noexcept {
      return std::hash<std::string_view>()(key.client_msg_id) ^
             std::hash<std::int64_t>()(key.sender_id) * 0x9e3779b97f4a7c15ULL;
    }
  };
  // A batch's sends by what is to be done with them, each list in arrival order.
  struct Sorted {
    std::vector<std::size_t> fresh;    // to be stored
    std::vector<std::size_t> repeats;  // repeat the client_msg_id of a fresh one
    std::unordered_map<SendKey, std::size_t, SendKeyHash> first_in_batch;
  };

  // Takes the next batch off the queue and writes it; clears writing_ when
  // the queue is empty.
  void write_next_batch();
  // The job's completion: queues the batch's answers and starts the next
  // batch, unless the job still runs (see stalled_).
  void on_batch_done(const std::shared_ptr<Run>& run, const Status& status);
  // The job returned (or threw): resumes writing after a stall.
  void on_job_end(Run& run);
  // Without look_for_repeats_, a send repeating a stored client_msg_id makes
  // it throw (before anything is committed); with it, such a send gets the
  // stored message.
  void write_batch(pqxx::connection& conn, const std::vector<Pending>& batch,
                   std::vector<Outcome>& outcomes);
  // True when the batch holds only 1:1 sends, none vetoed, to recipients and
  // in conversations known to exist, and no repeat is expected.
  bool is_plain(const std::vector<Pending>& batch) const;
  // Writes a plain batch in one statement, committed on its own.
  void write_plain_batch(pqxx::connection& conn, const std::vector<Pending>& batch,
                         std::vector<Outcome>& outcomes);
  // Writes any batch in a transaction of several statements: checks
  // recipients, looks up stored client_msg_ids, locks group conversations,
  // adds the participants of new conversations.
  void write_checked_batch(pqxx::connection& conn, const std::vector<Pending>& batch,
                           std::vector<Outcome>& outcomes);
  // Sorts the sends that are neither refused nor in `stored` (their outcomes
  // are set here).
  Sorted sort_batch(const std::vector<Pending>& batch,
                    const std::map<std::pair<std::int64_t, std::string>, StoredMessage>& stored,
                    std::vector<Outcome>& outcomes) const;
  // Locks the counter rows of the batch's group conversations and reads
  // their current members; refuses the sends of non-members.
  void check_group_senders(pqxx::work& tx, const std::vector<Pending>& batch,
                           std::vector<std::size_t>& fresh, std::vector<Outcome>& outcomes);
  void finish_batch(Run& run, const Status& status);
  // Answers committed batches one at a time, in commit order, on whichever
  // database thread gets there first: live events keep their seq order.
  void deliver_in_order();

  Database& db_;
  const Clock& clock_;
  const std::size_t batch_max_;
  const std::size_t queue_max_bytes_;
  OnStored on_stored_;
  // Average batch size and time are these over the batch count.
  Counter& batches_;
  Counter& batched_messages_;
  Counter& batch_seconds_;
  Counter& queue_seconds_;
  Counter& single_statement_batches_;
  Counter& rewritten_batches_;
  Counter& stalls_;
  Counter& queue_full_;

  std::mutex mutex_;
  std::deque<Pending> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  // A batch outlived query_timeout_ms and its job still runs: its sends
  // were answered `unavailable`, and so are new ones at once, until it
  // ends. The next batch waits for it, so that batches stay one at a time
  // (order, and the caches below).
  bool stalled_ = false;

  struct Delivery {
    std::shared_ptr<Run> run;
    Status status;
  };
  std::mutex delivery_mutex_;
  std::deque<Delivery> deliveries_;
  bool delivering_ = false;

  // Only touched by the batch in flight (one at a time).
  std::unordered_set<std::int64_t> known_users_;
  std::unordered_set<std::string> known_conversations_;
  bool look_for_repeats_ = false;
};

}  // namespace parley::session
