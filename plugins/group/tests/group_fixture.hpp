// A real parleyd with the session and group plugins over a private
// PostgreSQL (the session fixture), plus the kernel tests' journal plugin
// recording push offers and group.changed, a probe plugin asking bus
// services, and helpers for groups.
#pragma once

#include <gmock/gmock.h>

#include <thread>

#include <pqxx/pqxx>

#include "session_fixture.hpp"
#include "temp_dir.hpp"

namespace parley::test {

class GroupTest : public SessionTest {
 protected:
  // Lines for the group plugin's config block (indented by 6).
  virtual std::string group_config() const { return ""; }

  std::string extra_plugins_yaml() const override {
    std::string yaml = "  - name: group\n";
    if (!group_config().empty()) yaml += "    config:\n" + group_config();
    yaml += std::string("  - name: alpha\n    library: ") + JOURNAL_PLUGIN_PATH +
            "\n    config:\n      journal: " + journal().string() +
            "\n      record: [push.offer.fcm, group.changed]\n";
    yaml += std::string("  - name: probe\n    library: ") + PROBE_PLUGIN_PATH + "\n";
    return yaml;
  }

  std::filesystem::path journal() const { return dir_.path() / "journal"; }
  // The journal once it contains `needle` (or as it is after 5 s).
  std::string wait_for_journal(const std::string& needle) {
    for (int i = 0; i < 100; ++i) {
      auto text = read_file(journal());
      if (text.find(needle) != std::string::npos) return text;
      std::this_thread::sleep_for(50ms);
    }
    return read_file(journal());
  }

  // The answer of bus service `service` to `payload`, asked through the probe plugin.
  static json::object ask(WsClient& c, const std::string& service, json::object payload) {
    return c.request(
        {{"type", "probe.ask"}, {"service", service}, {"payload", std::move(payload)}});
  }

  static json::array ids(std::initializer_list<const User*> users) {
    json::array out;
    for (const auto* u : users) out.push_back(json::string(u->id));
    return out;
  }

  static json::object create(WsClient& c, const std::string& name, json::array members) {
    return c.request({{"type", "group.create"}, {"name", name}, {"members", std::move(members)}});
  }
  // Creates a group and returns its id.
  static std::string create_group(WsClient& c, const std::string& name, json::array members) {
    auto reply = create(c, name, std::move(members));
    EXPECT_EQ(reply.at("type").as_string(), "ok") << json::serialize(reply);
    return reply.contains("group_id") ? std::string(reply.at("group_id").as_string()) : "";
  }
  static json::object add(WsClient& c, const std::string& group, json::array members) {
    return c.request({{"type", "group.add"}, {"group_id", group}, {"members", std::move(members)}});
  }
  static json::object remove(WsClient& c, const std::string& group, json::array members) {
    return c.request(
        {{"type", "group.remove"}, {"group_id", group}, {"members", std::move(members)}});
  }
  static json::object leave(WsClient& c, const std::string& group) {
    return c.request({{"type", "group.leave"}, {"group_id", group}});
  }
  static json::object set_role(WsClient& c, const std::string& group, const User& user,
                               const std::string& role) {
    return c.request(
        {{"type", "group.role"}, {"group_id", group}, {"user_id", user.id}, {"role", role}});
  }
  static json::object info(WsClient& c, const std::string& group) {
    return c.request({{"type", "group.info"}, {"group_id", group}});
  }
  static json::object gsend(WsClient& c, const std::string& group, const std::string& text,
                            const std::string& client_msg_id) {
    return c.request({{"type", "send"},
                      {"group_id", group},
                      {"message", text},
                      {"client_msg_id", client_msg_id}});
  }
  static json::object history(WsClient& c, const std::string& group, std::int64_t limit = 200) {
    return c.request({{"type", "history"}, {"conversation", "g:" + group}, {"limit", limit}});
  }
  // "user_id:role" of group.info's members, in join order.
  static std::vector<std::string> roster(const json::object& info_reply) {
    std::vector<std::string> out;
    if (!info_reply.contains("members")) return out;
    for (const auto& m : info_reply.at("members").as_array()) {
      out.push_back(std::string(m.at("user_id").as_string()) + ":" +
                    std::string(m.at("role").as_string()));
    }
    return out;
  }
  static std::vector<std::string> strings(const json::value& array) {
    std::vector<std::string> out;
    for (const auto& v : array.as_array()) out.push_back(std::string(v.as_string()));
    return out;
  }

  TempDir dir_;
};

}  // namespace parley::test
