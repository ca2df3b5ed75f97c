#include "postgres.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <pqxx/pqxx>

namespace parley::test {

namespace {

// The newest installed PostgreSQL server's binaries (Debian keeps them out of
// PATH, one folder per major version).
std::string server_bin_dir() {
  std::filesystem::path best;
  int best_major = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    const int major = std::atoi(name.c_str());
    if (major > best_major && std::filesystem::exists(entry.path() / "bin" / "pg_ctl")) {
      best_major = major;
      best = entry.path() / "bin";
    }
  }
  if (best.empty()) throw std::runtime_error("no PostgreSQL server under /usr/lib/postgresql");
  return best.string();
}

}  // namespace

std::string TestPostgres::run_as_postgres(const std::string& command) const {
  std::string full = command;
  if (geteuid() == 0) full = "runuser -u postgres -- " + command;
  full += " >>" + (dir_.path() / "setup.log").string() + " 2>&1";
  if (std::system(full.c_str()) != 0) {
    throw std::runtime_error("test PostgreSQL: command failed: " + command + " (see " +
                             (dir_.path() / "setup.log").string() + ")");
  }
  return full;
}

TestPostgres::TestPostgres() : bin_(server_bin_dir()) {
  const auto data = dir_.path() / "data";
  if (geteuid() == 0) {
    if (std::system(("chown postgres " + dir_.path().string()).c_str()) != 0) {
      throw std::runtime_error("cannot hand the test directory to the postgres user");
    }
  }
  run_as_postgres(bin_ + "/initdb -D " + data.string() + " -U postgres -A trust --no-sync");
  start();
}

TestPostgres::~TestPostgres() {
  try {
    stop();
  } catch (...) {
  }
}

void TestPostgres::start() {
  if (running_) return;
  const auto data = dir_.path() / "data";
  const std::string options =
      "-c listen_addresses='' -c unix_socket_directories=" + dir_.path().string() +
      " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200";
  run_as_postgres(bin_ + "/pg_ctl -D " + data.string() + " -l " +
                  (dir_.path() / "server.log").string() + " -w -t 30 -o \"" + options + "\" start");
  running_ = true;
}

void TestPostgres::stop() {
  if (!running_) return;
  running_ = false;
  run_as_postgres(bin_ + "/pg_ctl -D " + (dir_.path() / "data").string() + " -m fast -w stop");
}

namespace {
// The postmaster's pid (first line of postmaster.pid) and its children.
std::string cluster_pids(const std::filesystem::path& data) {
  const std::string pid_file = read_file(data / "postmaster.pid");
  const std::string pid = pid_file.substr(0, pid_file.find('\n'));
  return pid + " $(pgrep -P " + pid + " | tr '\\n' ' ')";
}
}  // namespace

void TestPostgres::pause() {
  const std::string command = "kill -STOP " + cluster_pids(dir_.path() / "data");
  if (std::system(command.c_str()) != 0) throw std::runtime_error("cannot pause PostgreSQL");
}

void TestPostgres::resume() {
  const std::string command = "kill -CONT " + cluster_pids(dir_.path() / "data");
  if (std::system(command.c_str()) != 0) throw std::runtime_error("cannot resume PostgreSQL");
}

std::string TestPostgres::url(const std::string& database) const {
  return "postgresql://postgres@/" + database + "?host=" + dir_.path().string();
}

std::string TestPostgres::create_database(const std::string& name) {
  pqxx::connection conn(url());
  pqxx::nontransaction tx(conn);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name));
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return url(name);
}

TestPostgres& TestPostgres::shared() {
  static TestPostgres instance;
  return instance;
}

}  // namespace parley::test
