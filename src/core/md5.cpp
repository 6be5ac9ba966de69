// MD5 (RFC 1321), used only to verify downloaded data against published checksums.
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {
namespace {

class Md5 {
 public:
  Md5() { a_ = 0x67452301; b_ = 0xefcdab89; c_ = 0x98badcfe; d_ = 0x10325476; }

  void update(const unsigned char* data, size_t n) {
    length_ += n;
    while (n > 0) {
      size_t take = std::min(n, size_t{64} - buffered_);
      std::memcpy(buffer_.data() + buffered_, data, take);
      buffered_ += take;
      data += take;
      n -= take;
      if (buffered_ == 64) {
        block(buffer_.data());
        buffered_ = 0;
      }
    }
  }

  std::string hex() {
    uint64_t bits = length_ * 8;
    unsigned char pad = 0x80;
    update(&pad, 1);
    unsigned char zero = 0;
    while (buffered_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (8 * i));
    update(len, 8);
    std::string out;
    for (uint32_t v : {a_, b_, c_, d_}) {
      for (int i = 0; i < 4; ++i) out += fmt::format("{:02x}", (v >> (8 * i)) & 0xff);
    }
    return out;
  }

 private:
  static uint32_t rotl(uint32_t x, int c) { return (x << c) | (x >> (32 - c)); }

  void block(const unsigned char* p) {
    static const int shifts[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                   5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                   4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                   6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
    static const std::array<uint32_t, 64> k = [] {
      std::array<uint32_t, 64> t{};
      for (int i = 0; i < 64; ++i) {
        t[i] = static_cast<uint32_t>(std::floor(std::fabs(std::sin(i + 1.0)) * 4294967296.0));
      }
      return t;
    }();
    uint32_t m[16];
    for (int i = 0; i < 16; ++i) {
      m[i] = uint32_t(p[4 * i]) | uint32_t(p[4 * i + 1]) << 8 | uint32_t(p[4 * i + 2]) << 16 |
             uint32_t(p[4 * i + 3]) << 24;
    }
    uint32_t a = a_, b = b_, c = c_, d = d_;
    for (int i = 0; i < 64; ++i) {
      uint32_t f;
      int g;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) % 16;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) % 16;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) % 16;
      }
      uint32_t next = b + rotl(a + f + k[i] + m[g], shifts[i]);
      a = d;
      d = c;
      c = b;
      b = next;
    }
    a_ += a; b_ += b; c_ += c; d_ += d;
  }

  uint32_t a_, b_, c_, d_;
  std::array<unsigned char, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

}  // namespace

std::string md5_hex(std::string_view bytes) {
  Md5 md5;
  md5.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return md5.hex();
}

std::string md5_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot read '{}'", path.string()));
  Md5 md5;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    md5.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<size_t>(in.gcount()));
  }
  return md5.hex();
}

}  // namespace sdsgsm
