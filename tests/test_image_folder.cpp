// Tests of src/data's image folders (class sub-folders of PNG / BMP / JPEG images): labels,
// pixels, and every way a folder or an image can be bad.
#include <string>
#include <vector>

#include <fmt/format.h>
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

std::vector<int64_t> label_vector(const torch::Tensor& t) {
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
  EXPECT_EQ(label_vector(ds.labels), (std::vector<int64_t>{0, 0, 1, 2}));
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
  EXPECT_EQ(label_vector(viaopen.labels), (std::vector<int64_t>{0, 1}));
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

// A file that is none of PNG, JPEG and BMP is refused before stb_image guesses its format: this
// PNM header made stb_image's number reader overflow an int (found by fuzz_image under
// UndefinedBehaviorSanitizer).
TEST(ImageFolder, OnlyPngJpegAndBmpReachTheDecoder) {
  TempDir tmp;
  write_png(tmp / "cat" / "good.png", 0, 4, 4);
  write_bytes(tmp / "dog" / "pnm.png", std::string("P6  777777777777  \0", 19));
  std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_EQ(msg, "cannot decode image '" + (tmp / "dog" / "pnm.png").string() + "': not a PNG, JPEG or BMP file");
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

// --- Labels by class name (DataOptions), CSV lists, resize and crop ------------------------------

/// 1000 class names "c0000".."c0999" with synset-like ids, as an index file would give.
sdsgsm::ClassNames thousand_classes() {
  sdsgsm::ClassNames c;
  for (int k = 0; k < 1000; ++k) {
    c.names.push_back(fmt::format("c{:04d}", k));
    c.ids.push_back(fmt::format("n{:08d}", 1000 + k));
  }
  return c;
}

/// CIFAR-10's class names, as --classes would give them.
sdsgsm::ClassNames cifar_class_names() {
  sdsgsm::ClassNames c;
  c.names = sdsgsm::cifar10_classes();
  return c;
}

sdsgsm::DataOptions with_classes(sdsgsm::ClassNames c, bool given = true) {
  sdsgsm::DataOptions o;
  o.classes = std::move(c);
  o.classes_given = given;
  return o;
}

TEST(ClassNames, TextJsonMapJsonListAndSynsetWords) {
  TempDir tmp;
  write_bytes(tmp / "names.txt", "tench\ngoldfish\r\ngreat white shark\n\n");
  auto t = sdsgsm::read_class_names(tmp / "names.txt");
  EXPECT_EQ(t.names, (std::vector<std::string>{"tench", "goldfish", "great white shark"}));
  EXPECT_TRUE(t.ids.empty());
  // imagenet_class_index.json's layout; keys out of order are put in index order.
  write_bytes(tmp / "index.json",
              R"({"1": ["n01443537", "goldfish"], "0": ["n01440764", "tench"], "2": ["n01484850", "great_white_shark"]})");
  auto j = sdsgsm::read_class_names(tmp / "index.json");
  EXPECT_EQ(j.names, (std::vector<std::string>{"tench", "goldfish", "great_white_shark"}));
  EXPECT_EQ(j.ids, (std::vector<std::string>{"n01440764", "n01443537", "n01484850"}));
  write_bytes(tmp / "list.json", R"(["cat", "dog"])");
  EXPECT_EQ(sdsgsm::read_class_names(tmp / "list.json").names, (std::vector<std::string>{"cat", "dog"}));
  write_bytes(tmp / "synset_words.txt", "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n");
  auto w = sdsgsm::read_class_names(tmp / "synset_words.txt");
  EXPECT_EQ(w.names, (std::vector<std::string>{"tench", "goldfish"}));
  EXPECT_EQ(w.ids, (std::vector<std::string>{"n01440764", "n01443537"}));
}

TEST(ClassNames, BadFilesAreOneLineErrors) {
  TempDir tmp;
  write_bytes(tmp / "gap.json", R"({"0": "a", "2": "c"})");
  write_bytes(tmp / "blank.txt", "a\n\nc\n");
  write_bytes(tmp / "broken.json", R"({"0": )");
  write_bytes(tmp / "entry.json", R"({"0": 7})");
  write_bytes(tmp / "empty.txt", "\n\n");
  for (const auto& [file, part] : std::vector<std::pair<std::string, std::string>>{
           {"gap.json", "index 1 is missing"},
           {"blank.txt", "line 2 is empty"},
           {"broken.json", "not valid JSON"},
           {"entry.json", "entry 0 must be a name or [id, name]"},
           {"empty.txt", "names no class"},
           {"absent.txt", "does not exist"}}) {
    const fs::path path = tmp / file;  // a structured binding cannot be captured before C++20
    std::string msg = error_message([&] { sdsgsm::read_class_names(path); });
    EXPECT_TRUE(Contains(msg, file)) << msg;
    EXPECT_TRUE(Contains(msg, part)) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ImageFolder, FiveClassFolderOfAThousandClassModelGetsTheModelsLabels) {
  TempDir tmp;
  // Named by class name (one folder in another case), sorted folder order: c0007, C0123, c0500, c0998, c0999.
  const std::vector<std::pair<std::string, int64_t>> folders = {
      {"c0999", 999}, {"c0007", 7}, {"c0500", 500}, {"C0123", 123}, {"c0998", 998}};
  int id = 0;
  for (const auto& [name, k] : folders) write_png(tmp / name / "a.png", id++, 6, 4);
  auto o = with_classes(thousand_classes());
  Dataset ds = sdsgsm::read_image_folder(tmp.path(), o);
  EXPECT_EQ(label_vector(ds.labels), (std::vector<int64_t>{123, 7, 500, 998, 999}));
  EXPECT_EQ(ds.num_classes(), 1000);
  EXPECT_EQ(ds.classes[123], "c0123");
  // The streaming source agrees.
  auto src = sdsgsm::open_image_source(tmp.path(), Split::Test, 1, 3, o);
  EXPECT_EQ(label_vector(src->read(0, 3).second), (std::vector<int64_t>{7, 500, 998}));
  EXPECT_EQ(src->classes().size(), 1000u);
}

TEST(ImageFolder, SynsetFoldersWithAnIndexFile) {
  TempDir tmp;
  write_bytes(tmp / "imagenet_class_index.json",
              R"({"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"], "2": ["n01484850", "great_white_shark"]})");
  write_png(tmp / "val" / "n01484850" / "x.png", 0, 4, 4);
  write_png(tmp / "val" / "n01440764" / "y.png", 1, 4, 4);
  sdsgsm::DataOptions o = with_classes(sdsgsm::read_class_names(tmp / "imagenet_class_index.json"));
  Dataset ds = sdsgsm::read_image_folder(tmp / "val", o);
  EXPECT_EQ(label_vector(ds.labels), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"tench", "goldfish", "great_white_shark"}));
}

TEST(ImageFolder, OneClassFolderWithTheZooNames) {
  TempDir tmp;
  write_png(tmp / "cat" / "a.png", 0, 4, 4);
  write_png(tmp / "cat" / "b.png", 1, 4, 4);
  // Names the model knows (not given with --classes) apply when a folder matches one.
  const sdsgsm::ClassNames cifar = cifar_class_names();
  Dataset ds = sdsgsm::read_image_folder(tmp.path(), with_classes(cifar, false));
  EXPECT_EQ(label_vector(ds.labels), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(ds.classes, sdsgsm::cifar10_classes());
  // A folder matching none of them is read as before (sorted folder index).
  TempDir other;
  write_png(other / "kitten" / "a.png", 0, 4, 4);
  Dataset legacy = sdsgsm::read_image_folder(other.path(), with_classes(cifar, false));
  EXPECT_EQ(label_vector(legacy.labels), (std::vector<int64_t>{0}));
  EXPECT_EQ(legacy.classes, (std::vector<std::string>{"kitten"}));
}

TEST(ImageFolder, UnknownOrAmbiguousFolderNamesAreErrors) {
  TempDir tmp;
  write_png(tmp / "cat" / "a.png", 0, 4, 4);
  write_png(tmp / "kitten" / "a.png", 0, 4, 4);
  const sdsgsm::ClassNames cifar = cifar_class_names();
  for (bool given : {true, false}) {
    std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp.path(), with_classes(cifar, given)); });
    EXPECT_TRUE(Contains(msg, "sub-folder: 'kitten' is none of the 10 classes")) << msg;
    EXPECT_TRUE(Contains(msg, "airplane, automobile, bird, cat, deer, ...")) << msg;
    EXPECT_EQ(Contains(msg, "--classes FILE"), !given) << msg;
  }
  TempDir two;
  write_png(two / "crane" / "a.png", 0, 4, 4);
  sdsgsm::ClassNames cranes;
  cranes.names = {"crane", "crane"};
  cranes.ids = {"n02012849", "n03126707"};
  std::string msg = error_message([&] { sdsgsm::read_image_folder(two.path(), with_classes(cranes)); });
  EXPECT_TRUE(Contains(msg, "'crane' names more than one of the 2 classes")) << msg;
}

TEST(ImageList, CsvWithHeaderIndicesNamesAndRelativePaths) {
  TempDir tmp;
  write_png(tmp / "imgs" / "a.png", 0, 4, 4);
  write_png(tmp / "imgs" / "b.png", 1, 4, 4);
  write_png(tmp / "elsewhere" / "c.png", 2, 4, 4);
  write_bytes(tmp / "lists" / "list.csv",
              "path,label\r\n"
              "../imgs/b.png,5\n"
              "# a comment\n"
              "\n" +
                  (tmp / "elsewhere" / "c.png").string() + ", Dog\n" + "../imgs/a.png,airplane\n");
  const sdsgsm::ClassNames cifar = cifar_class_names();
  Dataset ds = sdsgsm::open_dataset(tmp / "lists" / "list.csv", Split::Test, 0, -1, with_classes(cifar, false));
  EXPECT_EQ(label_vector(ds.labels), (std::vector<int64_t>{5, 5, 0}));
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.images[0][0][1][2].item<int>(), png_pixel(1, 2, 1, 0));
  EXPECT_EQ(ds.images[1][2][3][0].item<int>(), png_pixel(2, 0, 3, 2));
  EXPECT_EQ(ds.classes, sdsgsm::cifar10_classes());
  // Indices alone need no names.
  write_bytes(tmp / "idx.csv", "imgs/a.png,4\nimgs/b.png,0\n");
  Dataset plain = sdsgsm::open_dataset(tmp / "idx.csv", Split::Test);
  EXPECT_EQ(label_vector(plain.labels), (std::vector<int64_t>{4, 0}));
  EXPECT_TRUE(plain.classes.empty());
}

TEST(ImageList, BadRowsNameTheLine) {
  TempDir tmp;
  write_png(tmp / "a.png", 0, 4, 4);
  const sdsgsm::ClassNames cifar = cifar_class_names();
  const auto o = with_classes(cifar);
  for (const auto& [rows, part] : std::vector<std::pair<std::string, std::string>>{
           {"a.png,1\na.png\n", "line 2: expected 'path,label', got 'a.png'"},
           {"a.png,1\na.png,12\n", "line 2: label 12 is beyond the 10 classes (0..9)"},
           {"a.png,-1\n", "line 1: label -1 is negative"},
           {"a.png,1\na.png,kitten\n", "line 2: label: 'kitten' is none of the 10 classes of --classes"},
           {"a.png,1\nmissing.png,1\n", "missing.png"},
           {"path,label\n", "lists no image"}}) {
    write_bytes(tmp / "l.csv", rows);
    std::string msg = error_message([&] { sdsgsm::open_dataset(tmp / "l.csv", Split::Test, 0, -1, o); });
    EXPECT_TRUE(Contains(msg, part)) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  write_bytes(tmp / "names.csv", "a.png,cat\n");
  std::string msg = error_message([&] { sdsgsm::open_dataset(tmp / "names.csv", Split::Test); });
  EXPECT_TRUE(Contains(msg, "line 1: label 'cat' is not a class index, and the model's class names are unknown")) << msg;
}

TEST(ImageFolder, ResizeAndCropGiveOneSizeFromMixedSizes) {
  TempDir tmp;
  write_png(tmp / "a" / "wide.png", 0, 40, 20);
  write_png(tmp / "a" / "tall.png", 1, 15, 30);
  write_png(tmp / "b" / "square.png", 2, 16, 16);
  // Without --resize/--crop: an error saying what to pass.
  std::string msg = error_message([&] { sdsgsm::read_image_folder(tmp.path()); });
  EXPECT_TRUE(Contains(msg, "pass --resize N and/or --crop N")) << msg;
  sdsgsm::DataOptions o;
  o.resize = 10;
  msg = error_message([&] { sdsgsm::read_image_folder(tmp.path(), o); });
  EXPECT_TRUE(Contains(msg, "after --resize")) << msg;
  EXPECT_TRUE(Contains(msg, "add --crop N")) << msg;
  // The short side to N, the long side in proportion (truncated), then the centre crop.
  EXPECT_EQ(sdsgsm::read_image(tmp / "a" / "wide.png", o).sizes(), (std::vector<int64_t>{3, 10, 20}));
  EXPECT_EQ(sdsgsm::read_image(tmp / "a" / "tall.png", o).sizes(), (std::vector<int64_t>{3, 20, 10}));
  o.crop = 8;
  Dataset ds = sdsgsm::read_image_folder(tmp.path(), o);
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{3, 3, 8, 8}));
  // Crop alone cuts the centre pixels unchanged: 40x20 -> columns 16..23, rows 6..13.
  sdsgsm::DataOptions c;
  c.crop = 8;
  auto wide = sdsgsm::read_image(tmp / "a" / "wide.png", c);
  EXPECT_EQ(wide[1][0][0].item<int>(), png_pixel(0, 16, 6, 1));
  EXPECT_EQ(wide[2][7][7].item<int>(), png_pixel(0, 23, 13, 2));
  // A uniform image stays uniform through the antialiased resize.
  std::vector<uint8_t> grey(30 * 50 * 3, 77);
  fs::create_directories(tmp / "u");
  ASSERT_NE(stbi_write_png((tmp / "u" / "g.png").string().c_str(), 50, 30, 3, grey.data(), 50 * 3), 0);
  sdsgsm::DataOptions r;
  r.resize = 7;
  auto g = sdsgsm::read_image(tmp / "u" / "g.png", r);
  EXPECT_EQ(g.sizes(), (std::vector<int64_t>{3, 7, 11}));
  EXPECT_EQ(g.min().item<int>(), 77);
  EXPECT_EQ(g.max().item<int>(), 77);
  // Too small for the crop.
  c.crop = 17;
  msg = error_message([&] { sdsgsm::read_image(tmp / "b" / "square.png", c); });
  EXPECT_TRUE(Contains(msg, "square.png' is 16x16, smaller than --crop 17")) << msg;
  // Negative sizes and offsets: the flag's own check, before any file is read.
  sdsgsm::DataOptions neg;
  neg.crop = -2;
  EXPECT_EQ(error_message([&] { sdsgsm::open_image_source(tmp.path(), Split::Test, 0, -1, neg); }),
            "--crop must be >= 0 (got -2)");
  neg.resize = -1;
  EXPECT_EQ(error_message([&] { sdsgsm::open_image_source(tmp.path(), Split::Test, 0, -1, neg); }),
            "--resize must be >= 0 (got -1)");
  EXPECT_EQ(error_message([&] { sdsgsm::open_image_source(tmp.path(), Split::Test, -3, -1, c); }),
            "--offset must be >= 0 (got -3)");
}

}  // namespace
