// The folders a run writes (include/sdsgsm/run_folder.hpp): output checks, all-or-nothing
// folders, the partial folder of an interrupted run, and rank 0's per-batch state while it runs.
#include <unistd.h>

#include <exception>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "run_internal.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/models.hpp"

namespace sdsgsm {
namespace {

/// A fresh temporary folder beside `dir`.
fs::path make_temp_dir_beside(const fs::path& dir) {
  fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::path tmp = parent / fmt::format(".{}.tmp-{}", dir.filename().string(), static_cast<long>(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw Error(fmt::format("cannot write --out '{}': {}", dir.string(), ec.message()));
  return tmp;
}

/// Renames a finished temporary folder onto `dir`, replacing an earlier output folder.
void commit_output_dir(const fs::path& tmp, const fs::path& dir) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(dir)) {
    old = dir.string() + fmt::format(".old-{}", static_cast<long>(::getpid()));
    fs::rename(dir, old, ec);
    if (ec) throw Error(fmt::format("cannot replace '{}': {}", dir.string(), ec.message()));
  }
  fs::rename(tmp, dir, ec);
  if (ec) throw Error(fmt::format("cannot write '{}': {}", dir.string(), ec.message()));
  if (!old.empty()) fs::remove_all(old, ec);
}

/// The top-level keys whose values differ between two fingerprints (for the refusal message).
std::string changed_keys(const nlohmann::json& a, const nlohmann::json& b) {
  std::string out;
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  for (const auto& k : keys) {
    if (!a.contains(k) || !b.contains(k) || a[k] != b[k]) out += (out.empty() ? "" : ", ") + k;
  }
  return out.empty() ? "its details" : out;
}

/// Removes what only an unfinished run needs (per-batch results, state.json).
void drop_work_state(const fs::path& work) {
  std::error_code ec;
  fs::remove_all(work / "batches", ec);
  fs::remove(work / "state.json", ec);
}

}  // namespace

void check_output_dir(const fs::path& dir) {
  if (dir.empty()) throw Error("--out is required: the folder to write results to");
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw Error(fmt::format("--out '{}' exists and is not a folder", dir.string()));
    bool empty = fs::is_empty(dir, ec);
    bool ours = fs::exists(dir / "metrics.json") || fs::exists(dir / "compare.json") ||
                fs::exists(dir / "results.json") || fs::exists(dir / "saliency.json") ||
                fs::exists(dir / "sweep.json");
    if (!empty && !ours) {
      throw Error(fmt::format("--out '{}' exists and is not an sdsgsm output folder; refusing to replace it",
                              dir.string()));
    }
  }
  fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec || ::access(parent.c_str(), W_OK) != 0) {
    throw Error(fmt::format("cannot write --out '{}': folder '{}' is not writable", dir.string(), parent.string()));
  }
}

void write_output_dir(const fs::path& dir, const std::function<void(const fs::path& tmp)>& fill) {
  check_output_dir(dir);
  fs::path tmp = make_temp_dir_beside(dir);
  try {
    fill(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  commit_output_dir(tmp, dir);
}

std::string fingerprint_hash(const nlohmann::json& fingerprint) { return md5_hex(fingerprint.dump()); }

std::string model_checksum(const std::string& name_or_path) {
  fs::path p = name_or_path;
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) p = find_zoo_weights(name_or_path);
  return p.empty() ? std::string() : md5_file(p);
}

torch::Tensor read_adversarial(const fs::path& dir, int64_t count) {
  std::vector<fs::path> shards;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir / "adversarial", ec)) shards.push_back(e.path());
  if (ec || shards.empty()) throw Error(fmt::format("'{}' holds no adversarial shards", dir.string()));
  std::sort(shards.begin(), shards.end());
  std::vector<torch::Tensor> parts;
  int64_t have = 0;
  for (const auto& f : shards) {
    if (count >= 0 && have >= count) break;
    parts.push_back(detail::unpickle(read_file(f), f.string()).toTensor());
    have += parts.back().size(0);
  }
  return torch::cat(parts);
}

AttackRunResult read_run(const fs::path& dir) {
  const fs::path mf = dir / "metrics.json", sf = dir / "samples.pt", tf = dir / "timing.json";
  if (!fs::is_directory(dir)) throw Error(fmt::format("'{}' is not a folder", dir.string()));
  if (!fs::is_regular_file(mf)) throw Error(fmt::format("'{}' is not an sdsgsm run folder (no metrics.json)", dir.string()));
  auto json_of = [](const fs::path& f) {
    try {
      return nlohmann::json::parse(read_file(f));
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("'{}' is corrupt: {}", f.string(), e.what()));
    }
  };
  const nlohmann::json metrics = json_of(mf);
  if (!metrics.is_object() || !metrics.contains("attack_config") || !metrics["attack_config"].is_object()) {
    throw Error(fmt::format("'{}' is not the metrics.json of an attack run (no attack_config)", mf.string()));
  }
  if (!fs::is_regular_file(sf)) throw Error(fmt::format("run folder '{}' has no samples.pt", dir.string()));
  AttackRunResult r;
  r.config = metrics["attack_config"];
  r.attack = r.config.value("attack", dir.filename().string());
  auto rows = detail::unpickle(read_file(sf), "'" + sf.string() + "'");
  const auto columns = static_cast<int64_t>(sample_columns().size());
  if (!rows.isTensor() || rows.toTensor().dim() != 2 || rows.toTensor().size(1) != columns) {
    throw Error(fmt::format("'{}' is corrupt: not an N x {} tensor", sf.string(), columns));
  }
  set_sample_rows(r, rows.toTensor().to(torch::kFloat64));
  try {
    r.warnings = metrics.value("warnings", std::vector<std::string>{});
    r.zero_gradient_samples = metrics.value("summary", nlohmann::json::object()).value("zero_gradient_samples", int64_t{0});
    if (fs::is_regular_file(tf)) {
      const nlohmann::json timing = json_of(tf);
      r.attack_seconds = timing.value("attack_seconds", 0.0);
      r.allocation_seconds = timing.value("ddi_seconds", 0.0);
      r.metrics_seconds = timing.value("metrics_seconds", 0.0);
      r.wall_seconds = timing.value("wall_seconds", 0.0);
      r.images_this_session = timing.value("images_this_session", int64_t{0});
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("run folder '{}' has a corrupt metrics.json or timing.json: {}", dir.string(), e.what()));
  }
  return r;
}

PartialFolder::PartialFolder(fs::path dir, nlohmann::json fingerprint, bool resume, bool restart)
    : dir_(std::move(dir)), uncaught_(std::uncaught_exceptions()) {
  if (resume && restart) throw Error("--resume and --restart exclude each other");
  if (!dist::is_root()) return;
  check_output_dir(dir_);
  fs::path parent = dir_.has_parent_path() ? dir_.parent_path() : fs::path(".");
  work_ = parent / fmt::format(".{}.partial", dir_.filename().string());
  std::error_code ec;
  const fs::path run_file = work_ / "run.json";
  if (fs::exists(work_)) {
    if (restart) {
      fs::remove_all(work_, ec);
    } else if (!resume) {
      throw Error(fmt::format("'{}' has an interrupted run in '{}': add --resume to continue it, or --restart to "
                              "discard it",
                              dir_.string(), work_.string()));
    } else {
      nlohmann::json old;
      std::string old_hash;
      try {
        old = nlohmann::json::parse(read_file(run_file));
        old_hash = old.at("fingerprint").get<std::string>();  // throws unless an object holding a string
        if (old.contains("configuration") && !old["configuration"].is_object()) throw std::runtime_error("");
      } catch (const std::exception&) {
        throw Error(fmt::format("cannot resume: '{}' is missing or corrupt; rerun with --restart", run_file.string()));
      }
      if (old_hash != fingerprint_hash(fingerprint)) {
        throw Error(fmt::format("cannot resume '{}': the configuration differs from the interrupted run's ({}); "
                                "rerun with the same options, or with --restart to discard it",
                                dir_.string(), changed_keys(old.value("configuration", nlohmann::json::object()),
                                                            fingerprint)));
      }
      resumed_ = true;
      spdlog::info("resuming the interrupted run in '{}'", work_.string());
      return;
    }
  }
  fs::create_directories(work_, ec);
  if (ec) throw Error(fmt::format("cannot write --out '{}': {}", dir_.string(), ec.message()));
  write_file_atomic(run_file, nlohmann::json{{"fingerprint", fingerprint_hash(fingerprint)}, {"configuration", fingerprint}}
                                      .dump(2) +
                                  "\n");
}

void PartialFolder::commit() {
  if (!dist::is_root()) return;
  std::error_code ec;
  fs::remove(work_ / "run.json", ec);
  commit_output_dir(work_, dir_);
  committed_ = true;
}

PartialFolder::~PartialFolder() {
  if (committed_ || work_.empty() || std::uncaught_exceptions() <= uncaught_) return;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(work_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const auto name = it->path().filename();
    if (name == "state.json" || name == "metrics.json") return;  // finished work: keep it for --resume
  }
  fs::remove_all(work_, ec);
}

namespace detail {

WorkFolder::WorkFolder(const RunOutput& out, int64_t batches, int64_t batch_size)
    : out_(out), batches_(batches), batch_size_(batch_size), hash_(fingerprint_hash(out.fingerprint)) {
  fs::create_directories(out_.work / "batches");
  if (out_.adversarial) fs::create_directories(out_.work / "adversarial");
  const fs::path state = out_.work / "state.json";
  if (!fs::exists(state)) return;
  std::string hash;
  int64_t size = -1, done = 0;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_file(state));
    hash = j.at("fingerprint").get<std::string>();  // throws unless an object of the right types
    size = j.at("batch_size").get<int64_t>();
    done = j.at("batches_done").get<int64_t>();
  } catch (const nlohmann::json::exception&) {
    throw Error(fmt::format("'{}' is corrupt; rerun with --restart", state.string()));
  }
  if (hash != hash_ || size != batch_size) {
    throw Error(fmt::format("'{}' belongs to a run with another configuration; rerun with --restart",
                            out_.work.string()));
  }
  if (done < 0) throw Error(fmt::format("'{}' is corrupt; rerun with --restart", state.string()));
  done_ = std::min<int64_t>(done, batches_);
  for (int64_t b = 0; b < done_; ++b) {
    fs::path f = out_.work / "batches" / shard_name(b);
    auto p = decode(read_file(f), false, f.string());
    rows_.push_back(p.columns);
    resumed_ += p.tally;
  }
}

void WorkFolder::write(int64_t b, const BatchPacket& p) {
  if (b != done_) throw Error(fmt::format("internal: batch {} written out of order ({} done)", b, done_));
  BatchPacket kept = p;
  kept.adversarial = torch::zeros({0});
  write_file_atomic(out_.work / "batches" / shard_name(b), encode(kept));
  if (out_.adversarial) write_file_atomic(out_.work / "adversarial" / shard_name(b), pickle(p.adversarial));
  ++done_;
  nlohmann::json state = {
      {"fingerprint", hash_}, {"batches_done", done_}, {"batches", batches_}, {"batch_size", batch_size_}};
  write_file_atomic(out_.work / "state.json", state.dump(2) + "\n");
}

void finish_folder(const AttackRunResult& r, const RunOutput& out, const ImageSource& source, int64_t batch_size,
                   const torch::Tensor& rows) {
  write_file_atomic(out.work / "samples.csv", r.samples_csv());
  write_file_atomic(out.work / "samples.pt", pickle(rows));
  nlohmann::json timing = r.timing();
  write_file_atomic(out.work / "timing.json", timing.dump(2) + "\n");
  if (out.adversarial && out.sheet > 0) {
    const int64_t k = std::min(out.sheet, r.size());
    std::vector<torch::Tensor> adv;
    for (int64_t b = 0; b * batch_size < k; ++b) {
      fs::path f = out.work / "adversarial" / shard_name(b);
      adv.push_back(unpickle(read_file(f), f.string()).toTensor());
    }
    if (k > 0) write_sheet_png(source.float_images(0, k), torch::cat(adv).narrow(0, 0, k), out.work / "sheet.png");
  }
  nlohmann::json metrics = out.info;
  metrics["fingerprint"] = fingerprint_hash(out.fingerprint);
  metrics["summary"] = r.summary();
  metrics["attack_config"] = r.config;
  metrics["sample_columns"] = sample_column_names();
  metrics["warnings"] = r.warnings;
  write_file_atomic(out.work / "metrics.json", metrics.dump(2) + "\n");
  drop_work_state(out.work);
}

AttackRunResult read_finished(const RunOutput& out, AttackRunResult r) {
  auto metrics = nlohmann::json::parse(read_file(out.work / "metrics.json"));
  if (metrics.value("fingerprint", std::string()) != fingerprint_hash(out.fingerprint)) {
    throw Error(fmt::format("'{}' holds a finished run of another configuration; rerun with --restart",
                            out.work.string()));
  }
  fs::path f = out.work / "samples.pt";
  set_sample_rows(r, unpickle(read_file(f), f.string()).toTensor());
  auto timing = nlohmann::json::parse(read_file(out.work / "timing.json"));
  r.zero_gradient_samples = metrics["summary"].value("zero_gradient_samples", int64_t{0});
  r.warnings = metrics.value("warnings", std::vector<std::string>{});
  r.attack_seconds = timing.value("attack_seconds", 0.0);
  r.allocation_seconds = timing.value("ddi_seconds", 0.0);
  r.metrics_seconds = timing.value("metrics_seconds", 0.0);
  r.wall_seconds = timing.value("wall_seconds", 0.0);
  r.images_this_session = timing.value("images_this_session", int64_t{0});
  drop_work_state(out.work);
  return r;
}

}  // namespace detail
}  // namespace sdsgsm
