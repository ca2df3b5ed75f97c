// Serves the files of one folder over HTTP GET: maps a request target to a
// file strictly inside the folder, with its content type and cache headers.
// Knows nothing of the network library; the gateway turns the answer into a
// response.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::kernel {

struct StaticResponse {
  int status = 404;  // 200, 304 (the client's copy is current) or 404
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
};

class StaticFiles {
 public:
  // `root` must be an existing folder; it is canonicalised once here.
  // `content_security_policy` goes with every file, unless empty.
  StaticFiles(const std::filesystem::path& root, std::string content_security_policy);

  // The file a request target (path plus optional query) names, or nullopt
  // when it names nothing inside the root: undecodable, a NUL or a backslash,
  // a `.` or `..` segment or a hidden name, a path leaving the root through a
  // symlink, no regular file, or a file of no known web content type. "/" and folders ending in "/"
  // mean index.html.
  std::optional<std::filesystem::path> resolve(std::string_view target) const;

  // The answer to GET `target`; `if_none_match` is the request's header.
  StaticResponse serve(std::string_view target, std::string_view if_none_match) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  std::string content_security_policy_;
};

// The Content-Type for a file name's extension; nullopt when it is not a
// known web type (such a file is never served).
std::optional<std::string_view> content_type_for(const std::filesystem::path& file);

}  // namespace parley::kernel
