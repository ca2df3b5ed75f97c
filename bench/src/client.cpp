#include "client.hpp"

#include <charconv>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace parley::bench {

namespace json = boost::json;

// ---- Client ---------------------------------------------------------------

Client::Client(Net& net, std::size_t index)
    : net_(net), index_(index), conn_(WsConnection::create(net.ioc())) {}

void Client::post(std::function<void()> fn) {
  if (conn_) conn_->post(std::move(fn));
}

void Client::connect(Done done) {
  WsConnection::Handlers handlers;
  handlers.on_text = [this](std::string_view text) { on_text(text); };
  handlers.on_closed = [this](const std::string& why) { on_closed(why); };
  conn_->connect(net_.config().target, net_.next_source(), std::move(handlers),
                 [this, done = std::move(done)](const std::string& error) {
                   if (error.empty()) open_ = true;
                   done(error);
                 });
}

void Client::request(Json fields, ReplyFn fn) {
  auto act = [this, fields = std::move(fields), fn = std::move(fn)]() mutable {
    if (!open_) {
      fn(Json{{"type", "error"}, {"code", "closed"}, {"message", "the connection is not open"}});
      return;
    }
    const std::uint64_t id = next_id_++;
    fields["id"] = std::to_string(id);
    pending_.emplace(id, std::move(fn));
    conn_->send(json::serialize(fields));
  };
  if (conn_->on_strand()) {
    act();
  } else {
    conn_->post(std::move(act));
  }
}

void Client::request_members(std::string members, ReplyFn fn) {
  auto act = [this, members = std::move(members), fn = std::move(fn)]() mutable {
    if (!open_) {
      fn(Json{{"type", "error"}, {"code", "closed"}, {"message", "the connection is not open"}});
      return;
    }
    const std::uint64_t id = next_id_++;
    std::string frame;
    frame.reserve(members.size() + 32);
    frame += "{\"id\":\"";
    frame += std::to_string(id);
    frame += "\",";
    frame += members;
    frame += '}';
    pending_.emplace(id, std::move(fn));
    conn_->send(std::move(frame));
  };
  if (conn_->on_strand()) {
    act();
  } else {
    conn_->post(std::move(act));
  }
}

void Client::login(Json credentials, Done done) {
  credentials["type"] = "login";
  request(std::move(credentials), [this, done = std::move(done)](const Json& reply) mutable {
    if (!is_ok(reply)) return done("login: " + error_text(reply));
    user_id = get_string(reply, "user_id");
    token = get_string(reply, "token");
    on_synced_ = std::move(done);  // "synced" follows the ok
  });
}

void Client::close() {
  auto act = [this] {
    closing_ = true;
    conn_->close();
  };
  if (conn_->on_strand()) {
    act();
  } else {
    conn_->post(act);
  }
}

void Client::on_text(std::string_view text) {
  // Frames are parsed into a buffer on the stack: no allocation for the
  // usual small frame. The parsed value lives for this call only.
  unsigned char scratch[4096];
  json::monotonic_resource resource(scratch, sizeof scratch);
  json::error_code ec;
  json::value value = json::parse(text, ec, &resource);
  if (ec || !value.is_object()) {
    net_.note_close("unreadable frame from the server: " + std::string(text.substr(0, 200)));
    return;
  }
  const Json& frame = value.get_object();
  if (const auto* re = frame.if_contains("re"); re != nullptr && re->is_string()) {
    const auto& s = re->get_string();
    std::uint64_t id = 0;
    std::from_chars(s.data(), s.data() + s.size(), id);
    if (auto it = pending_.find(id); it != pending_.end()) {
      auto fn = std::move(it->second);
      pending_.erase(it);
      fn(frame);
    }
    return;
  }
  if (on_event_) on_event_(frame);
  if (on_synced_) {
    if (const auto* type = frame.if_contains("type");
        type != nullptr && type->is_string() && *type == "synced") {
      auto done = std::move(on_synced_);
      on_synced_ = nullptr;
      done({});
    }
  }
}

void Client::on_closed(const std::string& why) {
  open_ = false;
  if (!closing_) net_.note_close(why);
  auto pending = std::move(pending_);
  pending_.clear();
  const Json closed{{"type", "error"}, {"code", "closed"}, {"message", why}};
  for (auto& [id, fn] : pending) fn(closed);
  if (on_synced_) {
    auto done = std::move(on_synced_);
    on_synced_ = nullptr;
    done("connection closed before synced: " + why);
  }
}

void Client::detach() {
  pending_.clear();
  on_synced_ = nullptr;
  on_event_ = nullptr;
  conn_.reset();
}

// ---- Net ------------------------------------------------------------------

Net::Net(NetConfig config) : config_(std::move(config)) {
  work_.emplace(ioc_.get_executor());
  for (int i = 0; i < config_.threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

Net::~Net() {
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) t.join();
  for (auto& c : clients_) c->detach();
  clients_.clear();
}

Client& Net::add_client() {
  clients_.push_back(std::make_unique<Client>(*this, clients_.size()));
  return *clients_.back();
}

std::vector<Client*> Net::add_clients(std::size_t n) {
  std::vector<Client*> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(&add_client());
  return out;
}

std::optional<boost::asio::ip::address> Net::next_source() {
  if (config_.sources.empty()) return std::nullopt;
  return config_.sources[next_source_.fetch_add(1) % config_.sources.size()];
}

void Net::note_close(const std::string& why) {
  unexpected_closes_.fetch_add(1);
  std::lock_guard lock(mutex_);
  if (first_close_.empty()) first_close_ = why;
}

std::string Net::first_unexpected_close() const {
  std::lock_guard lock(mutex_);
  return first_close_;
}

// ---- helpers --------------------------------------------------------------

std::string get_string(const Json& object, std::string_view key) {
  const auto* v = object.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool is_ok(const Json& reply) {
  return get_string(reply, "type") == "ok";
}

std::string error_text(const Json& reply) {
  return get_string(reply, "code") + ": " + get_string(reply, "message");
}

namespace {
struct PipelineState {
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t n = 0;
  std::size_t concurrency = 0;
  std::size_t next = 0;
  std::size_t running = 0;
  std::size_t completed = 0;
  bool stopped = false;
  std::string error;
  std::function<void(std::size_t, Done)> task;
};

void launch(const std::shared_ptr<PipelineState>& state) {
  for (;;) {
    std::size_t i = 0;
    {
      std::lock_guard lock(state->mutex);
      if (state->stopped || state->next >= state->n || state->running >= state->concurrency) return;
      i = state->next++;
      ++state->running;
    }
    state->task(i, [state](const std::string& error) {
      {
        std::lock_guard lock(state->mutex);
        --state->running;
        if (error.empty()) {
          ++state->completed;
        } else if (state->error.empty()) {
          state->error = error;
          state->stopped = true;
        }
      }
      state->cv.notify_all();
      launch(state);
    });
  }
}
}  // namespace

PipelineResult pipeline(std::size_t n, std::size_t concurrency, std::chrono::milliseconds timeout,
                        std::function<void(std::size_t i, Done done)> task) {
  const auto start = Clock::now();
  auto state = std::make_shared<PipelineState>();
  state->n = n;
  state->concurrency = std::max<std::size_t>(1, concurrency);
  state->task = std::move(task);
  launch(state);
  PipelineResult result;
  std::unique_lock lock(state->mutex);
  const bool finished = state->cv.wait_until(lock, start + timeout, [&] {
    return state->completed == state->n || (state->stopped && state->running == 0);
  });
  if (!finished) {
    state->stopped = true;
    result.error = "timed out after " + std::to_string(timeout.count()) + " ms with " +
                   std::to_string(state->completed) + " of " + std::to_string(n) + " done";
  } else {
    result.error = state->error;
  }
  result.completed = state->completed;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

void Countdown::done(std::uint64_t n) {
  {
    std::lock_guard lock(mutex_);
    left_ = n > left_ ? 0 : left_ - n;
  }
  cv_.notify_all();
}

void Countdown::fail(const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (error_.empty()) error_ = why;
  }
  cv_.notify_all();
}

bool Countdown::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return left_ == 0 || !error_.empty(); });
  return left_ == 0 && error_.empty();
}

std::string Countdown::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

std::uint64_t Countdown::left() const {
  std::lock_guard lock(mutex_);
  return left_;
}

std::vector<Account> make_accounts(const std::string& run_id, const std::string& tag,
                                   std::size_t n) {
  std::vector<Account> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].email = "bench-" + run_id + "-" + tag + "-" + std::to_string(i) + "@bench.invalid";
    out[i].name = tag + " " + std::to_string(i);
    out[i].password = "bench password " + run_id;
  }
  return out;
}

std::string register_accounts(Net& net, std::vector<Account>& accounts,
                              std::chrono::milliseconds timeout, std::size_t connections,
                              std::size_t in_flight) {
  if (accounts.empty()) return {};
  connections = std::min(connections, accounts.size());
  auto pool = net.add_clients(connections);
  auto connected = pipeline(pool.size(), pool.size(), timeout,
                            [&](std::size_t i, Done done) { pool[i]->connect(std::move(done)); });
  if (!connected.error.empty()) return "registration connections: " + connected.error;
  auto registered = pipeline(accounts.size(), in_flight, timeout, [&](std::size_t i, Done done) {
    Account& a = accounts[i];
    pool[i % pool.size()]->request(
        Json{{"type", "register"}, {"name", a.name}, {"email", a.email}, {"password", a.password}},
        [&a, done = std::move(done)](const Json& reply) {
          if (!is_ok(reply)) return done("register: " + error_text(reply));
          a.user_id = get_string(reply, "user_id");
          done({});
        });
  });
  for (auto* c : pool) c->close();
  if (!registered.error.empty()) return registered.error;
  return {};
}

void connect_and_login(Client& client, Account& account, bool by_token, Done done) {
  client.connect(
      [&client, &account, by_token, done = std::move(done)](const std::string& error) mutable {
        if (!error.empty()) return done(error);
        Json credentials;
        if (by_token) {
          credentials["token"] = account.token;
        } else {
          credentials["email"] = account.email;
          credentials["password"] = account.password;
        }
        client.login(std::move(credentials),
                     [&client, &account, by_token, done = std::move(done)](const std::string& e) {
                       if (e.empty() && !by_token) account.token = client.token;
                       done(e);
                     });
      });
}

}  // namespace parley::bench
