#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <exception>
#include <set>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sdsgsm/checks.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/metrics.hpp"
#include "sdsgsm/progress.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"

namespace sdsgsm {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double mean_of(const torch::Tensor& v) { return v.numel() ? v.to(torch::kFloat64).mean().item<double>() : 0.0; }
double median_of(const torch::Tensor& v) {
  if (v.numel() == 0) return 0.0;
  // The lower median of torch is not the usual one: average the two middle values.
  auto s = std::get<0>(v.to(torch::kFloat64).sort());
  int64_t n = s.size(0);
  return n % 2 ? s[n / 2].item<double>() : 0.5 * (s[n / 2 - 1].item<double>() + s[n / 2].item<double>());
}
double max_of(const torch::Tensor& v) { return v.numel() ? v.to(torch::kFloat64).max().item<double>() : 0.0; }

nlohmann::json distortion_block(const torch::Tensor& mask, const torch::Tensor& success, const torch::Tensor& l2,
                                const torch::Tensor& linf, const torch::Tensor& l0, const torch::Tensor& ssim,
                                const torch::Tensor& psnr) {
  auto sel = [&](const torch::Tensor& v) { return v.index({mask}); };
  nlohmann::json j;
  j["asr"] = mean_of(sel(success));
  j["l2_mean"] = mean_of(sel(l2));
  j["l2_median"] = median_of(sel(l2));
  j["linf_mean"] = mean_of(sel(linf));
  j["linf_max"] = max_of(sel(linf));
  j["l0_mean"] = mean_of(sel(l0));
  j["ssim_mean"] = mean_of(sel(ssim));
  j["psnr_mean"] = mean_of(sel(psnr));
  return j;
}

std::string csv_number(double v) { return fmt::format("{:.6g}", v); }

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


}  // namespace

namespace {

/// The per-sample columns of a run, in samples.pt order (metrics.json lists their names). All are
/// stored as float64 (integers exactly) and typed back when read.
enum class Kind { Int, Bool, Real };
struct Column {
  const char* name;
  Kind kind;
  torch::Tensor AttackRunResult::*member;
};

const std::vector<Column>& columns() {
  using R = AttackRunResult;
  static const std::vector<Column> c = {
      {"index", Kind::Int, &R::index},           {"label", Kind::Int, &R::label},
      {"target", Kind::Int, &R::target},         {"clean_pred", Kind::Int, &R::clean_pred},
      {"adv_pred", Kind::Int, &R::adv_pred},     {"success", Kind::Bool, &R::success},
      {"iterations", Kind::Int, &R::iterations}, {"l2", Kind::Real, &R::l2},
      {"linf", Kind::Real, &R::linf},            {"l0", Kind::Real, &R::l0},
      {"ssim", Kind::Real, &R::ssim},            {"psnr", Kind::Real, &R::psnr},
      {"adv_pred_8bit", Kind::Int, &R::adv_pred_8bit}, {"success_8bit", Kind::Bool, &R::success_8bit},
      {"l2_8bit", Kind::Real, &R::l2_8bit},      {"linf_8bit", Kind::Real, &R::linf_8bit},
      {"l0_8bit", Kind::Real, &R::l0_8bit},      {"ssim_8bit", Kind::Real, &R::ssim_8bit},
      {"psnr_8bit", Kind::Real, &R::psnr_8bit}};
  return c;
}

const int64_t kColumns = 19;
const int64_t kSuccessColumn = 5;

std::vector<std::string> column_names() {
  std::vector<std::string> names;
  for (const auto& c : columns()) names.emplace_back(c.name);
  return names;
}

/// The figures a run adds up over its batches (besides the per-sample columns).
struct Tally {
  int64_t zero_gradient = 0;
  double attack_seconds = 0, allocation_seconds = 0;
  Tally& operator+=(const Tally& t) {
    zero_gradient += t.zero_gradient;
    attack_seconds += t.attack_seconds;
    allocation_seconds += t.allocation_seconds;
    return *this;
  }
};

/// One batch's results: what a rank computes and rank 0 writes.
struct BatchPacket {
  torch::Tensor columns;      ///< b x 19 float64 (integers exact)
  torch::Tensor adversarial;  ///< b x C x H x W float32, CPU
  Tally tally;
};

torch::Tensor packet_stats(const BatchPacket& p) {
  const Tally& t = p.tally;
  return torch::tensor({static_cast<double>(t.zero_gradient), t.attack_seconds, t.allocation_seconds}, torch::kFloat64);
}

std::string pickle(const c10::IValue& v) {
  auto bytes = torch::pickle_save(v);
  return std::string(bytes.data(), bytes.size());
}

c10::IValue unpickle(const std::string& bytes, const std::string& what) {
  try {
    return torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    throw Error(fmt::format("{} is corrupt: {}", what, why.substr(0, why.find('\n'))));
  } catch (const std::exception& e) {
    std::string why = e.what();
    throw Error(fmt::format("{} is corrupt: {}", what, why.substr(0, why.find('\n'))));
  }
}

std::string encode(const BatchPacket& p) {
  return pickle(c10::ivalue::Tuple::create({p.columns, p.adversarial, packet_stats(p)}));
}

BatchPacket decode_tuple(const c10::IValue& v, bool with_adversarial, const std::string& what) {
  if (!v.isTuple()) throw Error(fmt::format("{} is not a batch result", what));
  const auto& e = v.toTupleRef().elements();
  if (e.size() != 3 || !e[0].isTensor() || !e[2].isTensor()) throw Error(fmt::format("{} is not a batch result", what));
  BatchPacket p;
  p.columns = e[0].toTensor();
  if (with_adversarial) p.adversarial = e[1].toTensor();
  auto st = e[2].toTensor();
  if (p.columns.dim() != 2 || p.columns.size(1) != kColumns || st.numel() != 3) {
    throw Error(fmt::format("{} is not a batch result", what));
  }
  p.tally.zero_gradient = static_cast<int64_t>(st[0].item<double>());
  p.tally.attack_seconds = st[1].item<double>();
  p.tally.allocation_seconds = st[2].item<double>();
  return p;
}

/// Attacks batch `b` (images [b * bs, ...)) and measures it.
BatchPacket attack_batch(Classifier& model, const ImageSource& source, const Attack& attack, const RunOptions& o,
                         int64_t b) {
  const int64_t start = b * o.batch_size;
  const int64_t n = std::min(o.batch_size, source.size() - start);
  auto [x, y] = source.read_float(start, n);
  auto ids = torch::arange(o.first_index + start, o.first_index + start + n, torch::kInt64);
  auto t0 = std::chrono::steady_clock::now();
  AttackResult a = attack.run(model, x.to(o.device), y.to(o.device), ids.to(o.device));
  BatchPacket p;
  p.tally.attack_seconds = seconds_since(t0);
  p.tally.allocation_seconds = a.allocation_seconds;
  p.tally.zero_gradient = a.zero_gradient_samples;
  auto adv = a.adversarial.to(torch::kCPU);
  auto adv8 = quantize_8bit(adv);
  auto pred8 = predict(model, adv8.to(o.device)).to(torch::kCPU);
  auto target = a.target.to(torch::kCPU);
  const bool targeted = attack.options().targeted != TargetMode::None;
  auto success8 = targeted ? pred8.eq(target) : pred8.ne(y);
  // In the order of columns().
  std::vector<torch::Tensor> parts = {ids, y, target, a.clean_pred.to(torch::kCPU), a.adv_pred.to(torch::kCPU),
                                      a.success.to(torch::kCPU), a.iterations.to(torch::kCPU),
                                      l2_distance(x, adv), linf_distance(x, adv), l0_fraction(x, adv), ssim(x, adv),
                                      psnr(x, adv), pred8, success8, l2_distance(x, adv8), linf_distance(x, adv8),
                                      l0_fraction(x, adv8), ssim(x, adv8), psnr(x, adv8)};
  for (auto& t : parts) t = t.to(torch::kFloat64).view({n, 1});
  p.columns = torch::cat(parts, 1);
  p.adversarial = adv.contiguous();
  return p;
}

/// Fills a result's columns from the concatenated N x 19 float64 rows.
void set_columns(AttackRunResult& r, const torch::Tensor& rows) {
  for (size_t c = 0; c < columns().size(); ++c) {
    auto col = rows.select(1, static_cast<int64_t>(c)).contiguous();
    const Kind kind = columns()[c].kind;
    r.*(columns()[c].member) = kind == Kind::Bool ? col.ne(0) : kind == Kind::Int ? col.to(torch::kInt64) : col;
  }
}

/// What run_attack returns on ranks other than 0: no samples.
AttackRunResult empty_result(const Attack& attack) {
  AttackRunResult r;
  r.attack = attack.name();
  r.config = attack.config();
  set_columns(r, torch::zeros({0, kColumns}, torch::kFloat64));
  return r;
}

std::string shard_name(int64_t b) { return fmt::format("{:06d}.pt", b); }

/// Peak resident memory of this process in MiB: VmHWM of /proc/self/status. (getrusage's ru_maxrss
/// keeps the peak of the process that launched this one across fork and exec, e.g. a large Python
/// process; VmHWM is this process's own.) 0 when it cannot be read.
double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // in kB
  }
  return 0.0;
}

/// Rank 0's bookkeeping of a run's work folder.
class WorkFolder {
 public:
  WorkFolder(const RunOutput& out, int64_t batches, int64_t batch_size)
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
      auto p = decode_tuple(unpickle(read_file(f), f.string()), false, f.string());
      rows_.push_back(p.columns);
      resumed_ += p.tally;
    }
  }
  int64_t done() const { return done_; }

  /// Writes batch `b` (the next one) and then the state that counts it as done.
  void write(int64_t b, const BatchPacket& p) {
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

  /// The per-sample rows and the tally of the batches found done when resuming.
  const std::vector<torch::Tensor>& rows() const { return rows_; }
  const Tally& resumed() const { return resumed_; }

 private:
  const RunOutput& out_;
  int64_t batches_, batch_size_;
  std::string hash_;
  int64_t done_ = 0;
  Tally resumed_;
  std::vector<torch::Tensor> rows_;
};

/// Removes what only an unfinished run needs (per-batch results, state.json).
void drop_work_state(const fs::path& work) {
  std::error_code ec;
  fs::remove_all(work / "batches", ec);
  fs::remove(work / "state.json", ec);
}

/// Writes the finished folder's files; metrics.json last, as the mark of a finished run.
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
  metrics["sample_columns"] = column_names();
  metrics["warnings"] = r.warnings;
  write_file_atomic(out.work / "metrics.json", metrics.dump(2) + "\n");
  drop_work_state(out.work);
}

/// A finished folder read back (its per-sample values exactly, its recorded times).
AttackRunResult read_finished(const RunOutput& out, const Attack& attack) {
  auto metrics = nlohmann::json::parse(read_file(out.work / "metrics.json"));
  if (metrics.value("fingerprint", std::string()) != fingerprint_hash(out.fingerprint)) {
    throw Error(fmt::format("'{}' holds a finished run of another configuration; rerun with --restart",
                            out.work.string()));
  }
  AttackRunResult r;
  r.attack = attack.name();
  r.config = attack.config();
  fs::path f = out.work / "samples.pt";
  set_columns(r, unpickle(read_file(f), f.string()).toTensor());
  auto timing = nlohmann::json::parse(read_file(out.work / "timing.json"));
  r.zero_gradient_samples = metrics["summary"].value("zero_gradient_samples", int64_t{0});
  r.warnings = metrics.value("warnings", std::vector<std::string>{});
  r.attack_seconds = timing.value("attack_seconds", 0.0);
  r.allocation_seconds = timing.value("ddi_seconds", 0.0);
  r.wall_seconds = timing.value("wall_seconds", 0.0);
  r.images_this_session = timing.value("images_this_session", int64_t{0});
  drop_work_state(out.work);
  return r;
}

}  // namespace

bool AttackRunResult::targeted() const { return config.value("targeted", std::string("none")) != "none"; }

AttackRunResult run_attack(Classifier& model, const ImageSource& source, const Attack& attack, const RunOptions& o,
                           const RunOutput* output) {
  if (o.batch_size < 1) throw Error(fmt::format("--batch-size must be >= 1 (got {})", o.batch_size));
  const int64_t n = source.size();
  if (n == 0) throw Error("no images to attack");
  const bool root = dist::is_root();
  const int ranks = dist::size(), me = dist::rank();
  const int64_t batches = (n + o.batch_size - 1) / o.batch_size;
  const bool write = output != nullptr && root;
  if (output != nullptr) {
    if (output->fingerprint.value("batch_size", int64_t{-1}) != o.batch_size) {
      throw Error("internal: a run's fingerprint must hold its batch size");
    }
    // A run finished earlier (e.g. interrupted between finishing and renaming its folder).
    int64_t finished = write && fs::exists(output->work / "metrics.json") ? 1 : 0;
    if (dist::broadcast(finished)) {
      if (!root) return empty_result(attack);
      return read_finished(*output, attack);
    }
  }
  auto start = std::chrono::steady_clock::now();
  AttackRunResult r;
  {
    // The evaluation checks, on the first images of the first batch (every rank: an error stops
    // them all; within batch 0 so that a bad record further on is reported by the rank whose batch
    // holds it).
    auto [images, labels] = source.read_float(0, std::min({n, o.batch_size, int64_t{16}}));
    r.warnings = check_model(model, images.to(o.device), labels.to(o.device),
                             static_cast<int64_t>(source.classes().size()));
    if (root) {
      for (const auto& w : r.warnings) spdlog::warn("{}", w);
    }
  }
  std::optional<WorkFolder> folder;
  if (write) folder.emplace(*output, batches, o.batch_size);
  const int64_t first = dist::broadcast(folder ? folder->done() : 0);

  r.attack = attack.name();
  r.config = attack.config();
  std::vector<torch::Tensor> rows = folder ? folder->rows() : std::vector<torch::Tensor>{};
  std::vector<torch::Tensor> advs;
  Tally total = folder ? folder->resumed() : Tally{};
  int64_t successes = 0, done_images = std::min(n, first * o.batch_size);
  for (const auto& t : rows) successes += t.select(1, kSuccessColumn).sum().item<int64_t>();
  Progress bar(attack.name(), n, o.progress && root);
  if (done_images > 0) bar.advance(done_images, "resumed");
  int64_t session_images = 0;

  auto take = [&](int64_t b, const BatchPacket& p) {
    if (folder) folder->write(b, p);
    rows.push_back(p.columns);
    if (o.keep_adversarial) advs.push_back(p.adversarial);
    total += p.tally;
    successes += p.columns.select(1, kSuccessColumn).sum().item<int64_t>();
    const int64_t b_images = p.columns.size(0);
    done_images += b_images;
    session_images += b_images;
    bar.advance(b_images, fmt::format("success {:.1f}%", 100.0 * successes / done_images));
  };
  // Batch b runs on rank b mod P; rank 0 takes the results of each round in batch order.
  for (int64_t round = first; round < batches; round += ranks) {
    const int64_t mine = round + me;
    BatchPacket p;
    if (mine < batches) p = attack_batch(model, source, attack, o, mine);
    if (root) {
      for (int r2 = 0; r2 < ranks && round + r2 < batches; ++r2) {
        if (r2 == 0) {
          take(mine, p);
        } else {
          take(round + r2, decode_tuple(unpickle(dist::recv_bytes(r2), "a rank's batch"), true, "a rank's batch"));
        }
      }
    } else if (mine < batches) {
      dist::send_bytes(0, encode(p));
    }
  }
  if (!root) return empty_result(attack);

  auto all = rows.empty() ? torch::zeros({0, kColumns}, torch::kFloat64) : torch::cat(rows);
  set_columns(r, all);
  if (o.keep_adversarial && !advs.empty()) r.adversarial = torch::cat(advs);
  r.zero_gradient_samples = total.zero_gradient;
  r.attack_seconds = total.attack_seconds;
  r.allocation_seconds = total.allocation_seconds;
  r.images_this_session = session_images;
  r.wall_seconds = seconds_since(start);  // attack and metrics; writing the finished folder is not counted
  const std::string zero = zero_gradient_warning(r.attack, r.zero_gradient_samples, n);
  if (!zero.empty()) r.warnings.push_back(zero);
  if (write) finish_folder(r, *output, source, o.batch_size, all);
  bar.finish(fmt::format("ASR {:.2f}%", 100 * r.summary()["float"]["asr"].get<double>()));
  if (!zero.empty()) spdlog::warn("{}", zero);
  return r;
}

AttackRunResult run_attack(Classifier& model, const Dataset& data, const Attack& attack, const RunOptions& options) {
  return run_attack(model, *memory_source(data), attack, options, nullptr);
}

nlohmann::json AttackRunResult::timing() const {
  nlohmann::json j;
  j["attack_seconds"] = attack_seconds;
  j["ddi_seconds"] = allocation_seconds;
  j["iteration_seconds"] = attack_seconds - allocation_seconds;
  j["wall_seconds"] = wall_seconds;
  j["images_this_session"] = images_this_session;
  j["images_per_second"] = wall_seconds > 0 ? images_this_session / wall_seconds : 0.0;
  j["attack_images_per_second"] = attack_seconds > 0 ? size() / attack_seconds : 0.0;
  j["ranks"] = dist::size();
  j["threads_per_rank"] = torch::get_num_threads();
  j["peak_rss_mb_rank0"] = peak_rss_mb();
  j["version"] = version_string();
  return j;
}

nlohmann::json AttackRunResult::report() const {
  nlohmann::json j = summary();
  const nlohmann::json t = timing();
  for (const auto& [k, v] : t.items()) j[k] = v;
  return j;
}


nlohmann::json AttackRunResult::summary() const {
  nlohmann::json j;
  const int64_t n = size();
  auto clean_ok = clean_pred.eq(label);
  // Targeted attacks are scored on correct samples whose target differs from the true label.
  auto mask = targeted() ? clean_ok.logical_and(target.ne(label)) : clean_ok;
  const int64_t attacked = mask.sum().item<int64_t>();
  j["attack"] = attack;
  j["images"] = n;
  j["clean_correct"] = clean_ok.sum().item<int64_t>();
  j["clean_accuracy"] = n ? mean_of(clean_ok) : 0.0;
  j["attacked"] = attacked;
  j["robust_accuracy"] = n ? mean_of(adv_pred.eq(label)) : 0.0;
  j["robust_accuracy_8bit"] = n ? mean_of(adv_pred_8bit.eq(label)) : 0.0;
  j["float"] = distortion_block(mask, success, l2, linf, l0, ssim, psnr);
  j["rounded_8bit"] = distortion_block(mask, success_8bit, l2_8bit, linf_8bit, l0_8bit, ssim_8bit, psnr_8bit);
  j["iterations_mean"] = mean_of(iterations.index({mask}));
  j["zero_gradient_samples"] = zero_gradient_samples;
  j["scored_over"] = targeted() ? "clean-correct samples whose target differs from the label"
                                : "samples classified correctly before the attack";
  return j;
}

std::string AttackRunResult::samples_csv() const {
  // The columns of samples.pt, in its order (one table drives both files).
  std::string out;
  for (const auto& c : columns()) out += (out.empty() ? "" : ",") + std::string(c.name);
  out += "\n";
  std::vector<torch::Tensor> cols;
  for (const auto& c : columns()) cols.push_back((this->*(c.member)).to(torch::kFloat64).contiguous());
  for (int64_t i = 0; i < size(); ++i) {
    for (size_t c = 0; c < cols.size(); ++c) {
      const double v = cols[c].data_ptr<double>()[i];
      if (c > 0) out += ',';
      out += columns()[c].kind == Kind::Real ? csv_number(v) : std::to_string(static_cast<int64_t>(v));
    }
    out += '\n';
  }
  return out;
}

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

void write_sheet_png(const torch::Tensor& clean, const torch::Tensor& adv, const fs::path& file, int scale) {
  const int64_t n = clean.size(0), c = clean.size(1), h = clean.size(2), w = clean.size(3);
  auto delta = (adv - clean).to(torch::kFloat32);
  // Perturbation amplified: 0.5 + delta / (2 max|delta|) per image, so its sign and shape show.
  auto amp = delta.abs().flatten(1).amax(1).clamp_min(1e-12).view({n, 1, 1, 1});
  auto pert = (0.5 + delta / (2 * amp)).clamp(0, 1);
  auto row = torch::cat({clean.to(torch::kFloat32), adv.to(torch::kFloat32), pert}, 3);  // n x c x h x 3w
  auto sheet = row.permute({1, 0, 2, 3}).reshape({c, n * h, 3 * w});                        // c x nh x 3w
  if (c == 1) sheet = sheet.expand({3, n * h, 3 * w});
  sheet = sheet.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
  write_png(sheet, file);
}

std::string comparison_markdown(const std::vector<nlohmann::json>& reports) {
  std::string out =
      "| attack | ASR | l2 mean | l2 median | l_inf | l_0 | SSIM | PSNR (dB) | ASR 8-bit | l2 8-bit | SSIM 8-bit | "
      "iters | img/s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : reports) {
    const auto& f = s["float"];
    const auto& q = s["rounded_8bit"];
    out += fmt::format("| {} | {:.2f}% | {:.3f} | {:.3f} | {:.4f} | {:.3f} | {:.4f} | {:.2f} | {:.2f}% | {:.3f} | {:.4f} | "
                       "{:.2f} | {:.0f} |\n",
                       s.value("label", s["attack"].get<std::string>()), 100 * f["asr"].get<double>(),
                       f["l2_mean"].get<double>(), f["l2_median"].get<double>(), f["linf_max"].get<double>(),
                       f["l0_mean"].get<double>(), f["ssim_mean"].get<double>(), f["psnr_mean"].get<double>(),
                       100 * q["asr"].get<double>(), q["l2_mean"].get<double>(), q["ssim_mean"].get<double>(),
                       s["iterations_mean"].get<double>(), s.value("images_per_second", 0.0));
  }
  return out;
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
    parts.push_back(unpickle(read_file(f), f.string()).toTensor());
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
  auto rows = unpickle(read_file(sf), "'" + sf.string() + "'");
  if (!rows.isTensor() || rows.toTensor().dim() != 2 || rows.toTensor().size(1) != kColumns) {
    throw Error(fmt::format("'{}' is corrupt: not an N x {} tensor", sf.string(), kColumns));
  }
  set_columns(r, rows.toTensor().to(torch::kFloat64));
  try {
    r.warnings = metrics.value("warnings", std::vector<std::string>{});
    r.zero_gradient_samples = metrics.value("summary", nlohmann::json::object()).value("zero_gradient_samples", int64_t{0});
    if (fs::is_regular_file(tf)) {
      const nlohmann::json timing = json_of(tf);
      r.attack_seconds = timing.value("attack_seconds", 0.0);
      r.allocation_seconds = timing.value("ddi_seconds", 0.0);
      r.wall_seconds = timing.value("wall_seconds", 0.0);
      r.images_this_session = timing.value("images_this_session", int64_t{0});
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("run folder '{}' has a corrupt metrics.json or timing.json: {}", dir.string(), e.what()));
  }
  return r;
}

namespace {

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

}  // namespace

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

}  // namespace sdsgsm
