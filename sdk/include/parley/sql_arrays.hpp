// PostgreSQL array literals for binding many values as one parameter, e.g.
// "... FROM unnest($1::bigint[], $2::text[])": libpqxx 6 binds no arrays,
// and one statement over many rows is how a plugin writes in batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace parley::sql {

// {"a","b\"c"}: every element quoted, '"' and '\' escaped.
inline std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (const char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

// {1,2,3}
inline std::string bigint_array(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

}  // namespace parley::sql
