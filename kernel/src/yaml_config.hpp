// parley::Config over a yaml-cpp node, with line numbers and key paths in
// every error, ${ENV} substitution, and unknown-key detection.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "parley/config.hpp"

namespace parley::kernel {

class YamlConfig : public Config {
 public:
  // `path` is the key path of `node` from the document root ("" for the root).
  YamlConfig(YAML::Node node, std::string file, std::string path, int line);

  // Parses `file`; throws ConfigError on a syntax error (with its line).
  static std::unique_ptr<YamlConfig> load_file(const std::string& file);

  std::optional<std::string> get_string(std::string_view key) override;
  std::optional<std::int64_t> get_int(std::string_view key) override;
  std::optional<double> get_double(std::string_view key) override;
  std::optional<bool> get_bool(std::string_view key) override;
  std::optional<std::vector<std::string>> get_string_list(std::string_view key) override;
  YamlConfig* section(std::string_view key) override;
  [[noreturn]] void fail(std::string_view key, std::string_view message) override;
  [[noreturn]] void fail_item(std::string_view key, std::size_t index,
                              std::string_view message) override;

  // A sequence of mappings (each element a YamlConfig); empty when absent.
  std::vector<YamlConfig*> list_of_sections(std::string_view key);
  // A section that is empty when absent, so plugins can always read from it.
  YamlConfig* section_or_empty(std::string_view key);

  // Throws ConfigError for the first key of this block (or of a section read
  // from it) that nobody asked for.
  void check_unknown_keys() const;
  // Accepts every key of this block unread (the block of a disabled plugin).
  void mark_all_known() { accept_all_ = true; }

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  int line() const { return line_; }

 private:
  std::string key_path(std::string_view key) const;
  // The node of `key`, marked known; undefined when absent or null.
  YAML::Node lookup(std::string_view key);
  // The scalar text of `key` after ${ENV} substitution.
  std::optional<std::string> scalar(std::string_view key, std::string_view expected);
  [[noreturn]] void fail_at(const YAML::Node& node, std::string_view key, std::string_view message);

  YAML::Node node_;
  std::string file_;
  std::string path_;
  int line_;
  bool accept_all_ = false;
  std::set<std::string, std::less<>> known_;
  std::map<std::string, std::unique_ptr<YamlConfig>, std::less<>> sections_;
  std::vector<std::unique_ptr<YamlConfig>> list_items_;
};

// Replaces ${NAME} and ${NAME:-default} in `text`; throws std::runtime_error
// naming an unset variable that has no default.
std::string substitute_environment(const std::string& text);

}  // namespace parley::kernel
