// PostgreSQL array literals for binding many values as one parameter, e.g.
// "... FROM unnest($1::bigint[], $2::text[])": libpqxx 6 binds no arrays,
// and one statement over many rows is how a plugin writes in batches.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace parley::sql {

// Builds {"a","b\"c"} one element at a time: every element quoted, '"' and
// '\' escaped. For a batch, without first copying its values into a vector.
class TextArray {
 public:
  void push_back(std::string_view value) {
    if (literal_.size() > 1) literal_ += ',';
    literal_ += '"';
    for (const char c : value) {
      if (c == '"' || c == '\\') literal_ += '\\';
      literal_ += c;
    }
    literal_ += '"';
  }
  std::string literal() const { return literal_ + '}'; }

 private:
  std::string literal_ = "{";
};

// Builds {1,2,3} one element at a time.
class BigintArray {
 public:
  void push_back(std::int64_t value) {
    if (literal_.size() > 1) literal_ += ',';
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    literal_.append(digits, end);
  }
  std::string literal() const { return literal_ + '}'; }

 private:
  std::string literal_ = "{";
};

inline std::string text_array(const std::vector<std::string>& values) {
  TextArray array;
  for (const auto& value : values) array.push_back(value);
  return array.literal();
}

inline std::string bigint_array(const std::vector<std::int64_t>& values) {
  BigintArray array;
  for (const auto value : values) array.push_back(value);
  return array.literal();
}

}  // namespace parley::sql
