// The figures, table and files of a robust-accuracy evaluation (sdsgsm/robust_result.hpp,
// sdsgsm/robust_report.hpp): robust.json, robust.csv, robust.md.
#include <fmt/format.h>

#include "sdsgsm/robust_report.hpp"

namespace sdsgsm {

std::vector<std::string> RobustResult::warnings() const {
  std::vector<std::string> w;
  for (const auto& c : checks) {
    if (!c.warned) continue;
    const bool masking = c.name == "gradient-free" || c.name == "more-steps" || c.name == "large-eps";
    w.push_back(fmt::format("{}({}) {}", masking ? "gradient masking? " : "", c.name, c.detail));
  }
  return w;
}

nlohmann::json RobustResult::to_json() const {
  nlohmann::json j;
  j["images"] = images;
  j["ensemble"] = ensemble;
  j["classes"] = classes;
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
  return t + "\n" + summary();
}

std::string RobustResult::summary() const {
  const std::string version = ensemble == "custom" ? "a custom sequence" : fmt::format("AutoAttack's {} version", ensemble);
  std::string t = fmt::format("robust accuracy {:.2f}% ({} of {} images), {}\n", 100 * robust_accuracy(), robust, images, version);
  for (const auto& c : checks) {
    t += fmt::format("check {}: {}{}\n", c.name, !c.ran ? "" : c.warned ? "WARNING " : "ok ", c.detail);
  }
  for (const auto& n : notes) t += fmt::format("note: {}\n", n);
  return t;
}

nlohmann::json robust_card(const nlohmann::json& info, const nlohmann::json& options, const RobustResult& result) {
  nlohmann::json card;
  card["model"] = info.value("model", std::string());
  if (info.contains("model_md5")) card["model_md5"] = info.at("model_md5");
  card["version"] = info.value("version", std::string());
  const std::string norm = options.value("norm", std::string("linf"));  // to_string(Norm): linf, l2
  card["threat_model"] = norm == "linf" ? std::string("l_inf") : norm;
  card["eps"] = options.value("eps", 0.0);
  card["ensemble"] = result.ensemble;
  card["attacks"] = nlohmann::json::array();
  for (const auto& s : result.stages) card["attacks"].push_back(s.attack);
  card["images"] = result.images;
  card["clean_accuracy"] = result.clean_accuracy();
  card["robust_accuracy"] = result.robust_accuracy();
  card["checks"] = nlohmann::json::object();
  for (const auto& c : result.checks) card["checks"][c.name] = !c.ran ? "not run" : c.warned ? "warning" : "ok";
  card["warnings"] = result.warnings().size();
  return card;
}

void write_robust_files(const fs::path& dir, nlohmann::json info, const nlohmann::json& options,
                        const RobustResult& result, const std::string& title) {
  info["card"] = robust_card(info, options, result);
  info["robust_options"] = options;
  info.update(result.to_json());
  write_file_atomic(dir / "robust.json", info.dump(2) + "\n");
  write_file_atomic(dir / "robust.csv", result.csv());
  write_file_atomic(dir / "robust.md", result.table(title));
  fs::remove_all(dir / "batches");
  fs::remove(dir / "checks.json");
}

}  // namespace sdsgsm
