// The ceiling: rows shaped like the session plugin's messages
// (plugins/session/migrations/002_messages.sql) bulk-inserted into a scratch
// table over ONE connection, as fast as it goes, --batch rows per
// transaction with INSERT ... SELECT FROM unnest(arrays), the statement the
// server's MessageWriter uses. Each commit is durable when the database is
// (fsync, synchronous_commit). Parley's persisted messages per second are
// reported as a fraction of this.
#include <cmath>
#include <ctime>

#include <pqxx/pqxx>

#include "../histogram.hpp"
#include "../scenario.hpp"
#include "../system.hpp"

namespace parley::bench {
namespace {

// Same columns, keys, indexes and collations as the messages table (after
// plugins/session/migrations/005_identifier_collation.sql).
constexpr const char* kCreate = R"sql(
CREATE TABLE bench_ceiling (
  id            bigserial PRIMARY KEY,
  conversation  text COLLATE "C" NOT NULL,
  seq           bigint NOT NULL,
  sender_id     bigint NOT NULL,
  recipient_id  bigint,
  group_id      bigint,
  body          text NOT NULL,
  event_type    text NOT NULL DEFAULT 'user',
  client_msg_id text COLLATE "C",
  created_at    timestamptz NOT NULL,
  UNIQUE (conversation, seq)
);
CREATE UNIQUE INDEX bench_ceiling_client_msg_id ON bench_ceiling (sender_id, client_msg_id)
  WHERE client_msg_id IS NOT NULL;
)sql";

constexpr const char* kInsert =
    "INSERT INTO bench_ceiling (conversation, seq, sender_id, recipient_id, body, client_msg_id, "
    "created_at)"
    " SELECT c, s, f, t, b, k, $7::timestamptz"
    " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[])"
    " AS v(c, s, f, t, b, k)";

// PostgreSQL array literals, escaped as plugins/session/src/wire.cpp does.
void append_text(std::string& out, const std::string& value) {
  out += out.size() == 1 ? "\"" : ",\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}
void append_int(std::string& out, std::int64_t value) {
  if (out.size() > 1) out += ',';
  out += std::to_string(value);
}

std::string sql_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[40];
  const auto n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(ms % 1000));
  return text;
}

class Ceiling final : public Scenario {
 public:
  std::string_view name() const override { return "ceiling"; }
  std::string_view description() const override {
    return "bulk insert of message rows over one PostgreSQL connection: rows per second";
  }
  bool uses_server() const override { return false; }

  void configure(Options& o) override {
    url_ = o.string("database-url", "");
    if (url_.empty()) throw OptionError("ceiling needs --database-url");
    duration_ = o.number("duration", 10, 0.1, 86400);
    warmup_ = o.number("warmup", 1, 0, 3600);
    batch_ = static_cast<std::size_t>(o.integer("batch", 1000, 1, 1'000'000));
    conversations_ = static_cast<std::size_t>(o.integer("conversations", 50, 1, 10'000'000));
    message_size_ = static_cast<std::size_t>(o.integer("message-size", 64, 1, 4000));
    returning_ = o.flag("returning", false);
    keep_ = o.flag("keep-table", false);
  }

  void run(Context& ctx) override {
    pqxx::connection conn(url_);
    {
      pqxx::nontransaction tx(conn);
      tx.exec("DROP TABLE IF EXISTS bench_ceiling");
      tx.exec(kCreate);
      const auto settings = tx.exec(
          "SELECT current_setting('fsync'), current_setting('synchronous_commit'), "
          "current_setting('server_version')");
      ctx.results["database"] = Json{{"fsync", settings[0][0].as<std::string>()},
                                     {"synchronous_commit", settings[0][1].as<std::string>()},
                                     {"server_version", settings[0][2].as<std::string>()}};
    }
    conn.prepare("bench_ceiling_insert",
                 std::string(kInsert) + (returning_ ? " RETURNING conversation, seq, id" : ""));

    std::vector<std::int64_t> next_seq(conversations_, 1);
    std::uint64_t message = 0;
    Histogram commit_latency;
    std::uint64_t rows_in_window = 0;
    std::uint64_t batches_in_window = 0;
    std::uint64_t rows_total = 0;
    const auto start = Clock::now();
    const auto window_start = start + seconds_ms(warmup_);
    const auto window_end = window_start + seconds_ms(duration_);
    CpuMeter cpu(ctx.server_pid);
    bool measuring = false;
    Clock::time_point first_in_window{};
    Clock::time_point last_in_window{};
    const std::string padding(message_size_, 'x');

    while (Clock::now() < window_end) {
      if (!measuring && Clock::now() >= window_start) {
        measuring = true;
        cpu.start();
      }
      std::string conv = "{", seq = "{", sender = "{", recipient = "{", body = "{", cmid = "{";
      for (std::size_t i = 0; i < batch_; ++i, ++message) {
        const std::size_t c = message % conversations_;
        const std::int64_t a = 1'000'000 + 2 * static_cast<std::int64_t>(c);
        append_text(conv, "d:" + std::to_string(a) + ":" + std::to_string(a + 1));
        append_int(seq, next_seq[c]++);
        append_int(sender, a);
        append_int(recipient, a + 1);
        std::string text = std::to_string(message) + " " + ctx.run_id + " ";
        text += padding.substr(0, message_size_ > text.size() ? message_size_ - text.size() : 0);
        append_text(body, text);
        append_text(cmid, ctx.run_id + "-" + std::to_string(message));
      }
      for (auto* s : {&conv, &seq, &sender, &recipient, &body, &cmid}) *s += '}';
      const auto t0 = Clock::now();
      pqxx::work tx(conn);
      tx.exec_prepared("bench_ceiling_insert", conv, seq, sender, recipient, body, cmid, sql_now());
      tx.commit();
      const auto t1 = Clock::now();
      rows_total += batch_;
      if (t0 >= window_start && t1 <= window_end) {
        if (batches_in_window == 0) first_in_window = t0;
        last_in_window = t1;
        rows_in_window += batch_;
        ++batches_in_window;
        commit_latency.record(t1 - t0);
      }
    }
    auto cpu_result = measuring ? cpu.stop() : Json{};
    std::uint64_t table_rows = 0;
    {
      pqxx::nontransaction tx(conn);
      table_rows = tx.exec("SELECT count(*) FROM bench_ceiling")[0][0].as<std::uint64_t>();
      if (!keep_) tx.exec("DROP TABLE bench_ceiling");
    }
    auto& r = ctx.results;
    r["rows_in_window"] = rows_in_window;
    r["batches_in_window"] = batches_in_window;
    // Over the span of the batches inside the window (whole batches only).
    const double span = std::chrono::duration<double>(last_in_window - first_in_window).count();
    r["rows_per_second"] = span > 0 ? std::llround(static_cast<double>(rows_in_window) / span) : 0;
    r["rows_total"] = rows_total;
    r["batch_latency"] = commit_latency.summary();
    r["cpu"] = std::move(cpu_result);
    if (table_rows != rows_total) {
      ctx.fail("the table holds " + std::to_string(table_rows) + " rows, " +
               std::to_string(rows_total) + " inserted");
    }
    if (rows_in_window == 0)
      ctx.fail("no batch completed inside the measured window; raise --duration");
  }

 private:
  std::string url_;
  double duration_ = 0;
  double warmup_ = 0;
  std::size_t batch_ = 0;
  std::size_t conversations_ = 0;
  std::size_t message_size_ = 0;
  bool returning_ = false;
  bool keep_ = false;
};

}  // namespace

PARLEY_BENCH_SCENARIO("ceiling", Ceiling);

}  // namespace parley::bench
