// One batch's results as bytes: between ranks, and as the batches a run keeps while it runs.
#include <exception>

#include <fmt/format.h>

#include "run_internal.hpp"

namespace sdsgsm::detail {
namespace {

torch::Tensor packet_stats(const BatchPacket& p) {
  const Tally& t = p.tally;
  return torch::tensor({static_cast<double>(t.zero_gradient), t.attack_seconds, t.allocation_seconds, t.metrics_seconds},
                       torch::kFloat64);
}

}  // namespace

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

BatchPacket decode(const std::string& bytes, bool with_adversarial, const std::string& what) {
  const c10::IValue v = unpickle(bytes, what);
  if (!v.isTuple()) throw Error(fmt::format("{} is not a batch result", what));
  const auto& e = v.toTupleRef().elements();
  if (e.size() != 3 || !e[0].isTensor() || !e[2].isTensor()) throw Error(fmt::format("{} is not a batch result", what));
  BatchPacket p;
  p.columns = e[0].toTensor();
  if (with_adversarial) p.adversarial = e[1].toTensor();
  auto st = e[2].toTensor();
  const auto width = static_cast<int64_t>(sample_columns().size());
  if (p.columns.dim() != 2 || p.columns.size(1) != width || (st.numel() != 3 && st.numel() != 4)) {
    throw Error(fmt::format("{} is not a batch result", what));
  }
  p.tally.zero_gradient = static_cast<int64_t>(st[0].item<double>());
  p.tally.attack_seconds = st[1].item<double>();
  p.tally.allocation_seconds = st[2].item<double>();
  if (st.numel() == 4) p.tally.metrics_seconds = st[3].item<double>();  // batches of older runs: 3 values
  return p;
}

std::string shard_name(int64_t b) { return fmt::format("{:06d}.pt", b); }

}  // namespace sdsgsm::detail
