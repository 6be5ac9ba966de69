// Transfer between models (see include/sdsgsm/transfer.hpp).
#include <algorithm>

#include <fmt/format.h>

#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/metrics.hpp"
#include "sdsgsm/transfer.hpp"

namespace sdsgsm {

nlohmann::json TransferCell::to_json() const {
  return {{"attack", attack},       {"source", source},         {"target", target},
          {"counted", counted},     {"fooled", fooled},         {"asr", asr()},
          {"counted_8bit", counted_8bit}, {"fooled_8bit", fooled_8bit}, {"asr_8bit", asr_8bit()}};
}

TransferCell transfer_cell(const AttackRunResult& run, const torch::Tensor& clean, Classifier& target,
                           const std::string& source, const std::string& target_name, int64_t batch_size,
                           const torch::Device& device) {
  if (!run.adversarial.defined()) throw Error("transfer: the run kept no adversarial images");
  const int64_t n = run.label.size(0);
  if (run.adversarial.size(0) != n || clean.size(0) != n) throw Error("transfer: images and results differ in number");
  TransferCell c;
  c.attack = run.attack;
  c.source = source;
  c.target = target_name;
  auto predict_all = [&](const torch::Tensor& images) {
    std::vector<torch::Tensor> out;
    for (int64_t s = 0; s < n; s += batch_size) {
      out.push_back(predict(target, images.narrow(0, s, std::min(batch_size, n - s)).to(device)).cpu());
    }
    return n ? torch::cat(out) : torch::zeros({0}, torch::kInt64);
  };
  const torch::Tensor label = run.label.cpu();
  const torch::Tensor correct = predict_all(clean).eq(label);
  const torch::Tensor fools = predict_all(run.adversarial).ne(label);
  const torch::Tensor fools8 = predict_all(quantize_8bit(run.adversarial)).ne(label);
  // The diagonal (the model the adversarials were made on): the white-box ASR, over every image it
  // classifies correctly.
  const bool white_box = source == target_name;
  const torch::Tensor counted = white_box ? correct : correct.logical_and(run.success.cpu().to(torch::kBool));
  const torch::Tensor counted8 = white_box ? correct : correct.logical_and(run.success_8bit.cpu().to(torch::kBool));
  c.counted = counted.sum().item<int64_t>();
  c.fooled = counted.logical_and(fools).sum().item<int64_t>();
  c.counted_8bit = counted8.sum().item<int64_t>();
  c.fooled_8bit = counted8.logical_and(fools8).sum().item<int64_t>();
  return c;
}

const OptionSet<TransferOptions>& TransferOptions::option_set() {
  using O = TransferOptions;
  static const OptionSet<O> set(
      "transfer",
      {
          list_option("attacks", &O::attacks, "Attacks, comma-separated (each with its defaults and --eps)"),
          list_option("models", &O::models, "Models (zoo names or files), comma-separated; at least one"),
          option("data", &O::data, "CIFAR-10 binary folder, .bin file, image folder or CSV list"),
          option("split", &O::split, "CIFAR-10 split: test or train").one_of({"test", "train"}),
          option("count", &O::count, "Number of images").at_least(1),
          option("offset", &O::offset, "Index of the first image").at_least(0),
          option("batch-size", &O::batch_size, "Images per batch").at_least(1),
          option("eps", &O::eps, "l_inf budget of the bounded attacks (fractions allowed)"),
          option("seed", &O::seed, "Seed of random starts"),
          option("out", &O::out, "Output folder for transfer.json and transfer.md (written all or nothing)"),
      });
  return set;
}

void TransferOptions::validate() const {
  if (attacks.empty()) throw Error("--attacks needs at least one attack");
  if (models.empty()) throw Error("--models needs at least one model");
  option_set().validate(*this);
  parse_number(eps, "--eps");
}

}  // namespace sdsgsm
