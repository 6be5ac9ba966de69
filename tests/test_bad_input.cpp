// The bad-input suite: bad data, models, options, output folders and resume states given to the
// command-line tool. Every case must end with a non-zero exit, exactly one stderr line
// "sdsgsm: error: ..." naming the culprit, and no output folder (nor partial or temporary folder)
// left behind.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/script.h>

#include "sdsgsm/models.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm_test::Contains;
using sdsgsm_test::shell_quote;
using sdsgsm_test::TempDir;
using sdsgsm_test::write_bytes;
namespace fs = std::filesystem;

struct Case {
  std::string name;
  std::string args;     ///< after `sdsgsm --threads 1 -q`; {D} is the folder of the files below
  std::string culprit;  ///< what the error line must name
};

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int> labels;
    for (int i = 0; i < 12; ++i) labels.push_back(i % 10);
    good_data = "batch.bin";
    write_bytes(tmp_ / "batch.bin", sdsgsm_test::make_cifar_bytes(labels));
    torch::manual_seed(0);
    sdsgsm::save_network(sdsgsm::make_network("resnet20"), "resnet20", 10, tmp_ / "net.pt");
    // Bad data.
    write_bytes(tmp_ / "empty.bin", "");
    write_bytes(tmp_ / "truncated.bin", sdsgsm_test::make_cifar_bytes({1, 2, 3}).substr(0, 3073 * 2 + 100));
    std::string bad_label = sdsgsm_test::make_cifar_bytes({1, 2, 3});
    bad_label[3073] = 12;
    write_bytes(tmp_ / "badlabel.bin", bad_label);
    fs::create_directories(tmp_ / "nobins");
    write_bytes(tmp_ / "nobins" / "readme.txt", "no CIFAR files here");
    write_bytes(tmp_ / "imgs" / "cat" / "broken.png", "\x89PNG\r\n\x1a\n but not really a PNG");
    write_bytes(tmp_ / "imgs" / "dog" / "also.png", "not an image at all");
    // A BMP header claiming 3 x 4,653,127 pixels (found by fuzz_image: 24 s in stb_image).
    fs::create_directories(tmp_ / "tall" / "cat");
    fs::copy_file(fs::path(SDSGSM_SOURCE_DIR) / "fuzz" / "corpus" / "image" / "bmp-tall-slow.bmp",
                  tmp_ / "tall" / "cat" / "a.bmp");
    // A 118-byte PNG whose IDAT chunk claims 688 MB (found by fuzz_image: stb_image reserved it).
    fs::create_directories(tmp_ / "idat" / "cat");
    fs::copy_file(fs::path(SDSGSM_SOURCE_DIR) / "fuzz" / "corpus" / "image" / "png-huge-idat.png",
                  tmp_ / "idat" / "cat" / "a.png");
    // Bad models.
    write_bytes(tmp_ / "junk.pt", std::string(4096, '\x42'));
    write_bytes(tmp_ / "empty.pt", "");
    write_bytes(tmp_ / "text.pt", "def forward(self, x): return x\n");
    fs::create_directories(tmp_ / "modeldir.pt");
    {
      torch::jit::Module m(c10::QualifiedName("__torch__.OneDim"));
      m.register_parameter("w", torch::ones({1}), false);
      m.define("def forward(self, x):\n    return x.mean(dim=[1, 2, 3]) * self.w\n");
      m.save((tmp_ / "onedim.pt").string());
      torch::jit::Module wrong(c10::QualifiedName("__torch__.WrongInput"));
      wrong.register_parameter("w", torch::ones({5, 7}), false);
      wrong.define("def forward(self, x):\n    return torch.matmul(x, self.w)\n");
      wrong.save((tmp_ / "wronginput.pt").string());
    }
    sdsgsm::save_network(sdsgsm::make_network("vgg7bn", 5), "vgg7bn", 5, tmp_ / "fiveclass.pt");
    // A damaged TorchScript archive on which LibTorch's parser throws std::runtime_error (found by
    // fuzz_model; it used to escape as a multi-line message, and abort the fuzzer).
    fs::copy_file(fs::path(SDSGSM_SOURCE_DIR) / "fuzz" / "corpus" / "model" / "parser-error.pt", tmp_ / "damaged.pt");
    // One on which LibTorch's unpickler crashes (SIGSEGV): refused first by the CRC-32 check.
    fs::copy_file(fs::path(SDSGSM_SOURCE_DIR) / "fuzz" / "corpus" / "model" / "unpickler-segv.pt", tmp_ / "segv.pt");
    // One whose zeroed end record hid its damaged entries from that check (found by fuzz_model).
    fs::copy_file(fs::path(SDSGSM_SOURCE_DIR) / "fuzz" / "corpus" / "model" / "end-record-hides-entries.pt",
                  tmp_ / "hidden.pt");
    // Sound checksums, but a class constant without its annotation: LibTorch's TorchScript parser
    // crashes (SIGSEGV) on it; loaded first in a child process (found by fuzz_model).
    fs::copy_file(fs::path(SDSGSM_SOURCE_DIR) / "fuzz" / "corpus" / "model" / "parser-segv-unannotated-constant.pt",
                  tmp_ / "crafted.pt");
    // Output folders.
    write_bytes(tmp_ / "afile", "x");
    fs::create_directories(tmp_ / "mine");
    write_bytes(tmp_ / "mine" / "keep.txt", "precious");
    // Resume states: a partial folder whose state is corrupt.
    fs::create_directories(tmp_ / ".corrupt.partial");
    write_bytes(tmp_ / ".corrupt.partial" / "run.json", "{ this is not json");
    // Valid JSON of the wrong shape (found by fuzz_state: it escaped as a JSON library exception).
    fs::create_directories(tmp_ / ".number.partial");
    write_bytes(tmp_ / ".number.partial" / "run.json", "46");
    fs::create_directories(tmp_ / ".badtypes.partial");
    write_bytes(tmp_ / ".badtypes.partial" / "run.json", "{\"fingerprint\": 12, \"configuration\": []}");
  }

  sdsgsm_test::CommandResult sdsgsm(const std::string& args) {
    return sdsgsm_test::run_shell(shell_quote(SDSGSM_TEST_BINARY) + " --threads 1 -q " + args, tmp_.path(), tmp_.path());
  }

  /// Entries of the folder that were not there after SetUp.
  std::vector<std::string> new_entries(const std::vector<std::string>& before) {
    std::vector<std::string> extra;
    for (const auto& e : fs::directory_iterator(tmp_.path())) {
      std::string n = e.path().filename().string();
      if (std::find(before.begin(), before.end(), n) == before.end()) extra.push_back(n);
    }
    return extra;
  }
  std::vector<std::string> entries() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(tmp_.path())) names.push_back(e.path().filename().string());
    return names;
  }

  void check(const Case& c) {
    SCOPED_TRACE(c.name + ": sdsgsm " + c.args);
    auto before = entries();
    auto r = sdsgsm(c.args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_LT(r.exit_code, 128) << "killed by a signal: a crash";
    auto lines = sdsgsm_test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << "stderr:\n" << r.err;
    EXPECT_EQ(lines[0].rfind("sdsgsm: error: ", 0), 0u) << lines[0];
    EXPECT_TRUE(Contains(lines[0], c.culprit));
    EXPECT_EQ(new_entries(before), std::vector<std::string>{}) << "left behind";
  }

  std::string good_data;
  TempDir tmp_;
};

const std::string kModel = "--model net.pt ";
const std::string kData = "--data batch.bin --count 12 ";
const std::string kOut = "--out out ";
const std::string kRun = "attack " + kModel + kData + kOut;

SLOW_SUITE(BadInput);

TEST_F(BadInput, Data) {
  for (const Case& c : std::vector<Case>{
           {"missing data", "attack " + kModel + "--data nowhere.bin " + kOut, "nowhere.bin"},
           {"empty file", "attack " + kModel + "--data empty.bin " + kOut, "empty.bin"},
           {"truncated file", "attack " + kModel + "--data truncated.bin " + kOut, "truncated.bin"},
           {"label out of range", "attack " + kModel + "--data badlabel.bin --count 3 " + kOut, "badlabel.bin"},
           {"folder without CIFAR files", "attack " + kModel + "--data nobins " + kOut, "nobins"},
           {"corrupt images", "attack " + kModel + "--data imgs --count 2 " + kOut, "imgs/"},
           {"image header claiming millions of rows", "attack " + kModel + "--data tall --count 1 " + kOut,
            "tall/cat/a.bmp' says it is 3x4653127 pixels"},
           {"PNG chunk longer than the file", "attack " + kModel + "--data idat --count 1 " + kOut,
            "idat/cat/a.png' is a damaged PNG: its chunk 'IDAT' claims 687865856 bytes, the file has 77 left"},
           {"count beyond the data", "attack " + kModel + "--data batch.bin --count 50 " + kOut, "holds 12 images"},
           {"offset beyond the data", "attack " + kModel + "--data batch.bin --offset 20 " + kOut, "offset"},
           {"negative offset", "attack " + kModel + "--data batch.bin --offset -3 " + kOut, "offset"},
           {"unknown split", "eval " + kModel + "--data batch.bin --split validation", "--split"},
           {"eval on a missing folder", "eval " + kModel + "--data nowhere", "nowhere"},
           {"data verify on a file", "data verify batch.bin", "batch.bin"},
       }) {
    check(c);
  }
}

// A user's own images: class names, CSV lists and sizes (each file made here, before the check).
TEST_F(BadInput, OwnImages) {
  sdsgsm_test::write_png(tmp_ / "own" / "cat" / "a.png", 0, 32, 32);
  sdsgsm_test::write_png(tmp_ / "own" / "kitten" / "a.png", 1, 32, 32);
  sdsgsm_test::write_png(tmp_ / "mixed" / "cat" / "a.png", 0, 32, 32);
  sdsgsm_test::write_png(tmp_ / "mixed" / "dog" / "b.png", 1, 40, 30);
  write_bytes(tmp_ / "names.txt", "airplane\ncat\n\ndog\n");
  write_bytes(tmp_ / "gap.json", R"({"0": "cat", "5": "dog"})");
  write_bytes(tmp_ / "rows.csv", "path,label\nmixed/cat/a.png,3\nmixed/dog/b.png\n");
  write_bytes(tmp_ / "beyond.csv", "mixed/cat/a.png,cat\nmixed/cat/a.png,12\n");
  for (const Case& c : std::vector<Case>{
           {"folder naming no class", "attack " + kModel + "--data own --count 2 " + kOut,
            "sub-folder: 'kitten' is none of the 10 classes the model knows"},
           {"mixed sizes without --resize", "attack " + kModel + "--data mixed --count 2 " + kOut,
            "b.png' is 40x30, but the first image is 32x32: pass --resize N and/or --crop N"},
           {"crop larger than the images", "attack " + kModel + "--data mixed --crop 33 --count 2 " + kOut,
            "smaller than --crop 33"},
           {"class names with an empty line", "eval " + kModel + "--data own --classes names.txt", "line 3 is empty"},
           {"class index file with a gap", "eval " + kModel + "--data own --classes gap.json", "index 1 is missing"},
           {"missing class names file", "eval " + kModel + "--data own --classes nowhere.txt", "nowhere.txt"},
           {"CSV row without a label", "attack " + kModel + "--data rows.csv --resize 32 --crop 32 --count 2 " + kOut,
            "rows.csv' line 3: expected 'path,label'"},
           {"CSV label beyond the classes", "eval " + kModel + "--data beyond.csv", "line 2: label 12 is beyond the 10 classes"},
           {"negative resize", "eval " + kModel + "--data own --resize=-1", "--resize"},
       }) {
    check(c);
  }
}

TEST_F(BadInput, Models) {
  for (const Case& c : std::vector<Case>{
           {"missing model file", "attack --model nothere.pt " + kData + kOut, "nothere.pt"},
           {"unknown zoo name", "attack --model resnet99 " + kData + kOut, "resnet99"},
           {"junk bytes", "attack --model junk.pt " + kData + kOut, "junk.pt"},
           {"empty model file", "attack --model empty.pt " + kData + kOut, "empty.pt"},
           {"text file", "attack --model text.pt " + kData + kOut, "text.pt"},
           {"a folder", "attack --model modeldir.pt " + kData + kOut, "modeldir.pt"},
           {"one number per image", "attack --model onedim.pt " + kData + kOut, "onedim.pt"},
           {"fails on the input", "attack --model wronginput.pt " + kData + kOut, "wronginput.pt"},
           {"damaged TorchScript archive", "attack --model damaged.pt " + kData + kOut, "damaged.pt"},
           {"archive that crashes LibTorch", "attack --model segv.pt " + kData + kOut, "segv.pt' is not a model file"},
           {"export of a damaged archive", "export --model segv.pt --out o.pt", "fails its CRC-32"},
           {"archive whose end record hides its entries", "attack --model hidden.pt " + kData + kOut,
            "hidden.pt' is not a model file"},
           {"export of that archive", "export --model hidden.pt --out o.pt", "zip64 end record"},
           {"archive that crashes LibTorch's parser", "attack --model crafted.pt " + kData + kOut,
            "crafted.pt' is not a model file (neither sdsgsm weights nor TorchScript): LibTorch's reader crashes on it"},
           {"export of that archive", "export --model crafted.pt --out o.pt", "crafted.pt' is not a model file"},
           {"five classes on CIFAR-10", "attack --model fiveclass.pt " + kData + kOut, "has 5 output classes"},
           {"eval of junk", "eval --model junk.pt --data batch.bin", "junk.pt"},
           {"export of a TorchScript file", "export --model onedim.pt --out o.pt", "onedim.pt"},
           {"export of an unknown name", "export --model nosuch --out o.pt", "nosuch"},
       }) {
    check(c);
  }
}

TEST_F(BadInput, Options) {
  for (const Case& c : std::vector<Case>{
           {"unknown attack", "attack --attack nosuch " + kModel + kData + kOut, "nosuch"},
           {"negative eps", "attack --eps -0.1 " + kModel + kData + kOut, "--eps"},
           {"eps above 1", "attack --eps 2 " + kModel + kData + kOut, "--eps"},
           {"eps not a number", "attack --eps lots " + kModel + kData + kOut, "--eps"},
           {"eps divides by zero", "attack --eps 8/0 " + kModel + kData + kOut, "--eps"},
           {"zero steps", "attack --steps 0 " + kModel + kData + kOut, "--steps"},
           {"negative refine", "attack --refine -1 " + kModel + kData + kOut, "--refine"},
           {"one-level grid", "attack --attack ddn --levels 1 " + kModel + kData + kOut, "--levels"},
           {"zero alpha", "attack --alpha 0 " + kModel + kData + kOut, "--alpha"},
           {"negative decay", "attack --attack mifgsm --decay -1 " + kModel + kData + kOut, "--decay"},
           {"zero batch size", "attack --batch-size 0 " + kModel + kData + kOut, "--batch-size"},
           {"given target without a label", "attack --targeted given " + kModel + kData + kOut, "--target-label"},
           {"target label out of range", "attack --targeted given --target-label 12 " + kModel + kData + kOut, "12"},
           {"unknown target mode", "attack --targeted sideways " + kModel + kData + kOut, "--targeted"},
           {"8-bit early stop without early stop", "attack --attack sdsgsm --no-early-stop --early-stop-8bit " +
                                                       kModel + kData + kOut, "--early-stop-8bit"},
           {"rho of 0", "attack --attack sdsgsm --rho 0 " + kModel + kData + kOut, "--rho"},
           {"lambda above 1", "attack --attack sdsgsm --lambda 1.5 " + kModel + kData + kOut, "--lambda"},
           {"negative window", "attack --attack sdsgsm --window -1 " + kModel + kData + kOut, "--window"},
           {"unknown map", "attack --attack sdsgsm --map fuzzy " + kModel + kData + kOut, "--map"},
           {"unknown device", "attack --device tpu " + kModel + kData + kOut, "tpu"},
           {"apgd without restarts", "attack --attack apgd-ce --restarts 0 " + kModel + kData + kOut, "--restarts"},
           {"l1 fmn", "attack --attack fmn --norm 1 " + kModel + kData + kOut, "--norm 1"},
           {"unknown norm", "attack --attack apgd-ce --norm 3 " + kModel + kData + kOut, "--norm"},
           {"robust with an unbounded attack", "robust --attacks apgd-ce,ddn " + kModel + kData + kOut, "ddn"},
           {"robust without queries", "robust --queries 0 " + kModel + kData + kOut, "--queries"},
           {"robust with an unknown norm", "robust --norm 3 " + kModel + kData + kOut, "--norm"},
           {"robust with an empty radius", "robust --eps 8/255,,x " + kModel + kData + kOut, "--eps: item 2 of '8/255,,x' is empty"},
           {"robust with radii out of order", "robust --eps 8/255,4/255 " + kModel + kData + kOut, "strictly increasing"},
           {"robust with a negative radius", "robust --eps -1/255,4/255 " + kModel + kData + kOut, "--eps must be in (0,1]"},
           {"robust on missing data", "robust " + kModel + "--data nowhere.bin " + kOut, "nowhere.bin"},
           {"transfer of an unknown attack", "transfer --attacks nosuch --models net.pt " + kData, "nosuch"},
           {"transfer without models", "transfer --models , " + kData, "--models"},
           {"transfer on a missing model", "transfer --attacks fgsm --models gone.pt " + kData + kOut, "gone.pt"},
           {"unknown command", "attack-all " + kModel, "attack-all"},
           {"compare with an unknown attack", "compare --attacks fgsm,nope " + kModel + kData + kOut, "nope"},
       }) {
    check(c);
  }
}

TEST_F(BadInput, OutputFoldersAndResume) {
  for (const Case& c : std::vector<Case>{
           {"output in /proc", "attack " + kModel + kData + "--out /proc/sdsgsm-test/run", "/proc/sdsgsm-test/run"},
           {"output is a file", "attack " + kModel + kData + "--out afile", "afile"},
           {"output below a file", "attack " + kModel + kData + "--out afile/run", "afile/run"},
           {"output is someone else's folder", "attack " + kModel + kData + "--out mine", "mine"},
           {"corrupt resume state", "attack " + kModel + kData + "--out corrupt --resume", "corrupt"},
           {"resume state that is a number", "attack " + kModel + kData + "--out number --resume", "run.json' is missing or corrupt"},
           {"resume state of the wrong types", "attack " + kModel + kData + "--out badtypes --resume", "run.json' is missing or corrupt"},
           {"resume and restart together", "attack " + kModel + kData + "--out corrupt --resume --restart", "--restart"},
           {"a partial folder without --resume", "attack " + kModel + kData + "--out corrupt", "--resume"},
           {"eval json below a file", "eval " + kModel + "--data batch.bin --json afile/e.json", "afile/e.json"},
       }) {
    check(c);
  }
  // Someone else's folder is never touched.
  EXPECT_EQ(sdsgsm_test::read_bytes(tmp_ / "mine" / "keep.txt"), "precious");
}

}  // namespace
