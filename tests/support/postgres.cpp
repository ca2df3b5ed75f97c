#include "postgres.hpp"

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include <pqxx/pqxx>

namespace parley::test {

namespace {
const char* kBin = "/usr/lib/postgresql/15/bin";
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

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

TestPostgres::TestPostgres() {
  port_ = free_port();
  const auto data = dir_.path() / "data";
  if (geteuid() == 0) {
    if (std::system(("chown postgres " + dir_.path().string()).c_str()) != 0) {
      throw std::runtime_error("cannot hand the test directory to the postgres user");
    }
  }
  run_as_postgres(std::string(kBin) + "/initdb -D " + data.string() +
                  " -U postgres -A trust --no-sync");
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
      "-c listen_addresses=127.0.0.1 -c port=" + std::to_string(port_) +
      " -c unix_socket_directories=" + dir_.path().string() +
      " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200";
  run_as_postgres(std::string(kBin) + "/pg_ctl -D " + data.string() + " -l " +
                  (dir_.path() / "server.log").string() + " -w -t 30 -o \"" + options + "\" start");
  running_ = true;
}

void TestPostgres::stop() {
  if (!running_) return;
  running_ = false;
  run_as_postgres(std::string(kBin) + "/pg_ctl -D " + (dir_.path() / "data").string() +
                  " -m fast -w stop");
}

std::string TestPostgres::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
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
