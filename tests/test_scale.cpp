// Evaluation that scales and survives: streaming sources, resume after SIGKILL with byte-identical
// outputs, refused resumes, bounded memory, MPI across ranks, and the --device option.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sdsgsm/data.hpp"
#include "sdsgsm/distributed.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/runner.hpp"
#include "test_util.hpp"

using namespace sdsgsm;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::TempDir;

namespace {

/// A CIFAR-10 folder whose training split spans five small files, plus a test file.
fs::path make_cifar_folder(const fs::path& dir) {
  const std::vector<int64_t> sizes = {3, 4, 2, 5, 1};
  int64_t first = 0;
  for (size_t f = 0; f < sizes.size(); ++f) {
    std::vector<int> labels;
    for (int64_t i = 0; i < sizes[f]; ++i) labels.push_back(static_cast<int>((first + i) % 10));
    sdsgsm_test::write_bytes(dir / fmt::format("data_batch_{}.bin", f + 1), sdsgsm_test::make_cifar_bytes(labels, first));
    first += sizes[f];
  }
  sdsgsm_test::write_bytes(dir / "test_batch.bin", sdsgsm_test::make_cifar_bytes({1, 2, 3}, 100));
  return dir;
}

struct CliFixture {
  TempDir dir;
  fs::path data, model;
  CliFixture(int images = 40, std::vector<int> labels = {}) {
    data = dir / "batch.bin";
    if (labels.empty()) {
      for (int i = 0; i < images; ++i) labels.push_back(i % 10);
    }
    sdsgsm_test::write_bytes(data, sdsgsm_test::make_cifar_bytes(labels));
    model = dir / "net.pt";
    torch::manual_seed(0);
    save_network(make_network("resnet20"), "resnet20", 10, model);
  }
  sdsgsm_test::CommandResult run(const std::string& args, const std::string& prefix = "") {
    return sdsgsm_test::run_shell(prefix + std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q " + args, dir.path());
  }
  std::string common(int count) const {
    return "--model " + model.string() + " --data " + data.string() + " --count " + std::to_string(count) + " ";
  }
};

bool mpirun_available() {
  return dist::built_with_mpi() && std::system("command -v mpirun >/dev/null 2>&1") == 0;
}

const std::string kMpirun = "mpirun --allow-run-as-root --oversubscribe -np 2 ";

}  // namespace

TEST(Sources, CifarSourceReadsAcrossFilesAsTheInMemoryReaderDoes) {
  TempDir tmp;
  auto dir = make_cifar_folder(tmp / "cifar");
  Dataset all = read_cifar10(dir, Split::Train);
  ASSERT_EQ(all.size(), 15);
  auto src = open_image_source(dir, Split::Train, 2, 11);  // images 2..12: files 1 to 4
  EXPECT_EQ(src->size(), 11);
  EXPECT_EQ(src->image_shape(), (std::vector<int64_t>{3, 32, 32}));
  for (int64_t start : {0, 1, 5, 9}) {
    const int64_t n = std::min<int64_t>(4, 11 - start);
    auto [images, labels] = src->read(start, n);
    EXPECT_TRUE(torch::equal(images, all.images.narrow(0, 2 + start, n))) << start;
    EXPECT_TRUE(torch::equal(labels, all.labels.narrow(0, 2 + start, n))) << start;
  }
  auto test = open_image_source(dir, Split::Test);
  EXPECT_TRUE(torch::equal(test->read(0, 3).first, read_cifar10(dir, Split::Test).images));
  EXPECT_TRUE(Contains(error_message([&] { src->read(8, 4); }), "holds 11 images"));
  EXPECT_TRUE(Contains(error_message([&] { open_image_source(dir, Split::Train, 3, 13); }), "holds 15 images"));
}

TEST(Sources, CifarSourceChecksSizesAtOnceAndLabelsWhenRead) {
  TempDir tmp;
  sdsgsm_test::write_bytes(tmp / "short.bin", sdsgsm_test::make_cifar_bytes({1, 2}).substr(0, 5000));
  EXPECT_TRUE(Contains(error_message([&] { open_image_source(tmp / "short.bin", Split::Test); }),
                       "not a multiple of the 3073-byte record"));
  sdsgsm_test::write_bytes(tmp / "bad.bin", sdsgsm_test::make_cifar_bytes({1, 2, 3, 42, 5}));
  auto src = open_image_source(tmp / "bad.bin", Split::Test);  // opens: labels are checked as read
  EXPECT_NO_THROW(src->read(0, 3));
  std::string msg = error_message([&] { src->read(2, 3); });
  EXPECT_TRUE(Contains(msg, "bad.bin"));
  EXPECT_TRUE(Contains(msg, "record 3 has label 42"));
}

TEST(Sources, FolderSourceDecodesBatchesAsTheInMemoryReaderDoes) {
  TempDir tmp;
  // Two classes of 4x3 PNGs written through the sheet writer's PNG path (stb).
  fs::create_directories(tmp / "imgs" / "cat");
  fs::create_directories(tmp / "imgs" / "dog");
  for (int i = 0; i < 5; ++i) {
    auto img = torch::full({3, 3, 4}, (i * 40) / 255.0);
    write_png(img, tmp / "imgs" / (i < 3 ? "cat" : "dog") / fmt::format("{}.png", i));
  }
  Dataset all = read_image_folder(tmp / "imgs");
  auto src = open_image_source(tmp / "imgs", Split::Test, 1, 4);
  EXPECT_EQ(src->classes(), (std::vector<std::string>{"cat", "dog"}));
  auto [images, labels] = src->read(1, 3);
  EXPECT_TRUE(torch::equal(images, all.images.narrow(0, 2, 3)));
  EXPECT_TRUE(torch::equal(labels, torch::tensor({0, 1, 1}, torch::kInt64)));
  // An image of another size is found when its batch is read, and named.
  write_png(torch::zeros({3, 5, 5}), tmp / "imgs" / "dog" / "9.png");
  auto src2 = open_image_source(tmp / "imgs", Split::Test);
  EXPECT_NO_THROW(src2->read(0, 5));
  EXPECT_TRUE(Contains(error_message([&] { src2->read(5, 1); }), "9.png' is 5x5"));
}

SLOW_SUITE(Resume);

TEST(Resume, SigkillMidRunThenResumeGivesByteIdenticalOutputs) {
  CliFixture f(40);
  // Slow enough to be caught mid-run: 20 batches of 2 images, 20 steps each.
  const std::string args = "attack --attack ifgsm --steps 20 --batch-size 2 " + f.common(40);
  auto straight = f.run(args + "--out " + (f.dir / "A").string());
  ASSERT_EQ(straight.exit_code, 0) << straight.err;

  // Run B is killed with SIGKILL as soon as its state shows two finished batches.
  const fs::path b = f.dir / "B", partial = f.dir / ".B.partial";
  std::string script = std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q " + args + "--out " + b.string() +
                       " & pid=$!\n"
                       "for i in $(seq 1 6000); do\n"
                       "  if grep -qE '\"batches_done\": ([2-9]|1[0-9])' " + (partial / "state.json").string() +
                       " 2>/dev/null; then kill -9 $pid; break; fi\n"
                       "  sleep 0.005\n"
                       "done\n"
                       "wait $pid; echo \"status $?\"\n";
  sdsgsm_test::write_bytes(f.dir / "kill.sh", script);
  auto killed = sdsgsm_test::run_shell("bash " + (f.dir / "kill.sh").string(), f.dir.path());
  ASSERT_TRUE(Contains(killed.out, "status 137")) << "the run was not killed mid-run: " << killed.out << killed.err;
  ASSERT_FALSE(fs::exists(b));
  ASSERT_TRUE(fs::exists(partial / "state.json"));
  auto state = nlohmann::json::parse(sdsgsm_test::read_bytes(partial / "state.json"));
  EXPECT_GE(state["batches_done"].get<int>(), 2);
  EXPECT_LT(state["batches_done"].get<int>(), 20);

  // The same command without --resume refuses to overwrite the interrupted run.
  auto refused = f.run(args + "--out " + b.string());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(Contains(refused.err, "interrupted run")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "--resume"));

  auto resumed = f.run(args + "--out " + b.string() + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_FALSE(fs::exists(partial));
  for (const char* name : {"samples.csv", "metrics.json", "samples.pt", "sheet.png"}) {
    EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "A" / name), sdsgsm_test::read_bytes(b / name)) << name;
  }
  for (int i = 0; i < 20; ++i) {
    auto shard = fmt::format("adversarial/{:06d}.pt", i);
    EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "A" / shard), sdsgsm_test::read_bytes(b / shard)) << shard;
  }
}

// A write that fails mid-run (here a file-size limit, as a full disk would): one error line, no
// half-written file, and the partial folder resumes to the same outputs as an uninterrupted run.
TEST(Resume, AFailedWriteLeavesAResumableRun) {
  CliFixture f(12);
  const std::string args = "attack --attack ifgsm --batch-size 5 " + f.common(12);
  auto straight = f.run(args + "--out " + (f.dir / "A").string());
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  ASSERT_GT(fs::file_size(f.dir / "A" / "sheet.png"), 64u * 1024) << "the sheet must exceed the limit";
  ASSERT_LT(fs::file_size(f.dir / "A" / "adversarial" / "000000.pt"), 64u * 1024);

  const fs::path b = f.dir / "B", partial = f.dir / ".B.partial";
  const std::string cmd = std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q " + args + "--out " + b.string();
  auto limited = sdsgsm_test::run_shell("bash -c " + sdsgsm_test::shell_quote("ulimit -f 64 && exec " + cmd), f.dir.path());
  EXPECT_NE(limited.exit_code, 0);
  EXPECT_LT(limited.exit_code, 128) << "killed by a signal";
  auto lines = sdsgsm_test::split_lines(limited.err);
  ASSERT_EQ(lines.size(), 1u) << limited.err;
  EXPECT_TRUE(Contains(lines[0], "sdsgsm: error: cannot write '" + (partial / "sheet.png").string() + "'"));
  EXPECT_FALSE(fs::exists(b));
  ASSERT_TRUE(fs::exists(partial / "state.json"));
  for (const auto& e : fs::recursive_directory_iterator(partial)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "half-written: " << e.path();
  }
  auto resumed = f.run(args + "--out " + b.string() + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_FALSE(fs::exists(partial));
  for (const char* name : {"samples.csv", "metrics.json", "samples.pt", "sheet.png", "adversarial/000002.pt"}) {
    EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "A" / name), sdsgsm_test::read_bytes(b / name)) << name;
  }
}

TEST(Resume, ChangedConfigurationIsRefusedAndRestartStartsOver) {
  CliFixture f(12);
  const fs::path out = f.dir / "R", partial = f.dir / ".R.partial";
  // A partial folder whose recorded configuration is another one.
  const std::string args = "attack --attack ifgsm --steps 2 --batch-size 4 " + f.common(12);
  sdsgsm_test::write_bytes(partial / "run.json", R"({"fingerprint": "0123", "configuration": {}})");
  auto changed = f.run(args + "--out " + out.string() + " --resume");
  EXPECT_NE(changed.exit_code, 0);
  EXPECT_TRUE(Contains(changed.err, "cannot resume")) << changed.err;
  EXPECT_TRUE(Contains(changed.err, "--restart"));
  EXPECT_EQ(sdsgsm_test::split_lines(changed.err).size(), 1u) << changed.err;
  EXPECT_TRUE(fs::exists(partial / "run.json")) << "a refused resume must not touch the interrupted run";

  // A real change of options against a real interrupted run names what changed.
  fs::remove_all(partial);
  sdsgsm_test::write_bytes(f.dir / "kill.sh",
                           std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q attack --attack ifgsm --steps 30 "
                           "--batch-size 1 " + f.common(12) + "--out " + out.string() +
                           " & pid=$!\nfor i in $(seq 1 6000); do\n  if [ -f " + (partial / "state.json").string() +
                           " ]; then kill -9 $pid; break; fi\n  sleep 0.005\ndone\nwait $pid; echo \"status $?\"\n");
  auto killed = sdsgsm_test::run_shell("bash " + (f.dir / "kill.sh").string(), f.dir.path());
  ASSERT_TRUE(Contains(killed.out, "status 137")) << killed.out << killed.err;
  auto eps = f.run("attack --attack ifgsm --steps 30 --batch-size 1 --eps 4/255 " + f.common(12) + "--out " +
                   out.string() + " --resume");
  EXPECT_NE(eps.exit_code, 0);
  EXPECT_TRUE(Contains(eps.err, "attack_config")) << eps.err;
  auto restart = f.run("attack --attack ifgsm --steps 2 --batch-size 4 " + f.common(12) + "--out " + out.string() +
                       " --restart");
  ASSERT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_TRUE(fs::is_regular_file(out / "metrics.json"));
  EXPECT_FALSE(fs::exists(partial));
  // --resume with nothing to resume simply runs.
  fs::remove_all(out);
  EXPECT_EQ(f.run(args + "--out " + out.string() + " --resume").exit_code, 0);
}

TEST(Resume, AnErrorBeforeAnyBatchLeavesNoPartialFolder) {
  // Image 3 has label 77: the first batch fails to read.
  CliFixture f(0, {1, 2, 3, 77, 4, 5});
  auto r = f.run("attack --attack fgsm --batch-size 4 " + f.common(6) + "--out " + (f.dir / "E").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "record 3 has label 77"));
  EXPECT_FALSE(fs::exists(f.dir / "E"));
  EXPECT_FALSE(fs::exists(f.dir / ".E.partial"));
}

SLOW_SUITE(Device);

TEST(Device, CudaWithoutACudaBuildIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this build has CUDA";
  CliFixture f(4);
  auto r = f.run("--device cuda attack --attack fgsm " + f.common(4) + "--out " + (f.dir / "G").string());
  EXPECT_NE(r.exit_code, 0);
  ASSERT_EQ(sdsgsm_test::split_lines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(Contains(r.err, "--device cuda"));
  EXPECT_TRUE(Contains(r.err, "SDSGSM_TORCH_DIR"));
  EXPECT_FALSE(fs::exists(f.dir / "G"));
  auto bad = f.run("--device tpu attack --attack fgsm " + f.common(4) + "--out " + (f.dir / "G").string());
  EXPECT_TRUE(Contains(bad.err, "--device 'tpu' is not a device"));
  // Commands that only run on the CPU say so rather than ignore the option.
  auto sweep = f.run("--device cuda:1 sweep --split train " + f.common(4) + "--out " + (f.dir / "S").string());
  EXPECT_TRUE(Contains(sweep.err, "'sweep' runs on the CPU")) << sweep.err;
  // The CPU, named, is the default.
  EXPECT_EQ(f.run("--device cpu attack --attack fgsm " + f.common(4) + "--out " + (f.dir / "G").string()).exit_code, 0);
}

SLOW_SUITE(Memory);

TEST(Memory, PeakAtTenThousandImagesIsWithinTwentyPercentOfOneThousand) {
  if (!fs::exists(sdsgsm_test::real_cifar_dir() / "test_batch.bin")) GTEST_SKIP() << "CIFAR-10 not present";
  TempDir tmp;
  auto peak = [&](int count) {
    auto r = sdsgsm_test::run_shell(std::string(SDSGSM_TEST_BINARY) + " -q attack --attack fgsm --data " +
                                        sdsgsm_test::real_cifar_dir().string() + " --count " + std::to_string(count) +
                                        " --out " + (tmp / std::to_string(count)).string(),
                                    tmp.path());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto t = nlohmann::json::parse(sdsgsm_test::read_bytes(tmp / std::to_string(count) / "timing.json"));
    return t["peak_rss_mb_rank0"].get<double>();
  };
  const double small = peak(1000), large = peak(10000);
  EXPECT_LE(large, 1.2 * small) << "1,000 images: " << small << " MB; 10,000 images: " << large << " MB";
  EXPECT_EQ(read_adversarial(tmp / "10000").size(0), 10000);
}

SLOW_SUITE(Mpi);

TEST(Mpi, TwoRanksWriteExactlyWhatOneProcessWrites) {
  if (!mpirun_available()) GTEST_SKIP() << "built without MPI or no mpirun";
  CliFixture f(30);
  const std::string args = "compare --attacks mifgsm,sdsgsm --batch-size 4 " + f.common(30);
  auto one = f.run(args + "--out " + (f.dir / "one").string());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto two = f.run(args + "--out " + (f.dir / "two").string(), kMpirun);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  for (const char* attack : {"mifgsm", "sdsgsm"}) {
    for (const char* name : {"samples.csv", "metrics.json", "samples.pt", "sheet.png", "adversarial/000007.pt"}) {
      EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "one" / attack / name),
                sdsgsm_test::read_bytes(f.dir / "two" / attack / name))
          << attack << "/" << name;
    }
    auto timing = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "two" / attack / "timing.json"));
    EXPECT_EQ(timing["ranks"], 2);
  }
  EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "one" / "mifgsm" / "samples.csv").size() > 100, true);
}

TEST(Mpi, AnErrorOnOneRankAbortsAllWithThatRanksMessage) {
  if (!mpirun_available()) GTEST_SKIP() << "built without MPI or no mpirun";
  // Batch 1 (images 4..7) is rank 1's; its image 6 has label 99.
  std::vector<int> labels = {1, 2, 3, 4, 5, 6, 99, 8, 9, 0, 1, 2};
  CliFixture f(0, labels);
  auto r = f.run("attack --attack fgsm --batch-size 4 " + f.common(12) + "--out " + (f.dir / "M").string(), kMpirun);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "sdsgsm: error: [rank 1 of 2]")) << r.err;
  EXPECT_TRUE(Contains(r.err, "record 6 has label 99")) << r.err;
  EXPECT_FALSE(fs::exists(f.dir / "M"));
  // Commands that do not split their work are refused under mpirun.
  auto eval = f.run("eval " + f.common(12), kMpirun);
  EXPECT_NE(eval.exit_code, 0);
  EXPECT_TRUE(Contains(eval.err, "'eval' runs in one process")) << eval.err;
}
