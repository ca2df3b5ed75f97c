// A private PostgreSQL cluster for tests: initdb into a temporary directory,
// reachable only through a unix socket in that directory (no TCP port to
// collide with another test or a running server). Stoppable and restartable, so tests can
// take the database away under a running parleyd.
#pragma once

#include <memory>
#include <string>

#include "temp_dir.hpp"

namespace parley::test {

class TestPostgres {
 public:
  TestPostgres();
  ~TestPostgres();

  void start();
  void stop();  // fast shutdown: clients are disconnected
  // Freezes every process of the cluster (SIGSTOP): a server that stops
  // answering without closing anything. resume() thaws it (SIGCONT).
  void pause();
  void resume();
  // A new empty database; returns its connection URL.
  std::string create_database(const std::string& name);
  std::string url(const std::string& database = "postgres") const;

  // One cluster shared by a whole test binary, started on first use.
  static TestPostgres& shared();

 private:
  std::string run_as_postgres(const std::string& command) const;

  TempDir dir_;
  std::string bin_;  // the server's binaries
  bool running_ = false;
};

}  // namespace parley::test
