// The HTML report (sdsgsm/report.hpp, `sdsgsm report`): a self-contained page whose every image
// decodes, with every attack in it; graceful notes for missing inputs; one-line errors for folders
// that are not runs; and, where Debian's chromium is installed, a real browser loads it without
// console errors and draws a page that is not blank.
#include <gtest/gtest.h>
#include <stb/stb_image.h>

#include <nlohmann/json.hpp>
#include <cctype>
#include <regex>

#include "../src/report/svg.hpp"
#include "sdsgsm/data.hpp"
#include "sdsgsm/models.hpp"
#include "sdsgsm/report.hpp"
#include "sdsgsm/reproduce_tables.hpp"
#include "test_util.hpp"

using sdsgsm_test::Contains;
namespace fs = std::filesystem;

namespace {

/// 12 synthetic images labelled with a random ResNet-20's own predictions (so that every image
/// counts: the model is "right" on all of them), and a compare run of three attacks on them.
struct ReportFixture {
  sdsgsm_test::TempDir dir;
  fs::path data, model;
  ReportFixture() {
    data = dir / "batch.bin";
    model = dir / "net.pt";
    torch::manual_seed(0);
    sdsgsm::save_network(sdsgsm::make_network("resnet20"), "resnet20", 10, model);
    sdsgsm_test::write_bytes(data, sdsgsm_test::make_cifar_bytes(std::vector<int>(12, 0)));
    auto net = sdsgsm::load_classifier(model.string());
    auto images = sdsgsm::open_dataset(data, sdsgsm::Split::Test).float_images(0, 12);
    torch::NoGradGuard no_grad;
    auto pred = net->forward(images).argmax(1);
    std::vector<int> labels;
    for (int64_t i = 0; i < 12; ++i) labels.push_back(static_cast<int>(pred[i].item<int64_t>()));
    sdsgsm_test::write_bytes(data, sdsgsm_test::make_cifar_bytes(labels));
  }
  sdsgsm_test::CommandResult run(const std::string& args) {
    return sdsgsm_test::run_shell(std::string(SDSGSM_TEST_BINARY) + " --threads 1 -q " + args, dir.path());
  }
  std::string common() const {
    return "--model " + model.string() + " --data " + data.string() + " --count 12 --batch-size 5 --steps 2 ";
  }
  /// compare of fgsm, ifgsm and sdsgsm into `name`; returns its report.html.
  std::string compare(const std::string& name, const std::string& extra = "") {
    auto r = run("compare --attacks fgsm,ifgsm,sdsgsm " + common() + extra + "--out " + (dir / name).string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return sdsgsm_test::read_bytes(dir / name / "report.html");
  }
};

// Plain scanning rather than std::regex: libstdc++'s regex recurses once per character and
// overflows the stack on the page's long data URIs under AddressSanitizer.

/// The values of attr="..." in `text` (attributes only: preceded by white space).
std::vector<std::string> attribute_values(const std::string& text, const std::string& attr) {
  std::vector<std::string> out;
  const std::string key = attr + "=\"";
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    if (at == 0 || !std::isspace(static_cast<unsigned char>(text[at - 1]))) continue;
    const size_t start = at + key.size(), end = text.find('"', start);
    if (end == std::string::npos) break;
    out.push_back(text.substr(start, end - start));
  }
  return out;
}

/// How often `needle` occurs in `text`.
size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

/// Every <svg ...>...</svg> element of `text`.
std::vector<std::string> svg_elements(const std::string& text) {
  std::vector<std::string> out;
  for (size_t at = text.find("<svg"); at != std::string::npos; at = text.find("<svg", at + 1)) {
    const size_t end = text.find("</svg>", at);
    if (end == std::string::npos) break;
    out.push_back(text.substr(at, end + 6 - at));
    at = end;
  }
  return out;
}

std::string base64_decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) return "";
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

/// Well-formed XML for the subset our SVG uses: balanced tags, quoted attributes, known entities,
/// no stray '<' or '&'. Returns "" or what is wrong.
std::string xml_problem(const std::string& x) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < x.size()) {
    if (x[i] == '&') {
      const size_t end = x.find(';', i);
      const std::string entity = end == std::string::npos ? "" : x.substr(i, end - i + 1);
      if (!std::regex_match(entity, std::regex("&(amp|lt|gt|quot|#[0-9]+);"))) return "bad entity at " + std::to_string(i);
      i = end + 1;
      continue;
    }
    if (x[i] != '<') {
      if (x[i] == '>') return "stray '>' at " + std::to_string(i);
      ++i;
      continue;
    }
    // A tag: scan to its '>' outside quotes.
    size_t j = i + 1;
    char quote = 0;
    for (; j < x.size(); ++j) {
      if (quote) {
        if (x[j] == quote) quote = 0;
        else if (x[j] == '<') return "'<' in an attribute at " + std::to_string(j);
      } else if (x[j] == '"' || x[j] == '\'') {
        quote = x[j];
      } else if (x[j] == '>') {
        break;
      }
    }
    if (j >= x.size()) return "unterminated tag at " + std::to_string(i);
    const std::string tag = x.substr(i + 1, j - i - 1);
    std::smatch m;
    if (std::regex_match(tag, m, std::regex("/([a-zA-Z]+)"))) {
      if (open.empty() || open.back() != m[1].str()) return "</" + m[1].str() + "> does not close <" + (open.empty() ? "" : open.back()) + ">";
      open.pop_back();
    } else if (std::regex_match(tag, m, std::regex("([a-zA-Z]+)((\\s+[a-zA-Z][a-zA-Z0-9:-]*=\"[^\"<]*\")*)\\s*(/?)"))) {
      if (m[4].str().empty()) open.push_back(m[1].str());
    } else {
      return "malformed tag <" + tag.substr(0, 60) + ">";
    }
    i = j + 1;
  }
  return open.empty() ? "" : "<" + open.back() + "> not closed";
}

/// The structural checks every page must pass; returns the number of images.
size_t check_page(const std::string& html, const std::vector<std::string>& attacks) {
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(Contains(html, "</html>\n"));
  // Nothing outside the file: no network, no script, no style sheet, no file reference.
  for (const char* bad : {"http:", "https:", "<link", "<script", "@import", "url(", "file:", "<iframe", "<object"}) {
    EXPECT_FALSE(Contains(html, bad)) << bad;
  }
  const auto srcs = attribute_values(html, "src");
  for (const auto& s : srcs) EXPECT_EQ(s.rfind("data:image/png;base64,", 0), 0u) << s.substr(0, 80);
  for (const auto& h : attribute_values(html, "href")) EXPECT_EQ(h.rfind('#', 0), 0u) << "a link out of the page: " << h;
  // Every inline PNG decodes.
  for (const auto& s : srcs) {
    const std::string png = base64_decode(s.substr(std::string("data:image/png;base64,").size()));
    int w = 0, h = 0, c = 0;
    unsigned char* pixels = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                                  static_cast<int>(png.size()), &w, &h, &c, 3);
    EXPECT_NE(pixels, nullptr) << "an image does not decode";
    EXPECT_GT(w, 0);
    stbi_image_free(pixels);
  }
  // Every SVG is well-formed XML.
  const auto svgs = svg_elements(html);
  for (const auto& svg : svgs) EXPECT_EQ(xml_problem(svg), "") << svg.substr(0, 200);
  EXPECT_GE(svgs.size(), 4u);
  for (const auto& a : attacks) EXPECT_TRUE(Contains(html, "<tr><td>" + a + "</td>")) << a;
  return srcs.size();
}

bool have_chromium() { return std::system("command -v chromium >/dev/null 2>&1") == 0; }

}  // namespace

TEST(Svg, TicksAndEscaping) {
  auto t = sdsgsm::svg::nice_ticks(0, 1, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_NEAR(t[1], 0.2, 1e-12);
  t = sdsgsm::svg::nice_ticks(0.9, 1.0, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_NEAR(t.front(), 0.9, 1e-12);
  EXPECT_NEAR(t[1], 0.92, 1e-12);
  t = sdsgsm::svg::nice_ticks(0, 0.6, 6);
  ASSERT_EQ(t.size(), 7u);
  EXPECT_NEAR(t.back(), 0.6, 1e-12);
  EXPECT_EQ(sdsgsm::svg::escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  sdsgsm::svg::LineChart c;
  c.title = "T <1>";
  c.series = {{"x & y", {0, 1}, {0, 1}, false, ""}};
  const std::string s = sdsgsm::svg::line_chart(c);
  EXPECT_EQ(xml_problem(s), "");
  EXPECT_TRUE(Contains(s, "T &lt;1&gt;"));
  EXPECT_EQ(s, sdsgsm::svg::line_chart(c));  // deterministic
}

SLOW_SUITE(Report);

TEST(Report, CompareWritesASelfContainedPageWithEveryAttack) {
  ReportFixture f;
  const std::string html = f.compare("cmp");
  const size_t images = check_page(html, {"fgsm", "ifgsm", "sdsgsm"});
  // Examples: 4 images x (clean, adversarial, perturbation) per attack, and SD-SGSM's map and
  // sensitivity: 3 x 12 + 2 x 4.
  EXPECT_EQ(images, 44u);
  EXPECT_EQ(occurrences(html, "alt=\"allocation map\""), 4u);
  for (const char* part : {"ASR against the l2 budget (float)", "ASR against the SSIM floor (8-bit)", "Paired statistics",
                           "adversarial prediction", "Configuration and timings", "true: <b>"}) {
    EXPECT_TRUE(Contains(html, part)) << part;
  }
  // `sdsgsm report` rebuilds the same page from the folder.
  auto r = f.run("report " + (f.dir / "cmp").string() + " --out " + (f.dir / "again.html").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sdsgsm_test::read_bytes(f.dir / "again.html"), html);
  EXPECT_TRUE(Contains(html, "No eps curve"));
  // Eps curves beside the runs (as reproduce writes them) are drawn on their own chart.
  auto curves = nlohmann::json::parse(sdsgsm_test::read_bytes(f.dir / "cmp" / "curves.json"));
  curves.push_back({{"attack", "ifgsm"}, {"curve", "eps"}, {"basis", "float"}, {"x", {1 / 255.0, 2 / 255.0}}, {"asr", {0.5, 1.0}}});
  curves.push_back({{"attack", "ifgsm"}, {"curve", "eps"}, {"basis", "8bit"}, {"x", {1 / 255.0, 2 / 255.0}}, {"asr", {0.4, 1.0}}});
  sdsgsm_test::write_bytes(f.dir / "cmp" / "curves.json", curves.dump());
  r = f.run("report " + (f.dir / "cmp").string() + " --examples 0 --out " + (f.dir / "eps.html").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string eps = sdsgsm_test::read_bytes(f.dir / "eps.html");
  EXPECT_EQ(check_page(eps, {"fgsm", "ifgsm", "sdsgsm"}), 0u);
  EXPECT_TRUE(Contains(eps, "ASR against eps"));
  EXPECT_TRUE(Contains(eps, "ifgsm (8-bit)"));
  // A reproduce folder (<model>/<label as folder name>/, results.json): its runs under their labels,
  // in its order.
  fs::create_directories(f.dir / "rep" / "m");
  fs::copy(f.dir / "cmp" / "fgsm", f.dir / "rep" / "m" / "FGSM__textbook_", fs::copy_options::recursive);
  fs::copy(f.dir / "cmp" / "sdsgsm", f.dir / "rep" / "m" / "SD_SGSM", fs::copy_options::recursive);
  sdsgsm_test::write_bytes(f.dir / "rep" / "results.json",
                           R"J({"models": {"m": [{"label": "SD-SGSM"}, {"label": "FGSM (textbook)"}]}})J");
  r = f.run("report " + (f.dir / "rep").string() + " --examples 0 --out " + (f.dir / "rep.html").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(sdsgsm_test::read_bytes(f.dir / "rep.html"), "2 attacks: SD-SGSM, FGSM (textbook)"));
}

namespace {

/// A results.json row as reproduce writes it (the figures the claims read).
nlohmann::json claim_row(const std::string& group, const std::string& attack, const std::string& label, double asr,
                         double ssim, double l2) {
  return {{"regime", "fixed"}, {"group", group}, {"attack", attack}, {"label", label},
          {"float", {{"asr", asr}, {"ssim_mean", ssim}, {"l2_mean", l2}}},
          {"rounded_8bit", {{"asr", asr}, {"ssim_mean", ssim}, {"l2_mean", l2}}}};
}

nlohmann::json pair_row(const std::string& a, const std::string& b, double lo, double hi) {
  return {{"a", a}, {"b", b}, {"basis", "8bit"}, {"n", 10}, {"mean_diff", (lo + hi) / 2}, {"ci_low", lo},
          {"ci_high", hi}, {"a_smaller", 0.5}, {"b_smaller", 0.5}, {"ties", 0.0}, {"mean_a", 0.5},
          {"mean_b", 0.5 - (lo + hi) / 2}, {"resamples", 2000}, {"level", 0.95}, {"seed", 0}};
}

/// A reproduce folder's results.json and m/paired.json: model m (rows below), model n (rows only,
/// ASR 99%), a defended model (skipped by the claims).
void write_claims_inputs(const fs::path& dir) {
  const std::string ref = "fixed: SD-SGSM (k 16 s 16)";
  nlohmann::json m = {{"rows",
                       {claim_row("textbook", "fgsm", "FGSM", 0.9, 0.93, 1.7),
                        claim_row("textbook", "ifgsm", "I-FGSM", 1.0, 0.96, 1.2),
                        claim_row("textbook", "mifgsm", "MI-FGSM", 1.0, 0.94, 1.5),
                        claim_row("shipped defaults", "sdsgsm", "SD-SGSM (defaults)", 1.0, 0.95, 0.6),
                        claim_row("tuned", "ifgsm", "I-FGSM (tuned)", 1.0, 0.99, 0.54),
                        claim_row("tuned", "mifgsm", "MI-FGSM (tuned)", 1.0, 0.98, 0.84),
                        claim_row("SD-SGSM family, tuned", "sgsm", "SGSM only (uniform map)", 1.0, 0.99, 0.55),
                        claim_row("SD-SGSM family, tuned", "sd-ifgsm", "SD only (k 16, sign)", 1.0, 0.98, 0.78),
                        claim_row("SD-SGSM family, tuned", "sdsgsm", "SD-SGSM (k 16 s 16)", 1.0, 0.99, 0.47)}}};
  nlohmann::json n = {{"rows", {claim_row("shipped defaults", "sdsgsm", "SD-SGSM (defaults)", 0.99, 0.96, 0.6)}}};
  nlohmann::json at = {{"rows", {claim_row("textbook", "fgsm", "FGSM", 0.3, 0.9, 1.0)}}, {"robust", {{"robust", 1}}}};
  nlohmann::json results = {{"models", {{"m", m}, {"n", n}, {"m-at", at}}}};
  fs::create_directories(dir / "m");
  sdsgsm_test::write_bytes(dir / "results.json", results.dump(2));
  nlohmann::json pairs = nlohmann::json::array();
  pairs.push_back(pair_row(ref, "fixed: FGSM", -1.3, -1.2));
  pairs.push_back(pair_row(ref, "fixed: I-FGSM", -0.8, -0.7));
  pairs.push_back(pair_row(ref, "fixed: MI-FGSM", -1.1, -1.0));
  pairs.push_back(pair_row(ref, "fixed: I-FGSM (tuned)", -0.1, -0.05));
  pairs.push_back(pair_row(ref, "fixed: MI-FGSM (tuned)", 0.1, 0.2));  // the tuned MI-FGSM is smaller
  pairs.push_back(pair_row(ref, "fixed: SGSM only (uniform map)", -0.1, -0.02));
  pairs.push_back(pair_row(ref, "fixed: SD only (k 16, sign)", -0.35, -0.25));
  sdsgsm_test::write_bytes(dir / "m" / "paired.json", pairs.dump(2));
}

}  // namespace

// The claims: each verdict follows its stated rule from results.json and paired.json; claims.json
// and claims.md hold the same.
TEST(Report, ClaimsFollowTheirRules) {
  sdsgsm_test::TempDir dir;
  write_claims_inputs(dir.path());
  const auto claims = sdsgsm::reproduce_claims(dir.path());
  ASSERT_EQ(claims.size(), 5u);
  // ASR 99.9%: m 100%, n 99%: met on one model of two.
  EXPECT_EQ(claims[0].paper, "99.9%");
  EXPECT_EQ(claims[0].verdict, "partly");
  EXPECT_EQ(claims[0].ours, "m 100.00%; n 99.00%");
  EXPECT_DOUBLE_EQ(claims[0].measured["n"].get<double>(), 0.99);
  // SSIM 0.947: 0.95 and 0.96.
  EXPECT_EQ(claims[1].verdict, "reproduced");
  EXPECT_EQ(claims[1].ours, "m 0.9500; n 0.9600");
  // Less l2 than the textbook FGSM, I-FGSM, MI-FGSM: every interval below 0 (n has no pairs).
  EXPECT_EQ(claims[2].verdict, "reproduced");
  EXPECT_TRUE(Contains(claims[2].ours, "m FGSM: 0.500 vs 1.750 (-1.250, [-1.300, -1.200])")) << claims[2].ours;
  EXPECT_EQ(claims[2].measured["m"].size(), 3u);
  // Against the tuned baselines: the tuned MI-FGSM's l2 is smaller with confidence.
  EXPECT_EQ(claims[3].verdict, "not reproduced");
  // Ablation: SD-SGSM below each component alone, but distribution alone (0.78) above neither (0.54).
  EXPECT_EQ(claims[4].verdict, "partly");
  EXPECT_EQ(claims[4].ours, "m: neither 0.540, distribution only 0.780, smoothing only 0.550, both 0.500");
  // Without paired.json the paired claims are not measured; the others stay.
  fs::remove(dir / "m" / "paired.json");
  const auto bare = sdsgsm::reproduce_claims(dir.path());
  EXPECT_EQ(bare[0].verdict, "partly");
  EXPECT_EQ(bare[2].verdict, "not measured");
  EXPECT_EQ(bare[4].verdict, "not measured");
  // The files: the same claims.
  write_claims_inputs(dir.path());
  ASSERT_TRUE(sdsgsm::write_claims(dir.path()));
  const auto j = nlohmann::json::parse(sdsgsm_test::read_bytes(dir / "claims.json"));
  EXPECT_EQ(j, sdsgsm::claims_json(claims));
  EXPECT_EQ(j[3]["verdict"], "not reproduced");
  const std::string md = sdsgsm_test::read_bytes(dir / "claims.md");
  EXPECT_TRUE(Contains(md, "| attack success rate on CIFAR-10 | 99.9% | m 100.00%; n 99.00% | partly |\n")) << md;
  EXPECT_TRUE(Contains(md, "reproduced when at least 99.9% on every model"));
  // Not a reproduce folder: no claims, nothing written.
  sdsgsm_test::TempDir other;
  EXPECT_TRUE(sdsgsm::reproduce_claims(other.path()).empty());
  EXPECT_FALSE(sdsgsm::write_claims(other.path()));
  EXPECT_FALSE(fs::exists(other / "claims.json"));
}

// A reproduce folder's page leads with its findings (the claims, the frontier, the strength
// table, the transfer heat maps) before the runs; the paired statistics are SD-SGSM's against
// each other attack; a chart holds at most 8 lines.
TEST(Report, ReproducePageLeadsWithItsFindings) {
  ReportFixture f;
  auto c = f.run("compare --attacks fgsm,ifgsm,mifgsm,nifgsm,pgd,sgsm,sd-ifgsm,sdsgsm,fmn " + f.common() + "--out " +
                 (f.dir / "cmp").string());
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const fs::path rep = f.dir / "rep";
  write_claims_inputs(rep);
  auto results = nlohmann::json::parse(sdsgsm_test::read_bytes(rep / "results.json"));
  // Nine runs of model m, each under its row's folder name.
  nlohmann::json rows = nlohmann::json::array();
  for (const char* a : {"fgsm", "ifgsm", "mifgsm", "nifgsm", "pgd", "sgsm", "sd-ifgsm", "sdsgsm", "fmn"}) {
    rows.push_back(claim_row("textbook", a, std::string("run ") + a, 1.0, 0.99, 0.5));
    fs::copy(f.dir / "cmp" / a, rep / "m" / ("fixed-" + sdsgsm::reproduce_folder_name(std::string("run ") + a)),
             fs::copy_options::recursive);
  }
  results["models"]["m"]["rows"] = rows;
  results["models"]["m"]["frontier"] = {{{"attack", "sdsgsm"}, {"label", "SD-SGSM"}, {"passes_mean", 8.0}, {"fooled_8bit", 5},
                                         {"l2_8bit_median", 0.2}, {"asr_8bit", 1.0}, {"setting", "defaults"}}};
  results["transfer"] = {{{"attack", "fgsm"}, {"source", "m"}, {"target", "m"}, {"asr", 0.871}},
                         {{"attack", "fgsm"}, {"source", "m"}, {"target", "n"}, {"asr", 0.0}}};
  sdsgsm_test::write_bytes(rep / "results.json", results.dump(2));
  fs::remove(rep / "m" / "paired.json");
  auto r = f.run("report " + rep.string() + " --examples 1 --out " + (f.dir / "rep.html").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = sdsgsm_test::read_bytes(f.dir / "rep.html");
  check_page(html, {"fixed: run fgsm", "fixed: run sdsgsm"});
  const size_t findings = html.find("<section id=\"findings\">"), runs = html.find("<section id=\"g1\">");
  ASSERT_NE(findings, std::string::npos);
  ASSERT_NE(runs, std::string::npos);
  EXPECT_LT(findings, runs);
  const size_t claims = html.find("The paper's claims and ours"), frontier = html.find("The frontier"),
               strength = html.find("Strength on the defended m-at"), transfer = html.find("Transfer between models");
  EXPECT_LT(claims, frontier);
  EXPECT_LT(frontier, strength);
  EXPECT_LT(strength, transfer);
  EXPECT_LT(transfer, runs);
  EXPECT_TRUE(Contains(html, "<td>attack success rate on CIFAR-10</td><td>99.9%</td>"));
  EXPECT_TRUE(Contains(html, "m: median 8-bit l2 against passes per image"));
  EXPECT_TRUE(Contains(html, ">87</text>"));  // the transfer cell, in percent
  EXPECT_TRUE(Contains(html, ">0</text>"));
  // Paired statistics: SD-SGSM against each of the 8 others, on both bases: 16 rows, no other pair.
  EXPECT_TRUE(Contains(html, "Paired statistics: fixed: run sdsgsm against each other attack"));
  EXPECT_EQ(occurrences(html, "<tr><td>fixed: run sdsgsm</td><td>fixed: run "), 16u);
  EXPECT_EQ(occurrences(html, "<tr><td>fixed: run fgsm</td><td>fixed: run ifgsm</td>"), 0u);
  // 9 runs: the charts show 8 (SD-SGSM and the first 7 others); every legend at most 8 lines.
  EXPECT_TRUE(Contains(html, "show 8 of the 9 attacks"));
  for (const auto& svg : svg_elements(html)) EXPECT_LE(occurrences(svg, "stroke-width=\"2.5\""), 8u) << svg.substr(0, 200);
  EXPECT_TRUE(Contains(html, "fixed: run sd-ifgsm: l2 ("));
  EXPECT_FALSE(Contains(html, "fixed: run fmn: l2 ("));
  EXPECT_TRUE(Contains(html, "<tr><td>fixed: run fmn</td><td>12</td>"));  // in the summary table
  // A plain compare folder keeps its layout: no findings.
  EXPECT_FALSE(Contains(sdsgsm_test::read_bytes(f.dir / "cmp" / "report.html"), "id=\"findings\""));
}

// A 1000-class model (TorchScript, made here) on a CSV list of 12 images labelled with its own
// predictions: the per-class part lists classes and moves by the data's names, not a 1000 x 1000
// map, with and without example images.
TEST(Report, ThousandClassesGiveTopListsWithTheDatasNames) {
  sdsgsm_test::TempDir dir;
  torch::manual_seed(0);
  auto net = sdsgsm::make_network("resnet20", 1000);
  sdsgsm::export_torchscript(*net, "resnet20", dir / "model1000.ts");
  std::string names;
  for (int k = 0; k < 1000; ++k) names += "class-" + std::to_string(k) + "\n";
  sdsgsm_test::write_bytes(dir / "names.txt", names);
  std::string list = "path,label\n";
  for (int i = 0; i < 12; ++i) {
    sdsgsm_test::write_png(dir / "imgs" / (std::to_string(i) + ".png"), i, 32, 32);
    list += "imgs/" + std::to_string(i) + ".png,0\n";
  }
  sdsgsm_test::write_bytes(dir / "list.csv", list);
  auto model = sdsgsm::load_classifier((dir / "model1000.ts").string());
  auto images = sdsgsm::open_dataset(dir / "list.csv", sdsgsm::Split::Test).float_images(0, 12);
  torch::Tensor pred;
  {
    torch::NoGradGuard no_grad;
    pred = model->forward(images).argmax(1);
  }
  list = "path,label\n";
  for (int i = 0; i < 12; ++i) list += "imgs/" + std::to_string(i) + ".png,class-" + std::to_string(pred[i].item<int64_t>()) + "\n";
  sdsgsm_test::write_bytes(dir / "list.csv", list);
  auto r = sdsgsm_test::run_shell(std::string(SDSGSM_TEST_BINARY) +
                                      " --threads 1 -q attack --attack ifgsm --steps 2 --model model1000.ts --data list.csv "
                                      "--classes names.txt --count 12 --batch-size 6 --out run",
                                  dir.path(), dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string first = "class-" + std::to_string(pred[0].item<int64_t>());
  for (const char* examples : {"3", "0"}) {
    SCOPED_TRACE(examples);
    r = sdsgsm_test::run_shell(std::string(SDSGSM_TEST_BINARY) + " -q report run --examples " + examples + " --out r.html",
                               dir.path(), dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string html = sdsgsm_test::read_bytes(dir / "r.html");
    EXPECT_TRUE(Contains(html, "1000 classes: too many for a table and a heat map"));
    EXPECT_TRUE(Contains(html, "<td>" + first + "</td>")) << first;
    EXPECT_FALSE(Contains(html, "airplane"));  // not CIFAR-10's names
    EXPECT_FALSE(Contains(html, "<th>class-999</th>"));  // no column per class
    EXPECT_LT(html.size(), 2000000u);
  }
}

TEST(Report, MissingInputsDegradeWithANote) {
  ReportFixture f;
  f.compare("cmp", "--no-adversarial ");
  fs::remove(f.dir / "cmp" / "ifgsm" / "timing.json");
  fs::rename(f.data, f.dir / "moved.bin");
  // Two run folders given one by one: a group of two.
  auto r = f.run("report " + (f.dir / "cmp" / "fgsm").string() + " " + (f.dir / "cmp" / "ifgsm").string() + " --out " +
                 (f.dir / "r.html").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = sdsgsm_test::read_bytes(f.dir / "r.html");
  EXPECT_EQ(check_page(html, {"fgsm", "ifgsm"}), 0u);
  EXPECT_TRUE(Contains(html, "No adversarial images in this run folder"));
  EXPECT_TRUE(Contains(html, "no timing.json"));
  EXPECT_TRUE(Contains(html, "cannot be read"));
  EXPECT_FALSE(Contains(html, "<tr><td>sdsgsm</td>"));
}

TEST(Report, FoldersThatAreNotRunsAreOneLineErrors) {
  sdsgsm_test::TempDir dir;
  fs::create_directories(dir / "empty" / "sub");
  sdsgsm_test::write_bytes(dir / "file.txt", "x");
  const fs::path out = dir / "x.html";
  auto expect_error = [&](const fs::path& input, const std::string& part) {
    auto r = sdsgsm_test::run_shell(std::string(SDSGSM_TEST_BINARY) + " -q report " + input.string() + " --out " +
                                        out.string(),
                                    dir.path());
    EXPECT_NE(r.exit_code, 0);
    auto lines = sdsgsm_test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_TRUE(Contains(lines[0], "sdsgsm: error: "));
    EXPECT_TRUE(Contains(lines[0], part)) << lines[0];
    EXPECT_FALSE(fs::exists(out));
  };
  expect_error(dir / "empty", "'" + (dir / "empty").string() + "' is not an sdsgsm run folder");
  expect_error(dir / "nowhere", "'" + (dir / "nowhere").string() + "' does not exist");
  expect_error(dir / "file.txt", "'" + (dir / "file.txt").string() + "' is not a folder");
  fs::create_directories(dir / "run");
  sdsgsm_test::write_bytes(dir / "run" / "metrics.json", "{\"attack_config\": {}}");
  expect_error(dir / "run", "run folder '" + (dir / "run").string() + "' has no samples.pt");
  sdsgsm_test::write_bytes(dir / "run" / "samples.pt", "not a pickle");
  expect_error(dir / "run", "'" + (dir / "run" / "samples.pt").string() + "' is corrupt");
  sdsgsm_test::write_bytes(dir / "run" / "metrics.json", "{");
  expect_error(dir / "run", "'" + (dir / "run" / "metrics.json").string() + "' is corrupt");
}

// The page in a real browser (Debian's chromium, headless): no console error, and a screenshot
// that is not blank.
TEST(Report, ChromiumLoadsThePageWithoutErrors) {
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed (apt-get install chromium): browser check skipped";
  ReportFixture f;
  f.compare("cmp");
  const fs::path page = f.dir / "cmp" / "report.html", shot = f.dir / "shot.png";
  const std::string browser = "HOME=" + f.dir.path().string() +
                              " chromium --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions "
                              "--enable-logging=stderr --v=0 ";
  auto console_lines = [](const std::string& err) {
    std::vector<std::string> out;
    for (const auto& line : sdsgsm_test::split_lines(err)) {
      if (Contains(line, ":CONSOLE") || Contains(line, "Uncaught")) out.push_back(line);
    }
    return out;
  };
  // The check sees console errors where there are some.
  sdsgsm_test::write_bytes(f.dir / "bad.html", "<!DOCTYPE html><p>x</p><script>console.error('boom');</script>");
  auto bad = sdsgsm_test::run_shell(browser + "--dump-dom file://" + (f.dir / "bad.html").string(), f.dir.path());
  EXPECT_EQ(console_lines(bad.err).size(), 1u) << bad.err;
  auto dom = sdsgsm_test::run_shell(browser + "--dump-dom file://" + page.string(), f.dir.path());
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_TRUE(Contains(dom.out, "sdsgsm report"));
  EXPECT_TRUE(Contains(dom.out, "<svg"));
  EXPECT_EQ(console_lines(dom.err), std::vector<std::string>{});
  auto s = sdsgsm_test::run_shell(browser + "--hide-scrollbars --window-size=1280,1600 --screenshot=" + shot.string() +
                                      " file://" + page.string(),
                                  f.dir.path());
  ASSERT_EQ(s.exit_code, 0) << s.err;
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(shot.c_str(), &w, &h, &c, 1);
  ASSERT_NE(px, nullptr) << "no screenshot";
  EXPECT_EQ(w, 1280);
  double sum = 0, sum2 = 0, dark = 0;
  for (int i = 0; i < w * h; ++i) {
    sum += px[i];
    sum2 += double(px[i]) * px[i];
    dark += px[i] < 128;
  }
  stbi_image_free(px);
  const double n = double(w) * h, mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_GT(var, 200.0) << "the screenshot is nearly uniform (mean " << mean << ")";
  EXPECT_GT(dark / n, 0.005) << "almost nothing drawn";
}
