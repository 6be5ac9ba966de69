// The per-sample column table, and the files written from it: samples.pt's rows and samples.csv.
#include <fmt/format.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/run_result.hpp"

namespace sdsgsm {

const std::vector<SampleColumn>& sample_columns() {
  using R = AttackRunResult;
  using K = SampleColumn::Kind;
  static const std::vector<SampleColumn> c = {
      {"index", K::Int, &R::index},           {"label", K::Int, &R::label},
      {"target", K::Int, &R::target},         {"clean_pred", K::Int, &R::clean_pred},
      {"adv_pred", K::Int, &R::adv_pred},     {"success", K::Bool, &R::success},
      {"iterations", K::Int, &R::iterations}, {"l2", K::Real, &R::l2},
      {"linf", K::Real, &R::linf},            {"l0", K::Real, &R::l0},
      {"ssim", K::Real, &R::ssim},            {"psnr", K::Real, &R::psnr},
      {"adv_pred_8bit", K::Int, &R::adv_pred_8bit}, {"success_8bit", K::Bool, &R::success_8bit},
      {"l2_8bit", K::Real, &R::l2_8bit},      {"linf_8bit", K::Real, &R::linf_8bit},
      {"l0_8bit", K::Real, &R::l0_8bit},      {"ssim_8bit", K::Real, &R::ssim_8bit},
      {"psnr_8bit", K::Real, &R::psnr_8bit},  {"forward_passes", K::Int, &R::forward_passes},
      {"backward_passes", K::Int, &R::backward_passes}};
  return c;
}

std::vector<std::string> sample_column_names() {
  std::vector<std::string> names;
  for (const auto& c : sample_columns()) names.emplace_back(c.name);
  return names;
}

int64_t sample_column_index(torch::Tensor AttackRunResult::*member) {
  const auto& c = sample_columns();
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i].member == member) return static_cast<int64_t>(i);
  }
  throw Error("internal: not a per-sample column");
}

torch::Tensor sample_rows(const AttackRunResult& r) {
  const int64_t n = r.size();
  std::vector<torch::Tensor> parts;
  for (const auto& c : sample_columns()) parts.push_back((r.*(c.member)).to(torch::kFloat64).view({n, 1}));
  return torch::cat(parts, 1);
}

void set_sample_rows(AttackRunResult& r, const torch::Tensor& rows) {
  const auto& columns = sample_columns();
  for (size_t c = 0; c < columns.size(); ++c) {
    auto col = rows.select(1, static_cast<int64_t>(c)).contiguous();
    const auto kind = columns[c].kind;
    r.*(columns[c].member) =
        kind == SampleColumn::Kind::Bool ? col.ne(0) : kind == SampleColumn::Kind::Int ? col.to(torch::kInt64) : col;
  }
}

std::string AttackRunResult::samples_csv() const {
  // The columns of samples.pt, in its order (one table drives both files).
  std::string out;
  for (const auto& c : sample_columns()) out += (out.empty() ? "" : ",") + std::string(c.name);
  out += "\n";
  std::vector<torch::Tensor> cols;
  for (const auto& c : sample_columns()) cols.push_back((this->*(c.member)).to(torch::kFloat64).contiguous());
  for (int64_t i = 0; i < size(); ++i) {
    for (size_t c = 0; c < cols.size(); ++c) {
      const double v = cols[c].data_ptr<double>()[i];
      if (c > 0) out += ',';
      out += sample_columns()[c].kind == SampleColumn::Kind::Real ? fmt::format("{:.6g}", v)
                                                                   : std::to_string(static_cast<int64_t>(v));
    }
    out += '\n';
  }
  return out;
}

}  // namespace sdsgsm
