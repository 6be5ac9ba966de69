// Tests of src/data's image folders (class sub-folders of PNG / BMP / JPEG images): labels,
// pixels, and every way a folder or an image can be bad.
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
using sdsgsm_test::TempDir;
using sdsgsm_test::png_pixel;
using sdsgsm_test::write_bytes;
using sdsgsm_test::write_png;
namespace fs = std::filesystem;

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kInt64);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(ImageFolder, LabelsSortedClassesAndPixels) {
  TempDir tmp;
  const int w = 5, h = 3;
  // Created in non-alphabetical order; classes must come out sorted.
  write_png(tmp / "zebra" / "z0.png", 0, w, h);
  write_png(tmp / "apple" / "b.png", 2, w, h);
  write_png(tmp / "apple" / "a.png", 1, w, h);
  write_png(tmp / "mango" / "m.png", 3, w, h, 1);  // grayscale: converted to RGB
  write_bytes(tmp / "apple" / "notes.txt", "not an image");
  write_bytes(tmp / "loose.png", "a file outside the class folders is ignored");

  Dataset ds = sdsgsm::read_image_folder(tmp.path());
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"apple", "mango", "zebra"}));
  ASSERT_EQ(ds.size(), 4);
  EXPECT_EQ(to_vector(ds.labels), (std::vector<int64_t>{0, 0, 1, 2}));
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{4, 3, h, w}));
  EXPECT_EQ(ds.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(ds.source, tmp.path().string());

  // Files within a class are sorted by name: a.png (id 1) before b.png (id 2).
  const int ids[] = {1, 2, -1, 0};
  auto img = ds.images.accessor<uint8_t, 4>();
  for (int i : {0, 1, 3}) {
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          ASSERT_EQ(img[i][c][y][x], png_pixel(ids[i], x, y, c)) << "image " << i << " c" << c << " y" << y << " x" << x;
  }
  // Grayscale image: all three channels hold the gray value.
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) ASSERT_EQ(img[2][c][y][x], png_pixel(3, x, y, 0));

  // open_dataset recognises an image folder.
  Dataset viaopen = sdsgsm::open_dataset(tmp.path(), Split::Test, 1, 2);
  EXPECT_EQ(to_vector(viaopen.labels), (std::vector<int64_t>{0, 1}));
}

TEST(ImageFolder, CorruptImageIsAnErrorNamingIt) {
  TempDir tmp;
  write_png(tmp / "cat" / "good.png", 0, 4, 4);
  std::mt19937 rng(1234);
  std::string junk;
  for (int i = 0; i < 500; ++i) junk.push_back(static_cast<char>(rng() & 0xff));
  write_bytes(tmp / "dog" / "broken.png", junk);
  std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_TRUE(Contains(msg, (tmp / "dog" / "broken.png").string()));
}

TEST(ImageFolder, BmpWithRowPaddingDecodes) {
  // 3 pixels of 3 bytes: each row is padded to 12 bytes, skipped while decoding from memory.
  TempDir tmp;
  const int w = 3, h = 2;
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) px[(static_cast<size_t>(y) * w + x) * 3 + c] = png_pixel(4, x, y, c);
  fs::create_directories(tmp / "cat");
  ASSERT_NE(stbi_write_bmp((tmp / "cat" / "a.bmp").string().c_str(), w, h, 3, px.data()), 0);
  Dataset ds = sdsgsm::read_image_folder(tmp.path());
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{1, 3, h, w}));
  auto img = ds.images.accessor<uint8_t, 4>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) EXPECT_EQ(img[0][c][y][x], png_pixel(4, x, y, c)) << c << " " << y << " " << x;
}

// A 75-byte BMP whose header claims 3 x 4,653,127 pixels (found by fuzz_image: stb_image's file
// reader spent 24 s skipping row padding past the end of the file, one getc a byte; it would then
// have returned rows of zeros): refused from its header, before any decoding.
TEST(ImageFolder, HeaderClaimingAHugeImageIsAnError) {
  TempDir tmp;
  fs::create_directories(tmp / "cat");
  fs::copy_file(fs::path(SDSGSM_SOURCE_DIR) / "fuzz" / "corpus" / "image" / "bmp-tall-slow.bmp",
                tmp / "cat" / "tall.bmp");
  std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_TRUE(Contains(msg, (tmp / "cat" / "tall.bmp").string())) << msg;
  EXPECT_TRUE(Contains(msg, "3x4653127")) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  // The streaming source decodes the same way.
  msg = error_message([&] { sdsgsm::open_image_source(tmp.path(), Split::Test)->read(0, 1); });
  EXPECT_TRUE(Contains(msg, "3x4653127")) << msg;
}

TEST(ImageFolder, FileTooLargeForAnImageIsAnError) {
  TempDir tmp;
  write_png(tmp / "cat" / "a.png", 0, 4, 4);
  // Sparse: it takes no space, and is refused by its size before it is read.
  fs::resize_file(tmp / "cat" / "a.png", (uint64_t{256} << 20) + 1);
  std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_TRUE(Contains(msg, "a.png")) << msg;
  EXPECT_TRUE(Contains(msg, "268435457 bytes")) << msg;
}

TEST(ImageFolder, MixedSizesAreAnError) {
  TempDir tmp;
  write_png(tmp / "a" / "1.png", 0, 4, 4);
  write_png(tmp / "b" / "2.png", 1, 4, 5);
  std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_TRUE(Contains(msg, "2.png"));
  EXPECT_TRUE(Contains(msg, "4x5"));
  EXPECT_TRUE(Contains(msg, "4x4"));
}

TEST(ImageFolder, EmptyOrMissingFolders) {
  TempDir tmp;
  std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp / "absent"); });
  EXPECT_TRUE(Contains(msg, "absent"));
  msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_TRUE(Contains(msg, tmp.path().string()));
  fs::create_directories(tmp / "cls");
  write_bytes(tmp / "cls" / "x.txt", "no images here");
  msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_TRUE(Contains(msg, "no images"));
}

}  // namespace
