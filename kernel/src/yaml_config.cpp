#include "yaml_config.hpp"

#include <charconv>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <vector>

namespace parley::kernel {

namespace {

int line_of(const YAML::Node& node, int fallback) {
  if (!node.IsDefined()) return fallback;
  const auto mark = node.Mark();
  return mark.line >= 0 ? mark.line + 1 : fallback;
}

// yaml-cpp keeps both entries of a repeated key and lookups find the
// first: an operator who overrides a key further down the file would be
// ignored without a word. Throws at the second occurrence. `inside` holds
// the nodes being walked: an alias can make a node its own descendant.
void refuse_repeated_keys(const YAML::Node& node, const std::string& file, const std::string& path,
                          std::vector<YAML::Node>& inside) {
  if (!node.IsSequence() && !node.IsMap()) return;
  for (const auto& outer : inside) {
    if (outer.is(node)) return;
  }
  inside.push_back(node);
  if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i)
      refuse_repeated_keys(node[i], file, path + "[" + std::to_string(i) + "]", inside);
  } else {
    std::map<std::string, int> seen;  // key -> its line
    for (const auto& entry : node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "?";
      const std::string key_path = path.empty() ? key : path + "." + key;
      const int line = line_of(entry.first, 1);
      if (const auto [it, fresh] = seen.emplace(key, line); !fresh && entry.first.IsScalar()) {
        throw ConfigError(file + ":" + std::to_string(line) + ": " + key_path +
                          ": repeated key (first at line " + std::to_string(it->second) + ")");
      }
      refuse_repeated_keys(entry.second, file, key_path, inside);
    }
  }
  inside.pop_back();
}

std::string describe(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsScalar()) return "\"" + node.Scalar() + "\"";
  return "nothing";
}

}  // namespace

std::string substitute_environment(const std::string& text) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const auto start = text.find("${", pos);
    if (start == std::string::npos) break;
    const auto end = text.find('}', start);
    if (end == std::string::npos) break;
    out.append(text, pos, start - pos);
    std::string expr = text.substr(start + 2, end - start - 2);
    std::string name = expr;
    std::optional<std::string> fallback;
    if (const auto sep = expr.find(":-"); sep != std::string::npos) {
      name = expr.substr(0, sep);
      fallback = expr.substr(sep + 2);
    }
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && *value != '\0') {
      out += value;
    } else if (fallback) {
      out += *fallback;
    } else {
      throw std::runtime_error("environment variable " + name + " is not set");
    }
    pos = end + 1;
  }
  out.append(text, pos);
  return out;
}

YamlConfig::YamlConfig(YAML::Node node, std::string file, std::string path, int line)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)), line_(line) {}

std::unique_ptr<YamlConfig> YamlConfig::load_file(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw ConfigError(file + ": cannot read the file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(file + ":1: the top level must be a mapping");
  std::vector<YAML::Node> inside;
  refuse_repeated_keys(root, file, "", inside);
  return std::make_unique<YamlConfig>(root, file, "", 1);
}

std::string YamlConfig::key_path(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

void YamlConfig::fail_at(const YAML::Node& node, std::string_view key, std::string_view message) {
  throw ConfigError(file_ + ":" + std::to_string(line_of(node, line_)) + ": " + key_path(key) +
                    ": " + std::string(message));
}

void YamlConfig::fail(std::string_view key, std::string_view message) {
  YAML::Node node;
  if (node_.IsMap()) node = node_[std::string(key)];
  fail_at(node, key, message);
}

void YamlConfig::fail_item(std::string_view key, std::size_t index, std::string_view message) {
  YAML::Node node;
  if (node_.IsMap()) node = node_[std::string(key)];
  const std::string item_key = std::string(key) + "[" + std::to_string(index) + "]";
  if (node.IsSequence() && index < node.size()) fail_at(node[index], item_key, message);
  fail_at(node, item_key, message);
}

YAML::Node YamlConfig::lookup(std::string_view key) {
  known_.emplace(key);
  if (!node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node node = node_[std::string(key)];
  if (!node.IsDefined() || node.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  return node;
}

std::optional<std::string> YamlConfig::scalar(std::string_view key, std::string_view expected) {
  YAML::Node node = lookup(key);
  if (!node.IsDefined()) return std::nullopt;
  if (!node.IsScalar())
    fail_at(node, key, "expected " + std::string(expected) + ", got " + describe(node));
  try {
    return substitute_environment(node.Scalar());
  } catch (const std::runtime_error& e) {
    fail_at(node, key, e.what());
  }
}

std::optional<std::string> YamlConfig::get_string(std::string_view key) {
  return scalar(key, "a string");
}

std::optional<std::int64_t> YamlConfig::get_int(std::string_view key) {
  auto text = scalar(key, "an integer");
  if (!text) return std::nullopt;
  std::int64_t value = 0;
  const auto* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (ec != std::errc() || ptr != end) fail(key, "expected an integer, got \"" + *text + "\"");
  return value;
}

std::optional<double> YamlConfig::get_double(std::string_view key) {
  auto text = scalar(key, "a number");
  if (!text) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text->c_str(), &end);
  if (text->empty() || end != text->c_str() + text->size()) {
    fail(key, "expected a number, got \"" + *text + "\"");
  }
  return value;
}

std::optional<bool> YamlConfig::get_bool(std::string_view key) {
  auto text = scalar(key, "true or false");
  if (!text) return std::nullopt;
  if (*text == "true" || *text == "yes" || *text == "on") return true;
  if (*text == "false" || *text == "no" || *text == "off") return false;
  fail(key, "expected true or false, got \"" + *text + "\"");
  return std::nullopt;  // not reached: fail() throws
}

std::optional<std::vector<std::string>> YamlConfig::get_string_list(std::string_view key) {
  YAML::Node node = lookup(key);
  if (!node.IsDefined()) return std::nullopt;
  if (!node.IsSequence()) fail_at(node, key, "expected a list of strings, got " + describe(node));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const std::string item_key = std::string(key) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar()) fail_at(item, item_key, "expected a string, got " + describe(item));
    try {
      out.push_back(substitute_environment(item.Scalar()));
    } catch (const std::runtime_error& e) {
      fail_at(item, item_key, e.what());
    }
  }
  return out;
}

YamlConfig* YamlConfig::section(std::string_view key) {
  if (auto it = sections_.find(key); it != sections_.end()) return it->second.get();
  YAML::Node node = lookup(key);
  if (!node.IsDefined()) return nullptr;
  if (!node.IsMap()) fail_at(node, key, "expected a mapping, got " + describe(node));
  auto child = std::make_unique<YamlConfig>(node, file_, key_path(key), line_of(node, line_));
  auto* raw = child.get();
  sections_.emplace(std::string(key), std::move(child));
  return raw;
}

YamlConfig* YamlConfig::section_or_empty(std::string_view key) {
  if (auto* existing = section(key)) return existing;
  auto child =
      std::make_unique<YamlConfig>(YAML::Node(YAML::NodeType::Map), file_, key_path(key), line_);
  auto* raw = child.get();
  sections_.emplace(std::string(key), std::move(child));
  return raw;
}

std::vector<YamlConfig*> YamlConfig::list_of_sections(std::string_view key) {
  YAML::Node node = lookup(key);
  std::vector<YamlConfig*> out;
  if (!node.IsDefined()) return out;
  if (!node.IsSequence()) fail_at(node, key, "expected a list, got " + describe(node));
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const std::string item_key = std::string(key) + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) fail_at(item, item_key, "expected a mapping, got " + describe(item));
    list_items_.push_back(
        std::make_unique<YamlConfig>(item, file_, key_path(item_key), line_of(item, line_)));
    out.push_back(list_items_.back().get());
  }
  return out;
}

void YamlConfig::check_unknown_keys() const {
  if (accept_all_) return;
  if (node_.IsMap()) {
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (!known_.contains(key)) {
        throw ConfigError(file_ + ":" + std::to_string(line_of(kv.first, line_)) + ": " +
                          key_path(key) + ": unknown key");
      }
    }
  }
  for (const auto& [key, child] : sections_) child->check_unknown_keys();
  for (const auto& item : list_items_) item->check_unknown_keys();
}

}  // namespace parley::kernel
