#include <chrono>

#include <fmt/format.h>

#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/progress.hpp"

namespace sdsgsm {

torch::Tensor predict(Classifier& model, const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  return model.forward(images).argmax(1);
}

EvalResult evaluate(Classifier& model, const Dataset& data, int64_t batch_size, bool progress,
                    const torch::Device& device) {
  check_batch_size(batch_size);
  auto start = std::chrono::steady_clock::now();
  EvalResult r;
  r.total = data.size();
  r.classes = data.classes;
  int64_t k = std::max<int64_t>(data.num_classes(), 1);
  r.predictions = torch::empty({r.total}, torch::kInt64);
  Progress bar("eval", r.total, progress);
  for (int64_t i = 0; i < r.total; i += batch_size) {
    int64_t n = std::min(batch_size, r.total - i);
    auto pred = predict(model, data.float_images(i, n).to(device)).to(torch::kCPU);
    r.predictions.narrow(0, i, n).copy_(pred);
    bar.advance(n);
  }
  auto labels = data.labels;
  auto max_pred = r.total ? r.predictions.max().item<int64_t>() : 0;
  if (data.classes.empty() && r.total) {
    // Labels without class names (a CSV list of indices): as many classes as labels and predictions reach.
    k = std::max(max_pred, labels.max().item<int64_t>()) + 1;
  }
  if (max_pred >= k) {
    throw Error(fmt::format("model '{}' predicts class {}, but the data set has {} classes", model.name(),
                            max_pred, k));
  }
  r.confusion = torch::zeros({k * k}, torch::kInt64);
  r.confusion.index_add_(0, labels * k + r.predictions, torch::ones({r.total}, torch::kInt64));
  r.confusion = r.confusion.view({k, k});
  r.correct = r.predictions.eq(labels).sum().item<int64_t>();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bar.finish(fmt::format("accuracy {:.2f}%", 100 * r.accuracy()));
  return r;
}

std::vector<double> EvalResult::per_class_accuracy() const {
  std::vector<double> out;
  for (int64_t c = 0; c < confusion.size(0); ++c) {
    auto row = confusion[c].sum().item<int64_t>();
    out.push_back(row ? static_cast<double>(confusion[c][c].item<int64_t>()) / row : 0.0);
  }
  return out;
}

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j;
  j["images"] = total;
  j["correct"] = correct;
  j["accuracy"] = accuracy();
  j["seconds"] = seconds;
  j["images_per_second"] = seconds > 0 ? total / seconds : 0;
  auto pc = per_class_accuracy();
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t c = 0; c < pc.size(); ++c) {
    per_class[c < classes.size() ? classes[c] : std::to_string(c)] = pc[c];
  }
  j["per_class_accuracy"] = per_class;
  j["classes"] = classes;
  std::vector<std::vector<int64_t>> m;
  for (int64_t r = 0; r < confusion.size(0); ++r) {
    std::vector<int64_t> row;
    for (int64_t c = 0; c < confusion.size(1); ++c) row.push_back(confusion[r][c].item<int64_t>());
    m.push_back(row);
  }
  j["confusion_matrix"] = m;
  j["confusion_matrix_layout"] = "rows: true label, columns: prediction";
  return j;
}

}  // namespace sdsgsm
