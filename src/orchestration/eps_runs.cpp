// ASR against eps and the minimal eps of `compare` and `reproduce` (include/sdsgsm/eps_runs.hpp).
#include "sdsgsm/eps_runs.hpp"

#include "sdsgsm/distributed.hpp"

namespace sdsgsm {

EpsCurve run_eps_curve(Classifier& model, const Dataset& data, const std::string& name,
                       const std::vector<double>& epsilons, const AttackAtEps& make, const RunOptions& run) {
  EpsCurve curve;
  curve.attack = name;
  RunOptions quiet = run;
  quiet.progress = false;
  for (double eps : epsilons) {
    auto r = run_attack(model, data, *make(eps), quiet);
    if (!dist::is_root()) continue;  // rank 0 holds the results
    auto s = r.summary();
    curve.eps.push_back(eps);
    curve.asr.push_back(s["float"]["asr"].get<double>());
    curve.asr_8bit.push_back(s["rounded_8bit"]["asr"].get<double>());
  }
  return curve;
}

nlohmann::json run_min_eps(Classifier& model, const Dataset& data, const AttackAtEps& make, const AttackRunResult& r,
                           double eps_max, int rounds, const RunOptions& run, const fs::path& dir) {
  MinEpsOptions mo;
  mo.eps_max = eps_max;
  mo.rounds = rounds;
  mo.batch_size = run.batch_size;
  mo.first_index = run.first_index;
  mo.device = run.device;
  const torch::Tensor e = minimal_eps(model, data, make, mo);
  const int64_t n = data.size();
  const torch::Tensor index = r.index.slice(0, 0, n), label = r.label.slice(0, 0, n);
  write_file_atomic(dir / "min_eps.csv", min_eps_csv(index, label, e));
  return min_eps_summary(e, r.clean_pred.slice(0, 0, n).eq(label), mo);
}

}  // namespace sdsgsm
