// The figures, table and files of a robust-accuracy evaluation (sdsgsm/robust_result.hpp,
// sdsgsm/robust_report.hpp): robust.json, robust.csv, robust.md.
#include <fmt/format.h>

#include "sdsgsm/robust_report.hpp"

namespace sdsgsm {

std::vector<std::string> RobustResult::warnings() const {
  std::vector<std::string> w;
  for (const auto& c : checks) {
    if (c.warned) w.push_back(fmt::format("gradient masking? ({}) {}", c.name, c.detail));
  }
  return w;
}

nlohmann::json RobustResult::to_json() const {
  nlohmann::json j;
  j["images"] = images;
  j["clean_correct"] = clean_correct;
  j["robust"] = robust;
  j["clean_accuracy"] = clean_accuracy();
  j["robust_accuracy"] = robust_accuracy();
  j["attacks"] = nlohmann::json::array();
  for (const auto& s : stages) {
    j["attacks"].push_back({{"attack", s.attack},
                            {"label", s.label},
                            {"attacked", s.attacked},
                            {"fooled", s.fooled},
                            {"forward_passes", s.forward_passes},
                            {"backward_passes", s.backward_passes}});
  }
  j["checks"] = nlohmann::json::array();
  for (const auto& c : checks) {
    j["checks"].push_back({{"check", c.name}, {"ran", c.ran}, {"warned", c.warned}, {"detail", c.detail}});
  }
  j["warnings"] = warnings();
  j["notes"] = notes;
  return j;
}

std::string RobustResult::csv() const {
  std::string out = "index,label,clean_pred,fooled_by\n";
  const int64_t stages_n = static_cast<int64_t>(stages.size());
  for (int64_t i = 0; i < images; ++i) {
    const int64_t f = fooled_by[i].item<int64_t>();
    const std::string by = f < 0 ? "clean" : f >= stages_n ? "robust" : stages[f].attack;
    out += fmt::format("{},{},{},{}\n", index[i].item<int64_t>(), label[i].item<int64_t>(), clean_pred[i].item<int64_t>(), by);
  }
  return out;
}

std::string RobustResult::table(const std::string& title) const {
  std::string t = fmt::format("{}\n\n| attack | images attacked | fooled | robust accuracy after |\n|---|---:|---:|---:|\n", title);
  t += fmt::format("| (clean) | {} | {} | {:.2f}% |\n", images, images - clean_correct, 100 * clean_accuracy());
  int64_t left = clean_correct;
  for (const auto& s : stages) {
    left -= s.fooled;
    t += fmt::format("| {} | {} | {} | {:.2f}% |\n", s.label, s.attacked, s.fooled,
                     images ? 100.0 * static_cast<double>(left) / static_cast<double>(images) : 0.0);
  }
  t += fmt::format("\nrobust accuracy {:.2f}% ({} of {} images)\n", 100 * robust_accuracy(), robust, images);
  for (const auto& c : checks) {
    t += fmt::format("check {}: {}{}\n", c.name, !c.ran ? "" : c.warned ? "WARNING " : "ok ", c.detail);
  }
  for (const auto& n : notes) t += fmt::format("note: {}\n", n);
  return t;
}

void write_robust_files(const fs::path& dir, nlohmann::json info, const nlohmann::json& options,
                        const RobustResult& result, const std::string& title) {
  info["robust_options"] = options;
  info.update(result.to_json());
  write_file_atomic(dir / "robust.json", info.dump(2) + "\n");
  write_file_atomic(dir / "robust.csv", result.csv());
  write_file_atomic(dir / "robust.md", result.table(title));
  fs::remove_all(dir / "batches");
  fs::remove(dir / "checks.json");
}

}  // namespace sdsgsm
