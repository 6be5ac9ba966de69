// MD5 digests (OpenSSL's EVP), used only to verify data against published checksums and to key
// run configurations.
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {
namespace {

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr) != 1) throw Error("cannot start an MD5 digest");
  }
  void update(const void* data, size_t n) {
    if (EVP_DigestUpdate(ctx_.get(), data, n) != 1) throw Error("MD5 digest update failed");
  }
  std::string hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out, &len) != 1) throw Error("MD5 digest failed");
    std::string s;
    for (unsigned int i = 0; i < len; ++i) s += fmt::format("{:02x}", out[i]);
    return s;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace

std::string md5_hex(std::string_view bytes) {
  Md5 m;
  m.update(bytes.data(), bytes.size());
  return m.hex();
}

std::string md5_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot read '{}'", path.string()));
  Md5 m;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) m.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw Error(fmt::format("cannot read '{}'", path.string()));
  return m.hex();
}

}  // namespace sdsgsm
