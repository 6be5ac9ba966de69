// Tests of src/core: MD5, number parsing, file helpers, threads, progress reporting.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/progress.hpp"
#include "test_util.hpp"

namespace {

using sdsgsm::Error;
using sdsgsm_test::Contains;
using sdsgsm_test::error_message;
using sdsgsm_test::TempDir;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// MD5

TEST(Md5, Rfc1321TestSuite) {
  // The test suite of RFC 1321, appendix A.5.
  EXPECT_EQ(sdsgsm::md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(sdsgsm::md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(sdsgsm::md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(sdsgsm::md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(sdsgsm::md5_hex("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(sdsgsm::md5_hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "d174ab98d277d9f5a5611c2c9f419d9f");
  // 80 bytes: crosses the 64-byte block boundary.
  EXPECT_EQ(sdsgsm::md5_hex("1234567890123456789012345678901234567890"
                            "1234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Md5, PaddingBoundaries) {
  // Lengths around the 56-byte padding limit and the 64-byte block size.
  EXPECT_EQ(sdsgsm::md5_hex(std::string(55, 'a')), "ef1772b6dff9a122358552954ad0df65");
  EXPECT_EQ(sdsgsm::md5_hex(std::string(56, 'a')), "3b0c8ac703f828b04c6c197006d17218");
  EXPECT_EQ(sdsgsm::md5_hex(std::string(63, 'a')), "b06521f39153d618550606be297466d5");
  EXPECT_EQ(sdsgsm::md5_hex(std::string(64, 'a')), "014842d480b571495a4a0363793f7367");
  EXPECT_EQ(sdsgsm::md5_hex(std::string(65, 'a')), "c743a45e0d2e6a95cb859adae0248435");
  EXPECT_EQ(sdsgsm::md5_hex(std::string(1000000, 'a')), "7707d6ae4e027c70eea2a935c2296f21");
}

TEST(Md5, BinaryBytesIncludingNulAndHighBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(sdsgsm::md5_hex(all), "e2c865db4162bed963bfaa9ef6ac18f0");
  std::string longer = all + all + all + std::string("\x00\xff", 2);
  ASSERT_EQ(longer.size(), 770u);
  EXPECT_EQ(sdsgsm::md5_hex(longer), "3a6ecadeb608bdf69b31592f8846b7c1");
}

TEST(Md5, FileMatchesBytesAndMissingFileNamesIt) {
  TempDir tmp;
  std::string content;
  for (int i = 0; i < 3 * 1024 * 1024 + 17; ++i) content.push_back(static_cast<char>((i * 131) % 251));
  fs::path f = tmp / "blob.bin";
  sdsgsm_test::write_bytes(f, content);
  EXPECT_EQ(sdsgsm::md5_file(f), sdsgsm::md5_hex(content));
  sdsgsm_test::write_bytes(tmp / "empty.bin", "");
  EXPECT_EQ(sdsgsm::md5_file(tmp / "empty.bin"), "d41d8cd98f00b204e9800998ecf8427e");
  std::string msg = error_message([&] { sdsgsm::md5_file(tmp / "nope.bin"); });
  EXPECT_TRUE(Contains(msg, "nope.bin"));
}

// ---------------------------------------------------------------------------------------------
// parse_number

TEST(ParseNumber, PlainFractionsAndExponents) {
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("8/255", "--eps"), 8.0 / 255.0);
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("0.03", "--eps"), 0.03);
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("2e-3", "--eps"), 2e-3);
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("1", "--eps"), 1.0);
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("0", "--eps"), 0.0);
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("-0.5", "--eps"), -0.5);
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("2/3", "--eps"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(sdsgsm::parse_number("1.5/0.5", "--eps"), 3.0);
}

TEST(ParseNumber, BadTextThrowsErrorNamingTheOption) {
  for (const char* bad : {"", "abc", "0.03x", "x0.03", "8/", "/255", "8/255/2", "8//255", "1/abc",
                          "nan", "inf", "1e999", " "}) {
    SCOPED_TRACE(std::string("text '") + bad + "'");
    std::string msg = error_message([&] { sdsgsm::parse_number(bad, "--epsilon"); });
    EXPECT_TRUE(Contains(msg, "--epsilon"));
  }
}

TEST(ParseNumber, DivisionByZeroThrows) {
  std::string msg = error_message([] { sdsgsm::parse_number("1/0", "--eps"); });
  EXPECT_TRUE(Contains(msg, "--eps"));
  EXPECT_TRUE(Contains(msg, "1/0"));
  error_message([] { sdsgsm::parse_number("8/0.0", "--eps"); });
}

// ---------------------------------------------------------------------------------------------
// Files

TEST(WriteFileAtomic, WritesBinaryContentAndLeavesNoTemporaryFile) {
  TempDir tmp;
  fs::path f = tmp / "out.bin";
  std::string content("a\0b\nc\xff", 6);
  sdsgsm::write_file_atomic(f, content);
  EXPECT_EQ(sdsgsm_test::read_bytes(f), content);
  // Overwriting replaces the content completely (shorter file, no stale tail).
  sdsgsm::write_file_atomic(f, "xy");
  EXPECT_EQ(sdsgsm_test::read_bytes(f), "xy");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp.path())) names.push_back(e.path().filename().string());
  ASSERT_EQ(names.size(), 1u) << "left behind: " << names.back();
  EXPECT_EQ(names[0], "out.bin");
}

TEST(WriteFileAtomic, UnwritableDestinationThrowsAndLeavesNothing) {
  TempDir tmp;
  fs::path f = tmp / "no" / "such" / "dir" / "out.bin";
  std::string msg = error_message([&] { sdsgsm::write_file_atomic(f, "data"); });
  EXPECT_TRUE(Contains(msg, "out.bin"));
  EXPECT_FALSE(fs::exists(tmp / "no"));
  // A directory in the way: the rename fails, and the temporary file is removed.
  fs::create_directories(tmp / "blocked" / "inside");
  msg = error_message([&] { sdsgsm::write_file_atomic(tmp / "blocked", "data"); });
  EXPECT_TRUE(Contains(msg, "blocked"));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1) << "a temporary file was left beside the destination";
}

TEST(ReadFile, RoundTripAndMissingFile) {
  TempDir tmp;
  std::string content("\x00\x01\x02 text\r\n", 10);
  sdsgsm_test::write_bytes(tmp / "f", content);
  EXPECT_EQ(sdsgsm::read_file(tmp / "f"), content);
  std::string msg = error_message([&] { sdsgsm::read_file(tmp / "missing.txt"); });
  EXPECT_TRUE(Contains(msg, "missing.txt"));
  EXPECT_TRUE(Contains(msg, "no such file"));
}

// ---------------------------------------------------------------------------------------------
// Runtime

TEST(RunProcess, ArgumentVectorWorkingFolderAndOutput) {
  TempDir tmp;
  // Arguments travel as they are: no shell splits or expands them.
  auto r = sdsgsm::run_process({"sh", "-c", "pwd; printf '%s|' \"$0\" \"$1\"; echo oops >&2; exit 3",
                                "it's a $HOME", "two words"},
                               tmp.path());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(Contains(r.output, fs::canonical(tmp.path()).string()));
  EXPECT_TRUE(Contains(r.output, "it's a $HOME|two words|"));
  EXPECT_TRUE(Contains(r.output, "oops"));
  // A relative working folder is taken relative to the current folder.
  auto here = sdsgsm::run_process({"pwd"}, fs::relative(tmp.path()));
  EXPECT_EQ(here.exit_code, 0);
  EXPECT_TRUE(Contains(here.output, fs::canonical(tmp.path()).string()));
}

TEST(RunProcess, MissingProgramAndErrorSummary) {
  auto r = sdsgsm::run_process({"sdsgsm-no-such-program-xyz", "--x"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_TRUE(Contains(r.summary(), "sdsgsm-no-such-program-xyz: program not found"));
  sdsgsm::ProcessResult p;
  p.exit_code = 1;
  p.output = "progress 1\nnpm error code E404\nnpm error 404 Not Found - GET x\n\nlog written\n";
  EXPECT_EQ(p.summary(), "npm error code E404 | npm error 404 Not Found - GET x");
  p.output = "first\nlast words\n";
  EXPECT_EQ(p.summary(), "first | last words");
  p.output = "";
  EXPECT_EQ(p.summary(), "exit status 1, no output");
}

TEST(RunInChild, ReturnsThrowsCrashesAndTimesOut) {
  using Kind = sdsgsm::ChildOutcome::Kind;
  const auto limit = std::chrono::seconds(60);
  int touched = 0;
  // The child has its own copy of memory: what it writes does not reach the parent.
  EXPECT_EQ(sdsgsm::run_in_child([&] { touched = 1; }, limit).kind, Kind::returned);
  EXPECT_EQ(touched, 0);
  EXPECT_EQ(sdsgsm::run_in_child([] { throw std::runtime_error("no"); }, limit).kind, Kind::threw);
  auto abort = sdsgsm::run_in_child([] { std::abort(); }, limit);
  EXPECT_EQ(abort.kind, Kind::crashed);
  // Under a sanitizer a fault is reported and the child exits with status 1 instead.
  if (abort.signal != 0) {
    EXPECT_EQ(abort.signal, SIGABRT);
    EXPECT_TRUE(Contains(abort.crash_text(), "(signal 6)")) << abort.crash_text();
  }
  auto segv = sdsgsm::run_in_child([] { std::raise(SIGSEGV); }, limit);
  EXPECT_EQ(segv.kind, Kind::crashed);
  auto status = sdsgsm::run_in_child([] { ::_exit(3); }, limit);
  EXPECT_EQ(status.kind, Kind::crashed);
  EXPECT_EQ(status.crash_text(), "exit status 3");
  // Stopped from outside, or past the limit: proves nothing about the call.
  EXPECT_EQ(sdsgsm::run_in_child([] { std::raise(SIGTERM); }, limit).kind, Kind::other);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(sdsgsm::run_in_child([] { ::pause(); }, std::chrono::milliseconds(300)).kind, Kind::other);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST(ScopedTempDir, UniqueAbsoluteAndRemoved) {
  TempDir tmp;
  fs::path a, b;
  {
    sdsgsm::ScopedTempDir one(fs::relative(tmp / "parent"), ".x-");
    sdsgsm::ScopedTempDir two(tmp / "parent", ".x-");
    a = one.path();
    b = two.path();
    EXPECT_TRUE(a.is_absolute());
    EXPECT_TRUE(fs::is_directory(a));
    EXPECT_NE(a, b);
    EXPECT_EQ(a.filename().string().rfind(".x-", 0), 0u);
    sdsgsm_test::write_bytes(a / "sub" / "f", "x");
  }
  EXPECT_FALSE(fs::exists(a));
  EXPECT_FALSE(fs::exists(b));
}

TEST(ExtractArchive, UnpacksATarGzAndNamesABadOne) {
  TempDir tmp;
  sdsgsm_test::write_bytes(tmp / "src" / "package" / "a.txt", "hello");
  sdsgsm_test::write_bytes(tmp / "src" / "package" / "d" / "b.txt", "world");
  auto r = sdsgsm::run_process({"tar", "-czf", (tmp / "p.tgz").string(), "package"}, tmp / "src");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  sdsgsm::extract_archive(tmp / "p.tgz", tmp / "out");
  EXPECT_EQ(sdsgsm_test::read_bytes(tmp / "out" / "package" / "a.txt"), "hello");
  EXPECT_EQ(sdsgsm_test::read_bytes(tmp / "out" / "package" / "d" / "b.txt"), "world");

  sdsgsm_test::write_bytes(tmp / "junk.tgz", "this is not an archive");
  std::string msg = error_message([&] { sdsgsm::extract_archive(tmp / "junk.tgz", tmp / "out2"); });
  EXPECT_TRUE(Contains(msg, (tmp / "junk.tgz").string()));
  // A truncated archive is named too.
  std::string bytes = sdsgsm_test::read_bytes(tmp / "p.tgz");
  sdsgsm_test::write_bytes(tmp / "cut.tgz", bytes.substr(0, bytes.size() / 2));
  msg = error_message([&] { sdsgsm::extract_archive(tmp / "cut.tgz", tmp / "out3"); });
  EXPECT_TRUE(Contains(msg, (tmp / "cut.tgz").string()));
}

TEST(ExtractArchive, RefusesEntriesOutsideTheDestination) {
  TempDir tmp;
  sdsgsm_test::write_bytes(tmp / "evil.txt", "x");
  fs::create_directories(tmp / "inner");
  auto r = sdsgsm::run_process({"tar", "-P", "-czf", (tmp / "evil.tgz").string(), "../evil.txt"}, tmp / "inner");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string msg = error_message([&] { sdsgsm::extract_archive(tmp / "evil.tgz", tmp / "inner" / "out"); });
  EXPECT_TRUE(Contains(msg, "evil.txt"));
}

TEST(Runtime, ThreadsAndVersion) {
  EXPECT_GE(sdsgsm::hardware_threads(), 1);
  EXPECT_EQ(sdsgsm::configure_threads(1), 1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  std::string v = sdsgsm::version_string();
  EXPECT_TRUE(Contains(v, "sdsgsm 0."));
  EXPECT_TRUE(Contains(v, "LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "."));
}

TEST(ErrorType, IsARuntimeErrorWithTheMessage) {
  try {
    throw Error("one line");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "one line");
  }
}

// ---------------------------------------------------------------------------------------------
// Progress

TEST(FormatDuration, SecondsMinutesHours) {
  EXPECT_EQ(sdsgsm::format_duration(0), "0.0s");
  EXPECT_EQ(sdsgsm::format_duration(4.2), "4.2s");
  EXPECT_EQ(sdsgsm::format_duration(59.4), "59.4s");
  EXPECT_EQ(sdsgsm::format_duration(60), "1m00s");
  EXPECT_EQ(sdsgsm::format_duration(125), "2m05s");
  EXPECT_EQ(sdsgsm::format_duration(3599), "59m59s");
  EXPECT_EQ(sdsgsm::format_duration(3600), "1h00m00s");
  EXPECT_EQ(sdsgsm::format_duration(3723), "1h02m03s");
  EXPECT_EQ(sdsgsm::format_duration(36000 + 61), "10h01m01s");
  EXPECT_EQ(sdsgsm::format_duration(-5), "0.0s");
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  ::testing::internal::CaptureStderr();
  {
    sdsgsm::Progress bar("unit-test", 100, true);
    for (int i = 0; i < 10; ++i) bar.advance(10, "status-" + std::to_string(i));
    bar.finish("all done");
    EXPECT_GE(bar.elapsed_seconds(), 0.0);
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  auto lines = sdsgsm_test::split_lines(err);
  ASSERT_GE(lines.size(), 2u) << err;
  EXPECT_LE(lines.size(), 11u) << "one line per tenth at most, plus the final line:\n" << err;
  for (const auto& l : lines) EXPECT_EQ(l.rfind("unit-test", 0), 0u) << l;
  EXPECT_TRUE(Contains(lines.back(), "100%"));
  EXPECT_TRUE(Contains(lines.back(), "100/100"));
  EXPECT_TRUE(Contains(lines.back(), "all done"));
  EXPECT_EQ(err.find('\r'), std::string::npos) << "no carriage returns in a log";
}

TEST(Progress, DisabledPrintsNothing) {
  ::testing::internal::CaptureStderr();
  {
    sdsgsm::Progress bar("quiet", 10, false);
    bar.advance(5);
    bar.advance(5);
    bar.finish("done");
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

}  // namespace
