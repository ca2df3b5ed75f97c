#include "message_writer.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace parley::session {

namespace {
// Caches of ids known to exist are dropped past this size rather than grow forever.
constexpr std::size_t kMaxCached = 1'000'000;
// A batch that meets a stored client_msg_id, or a uniqueness race (another
// server storing the same one), is written again; the retry finds the row.
constexpr int kAttempts = 3;

// What sends get while a batch outlives the database timeout (a stall).
Status stalled_status() {
  return Status(ErrorCode::unavailable, "the database did not answer in time");
}

// A batch written without looking for stored client_msg_ids met one.
struct RepeatFound : std::runtime_error {
  RepeatFound() : std::runtime_error("a send repeats a stored client_msg_id") {}
};

// The stored form of a fresh send.
template <class Outcome, class Request>
void fill_message(Outcome& outcome, const Request& r, std::int64_t seq, const std::string& now) {
  auto& message = outcome.message;
  message.conversation = r.conversation;
  message.seq = seq;
  message.sender_id = r.sender_id;
  if (r.group_id != 0) {
    message.group_id = r.group_id;
  } else {
    message.recipient_id = r.recipient_id;
  }
  message.body = r.body;
  message.timestamp = now;
  outcome.created = true;
}

// A send repeating the client_msg_id of one earlier in its batch gets that
// one's message, as a repeat (not delivered again).
template <class Pending, class Outcome, class FirstInBatch>
void answer_repeats(const std::vector<Pending>& batch, const std::vector<std::size_t>& repeats,
                    const FirstInBatch& first_in_batch, std::vector<Outcome>& outcomes) {
  for (std::size_t i : repeats) {
    const auto& r = batch[i].request;
    outcomes[i] = outcomes[first_in_batch.at({r.sender_id, r.client_msg_id})];
    outcomes[i].created = false;
    outcomes[i].members.reset();
  }
}
}  // namespace

MessageWriter::MessageWriter(Database& db, const Clock& clock, Metrics& metrics,
                             std::size_t batch_max, std::size_t queue_max_bytes, OnStored on_stored)
    : db_(db),
      clock_(clock),
      batch_max_(batch_max),
      queue_max_bytes_(queue_max_bytes),
      on_stored_(std::move(on_stored)),
      batches_(
          metrics.counter("write_batches_total", "Message batches written (one transaction each)")),
      batched_messages_(metrics.counter("write_batch_messages_total", "Sends written in batches")),
      batch_seconds_(metrics.counter("write_batch_seconds_total",
                                     "Time spent writing batches, commit included")),
      queue_seconds_(metrics.counter(
          "write_queue_seconds_total",
          "Time sends waited in the writer's queue for their batch to start, summed")),
      single_statement_batches_(metrics.counter(
          "write_batches_single_statement_total",
          "Batches of 1:1 sends to known users in known conversations, written in one statement")),
      rewritten_batches_(metrics.counter(
          "write_batches_rewritten_total",
          "Batches undone and written again because a send repeated a stored client_msg_id")),
      stalls_(metrics.counter("write_stalls_total",
                              "Batches answered unavailable at database.query_timeout_ms while "
                              "their statement still ran; sends were refused until it ended")),
      queue_full_(metrics.counter(
          "write_queue_full_total",
          "Sends refused unavailable because write_queue_max_bytes were waiting to be written")) {}

void MessageWriter::submit(SendRequest request, Reply reply) {
  const std::size_t bytes = sizeof(Pending) + request.conversation.size() + request.body.size() +
                            request.client_msg_id.size();
  bool stalled = false;
  bool full = false;
  bool start = false;
  {
    std::lock_guard lock(mutex_);
    stalled = stalled_;
    full = !stalled && queued_bytes_ + bytes > queue_max_bytes_;
    if (!stalled && !full) {
      queued_bytes_ += bytes;
      queue_.push_back(
          {std::move(request), std::move(reply), std::chrono::steady_clock::now(), bytes});
      start = !writing_;
      writing_ = true;
    }
  }
  if (stalled) {
    return reply.fail(stalled_status());
  }
  if (full) {
    queue_full_.add();
    return reply.fail(
        Status(ErrorCode::unavailable, "too many messages are waiting to be written; retry later"));
  }
  if (start) write_next_batch();
}

void MessageWriter::write_next_batch() {
  auto run = std::make_shared<Run>();
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) {
      writing_ = false;
      return;
    }
    const std::size_t n = std::min(queue_.size(), batch_max_);
    run->batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      queued_bytes_ -= queue_.front().bytes;
      run->batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  // Not under the mutex: a refused job calls `done` on this thread.
  db_.run(
      [this, run](pqxx::connection& conn) {
        {
          // Answered already: the pool gave up on the job before this run
          // (it was connecting) or this is its second run after a broken
          // connection. The next batch may be running: touch nothing.
          std::lock_guard lock(run->mutex);
          if (run->answered) return;
          run->started = true;
          run->finished = false;
        }
        const auto started = std::chrono::steady_clock::now();
        double queued = 0;
        for (const auto& p : run->batch)
          queued += std::chrono::duration<double>(started - p.queued_at).count();
        queue_seconds_.add(queued);
        batches_.add();
        batched_messages_.add(static_cast<double>(run->batch.size()));
        // Most batches repeat no stored client_msg_id: they are written
        // without looking for one first, and one that does is written again,
        // looking. Retries come in waves (clients reconnecting), so the
        // batches after a rewrite look first, until one finds no repeat.
        try {
          for (int attempt = 1;; ++attempt) {
            try {
              write_batch(conn, run->batch, run->outcomes);
              batch_seconds_.add(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                      .count());
              break;
            } catch (const RepeatFound&) {
              if (attempt == kAttempts) throw;
              rewritten_batches_.add();
              look_for_repeats_ = true;
            } catch (const pqxx::unique_violation&) {
              if (attempt == kAttempts) throw;
            }
          }
        } catch (...) {
          on_job_end(*run);
          throw;
        }
        on_job_end(*run);
      },
      [this, run](const Status& status) { on_batch_done(run, status); });
}

void MessageWriter::on_batch_done(const std::shared_ptr<Run>& run, const Status& status) {
  // The run's lock orders this against the job's start and end: a stall
  // begins before it ends, and this batch's answers are queued before a
  // batch the end starts can queue its own. (Lock order: a run's mutex,
  // then mutex_ or delivery_mutex_.)
  bool still_running = false;
  std::deque<Pending> refused;
  {
    std::lock_guard lock(run->mutex);
    run->answered = true;
    still_running = run->started && !run->finished;
    if (still_running) {
      stalls_.add();
      run->abandoned = true;
      std::lock_guard queue_lock(mutex_);
      stalled_ = true;
      refused.swap(queue_);
      queued_bytes_ = 0;
    }
    std::lock_guard delivery_lock(delivery_mutex_);
    deliveries_.push_back({run, status});
  }
  // The next batch goes to the database before this one's replies and
  // events are built, so the two overlap; after a stall, when the job ends.
  if (!still_running) write_next_batch();
  deliver_in_order();
  for (auto& p : refused) {
    p.reply.fail(stalled_status());
  }
}

void MessageWriter::on_job_end(Run& run) {
  {
    std::lock_guard lock(run.mutex);
    run.finished = true;
    if (!run.abandoned) return;
    std::lock_guard queue_lock(mutex_);
    stalled_ = false;
  }
  write_next_batch();
}

void MessageWriter::write_batch(pqxx::connection& conn, const std::vector<Pending>& batch,
                                std::vector<Outcome>& outcomes) {
  outcomes.assign(batch.size(), Outcome{});
  if (is_plain(batch)) {
    write_plain_batch(conn, batch, outcomes);
    single_statement_batches_.add();
  } else {
    write_checked_batch(conn, batch, outcomes);
  }
}

bool MessageWriter::is_plain(const std::vector<Pending>& batch) const {
  if (look_for_repeats_) return false;
  return std::all_of(batch.begin(), batch.end(), [this](const Pending& p) {
    const auto& r = p.request;
    return !r.refused && r.group_id == 0 && known_users_.contains(r.recipient_id) &&
           known_conversations_.contains(r.conversation);
  });
}

MessageWriter::Sorted MessageWriter::sort_batch(
    const std::vector<Pending>& batch,
    const std::map<std::pair<std::int64_t, std::string>, StoredMessage>& stored,
    std::vector<Outcome>& outcomes) const {
  // A client_msg_id repeated within the batch refers to its first occurrence.
  Sorted sorted;
  sorted.fresh.reserve(batch.size());
  sorted.first_in_batch.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& r = batch[i].request;
    if (!stored.empty()) {
      if (auto it = stored.find({r.sender_id, r.client_msg_id}); it != stored.end()) {
        outcomes[i].message = it->second;
        continue;
      }
    }
    if (r.refused) {
      outcomes[i].status = *r.refused;
      continue;
    }
    if (r.group_id == 0 && !known_users_.contains(r.recipient_id)) {
      outcomes[i].status = Status(ErrorCode::not_found, "no such user");
      continue;
    }
    if (sorted.first_in_batch.try_emplace(SendKey{r.sender_id, r.client_msg_id}, i).second) {
      sorted.fresh.push_back(i);
    } else {
      sorted.repeats.push_back(i);
    }
  }
  return sorted;
}

void MessageWriter::write_plain_batch(pqxx::connection& conn, const std::vector<Pending>& batch,
                                      std::vector<Outcome>& outcomes) {
  // One statement instead of a transaction of four (BEGIN, counters,
  // messages, COMMIT): each round trip waits for PostgreSQL and then for
  // this thread to be scheduled, which on a busy machine is most of a
  // batch's time. Committed on its own, the statement is as atomic as the
  // transaction: a repeated client_msg_id fails it whole (the unique index),
  // and the batch is written again, looking first.
  const auto [fresh, repeats, first_in_batch] = sort_batch(batch, {}, outcomes);

  // The batch's conversations, sorted: the counter rows are locked in this
  // order, as in the checked path, so concurrent writers cannot deadlock.
  std::unordered_map<std::string_view, std::int64_t> sends_in;
  for (std::size_t i : fresh) ++sends_in[batch[i].request.conversation];
  std::vector<std::string_view> conversations;
  conversations.reserve(sends_in.size());
  for (const auto& [conversation, n] : sends_in) conversations.push_back(conversation);
  std::sort(conversations.begin(), conversations.end());
  sql::TextArray conv_ids;
  sql::BigintArray counts;
  for (const auto conversation : conversations) {
    conv_ids.push_back(conversation);
    counts.push_back(sends_in[conversation]);
  }
  // Each message's seq is its conversation's new last_seq minus `back`:
  // the sends of a conversation take consecutive seqs in arrival order.
  std::vector<std::int64_t> back;
  back.reserve(fresh.size());
  sql::TextArray m_conv, m_body, m_client;
  sql::BigintArray m_back, m_sender, m_recipient;
  for (std::size_t i : fresh) {
    const auto& r = batch[i].request;
    back.push_back(--sends_in[r.conversation]);
    m_conv.push_back(r.conversation);
    m_back.push_back(back.back());
    m_sender.push_back(r.sender_id);
    m_recipient.push_back(r.recipient_id);
    m_body.push_back(r.body);
    m_client.push_back(r.client_msg_id);
  }
  const std::string now = format_timestamp(clock_.now());
  pqxx::nontransaction tx(conn);
  pqxx::result rows;
  try {
    rows = tx.exec_params(
        "WITH counters AS ("
        " INSERT INTO conversations AS c (id, last_seq, last_activity)"
        " SELECT v.c, v.n, $9::timestamptz FROM unnest($1::text[], $2::bigint[]) AS v(c, n)"
        " ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq,"
        " last_activity = EXCLUDED.last_activity"
        " RETURNING c.id, c.last_seq)"
        " INSERT INTO messages (conversation, seq, sender_id, recipient_id, body,"
        " client_msg_id, created_at)"
        " SELECT m.c, counters.last_seq - m.back, m.f, m.t, m.b, m.k, $9::timestamptz"
        " FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[],"
        " $8::text[]) WITH ORDINALITY AS m(c, back, f, t, b, k, arrival)"
        " JOIN counters ON counters.id = m.c ORDER BY m.arrival"
        " RETURNING conversation, seq, id",
        conv_ids.literal(), counts.literal(), m_conv.literal(), m_back.literal(),
        m_sender.literal(), m_recipient.literal(), m_body.literal(), m_client.literal(), now);
  } catch (const pqxx::unique_violation&) {
    throw RepeatFound();
  }
  if (rows.size() != fresh.size()) {
    throw std::runtime_error(
        fmt::format("{} messages written for {} sends", rows.size(), fresh.size()));
  }
  // The rows come back in arrival order (ORDER BY m.arrival). That is
  // checked, not trusted: row k must be in send k's conversation, and seq +
  // back must be the same for all of a conversation's rows.
  std::unordered_map<std::string_view, std::int64_t> last_seq;
  for (std::size_t k = 0; k < fresh.size(); ++k) {
    const auto& r = batch[fresh[k]].request;
    const auto seq = rows[k][1].as<std::int64_t>();
    const auto last = last_seq.try_emplace(r.conversation, seq + back[k]).first->second;
    const auto& conversation = rows[k][0];
    if (std::string_view(conversation.c_str(), conversation.size()) != r.conversation ||
        last != seq + back[k]) {
      throw std::runtime_error("the messages written came back out of arrival order");
    }
    fill_message(outcomes[fresh[k]], r, seq, now);
    outcomes[fresh[k]].message.id = rows[k][2].as<std::int64_t>();
  }
  answer_repeats(batch, repeats, first_in_batch, outcomes);
}

void MessageWriter::write_checked_batch(pqxx::connection& conn, const std::vector<Pending>& batch,
                                        std::vector<Outcome>& outcomes) {
  pqxx::work tx(conn);

  if (known_users_.size() > kMaxCached) known_users_.clear();
  // Recipients not yet known to exist.
  std::vector<std::int64_t> unknown;
  for (const auto& p : batch) {
    if (p.request.group_id == 0 && !known_users_.contains(p.request.recipient_id)) {
      unknown.push_back(p.request.recipient_id);
    }
  }
  if (!unknown.empty()) {
    for (const auto& row : tx.exec_params("SELECT id FROM users WHERE id = ANY($1::bigint[])",
                                          bigint_array(unknown))) {
      known_users_.insert(row[0].as<std::int64_t>());
    }
  }

  // Sends whose client_msg_id is already stored get the stored message back.
  std::map<std::pair<std::int64_t, std::string>, StoredMessage> stored;
  // A vetoed send is never inserted, nor a group send its sender may no
  // longer make (removed, or the group ended), so only a lookup can tell
  // that it repeats a stored one and gets that one's ok instead of the
  // refusal.
  const bool may_be_refused = std::any_of(batch.begin(), batch.end(), [](const Pending& p) {
    return p.request.refused.has_value() || p.request.group_id != 0;
  });
  if (look_for_repeats_ || may_be_refused) {
    std::vector<std::int64_t> senders;
    std::vector<std::string> client_ids;
    for (const auto& p : batch) {
      senders.push_back(p.request.sender_id);
      client_ids.push_back(p.request.client_msg_id);
    }
    for (const auto& row :
         tx.exec_params("SELECT m.client_msg_id, " + message_columns("m") +
                            " FROM messages m JOIN unnest($1::bigint[], $2::text[]) AS k(s, c)"
                            " ON m.sender_id = k.s AND m.client_msg_id = k.c",
                        bigint_array(senders), text_array(client_ids))) {
      auto message = read_message(row, 1);
      stored.emplace(std::make_pair(message.sender_id, row[0].as<std::string>()),
                     std::move(message));
    }
    look_for_repeats_ = !stored.empty();
  }

  auto [fresh, repeats, first_in_batch] = sort_batch(batch, stored, outcomes);
  check_group_senders(tx, batch, fresh, outcomes);
  std::map<std::string, std::int64_t> per_conversation;
  for (std::size_t i : fresh) ++per_conversation[batch[i].request.conversation];

  if (!fresh.empty()) {
    const std::string now = format_timestamp(clock_.now());
    // Sequence numbers: one row lock per conversation, taken in sorted order
    // so concurrent writers cannot deadlock; gapless because the counter and
    // the messages commit together.
    std::vector<std::string> conv_ids;
    std::vector<std::int64_t> counts;
    for (const auto& [conv, n] : per_conversation) {
      conv_ids.push_back(conv);
      counts.push_back(n);
    }
    std::map<std::string, std::int64_t> next_seq;
    for (const auto& row : tx.exec_params(
             "INSERT INTO conversations (id, last_seq, last_activity)"
             " SELECT c, n, $3::timestamptz FROM unnest($1::text[], $2::bigint[]) AS v(c, n)"
             " ON CONFLICT (id) DO UPDATE SET last_seq = conversations.last_seq + "
             "EXCLUDED.last_seq,"
             " last_activity = EXCLUDED.last_activity RETURNING id, last_seq",
             text_array(conv_ids), bigint_array(counts), now)) {
      const auto conv = row[0].as<std::string>();
      next_seq[conv] = row[1].as<std::int64_t>() - per_conversation[conv] + 1;
    }

    std::vector<std::string> new_conv;
    std::vector<std::int64_t> new_user;
    for (const auto& conv : conv_ids) {
      // A group conversation's participants are written by session_group_change().
      if (known_conversations_.contains(conv) || conv.starts_with("g:")) continue;
      for (std::size_t i : fresh) {
        const auto& req = batch[i].request;
        if (req.conversation != conv) continue;
        new_conv.push_back(conv);
        new_user.push_back(req.sender_id);
        new_conv.push_back(conv);
        new_user.push_back(req.recipient_id);
        break;
      }
    }
    if (!new_conv.empty()) {
      tx.exec_params(
          "INSERT INTO participants (conversation, user_id) SELECT * FROM unnest($1::text[], "
          "$2::bigint[])"
          " ON CONFLICT DO NOTHING",
          text_array(new_conv), bigint_array(new_user));
    }

    std::vector<std::string> m_conv, m_body, m_client;
    // 0 stands for NULL in the recipient and group arrays.
    std::vector<std::int64_t> m_seq, m_sender, m_recipient, m_group;
    for (std::size_t i : fresh) {
      const auto& r = batch[i].request;
      fill_message(outcomes[i], r, next_seq[r.conversation]++, now);
      m_conv.push_back(r.conversation);
      m_seq.push_back(outcomes[i].message.seq);
      m_sender.push_back(r.sender_id);
      m_recipient.push_back(r.recipient_id);
      m_group.push_back(r.group_id);
      m_body.push_back(r.body);
      m_client.push_back(r.client_msg_id);
    }
    std::map<std::pair<std::string, std::int64_t>, std::int64_t> ids;
    for (const auto& row :
         tx.exec_params("INSERT INTO messages (conversation, seq, sender_id, recipient_id, "
                        "group_id, body, client_msg_id, created_at)"
                        " SELECT c, s, f, nullif(t, 0), nullif(g, 0), b, k, $8::timestamptz"
                        " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], "
                        "$5::bigint[], $6::text[], $7::text[])"
                        " AS v(c, s, f, t, g, b, k)"
                        " ON CONFLICT (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL"
                        " DO NOTHING RETURNING conversation, seq, id",
                        text_array(m_conv), bigint_array(m_seq), bigint_array(m_sender),
                        bigint_array(m_recipient), bigint_array(m_group), text_array(m_body),
                        text_array(m_client), now)) {
      ids[{row[0].as<std::string>(), row[1].as<std::int64_t>()}] = row[2].as<std::int64_t>();
    }
    // A row not inserted repeats a stored client_msg_id; its seq was taken
    // (the counter moved), so the whole transaction is undone.
    if (ids.size() != fresh.size()) throw RepeatFound();
    for (std::size_t i : fresh) {
      auto& message = outcomes[i].message;
      message.id = ids.at({message.conversation, message.seq});
    }
  }
  answer_repeats(batch, repeats, first_in_batch, outcomes);
  tx.commit();
  if (known_conversations_.size() > kMaxCached) known_conversations_.clear();
  for (const auto& [conv, n] : per_conversation) known_conversations_.insert(conv);
}

void MessageWriter::check_group_senders(pqxx::work& tx, const std::vector<Pending>& batch,
                                        std::vector<std::size_t>& fresh,
                                        std::vector<Outcome>& outcomes) {
  std::set<std::string> groups;
  for (std::size_t i : fresh) {
    if (batch[i].request.group_id != 0) groups.insert(batch[i].request.conversation);
  }
  if (groups.empty()) return;
  const std::string ids = text_array(std::vector<std::string>(groups.begin(), groups.end()));
  // The same row lock session_group_change() takes: a membership change is
  // wholly before this batch (and its members are read below) or after it.
  // Sorted, like the seq allocation that follows, so writers cannot deadlock.
  tx.exec_params("SELECT id FROM conversations WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                 ids);
  std::map<std::string, std::vector<std::int64_t>> current;
  for (const auto& row : tx.exec_params(
           "SELECT conversation, user_id FROM participants WHERE conversation = ANY($1::text[])"
           " AND left_seq IS NULL ORDER BY conversation, user_id",
           ids)) {
    current[row[0].as<std::string>()].push_back(row[1].as<std::int64_t>());
  }
  std::map<std::string, Members> members;
  for (auto& [conversation, users] : current) {
    members.emplace(conversation,
                    std::make_shared<const std::vector<std::int64_t>>(std::move(users)));
  }
  std::erase_if(fresh, [&](std::size_t i) {
    const auto& r = batch[i].request;
    if (r.group_id == 0) return false;
    const auto it = members.find(r.conversation);
    // A group without current members never existed or has ended.
    if (it == members.end()) {
      outcomes[i].status = Status(ErrorCode::not_found, "no such group");
      return true;
    }
    if (!std::binary_search(it->second->begin(), it->second->end(), r.sender_id)) {
      outcomes[i].status = Status(ErrorCode::forbidden, "not a member of this group");
      return true;
    }
    outcomes[i].members = it->second;
    return false;
  });
}

void MessageWriter::deliver_in_order() {
  while (true) {
    Delivery next;
    {
      std::lock_guard lock(delivery_mutex_);
      if (delivering_ || deliveries_.empty()) return;
      delivering_ = true;
      next = std::move(deliveries_.front());
      deliveries_.pop_front();
    }
    finish_batch(*next.run, next.status);
    std::lock_guard lock(delivery_mutex_);
    delivering_ = false;
  }
}

void MessageWriter::finish_batch(Run& run, const Status& status) {
  // After a stall the job may still be writing outcomes and reading the
  // requests: a failed batch touches only the replies.
  for (std::size_t i = 0; i < run.batch.size(); ++i) {
    auto& p = run.batch[i];
    if (!status.ok()) {
      p.reply.fail(status);
      continue;
    }
    auto& outcome = run.outcomes[i];
    if (!outcome.status.ok()) {
      p.reply.fail(outcome.status);
      continue;
    }
    const auto& m = outcome.message;
    p.reply.ok({{"message_id", std::to_string(m.id)},
                {"conversation", m.conversation},
                {"seq", m.seq},
                {"timestamp", m.timestamp}});
    on_stored_(p.request, m, outcome.created, outcome.members);
  }
}

}  // namespace parley::session
