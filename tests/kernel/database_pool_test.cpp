// The pool's migrations against a real PostgreSQL: each version is applied
// once, and two files sharing a version are refused before anything runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>

#include <pqxx/pqxx>

#include "database_pool.hpp"
#include "logging.hpp"
#include "metrics_registry.hpp"
#include "postgres.hpp"

namespace parley::kernel {
namespace {

using ::testing::HasSubstr;

class DatabasePoolTest : public ::testing::Test {
 protected:
  MetricsRegistry metrics_;
};

TEST_F(DatabasePoolTest, MigrationsSharingAVersionAreRefusedBeforeAnyRuns) {
  const auto url = test::TestPostgres::shared().create_database("twin_migrations");
  DatabaseConfig config;
  config.url = url;
  DatabasePool db(config, metrics_, make_logger("kernel", std::nullopt));
  const std::array<Migration, 3> migrations{{
      {1, "001_first.sql", "CREATE TABLE first_table (id int)"},
      {2, "002_second.sql", "CREATE TABLE second_table (id int)"},
      {2, "2_also_second.sql", "CREATE TABLE twin_table (id int)"},
  }};
  try {
    db.migrate("twins", migrations);
    FAIL() << "two migrations with version 2 were accepted";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("migrations 002_second.sql and 2_also_second.sql of twins "
                                    "share version 2"));
  }
  pqxx::connection conn(url);
  pqxx::read_transaction tx(conn);
  EXPECT_EQ(tx.exec1("SELECT to_regclass('first_table') IS NULL")[0].as<bool>(), true);
}

}  // namespace
}  // namespace parley::kernel
