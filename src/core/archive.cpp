// Unpacking archives (.tgz, .tar.gz, ...) with libarchive.
#include <archive.h>
#include <archive_entry.h>

#include <zlib.h>

#include <vector>

#include <fmt/format.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {
namespace {

struct Reader {
  archive* a = archive_read_new();
  ~Reader() { archive_read_free(a); }
};
struct Writer {
  archive* a = archive_write_disk_new();
  ~Writer() { archive_write_free(a); }
};

/// libarchive's error text (it can be null).
std::string why(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown error";
}

/// An entry name that stays inside the destination: relative, without '..' components.
bool is_contained(const std::string& name) {
  fs::path p(name);
  if (p.is_absolute() || name.empty()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

void extract_archive(const fs::path& archive_path, const fs::path& dest) {
  fs::path dir = fs::absolute(dest);
  fs::create_directories(dir);
  Reader in;
  archive_read_support_filter_all(in.a);
  archive_read_support_format_all(in.a);
  if (archive_read_open_filename(in.a, archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw Error(fmt::format("cannot open archive '{}': {}", archive_path.string(), why(in.a)));
  }
  Writer out;
  // Entries are written at absolute paths below `dest` (never relative to the current folder);
  // names that would leave it are refused here, and libarchive refuses to follow symlinks.
  archive_write_disk_set_options(out.a, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  int64_t entries = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(in.a, &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      throw Error(fmt::format("cannot read archive '{}': {}", archive_path.string(), why(in.a)));
    }
    const char* raw = archive_entry_pathname(entry);
    std::string name = raw ? raw : "";
    if (!is_contained(name)) {
      throw Error(fmt::format("archive '{}' holds '{}', which would land outside '{}'", archive_path.string(), name,
                              dir.string()));
    }
    archive_entry_set_pathname(entry, (dir / name).c_str());
    if (const char* link = archive_entry_hardlink(entry)) {
      if (!is_contained(link)) {
        throw Error(fmt::format("archive '{}' links '{}' to '{}', outside '{}'", archive_path.string(), name, link,
                                dir.string()));
      }
      archive_entry_set_hardlink(entry, (dir / link).c_str());
    }
    if (archive_write_header(out.a, entry) < ARCHIVE_WARN) {
      throw Error(fmt::format("cannot unpack '{}' from '{}': {}", name, archive_path.string(),
                              why(out.a)));
    }
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while ((rc = archive_read_data_block(in.a, &buf, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(out.a, buf, size, offset) < ARCHIVE_WARN) {
        throw Error(fmt::format("cannot write '{}' from '{}': {}", name, archive_path.string(),
                                why(out.a)));
      }
    }
    if (rc != ARCHIVE_EOF) {
      throw Error(fmt::format("'{}' is damaged at '{}': {}", archive_path.string(), name, why(in.a)));
    }
    if (archive_write_finish_entry(out.a) < ARCHIVE_WARN) {
      throw Error(fmt::format("cannot finish '{}' from '{}': {}", name, archive_path.string(),
                              why(out.a)));
    }
    ++entries;
  }
  if (entries == 0) throw Error(fmt::format("archive '{}' holds no file", archive_path.string()));
}

namespace {

uint32_t le16(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8;
}
uint32_t le32(const std::string& b, size_t at) { return le16(b, at) | le16(b, at + 2) << 16; }
uint64_t le64(const std::string& b, size_t at) { return le32(b, at) | static_cast<uint64_t>(le32(b, at + 4)) << 32; }

/// CRC-32 of an entry's data: stored as it is, or deflated (raw deflate, as zip has it).
uint32_t entry_crc(const char* data, size_t size, uint32_t method, size_t expected_size, bool& ok) {
  ok = true;
  if (method == 0) {
    return static_cast<uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
  }
  if (method != 8) {
    ok = false;
    return 0;
  }
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
    ok = false;
    return 0;
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  z.avail_in = static_cast<uInt>(size);
  std::vector<Bytef> out(1 << 16);
  uLong crc = ::crc32(0L, Z_NULL, 0);
  size_t total = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    rc = inflate(&z, Z_NO_FLUSH);
    const size_t got = out.size() - z.avail_out;
    crc = ::crc32(crc, out.data(), static_cast<uInt>(got));
    total += got;
    if (total > expected_size) break;
    if (rc == Z_BUF_ERROR && got == 0) break;
  }
  inflateEnd(&z);
  ok = rc == Z_STREAM_END && total == expected_size;
  return static_cast<uint32_t>(crc);
}

}  // namespace

void verify_zip(const fs::path& path) {
  // Our own reading of the central directory and each entry (zip64 archives, over 4 GiB, are
  // left to the loader): LibTorch's reader checks no CRC, and libarchive's missed damaged
  // entries that fuzz_model found.
  const std::string b = read_file(path);
  auto damaged = [&](const std::string& what) {
    return Error(fmt::format("'{}' is a damaged zip archive: {}", path.string(), what));
  };
  auto not_zip = [&] {
    return Error(fmt::format("'{}' is not a zip archive (too short, or no end of central directory)", path.string()));
  };
  if (b.size() < 22) throw not_zip();
  size_t eocd = std::string::npos;
  for (size_t i = b.size() - 22 + 1; i-- > 0 && b.size() - i <= 22 + 65535;) {
    if (le32(b, i) == 0x06054b50u) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) throw not_zip();
  uint64_t entries = le16(b, eocd + 10), cd_size = le32(b, eocd + 12), cd_offset = le32(b, eocd + 16);
  const bool saturated = entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu;
  const bool has_locator = eocd >= 20 && le32(b, eocd - 20) == 0x07064b50u;
  if (saturated || has_locator) {
    // Zip64 (LibTorch writes its records into every archive): the locator just before the end
    // record points to them. LibTorch's reader (miniz) takes the zip64 record whenever the locator
    // is there, whatever the end record says, so both must describe the same directory: a zeroed
    // end record (no entries) hid nine damaged entries from this check (found by fuzz_model).
    if (!has_locator) throw damaged("zip64 end record missing");
    const uint64_t rec = le64(b, eocd - 20 + 8);
    if (rec > eocd || eocd - rec < 56 || le32(b, rec) != 0x06064b50u) throw damaged("zip64 end record damaged");
    const uint64_t entries64 = le64(b, rec + 32), cd_size64 = le64(b, rec + 40), cd_offset64 = le64(b, rec + 48);
    if ((entries != 0xFFFF && entries != entries64) || (cd_size != 0xFFFFFFFFu && cd_size != cd_size64) ||
        (cd_offset != 0xFFFFFFFFu && cd_offset != cd_offset64)) {
      throw damaged(fmt::format("its end record ({} entries, directory at {}) and zip64 end record ({} entries, "
                                "directory at {}) disagree",
                                entries, cd_offset, entries64, cd_offset64));
    }
    entries = entries64;
    cd_size = cd_size64;
    cd_offset = cd_offset64;
  }
  if (cd_offset > eocd || cd_size > eocd - cd_offset) throw damaged("central directory out of bounds");
  // Every entry the central directory holds, however many the end record claims (a reader that
  // trusts the count would skip the rest).
  size_t at = cd_offset;
  uint64_t e = 0;
  for (; at < static_cast<size_t>(cd_offset) + cd_size; ++e) {
    if (at + 46 > eocd || le32(b, at) != 0x02014b50u) throw damaged(fmt::format("central directory entry {}", e));
    const uint32_t method = le16(b, at + 10), crc = le32(b, at + 16), nlen = le16(b, at + 28),
                   xlen = le16(b, at + 30), clen = le16(b, at + 32);
    uint64_t csize = le32(b, at + 20), usize = le32(b, at + 24), local = le32(b, at + 42);
    if (at + 46 + nlen + xlen > eocd) throw damaged(fmt::format("central directory entry {}", e));
    const std::string name = b.substr(at + 46, nlen);
    if (csize == 0xFFFFFFFFu || usize == 0xFFFFFFFFu || local == 0xFFFFFFFFu) {
      // Zip64 sizes and offset: the extra field 0x0001 holds those saturated here, in this order.
      bool found = false;
      for (size_t x = at + 46 + nlen; x + 4 <= at + 46 + nlen + xlen;) {
        const uint32_t id = le16(b, x), len = le16(b, x + 2);
        if (x + 4 + len > at + 46 + nlen + xlen) break;
        if (id == 1) {
          size_t v = x + 4;
          auto take = [&](uint64_t& field) {
            if (field != 0xFFFFFFFFu) return;
            if (v + 8 > x + 4 + len) throw damaged(fmt::format("entry '{}': zip64 field too short", name));
            field = le64(b, v);
            v += 8;
          };
          take(usize);
          take(csize);
          take(local);
          found = true;
          break;
        }
        x += 4 + len;
      }
      if (!found) throw damaged(fmt::format("entry '{}': zip64 sizes missing", name));
    }
    if (local > b.size() || b.size() - local < 30 || le32(b, local) != 0x04034b50u) {
      throw damaged(fmt::format("entry '{}': no local header", name));
    }
    const uint64_t data = static_cast<uint64_t>(local) + 30 + le16(b, local + 26) + le16(b, local + 28);
    if (data > b.size() || csize > b.size() - data) {
      throw damaged(fmt::format("entry '{}' runs past the end of the file", name));
    }
    bool ok = false;
    const uint32_t got = entry_crc(b.data() + data, csize, method, usize, ok);
    if (!ok) throw damaged(fmt::format("entry '{}' cannot be read (method {})", name, method));
    if (got != crc) throw damaged(fmt::format("entry '{}' fails its CRC-32 ({:08x}, expected {:08x})", name, got, crc));
    at += 46 + nlen + xlen + clen;
  }
  if (e != entries) throw damaged(fmt::format("{} entries, but its end record says {}", e, entries));
}

}  // namespace sdsgsm
