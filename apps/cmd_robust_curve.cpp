// `sdsgsm robust --eps A,B,C`: robust accuracy at several radii in one run (sdsgsm/robust_curve.hpp).
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/robust_curve_report.hpp"
#include "sdsgsm/run_folder.hpp"

namespace sdsgsm::cli {

void run_robust_curve(Classifier& model, const ImageSource& data, const RobustOptions& r, const std::vector<double>& radii,
                      const nlohmann::json& info, PartialFolder& folder, const std::string& eps_text) {
  auto t0 = std::chrono::steady_clock::now();
  RobustCurve curve = robust_curve(model, data, r, radii, folder.work());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string title = fmt::format("Robust accuracy of {} against {} eps ({}) on {} images", model.name(),
                                        norm_label(r.norm), eps_text, curve.result.images);
  write_robust_curve_files(folder.work(), info, r.to_json(), curve, r.norm, title);
  nlohmann::json timing = {{"seconds", seconds}, {"threads", torch::get_num_threads()}, {"resumed", folder.resumed()}};
  for (const auto& s : curve.result.stages) timing["attacks"][s.attack] = s.seconds;
  for (const auto& p : curve.points) timing["radii"].push_back({{"eps", p.eps}, {"seconds", p.seconds}});
  write_file_atomic(folder.work() / "timing.json", timing.dump(2) + "\n");
  write_report_html(folder.work() / "report.html", {folder.work()});
  folder.commit();
  fmt::print("{}", robust_curve_table(curve, r.norm, title));
  for (const auto& w : curve.result.warnings()) spdlog::warn("{}", w);
}

}  // namespace sdsgsm::cli
