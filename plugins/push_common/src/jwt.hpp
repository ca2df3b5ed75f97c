// JSON Web Tokens signed with OpenSSL, as FCM's OAuth2 assertion (RS256) and
// the APNs provider token (ES256) need them.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

struct evp_pkey_st;

namespace parley::push {

std::string base64url(std::string_view bytes);

// A private key from PEM text (PKCS#8, as Google's service-account files
// and Apple's .p8 keys hold them, or a traditional RSA/EC key).
class PrivateKey {
 public:
  // Throws std::runtime_error saying why the text is not a usable key.
  static PrivateKey from_pem(std::string_view pem);
  bool is_rsa() const;
  // An EC key on P-256, the only curve ES256 allows.
  bool is_p256() const;
  evp_pkey_st* get() const { return key_.get(); }

 private:
  explicit PrivateKey(evp_pkey_st* key);
  std::shared_ptr<evp_pkey_st> key_;
};

// RSASSA-PKCS1-v1_5 with SHA-256.
std::string sign_rs256(const PrivateKey& key, std::string_view input);
// ECDSA P-256 with SHA-256 in JWS form: r and s, 32 bytes each (not DER).
std::string sign_es256(const PrivateKey& key, std::string_view input);

// base64url(header).base64url(claims).base64url(signature), signed as
// header["alg"] says ("RS256" or "ES256").
std::string make_jwt(const PrivateKey& key, const boost::json::object& header,
                     const boost::json::object& claims);

// The text of a file; throws std::runtime_error naming the path and the
// reason when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace parley::push
