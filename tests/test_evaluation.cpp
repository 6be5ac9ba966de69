// Tests of src/evaluation: accuracy, confusion matrix, per-class accuracy and JSON, with a
// classifier whose predictions are known in advance; the per-sample column table and the typed
// run summary.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sdsgsm/evaluation.hpp"
#include "sdsgsm/runner.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm_test::Contains;
using sdsgsm_test::error_message;

/// Predicts the class written in the red channel of pixel (0,0): round(255 * x[:,0,0,0]).
/// Records the batch sizes it was called with.
class PixelClassifier : public sdsgsm::Classifier {
 public:
  explicit PixelClassifier(int64_t k) : k_(k) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    batches.push_back(x.size(0));
    auto cls = (x.select(1, 0).select(1, 0).select(1, 0) * 255).round().to(torch::kInt64);
    return torch::one_hot(cls, k_).to(torch::kFloat32) * 5.0;
  }
  std::string name() const override { return "pixel"; }
  std::string kind() const override { return "test"; }
  int64_t parameter_count() const override { return 0; }
  std::vector<int64_t> batches;

 private:
  int64_t k_;
};

/// A data set whose image i is predicted as `pred[i]` by PixelClassifier and labelled `label[i]`.
sdsgsm::Dataset make_dataset(const std::vector<int64_t>& pred, const std::vector<int64_t>& label,
                             std::vector<std::string> classes) {
  const auto n = static_cast<int64_t>(pred.size());
  sdsgsm::Dataset ds;
  ds.images = torch::zeros({n, 3, 4, 4}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) ds.images[i][0][0][0] = pred[i];
  ds.labels = torch::tensor(label, torch::kInt64);
  ds.classes = std::move(classes);
  ds.source = "synthetic";
  return ds;
}

TEST(Evaluate, AccuracyConfusionAndPerClass) {
  // labels:      0 0 0 1 1 2 2
  // predictions: 0 1 0 1 1 2 0   -> 5 of 7 correct
  auto ds = make_dataset({0, 1, 0, 1, 1, 2, 0}, {0, 0, 0, 1, 1, 2, 2}, {"a", "b", "c"});
  PixelClassifier clf(3);
  auto r = sdsgsm::evaluate(clf, ds, 3);
  EXPECT_EQ(r.total, 7);
  EXPECT_EQ(r.correct, 5);
  EXPECT_DOUBLE_EQ(r.accuracy(), 5.0 / 7.0);
  EXPECT_EQ(clf.batches, (std::vector<int64_t>{3, 3, 1}));
  auto pred = r.predictions;
  EXPECT_TRUE(torch::equal(pred, torch::tensor(std::vector<int64_t>{0, 1, 0, 1, 1, 2, 0})));
  // Rows: true label, columns: prediction.
  auto expected = torch::tensor(std::vector<int64_t>{2, 1, 0, 0, 2, 0, 1, 0, 1}).view({3, 3});
  EXPECT_TRUE(torch::equal(r.confusion, expected)) << r.confusion;
  auto pc = r.per_class_accuracy();
  ASSERT_EQ(pc.size(), 3u);
  EXPECT_DOUBLE_EQ(pc[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(pc[1], 1.0);
  EXPECT_DOUBLE_EQ(pc[2], 0.5);
  EXPECT_GE(r.seconds, 0.0);

  auto j = r.to_json();
  EXPECT_EQ(j["images"], 7);
  EXPECT_EQ(j["correct"], 5);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 5.0 / 7.0);
  EXPECT_DOUBLE_EQ(j["per_class_accuracy"]["c"].get<double>(), 0.5);
  EXPECT_EQ(j["classes"], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(j["confusion_matrix"], (std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 2, 0}, {1, 0, 1}}));
}

TEST(Evaluate, BatchLargerThanTheDataSetAndEmptyClass) {
  auto ds = make_dataset({1, 1}, {1, 0}, {"x", "y", "z"});
  PixelClassifier clf(3);
  auto r = sdsgsm::evaluate(clf, ds, 256);
  EXPECT_EQ(clf.batches, (std::vector<int64_t>{2}));
  EXPECT_EQ(r.correct, 1);
  auto pc = r.per_class_accuracy();
  EXPECT_DOUBLE_EQ(pc[0], 0.0);
  EXPECT_DOUBLE_EQ(pc[1], 1.0);
  EXPECT_DOUBLE_EQ(pc[2], 0.0);  // no images of class z
}

TEST(Evaluate, PredictionBeyondTheClassesIsAnError) {
  auto ds = make_dataset({0, 4}, {0, 1}, {"a", "b"});
  PixelClassifier clf(5);
  std::string msg = error_message([&] { sdsgsm::evaluate(clf, ds, 8); });
  EXPECT_TRUE(Contains(msg, "pixel"));
  EXPECT_TRUE(Contains(msg, "class 4"));
  EXPECT_TRUE(Contains(msg, "2 classes"));
}

TEST(Evaluate, BadBatchSize) {
  auto ds = make_dataset({0}, {0}, {"a", "b"});
  PixelClassifier clf(2);
  std::string msg = error_message([&] { sdsgsm::evaluate(clf, ds, 0); });
  EXPECT_TRUE(Contains(msg, "--batch-size"));
}

TEST(Evaluate, PredictNeedsNoGradient) {
  auto ds = make_dataset({1, 0, 1}, {1, 0, 1}, {"a", "b"});
  PixelClassifier clf(2);
  auto x = ds.float_images(0, 3).requires_grad_(true);
  auto p = sdsgsm::predict(clf, x);
  EXPECT_FALSE(p.requires_grad());
  EXPECT_TRUE(torch::equal(p, torch::tensor(std::vector<int64_t>{1, 0, 1})));
}

}  // namespace

// The column table drives samples.pt's rows and samples.csv alike: same names, same order, same
// values; and rows read back type each column as the table says.
TEST(SampleColumns, RowsAndCsvFollowOneTable) {
  using sdsgsm::AttackRunResult;
  using Kind = sdsgsm::SampleColumn::Kind;
  const int64_t n = 3;
  AttackRunResult r;
  int64_t seed = 1;
  for (const auto& c : sdsgsm::sample_columns()) {
    // Distinct values per column, so a swapped column shows.
    auto v = torch::arange(n, torch::kFloat64) * 0.125 + static_cast<double>(seed++);
    r.*(c.member) = c.kind == Kind::Bool ? (torch::arange(n) + seed).remainder(2).ne(0)
                    : c.kind == Kind::Int ? v.floor().to(torch::kInt64) + torch::arange(n)
                                          : v;
  }
  const auto names = sdsgsm::sample_column_names();
  ASSERT_EQ(names.size(), sdsgsm::sample_columns().size());
  EXPECT_EQ(names[static_cast<size_t>(sdsgsm::sample_column_index(&AttackRunResult::l0_8bit))], "l0_8bit");
  const torch::Tensor rows = sdsgsm::sample_rows(r);
  ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{n, static_cast<int64_t>(names.size())}));
  const auto csv = sdsgsm_test::split_lines(r.samples_csv());
  ASSERT_EQ(csv.size(), static_cast<size_t>(n + 1));
  std::string header;
  for (const auto& name : names) header += (header.empty() ? "" : ",") + name;
  EXPECT_EQ(csv[0], header);
  for (int64_t i = 0; i < n; ++i) {
    std::stringstream line(csv[static_cast<size_t>(i + 1)]);
    std::string cell;
    int64_t c = 0;
    for (; std::getline(line, cell, ','); ++c) {
      ASSERT_LT(c, rows.size(1));
      EXPECT_DOUBLE_EQ(std::stod(cell), rows[i][c].item<double>()) << "row " << i << " column " << names[c];
      const auto& col = sdsgsm::sample_columns()[static_cast<size_t>(c)];
      EXPECT_DOUBLE_EQ((r.*(col.member))[i].to(torch::kFloat64).item<double>(), rows[i][c].item<double>());
    }
    EXPECT_EQ(c, rows.size(1));
  }
  AttackRunResult back;
  sdsgsm::set_sample_rows(back, rows);
  for (const auto& c : sdsgsm::sample_columns()) {
    const auto& t = back.*(c.member);
    EXPECT_EQ(t.scalar_type(), c.kind == Kind::Bool  ? torch::kBool
                               : c.kind == Kind::Int ? torch::kInt64
                                                     : torch::kFloat64)
        << c.name;
    EXPECT_TRUE(torch::equal(t.to(torch::kFloat64), (r.*(c.member)).to(torch::kFloat64))) << c.name;
  }
}

// The typed summary holds the figures over the scored samples, and summary() is it as JSON.
// ASR over the clean-correct samples; distances over those the attack fools in that form.
TEST(RunSummary, FiguresOverTheCleanCorrectSamples) {
  sdsgsm::AttackRunResult r;
  r.attack = "ifgsm";
  r.config = {{"targeted", "none"}};
  const int64_t n = 4;
  std::vector<double> rows = {
      // index label target clean adv success iters l2 linf l0 ssim psnr | 8-bit: adv success l2 linf l0 ssim psnr
      // | forward and backward passes
      0, 1, 1, 1, 2, 1, 3, 1.0, 0.1, 0.5, 0.9, 30, 2, 1, 1.0, 0.1, 0.5, 0.9, 30, 4, 3,     //
      1, 2, 2, 2, 2, 0, 10, 3.0, 0.2, 0.7, 0.8, 20, 2, 0, 3.0, 0.2, 0.7, 0.8, 20, 11, 10,  //
      2, 3, 3, 3, 0, 1, 5, 2.0, 0.3, 0.6, 0.7, 25, 3, 0, 2.0, 0.3, 0.6, 0.7, 25, 2, 5,     //
      3, 4, 4, 0, 0, 1, 1, 9.0, 0.9, 0.9, 0.1, 10, 0, 1, 9.0, 0.9, 0.9, 0.1, 10, 2, 1};   // wrong before: not scored
  sdsgsm::set_sample_rows(r, torch::tensor(rows, torch::kFloat64).view({n, -1}));
  const sdsgsm::RunSummary s = r.stats();
  EXPECT_EQ(s.images, 4);
  EXPECT_EQ(s.clean_correct, 3);
  EXPECT_EQ(s.attacked, 3);
  EXPECT_DOUBLE_EQ(s.clean_accuracy, 0.75);
  EXPECT_DOUBLE_EQ(s.robust_accuracy, 0.25);  // only sample 1 keeps its label
  EXPECT_DOUBLE_EQ(s.float_stats.asr, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.rounded_8bit.asr, 1.0 / 3);
  // Float distances over samples 0 and 2 (sample 1 is not fooled), 8-bit over sample 0.
  EXPECT_EQ(s.float_stats.fooled, 2);
  EXPECT_DOUBLE_EQ(s.float_stats.l2_mean, 1.5);
  EXPECT_DOUBLE_EQ(s.float_stats.l2_median, 1.5);
  EXPECT_DOUBLE_EQ(s.float_stats.linf_max, 0.3);
  EXPECT_DOUBLE_EQ(s.float_stats.ssim_median, 0.8);
  EXPECT_EQ(s.rounded_8bit.fooled, 1);
  EXPECT_DOUBLE_EQ(s.rounded_8bit.l2_mean, 1.0);
  EXPECT_DOUBLE_EQ(s.iterations_mean, 6.0);
  // Passes over the scored samples; the cost is max(forward, backward) per sample.
  EXPECT_DOUBLE_EQ(s.forward_passes_mean, 17.0 / 3);
  EXPECT_DOUBLE_EQ(s.backward_passes_mean, 6.0);
  EXPECT_DOUBLE_EQ(s.passes_mean, (4.0 + 11 + 5) / 3);
  const nlohmann::json j = r.summary();
  EXPECT_EQ(j, s.to_json());
  EXPECT_EQ(j["images"].type(), nlohmann::json::value_t::number_integer);
  EXPECT_DOUBLE_EQ(j["float"]["asr"].get<double>(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(j["rounded_8bit"]["psnr_mean"].get<double>(), 30.0);
}
