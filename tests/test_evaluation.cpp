// Tests of src/evaluation: accuracy, confusion matrix, per-class accuracy and JSON, with a
// classifier whose predictions are known in advance.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sdsgsm/evaluation.hpp"
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
