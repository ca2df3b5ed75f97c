// A private PostgreSQL cluster for tests: initdb into a temporary directory,
// listen on 127.0.0.1 at a free port. Stoppable and restartable, so tests can
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
  // A new empty database; returns its connection URL.
  std::string create_database(const std::string& name);
  std::string url(const std::string& database = "postgres") const;
  int port() const { return port_; }

  // One cluster shared by a whole test binary, started on first use.
  static TestPostgres& shared();

 private:
  std::string run_as_postgres(const std::string& command) const;

  TempDir dir_;
  int port_ = 0;
  bool running_ = false;
};

// A free TCP port on 127.0.0.1 (bound then released).
int free_port();

}  // namespace parley::test
