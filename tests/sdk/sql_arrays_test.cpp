#include <limits>

#include <gtest/gtest.h>
#include <parley/sql_arrays.hpp>

namespace parley::sql {
namespace {

TEST(SqlArraysTest, EmptyArraysAreEmptyLiterals) {
  EXPECT_EQ(TextArray().literal(), "{}");
  EXPECT_EQ(BigintArray().literal(), "{}");
  EXPECT_EQ(text_array({}), "{}");
  EXPECT_EQ(bigint_array({}), "{}");
}

TEST(SqlArraysTest, TextElementsAreQuotedAndEscaped) {
  TextArray array;
  array.push_back("plain");
  array.push_back("");
  array.push_back(R"(say "hi" \o/)");
  array.push_back("NULL");  // quoted, so the text NULL and not a null
  array.push_back("a,b {c}");
  EXPECT_EQ(array.literal(), R"({"plain","","say \"hi\" \\o/","NULL","a,b {c}"})");
  EXPECT_EQ(text_array({"x", "y\"z"}), R"({"x","y\"z"})");
}

TEST(SqlArraysTest, BigintElementsKeepTheirSignAndRange) {
  BigintArray array;
  array.push_back(0);
  array.push_back(-42);
  array.push_back(std::numeric_limits<std::int64_t>::max());
  array.push_back(std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(array.literal(), "{0,-42,9223372036854775807,-9223372036854775808}");
  EXPECT_EQ(bigint_array({1, 2, 3}), "{1,2,3}");
}

TEST(SqlArraysTest, LiteralCanBeTakenMoreThanOnce) {
  BigintArray array;
  array.push_back(1);
  EXPECT_EQ(array.literal(), "{1}");
  array.push_back(2);
  EXPECT_EQ(array.literal(), "{1,2}");
}

}  // namespace
}  // namespace parley::sql
