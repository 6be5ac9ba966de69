// The attack and compare commands end to end on a small synthetic data set and model.
#include <cmath>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sdsgsm/models.hpp"
#include "sdsgsm/reproduce.hpp"
#include "sdsgsm/runner.hpp"
#include "sdsgsm/sdsgsm.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::TempDir;

namespace {

struct Fixture {
  TempDir dir;
  fs::path data, model;
  Fixture() {
    data = dir / "batch.bin";
    std::vector<int> labels;
    for (int i = 0; i < 12; ++i) labels.push_back(i % 10);
    sdsgsm_test::write_bytes(data, sdsgsm_test::make_cifar_bytes(labels));
    model = dir / "net.pt";
    torch::manual_seed(0);
    save_network(make_network("resnet20"), "resnet20", 10, model);
  }
  sdsgsm_test::CommandResult run(const std::string& args) {
    return sdsgsm_test::run_shell(std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q " + args, dir.path());
  }
  std::string common() const {
    return "--model " + model.string() + " --data " + data.string() + " --count 12 --batch-size 5 ";
  }
  /// Entries of the folder whose name starts with '.' (temporary folders left behind).
  int hidden_entries() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) n += e.path().filename().string()[0] == '.';
    return n;
  }
};

void expect_one_line_error(const sdsgsm_test::CommandResult& r, const std::string& part) {
  EXPECT_NE(r.exit_code, 0);
  auto lines = sdsgsm_test::split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_TRUE(Contains(lines[0], "sdsgsm: error: "));
  EXPECT_TRUE(Contains(lines[0], part));
}

}  // namespace

SLOW_SUITE(CliAttack);

TEST(CliAttack, WritesEveryOutputFile) {
  Fixture f;
  auto r = f.run("attack --attack mifgsm " + f.common() + "--out " + (f.dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"metrics.json", "samples.csv", "samples.pt", "timing.json", "sheet.png",
                           "adversarial/000000.pt", "adversarial/000001.pt", "adversarial/000002.pt"}) {
    EXPECT_TRUE(fs::is_regular_file(f.dir / "run" / name)) << name;
  }
  // No working files are left: per-batch results, the resume state.
  EXPECT_FALSE(fs::exists(f.dir / "run" / "batches"));
  EXPECT_FALSE(fs::exists(f.dir / "run" / "state.json"));
  EXPECT_FALSE(fs::exists(f.dir / "run" / "adversarial" / "000003.pt"));
  auto timing = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "run" / "timing.json"));
  EXPECT_GT(timing["images_per_second"].get<double>(), 0.0);
  EXPECT_GT(timing["peak_rss_mb_rank0"].get<double>(), 10.0);
  EXPECT_EQ(timing["ranks"], 1);
  EXPECT_EQ(timing["threads_per_rank"], 1);
  // The phases: the metrics (after the attack) are timed apart and inside the wall time.
  EXPECT_GT(timing["metrics_seconds"].get<double>(), 0.0);
  EXPECT_LT(timing["metrics_seconds"].get<double>(), timing["wall_seconds"].get<double>());
  EXPECT_EQ(timing["ddi_over_iterations"].get<double>(), 0.0);  // MI-FGSM has no DDI
  // The adversarial shards, read back in order, are the whole set within the budget.
  auto adv = read_adversarial(f.dir / "run");
  EXPECT_EQ(adv.sizes(), (std::vector<int64_t>{12, 3, 32, 32}));
  auto metrics = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "run" / "metrics.json"));
  EXPECT_EQ(metrics["count"], 12);
  EXPECT_EQ(metrics["attack_config"]["attack"], "mifgsm");
  EXPECT_NEAR(metrics["attack_config"]["eps"].get<double>(), 8.0 / 255, 1e-12);
  EXPECT_TRUE(metrics["summary"]["float"].contains("ssim_mean"));
  EXPECT_TRUE(metrics["summary"]["rounded_8bit"].contains("asr"));
  // Over the fooled images; null when this untrained model's few correct images are none fooled.
  const auto& linf_max = metrics["summary"]["float"]["linf_max"];
  if (!linf_max.is_null()) {
    EXPECT_LE(linf_max.get<double>(), 8.0 / 255 + 1e-6);
  }
  auto csv = sdsgsm_test::split_lines(sdsgsm_test::read_bytes(f.dir / "run" / "samples.csv"));
  EXPECT_EQ(csv.size(), 13u);
  EXPECT_TRUE(Contains(csv[0], "label,target,clean_pred,adv_pred,success,iterations,l2,linf"));
  // samples.csv and samples.pt hold the same columns (metrics.json names them) and values.
  {
    std::string header;
    for (const auto& name : metrics["sample_columns"]) header += (header.empty() ? "" : ",") + name.get<std::string>();
    EXPECT_EQ(csv[0], header);
    auto bytes = sdsgsm_test::read_bytes(f.dir / "run" / "samples.pt");
    auto pt = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toTensor();
    ASSERT_EQ(pt.sizes(), (std::vector<int64_t>{12, static_cast<int64_t>(metrics["sample_columns"].size())}));
    for (int64_t i = 0; i < 12; ++i) {
      std::stringstream row(csv[static_cast<size_t>(i + 1)]);
      std::string cell;
      for (int64_t c = 0; std::getline(row, cell, ','); ++c) {
        ASSERT_LT(c, pt.size(1));
        const double want = pt[i][c].item<double>();
        EXPECT_NEAR(std::stod(cell), want, 1e-5 * (1 + std::abs(want))) << "row " << i << " column " << c;
      }
    }
    // Every image's perturbation, fooled or not, is within the budget.
    int64_t linf = 0;
    while (metrics["sample_columns"][static_cast<size_t>(linf)] != "linf") ++linf;
    EXPECT_LE(pt.select(1, linf).max().item<double>(), 8.0 / 255 + 1e-6);
  }
  EXPECT_EQ(f.hidden_entries(), 0);
  // The shards and samples.pt are readable by PyTorch (Debian's python3-torch): the shards
  // concatenate to 12 x 3 x 32 x 32 floats in [0,1], samples.pt holds the 19 per-sample columns.
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0) {
    auto py = sdsgsm_test::run_shell(
        "/usr/bin/python3 -c \"import torch, glob; d = '" + (f.dir / "run").string() +
            "'; t = torch.cat([torch.load(p) for p in sorted(glob.glob(d + '/adversarial/*.pt'))]); "
            "s = torch.load(d + '/samples.pt'); "
            "print(tuple(t.shape), t.dtype, float(t.min()) >= 0, float(t.max()) <= 1, tuple(s.shape))\"",
        f.dir.path());
    EXPECT_EQ(py.exit_code, 0) << py.err;
    EXPECT_TRUE(Contains(py.out, "(12, 3, 32, 32) torch.float32 True True (12, 21)"));
  }
}

// timing.json's peak memory is the process's own, also when a large process launched it (as a
// Python user does): getrusage's ru_maxrss would report the launcher's 2,000 MB.
TEST(CliAttack, PeakMemoryIsTheProcesssOwn) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3-numpy";
  Fixture f;
  std::string cmd = std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q attack --attack fgsm " + f.common() + "--out " +
                    (f.dir / "run").string();
  auto r = sdsgsm_test::run_shell(
      "/usr/bin/python3 -c \"import numpy, subprocess, sys; a = numpy.ones(250 * 1000 * 1000); "
      "sys.exit(subprocess.run(sys.argv[1], shell=True).returncode)\" " + sdsgsm_test::shell_quote(cmd),
      f.dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto timing = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "run" / "timing.json"));
  EXPECT_GT(timing["peak_rss_mb_rank0"].get<double>(), 10.0);
  EXPECT_LT(timing["peak_rss_mb_rank0"].get<double>(), 1500.0);  // the launcher holds 2,000 MB
}

TEST(CliAttack, CompareWritesOneTable) {
  Fixture f;
  auto r = f.run("compare --attacks fgsm,pgd --steps 2 " + f.common() + "--out " + (f.dir / "cmp").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "| fgsm |"));
  EXPECT_TRUE(Contains(r.out, "| pgd |"));
  EXPECT_TRUE(fs::is_regular_file(f.dir / "cmp" / "compare.md"));
  EXPECT_TRUE(fs::is_regular_file(f.dir / "cmp" / "pgd" / "metrics.json"));
  auto j = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "cmp" / "compare.json"));
  EXPECT_EQ(j["results"].size(), 2u);
  // The curves and paired statistics of sdsgsm/curves.hpp: 4 curves per attack, one pair per basis.
  auto curves = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "cmp" / "curves.json"));
  EXPECT_EQ(curves.size(), 8u);
  auto paired = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "cmp" / "paired.json"));
  ASSERT_EQ(paired.size(), 2u);
  EXPECT_EQ(paired[0]["a"], "fgsm");
  EXPECT_EQ(paired[0]["b"], "pgd");
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "cmp" / "curves.csv"), "attack,curve,basis,x,asr\nfgsm,l2_budget,float,0,"));
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "cmp" / "paired.csv"), "\nfgsm,pgd,float,"));
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "cmp" / "compare.md"), "| fgsm | pgd | float |"));
  EXPECT_TRUE(Contains(r.out, "Paired l2 per image"));
  EXPECT_EQ(f.hidden_entries(), 0);
}

TEST(CliAttack, InvalidOptionsFailWithOneLineAndNoOutput) {
  Fixture f;
  const std::string out = "--out " + (f.dir / "bad").string();
  expect_one_line_error(f.run("attack --attack nosuch " + f.common() + out), "unknown attack 'nosuch'");
  expect_one_line_error(f.run("attack --eps -0.1 " + f.common() + out), "--eps");
  expect_one_line_error(f.run("attack --eps 8/0 " + f.common() + out), "--eps");
  expect_one_line_error(f.run("attack --steps 0 " + f.common() + out), "--steps");
  expect_one_line_error(f.run("attack --model " + f.model.string() + " --data " + f.data.string() + " --count 50 " + out),
                        "holds 12 images");
  expect_one_line_error(f.run("compare --attacks fgsm,nope " + f.common() + out), "unknown attack 'nope'");
  EXPECT_FALSE(fs::exists(f.dir / "bad"));
  expect_one_line_error(f.run("attack " + f.common() + "--out /proc/sdsgsm-test/run"), "/proc/sdsgsm-test/run");
  EXPECT_EQ(f.hidden_entries(), 0);
  // An existing folder that is not an sdsgsm output is never replaced.
  fs::create_directories(f.dir / "mine");
  sdsgsm_test::write_bytes(f.dir / "mine" / "keep.txt", "precious");
  expect_one_line_error(f.run("attack " + f.common() + "--out " + (f.dir / "mine").string()), "refusing");
  EXPECT_TRUE(fs::exists(f.dir / "mine" / "keep.txt"));
}

// A source smaller than a command's default --count is taken whole; an explicit --count beyond it
// stays an error; the default attack is SD-SGSM, as in Python.
TEST(CliAttack, DefaultCountTakesASmallerSourceWholeAndTheDefaultAttackIsSdsgsm) {
  Fixture f;
  const std::string model_data = "--model " + f.model.string() + " --data " + f.data.string() + " ";
  auto r = f.run("attack --steps 2 --batch-size 5 " + model_data + "--out " + (f.dir / "all").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "all" / "metrics.json"));
  EXPECT_EQ(m["count"], 12);
  EXPECT_EQ(m["summary"]["images"], 12);
  EXPECT_EQ(m["attack_config"]["attack"], "sdsgsm");
  // From an offset: the images after it.
  r = f.run("attack --attack fgsm --offset 4 " + model_data + "--out " + (f.dir / "rest").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "rest" / "metrics.json"))["count"], 8);
  // Another command with a default --count (saliency's 16): the same rule.
  r = f.run("saliency " + model_data + "--out " + (f.dir / "sal").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "sal" / "saliency.json"))["count"], 12);
  // Asked for explicitly, more than the source holds, or none: one line, no output.
  expect_one_line_error(f.run("attack --count 13 " + model_data + "--out " + (f.dir / "bad").string()),
                        "asked for 13 images from offset 0, but '" + f.data.string() + "' holds 12 images");
  expect_one_line_error(f.run("attack --count 0 " + model_data + "--out " + (f.dir / "bad").string()),
                        "--count must be >= 1 (got 0)");
  expect_one_line_error(f.run("transfer --count 0 --models " + f.model.string() + " --data " + f.data.string() +
                              " --out " + (f.dir / "bad").string()),
                        "--count must be >= 1 (got 0)");
  expect_one_line_error(f.run("attack --sheet -1 " + model_data + "--out " + (f.dir / "bad").string()),
                        "--sheet must be >= 0 (got -1)");
  EXPECT_FALSE(fs::exists(f.dir / "bad"));
  EXPECT_TRUE(Contains(f.run("attack --help").out, "--count INT=1000"));
  EXPECT_TRUE(Contains(f.run("attack --help").out, "--attack TEXT=sdsgsm"));
}

// A model that classifies none of the images correctly: ASR, distances and SSIM are n/a in print
// and null in metrics.json (never 0), with one warning line.
TEST(CliAttack, NoCorrectImageGivesNotApplicableAndAWarning) {
  Fixture f;
  // The same images, each labelled with a class the model does not predict for it.
  auto model = load_classifier(f.model.string());
  Dataset d = open_dataset(f.data, Split::Test);
  torch::Tensor pred;
  {
    torch::NoGradGuard ng;
    pred = model->forward(d.float_images(0, d.size())).argmax(1);
  }
  std::vector<int> wrong;
  for (int64_t i = 0; i < d.size(); ++i) wrong.push_back(static_cast<int>((pred[i].item<int64_t>() + 1) % 10));
  const fs::path data = f.dir / "wrong.bin";
  sdsgsm_test::write_bytes(data, sdsgsm_test::make_cifar_bytes(wrong));
  auto r = f.run("attack --attack ifgsm --steps 2 --model " + f.model.string() + " --data " + data.string() +
                 " --out " + (f.dir / "none").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "clean accuracy 0.00%, ASR n/a (8-bit n/a), l2 n/a, SSIM n/a, PSNR n/a dB")) << r.out;
  const auto warnings = sdsgsm_test::split_lines(r.err);
  ASSERT_EQ(warnings.size(), 1u) << r.err;
  EXPECT_TRUE(Contains(warnings[0], "the model classifies none of the 12 images correctly")) << r.err;
  auto m = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "none" / "metrics.json"));
  EXPECT_EQ(m["summary"]["clean_correct"], 0);
  for (const char* key : {"asr", "l2_mean", "l2_median", "linf_max", "ssim_mean", "psnr_mean"}) {
    EXPECT_TRUE(m["summary"]["float"][key].is_null()) << key;
    EXPECT_TRUE(m["summary"]["rounded_8bit"][key].is_null()) << key;
  }
  EXPECT_TRUE(m["summary"]["iterations_mean"].is_null());
  EXPECT_TRUE(Contains(m["warnings"].back().get<std::string>(), "classifies none of the 12 images"));
}

// When the warning is given, and its words.
TEST(CliAttack, FewCorrectImagesWarning) {
  EXPECT_EQ(few_correct_warning(12, 12), "");
  EXPECT_EQ(few_correct_warning(5, 5), "");    // a small run the user asked for, all correct
  EXPECT_EQ(few_correct_warning(10, 100), "");  // 10%, 10 images
  EXPECT_TRUE(Contains(few_correct_warning(9, 10), "only 9 of the 10 images correctly (90.0%)"));  // under 10
  EXPECT_EQ(few_correct_warning(1, 1), "");
  EXPECT_TRUE(Contains(few_correct_warning(0, 3), "classifies none of the 3 images correctly"));
  EXPECT_TRUE(Contains(few_correct_warning(99, 1000), "only 99 of the 1000 images correctly (9.9%)"));
  EXPECT_TRUE(Contains(few_correct_warning(2, 12), "only 2 of the 12 images correctly (16.7%)"));
  EXPECT_EQ(figure_or_na(std::nan(""), "{:.3f}"), "n/a");
  EXPECT_EQ(figure_or_na(0.25, "{:.3f}"), "0.250");
}

// attack --config: a run's metrics.json repeats it, byte for byte; flags beside it win; a file
// that is not a run's metrics.json is a one-line error.
TEST(CliAttack, ConfigRepeatsARunFromItsMetrics) {
  Fixture f;
  auto r = f.run("attack --attack sdsgsm --eps 6/255 --steps 3 --seed 7 --no-early-stop --window 8 --stride 4 --rho 0.1 "
                 "--beta 2 " + f.common() + "--out " + (f.dir / "a").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path metrics = f.dir / "a" / "metrics.json";
  r = f.run("attack --config " + metrics.string() + " --out " + (f.dir / "b").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "b" / "samples.pt"), sdsgsm_test::read_bytes(f.dir / "a" / "samples.pt"));
  EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "b" / "metrics.json"), sdsgsm_test::read_bytes(metrics));
  // A flag given beside the file wins over the file's value (here --steps and the early-stop form).
  r = f.run("attack --config=" + metrics.string() + " --steps 2 --early-stop --out " + (f.dir / "c").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto c = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "c" / "metrics.json"))["attack_config"];
  auto a = nlohmann::json::parse(sdsgsm_test::read_bytes(metrics))["attack_config"];
  EXPECT_EQ(c["steps"], 2);
  EXPECT_EQ(c["early_stop"], true);
  EXPECT_EQ(a["early_stop"], false);
  for (const char* key : {"attack", "eps", "seed", "rho", "beta", "ddi"}) EXPECT_EQ(c[key], a[key]) << key;
  // --early-stop-8bit beside a file that says no early stop turns it on, as on a plain command line.
  r = f.run("attack --config " + metrics.string() + " --steps 2 --early-stop-8bit --out " + (f.dir / "e").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto e = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "e" / "metrics.json"))["attack_config"];
  EXPECT_EQ(e["early_stop"], true);
  EXPECT_EQ(e["early_stop_8bit"], true);
  // Not a run's metrics.json, not JSON, no file: one line, no output.
  sdsgsm_test::write_bytes(f.dir / "other.json", "{\"x\": 1}");
  expect_one_line_error(f.run("attack --config " + (f.dir / "other.json").string() + " --out " + (f.dir / "d").string()),
                        "is not the metrics.json of an sdsgsm attack run");
  expect_one_line_error(f.run("attack --config " + (f.dir / "a" / "samples.csv").string() + " --out " + (f.dir / "d").string()),
                        "is not JSON");
  expect_one_line_error(f.run("attack --config " + (f.dir / "none.json").string() + " --out " + (f.dir / "d").string()),
                        "none.json");
  expect_one_line_error(f.run("attack --out " + (f.dir / "d").string() + " --config"), "--config needs a file");
  EXPECT_FALSE(fs::exists(f.dir / "d"));
}

// The flags come from the options' declarations: a word two option sets declare (--norm: the
// minimum-norm distance and APGD's ball) sets each family's own field, --SET.word one set's only,
// and a value of the wrong kind is one line naming the flag.
TEST(CliAttack, SharedWordsSetEachFamilysOwnOption) {
  Fixture f;
  auto config = [&](const std::string& args, const std::string& out) {
    auto r = f.run("attack " + args + " --steps 2 " + f.common() + "--out " + (f.dir / out).string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / out / "metrics.json"))["attack_config"];
  };
  // --norm: fmn minimises l_inf; APGD's ball is l2; an l_inf attack ignores it (its config names none).
  EXPECT_EQ(config("--attack fmn --norm inf", "fmn")["norm"], "linf");
  EXPECT_EQ(config("--attack apgd-ce --norm 2 --eps 0.5", "apgd")["norm"], "l2");
  EXPECT_FALSE(config("--attack ifgsm --norm 2", "ifgsm").contains("norm"));
  // The qualified forms set one family's field only.
  EXPECT_EQ(config("--attack fmn --minimum-norm.norm inf --budget.norm 2", "fmn2")["norm"], "linf");
  EXPECT_EQ(config("--attack apgd-ce --minimum-norm.norm inf", "apgd2")["norm"], "linf");
  expect_one_line_error(f.run("attack --attack ddn --norm-gamma 0.x " + f.common() + "--out " + (f.dir / "bad").string()),
                        "--norm-gamma: '0.x' is not a number");
  expect_one_line_error(f.run("attack --attack ddn --levels 2.5 " + f.common() + "--out " + (f.dir / "bad").string()),
                        "--levels: '2.5' is not an integer");
  EXPECT_FALSE(fs::exists(f.dir / "bad"));
  // The help lists both qualified forms.
  auto help = f.run("attack --help");
  EXPECT_TRUE(Contains(help.out, "--minimum-norm.norm"));
  EXPECT_TRUE(Contains(help.out, "--budget.norm"));
}

TEST(CliAttack, SweepWritesItsTablesAndRefusesTheEvaluationImages) {
  Fixture f;
  auto refused = f.run("sweep --model " + f.model.string() + " --data " + f.data.string() +
                       " --offset 0 --count 12 --out " + (f.dir / "sw").string());
  expect_one_line_error(refused, "evaluation images");
  EXPECT_FALSE(fs::exists(f.dir / "sw"));
  auto bad = f.run("sweep --model " + f.model.string() + " --data " + f.data.string() +
                   " --split train --offset 0 --count 12 --rho 0.2,abc --out " + (f.dir / "sw").string());
  expect_one_line_error(bad, "--rho");
  bad = f.run("sweep --model " + f.model.string() + " --data " + f.data.string() +
              " --split train --offset 0 --count 12 --stride 2,0 --out " + (f.dir / "sw").string());
  expect_one_line_error(bad, "--stride must be >= 1 (got 0)");
  EXPECT_FALSE(fs::exists(f.dir / "sw"));
  // The training split may be used from its first image; two window grids, two lambdas.
  auto r = f.run("sweep --model " + f.model.string() + " --data " + f.data.string() +
                 " --split train --offset 0 --count 12 --batch-size 5 --window 8,16 --lambda 0.4,0.8 --out " +
                 (f.dir / "sw").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "sw" / "sweep.json"));
  EXPECT_EQ(j["rows"].size(), 4u);
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "sw" / "sweep.md"), "| 16 | 16 | hard |"));
  EXPECT_TRUE(Contains(r.out, "Chosen"));
  EXPECT_EQ(f.hidden_entries(), 0);
}

TEST(CliAttack, ReproduceComparesTextbookTunedAndMinimumNormGroupsInBothRegimes) {
  Fixture f;
  // Tuned settings as 'sdsgsm tune' writes them: a tuned I-FGSM and a fine-grid SD-SGSM per regime.
  nlohmann::json tuned;
  for (const char* regime : {"fixed", "early_stop"}) {
    const bool es = std::string(regime) == "early_stop";
    nlohmann::json ifgsm = {{"variant", "ifgsm"}, {"step_factor", 0.5}, {"alpha", 8.0 / 255 / 3 * 0.5},
                            {"decay", 0.0},       {"early_stop", es}};
    nlohmann::json fine = SdsgsmOptions().set_rho(0.25).set_step_factor(1.0).to_json();
    fine["ddi"]["window"] = 4;
    fine["ddi"]["stride"] = 2;
    fine.update({{"variant", "sdsgsm"}, {"alpha", 0.0}, {"decay", 0.0}, {"early_stop", es}, {"windows", 225}});
    if (es) ifgsm["early_stop_8bit"] = fine["early_stop_8bit"] = true;
    tuned["regimes"][regime] = {{"ifgsm", ifgsm}, {"sdsgsm-fine", fine}, {"pgd", nullptr}};
  }
  sdsgsm_test::write_bytes(f.dir / "tuned.json", tuned.dump());
  auto r = f.run("reproduce --models " + f.model.string() + " --data " + f.data.string() +
                 " --count 12 --batch-size 5 --steps 3 --min-norm deepfool,fmn-linf --min-norm-count 6 --min-norm-steps 5"
                 " --eps-list 2/255,8/255 --eps-curve-count 6 --frontier-count 4 --defended '' --transfer '' --tuned " +
                 (f.dir / "tuned.json").string() + " --out " + (f.dir / "rep").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto md = sdsgsm_test::read_bytes(f.dir / "rep" / "results.md");
  for (const char* row : {"### Fixed iterations", "### Early stop", "### Minimum-norm attacks", "| textbook | FGSM |",
                          "| textbook | NI-FGSM |", "| textbook | PGD |", "| shipped defaults | SD-SGSM (defaults) |",
                          "| tuned | I-FGSM (tuned) |", "| SD-SGSM family, tuned | SD-SGSM (k 4 s 2) |",
                          "| minimum norm | deepfool |", "| minimum norm | fmn-linf |", "### Ablation",
                          "| early stop | SD-SGSM (k 4 s 2) | DDI, k 4 s 2 (225 windows) | tanh |",
                          "### Smallest eps per image", "### Paired l2 differences",
                          "### The saved adversarial: 8-bit l2 against model passes (4 images)", "| SD-SGSM + refine 20 |",
                          "| DDN 100 steps |", "| C&W 5 x 20 |", "| DeepFool |"}) {
    EXPECT_TRUE(Contains(md, row)) << row;
  }
  EXPECT_FALSE(Contains(md, "Not tuned"));
  auto j = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "rep" / "results.json"));
  ASSERT_EQ(j["models"].size(), 1u);
  const auto& rows = j["models"].begin().value()["rows"];
  // fixed: 5 textbook + defaults + 2 tuned; early stop: 4 textbook + defaults + 2 tuned; 2 minimum-norm
  ASSERT_EQ(rows.size(), 8u + 7u + 2u);
  int tuned_rows = 0;
  for (const auto& row : rows) {
    if (row["label"] == "I-FGSM (tuned)") {
      ++tuned_rows;
      EXPECT_NEAR(row["config"]["alpha"].get<double>(), 8.0 / 255 / 3 * 0.5, 1e-12);
      EXPECT_EQ(row["config"]["early_stop"], row["regime"] == "early_stop");
    }
    if (row["group"] == "minimum norm") {
      EXPECT_EQ(row["images"], 6);
    }
  }
  EXPECT_EQ(tuned_rows, 2);
  // Curves (l2 budget, SSIM floor, eps) and paired statistics per model, and the report.
  bool found = false;
  for (const auto& e : fs::directory_iterator(f.dir / "rep")) {
    if (!fs::is_directory(e.path())) continue;
    found = true;
    auto curves = sdsgsm_test::read_bytes(e.path() / "curves.csv");
    EXPECT_TRUE(Contains(curves, "early stop: I-FGSM (tuned),eps,float,"));
    EXPECT_TRUE(Contains(curves, "fixed: PGD,l2_budget,8bit,"));
    auto paired = nlohmann::json::parse(sdsgsm_test::read_bytes(e.path() / "paired.json"));
    EXPECT_GE(paired.size(), 2u * (7 + 6 + 2));
    EXPECT_TRUE(fs::is_regular_file(e.path() / "early_stop-I_FGSM__tuned_" / "min_eps.csv"));
    // The frontier: every point on the same 4 images (this untrained model may classify none of
    // them correctly, which leaves nothing to score).
    auto frontier = nlohmann::json::parse(sdsgsm_test::read_bytes(e.path() / "frontier.json"));
    EXPECT_GE(frontier.size(), 14u);
    for (const auto& p : frontier) {
      EXPECT_EQ(p["images"], 4);
      EXPECT_EQ(p["scored"], frontier[0]["scored"]);
      if (p["scored"].get<int64_t>() > 0) {
        EXPECT_GT(p["passes_mean"].get<double>(), 0.0) << p;
      }
    }
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(fs::is_regular_file(f.dir / "rep" / "report.html"));
  int metrics = 0;
  for (const auto& e : fs::recursive_directory_iterator(f.dir / "rep")) metrics += e.path().filename() == "metrics.json";
  EXPECT_EQ(metrics, 17);
  // Each run keeps the adversarials of its first batch only (3 batches of 5 images were written).
  int shards = 0;
  for (const auto& e : fs::recursive_directory_iterator(f.dir / "rep")) {
    if (e.path().parent_path().filename() == "adversarial") {
      ++shards;
      EXPECT_EQ(e.path().filename(), "000000.pt") << e.path();
    }
  }
  EXPECT_EQ(shards, 17);
  // The paper's claims beside ours, in claims.json and claims.md, and first on the page.
  const auto claims = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "rep" / "claims.json"));
  ASSERT_EQ(claims.size(), 5u);
  EXPECT_EQ(claims[0]["paper"], "99.9%");
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "rep" / "claims.md"), "| claim | paper | ours | verdict |"));
  const std::string page = sdsgsm_test::read_bytes(f.dir / "rep" / "report.html");
  EXPECT_LT(page.find("The paper's claims and ours"), page.find("<section id=\"g1\">"));
  EXPECT_EQ(f.hidden_entries(), 0);
  // Without tuned settings the tables say the comparison is not fair; a wrong file is one line.
  r = f.run("reproduce --models " + f.model.string() + " --data " + f.data.string() +
            " --count 6 --steps 2 --min-norm '' --eps-list '' --frontier-count 0 --defended '' --transfer '' --out " +
            (f.dir / "rep2").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "rep2" / "results.md"), "**Not tuned**"));
  sdsgsm_test::write_bytes(f.dir / "bad.json", "{\"rows\": 1}");
  expect_one_line_error(f.run("reproduce --models " + f.model.string() + " --data " + f.data.string() +
                              " --count 6 --tuned " + (f.dir / "bad.json").string() + " --out " +
                              (f.dir / "rep3").string()),
                        "not a tuned-settings file");
  expect_one_line_error(f.run("reproduce --models " + f.model.string() + " --data " + f.data.string() +
                              " --count 6 --min-norm foolbox --out " + (f.dir / "rep3").string()),
                        "--min-norm: unknown attack 'foolbox'");
}

TEST(CliAttack, ReproduceAddsTheStrengthTableTheEnsembleAndTheTransferMatrices) {
  Fixture f;
  const fs::path defended = f.dir / "defended.pt";
  torch::manual_seed(1);
  save_network(make_network("vgg7bn"), "vgg7bn", 10, defended);
  auto r = f.run("reproduce --models " + f.model.string() + " --defended " + defended.string() + " --data " +
                 f.data.string() +
                 " --count 12 --batch-size 5 --steps 3 --min-norm '' --frontier-count 0 --eps-list 2/255,8/255"
                 " --eps-curve-count 6 --strength-count 8 --robust-queries 20 --transfer fgsm,ifgsm,sdsgsm"
                 " --transfer-count 6 --out " + (f.dir / "rep").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string md = sdsgsm_test::read_bytes(f.dir / "rep" / "results.md");
  for (const char* part : {"(defended; 8 images", "| textbook | MI-FGSM |", "| shipped defaults | SD-SGSM (defaults) |",
                           "| shipped defaults | SD-IFGSM (defaults) |", "| shipped defaults | SGSM (defaults) |",
                           "| APGD | APGD-CE |", "| APGD | APGD-DLR |", "### ASR against eps (the first 6 images",
                           "| fixed: APGD-CE |", "### Robust accuracy under the ensemble (APGD-CE, APGD-T, FAB-T, Square 20 queries)",
                           "## Transfer between models (6 images, eps 8/255)", "\nfgsm: transfer ASR", "\nsdsgsm: transfer ASR"}) {
    EXPECT_TRUE(Contains(md, part)) << part;
  }
  // The compared model has no tuned settings here; the defended one needs none.
  const auto defended_part = md.substr(md.find("(defended;"));
  EXPECT_FALSE(Contains(defended_part, "**Not tuned**"));
  auto j = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "rep" / "results.json"));
  ASSERT_EQ(j["models"].size(), 2u);
  const auto& strength = j["models"][defended.string()];
  // 5 textbook + 3 of the SD-SGSM family + 2 APGD, fixed iterations, on the first 8 images.
  ASSERT_EQ(strength["rows"].size(), 10u);
  for (const auto& row : strength["rows"]) {
    EXPECT_EQ(row["images"], 8) << row["label"];
    EXPECT_EQ(row["regime"], "fixed");
    EXPECT_EQ(row["config"].value("early_stop", false), false) << row["label"];  // APGD has no early stop
  }
  // The ensemble: never above any member, nor above clean accuracy; its folder is in the report.
  const auto& robust = strength["robust"];
  EXPECT_EQ(robust["images"], 8);
  EXPECT_LE(robust["robust_accuracy"].get<double>(), robust["clean_accuracy"].get<double>());
  EXPECT_TRUE(fs::is_regular_file(f.dir / "rep" / reproduce_folder_name(defended.string()) / "robust" / "robust.csv"));
  EXPECT_FALSE(fs::exists(f.dir / "rep" / reproduce_folder_name(defended.string()) / "robust" / "batches"));
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "rep" / "report.html"), "robust accuracy <b>"));
  // Its curve, at eps/2 and eps by default: monotone, the last radius the figure above.
  const auto& curve = robust["curve"];
  ASSERT_EQ(curve.size(), 2u);
  EXPECT_NEAR(curve[0]["eps"].get<double>(), 4.0 / 255, 1e-12);
  EXPECT_NEAR(curve[1]["eps"].get<double>(), 8.0 / 255, 1e-12);
  EXPECT_GE(curve[0]["robust"].get<int64_t>(), curve[1]["robust"].get<int64_t>());
  EXPECT_LE(curve[0]["robust_accuracy"].get<double>(), robust["clean_accuracy"].get<double>());
  EXPECT_EQ(curve[1]["robust"], robust["robust"]);
  EXPECT_FALSE(curve[0].contains("seconds"));  // results.json holds no times
  EXPECT_TRUE(fs::is_regular_file(f.dir / "rep" / reproduce_folder_name(defended.string()) / "robust" / "robust_curve.csv"));
  EXPECT_TRUE(Contains(md, "| 4/255 |")) << md;
  EXPECT_TRUE(Contains(md, "\nAt eps 8/255: robust accuracy ")) << md;
  // Transfer: 3 attacks x 2 sources x 2 targets; the diagonal counts every correctly classified image.
  const auto& cells = j["transfer"];
  ASSERT_EQ(cells.size(), 12u);
  for (const auto& c : cells) {
    EXPECT_LE(c["fooled"].get<int64_t>(), c["counted"].get<int64_t>());
    EXPECT_LE(c["counted"].get<int64_t>(), 6);
  }
  EXPECT_TRUE(fs::is_regular_file(f.dir / "rep" / "transfer.md"));
  // A defended model that is also a compared one, and an attack with no fixed run: one line each.
  expect_one_line_error(f.run("reproduce --models " + f.model.string() + " --defended " + f.model.string() +
                              " --data " + f.data.string() + " --out " + (f.dir / "rep2").string()),
                        "is in --models too");
  expect_one_line_error(f.run("reproduce --models " + f.model.string() + " --transfer deepfool --data " +
                              f.data.string() + " --out " + (f.dir / "rep2").string()),
                        "--transfer: 'deepfool'");
  expect_one_line_error(f.run("reproduce --models " + f.model.string() + " --robust-eps 2/255,4/255 --data " +
                              f.data.string() + " --out " + (f.dir / "rep2").string()),
                        "--robust-eps: the last radius must be --eps (8/255), not '4/255'");
  expect_one_line_error(f.run("reproduce --models " + f.model.string() + " --robust-eps 8/255,4/255,8/255 --data " +
                              f.data.string() + " --out " + (f.dir / "rep2").string()),
                        "--robust-eps: the radii must be strictly increasing");
  EXPECT_EQ(f.hidden_entries(), 0);
}

TEST(CliAttack, SaliencyWritesMapsAndPicture) {
  Fixture f;
  auto r = f.run("saliency --model " + f.model.string() + " --data " + f.data.string() +
                 " --count 3 --window 8 --stride 8 --rho 0.25 --out " + (f.dir / "sal").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"saliency.png", "maps.pt", "domain.pt", "saliency.json"}) {
    EXPECT_TRUE(fs::is_regular_file(f.dir / "sal" / name)) << name;
  }
  auto j = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "sal" / "saliency.json"));
  EXPECT_EQ(j["windows"], 16);
  EXPECT_EQ(j["count"], 3);
  expect_one_line_error(f.run("saliency --model " + f.model.string() + " --data " + f.data.string() +
                              " --count 3 --window 40 --out " + (f.dir / "sal2").string()),
                        "--window 40 is larger than the 32x32 image");
}
