// Unpacking archives (.tgz, .tar.gz, ...) with libarchive.
#include <archive.h>
#include <archive_entry.h>

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
    throw Error(fmt::format("cannot open archive '{}': {}", archive_path.string(), archive_error_string(in.a)));
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
      throw Error(fmt::format("cannot read archive '{}': {}", archive_path.string(), archive_error_string(in.a)));
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
                              archive_error_string(out.a)));
    }
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while ((rc = archive_read_data_block(in.a, &buf, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(out.a, buf, size, offset) < ARCHIVE_WARN) {
        throw Error(fmt::format("cannot write '{}' from '{}': {}", name, archive_path.string(),
                                archive_error_string(out.a)));
      }
    }
    if (rc != ARCHIVE_EOF) {
      throw Error(fmt::format("'{}' is damaged at '{}': {}", archive_path.string(), name, archive_error_string(in.a)));
    }
    if (archive_write_finish_entry(out.a) < ARCHIVE_WARN) {
      throw Error(fmt::format("cannot finish '{}' from '{}': {}", name, archive_path.string(),
                              archive_error_string(out.a)));
    }
    ++entries;
  }
  if (entries == 0) throw Error(fmt::format("archive '{}' holds no file", archive_path.string()));
}

}  // namespace sdsgsm
