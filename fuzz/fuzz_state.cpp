// The resume state: an interrupted run's partial folder, whose run.json, state.json and first
// batch file come from the input (split at the first two 0x00 bytes), resumed by run_attack.
#include <torch/torch.h>

#include "fuzz_util.hpp"
#include "sdsgsm/runner.hpp"

namespace {

namespace fs = std::filesystem;

struct Tiny : sdsgsm::Classifier {
  torch::Tensor w = torch::linspace(-1, 1, 3 * 32 * 32 * 10).view({10, 3 * 32 * 32});
  torch::Tensor forward(const torch::Tensor& x) override { return torch::matmul(x.flatten(1), w.t()); }
  std::string name() const override { return "tiny"; }
  std::string kind() const override { return "tiny"; }
  int64_t parameter_count() const override { return w.numel(); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  torch::set_num_threads(1);
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t a = in.find('\0');
  size_t b = a == std::string::npos ? std::string::npos : in.find('\0', a + 1);
  std::string run_json = in.substr(0, a);
  std::string state_json = a == std::string::npos ? "" : in.substr(a + 1, b == std::string::npos ? b : b - a - 1);
  std::string batch = b == std::string::npos ? "" : in.substr(b + 1);

  const auto root = sdsgsm_fuzz::scratch() / "runs";
  std::error_code ec;
  fs::remove_all(root, ec);
  const auto work = root / ".out.partial";
  auto put = [&](const fs::path& p, const std::string& s) {
    sdsgsm_fuzz::write(p, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  put(work / "run.json", run_json);
  put(work / "out" / "state.json", state_json);
  put(work / "out" / "batches" / "000000.pt", batch);

  sdsgsm_fuzz::expect_clean([&] {
    static Tiny model;
    sdsgsm::Dataset d;
    d.images = torch::arange(4 * 3 * 32 * 32, torch::kInt64).remainder(256).to(torch::kUInt8).view({4, 3, 32, 32});
    d.labels = torch::tensor({1, 2, 3, 4}, torch::kInt64);
    d.classes = sdsgsm::cifar10_classes();
    nlohmann::json fp = {{"batch_size", 2}, {"case", "fuzz"}};
    sdsgsm::PartialFolder folder(root / "out", fp, /*resume=*/true, /*restart=*/false);
    sdsgsm::AttackOptions o;
    o.steps = 1;
    auto attack = sdsgsm::make_attack("ifgsm", o);
    sdsgsm::RunOptions ro;
    ro.batch_size = 2;
    ro.progress = false;
    sdsgsm::RunOutput out;
    out.work = folder.work() / "out";
    out.fingerprint = fp;
    out.adversarial = false;
    out.sheet = 0;
    (void)sdsgsm::run_attack(model, *sdsgsm::memory_source(d), *attack, ro, &out);
  });
  return 0;
}
