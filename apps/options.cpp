// Flags and parsing shared by the sub-commands.
#include <algorithm>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"

namespace sdsgsm::cli {

void add_model_data_flags(CLI::App* cmd, std::string& model, std::string& data, std::string& split) {
  cmd->add_option("--model", model, "Zoo name or model file (sdsgsm weights or TorchScript)")->capture_default_str();
  cmd->add_option("--data", data, "CIFAR-10 binary folder, .bin file, image folder (class_name/*.png|jpg|bmp) or CSV list (path,label)")->capture_default_str();
  cmd->add_option("--split", split, "CIFAR-10 split: test or train")
      ->check(CLI::IsMember({"test", "train"}))
      ->capture_default_str();
  cmd->add_flag_callback(
      "--exact", [] { set_default_model_load_options(ModelLoadOptions().set_exact(true)); },
      "Run a TorchScript model as PyTorch does (not frozen, its own memory layout): adversarials equal a "
      "Python loop's bit for bit; slower");
}

void add_model_data_flags(CLI::App* cmd, std::string& model, std::string& data, std::string& split, DataFlags& flags) {
  add_model_data_flags(cmd, model, data, split);
  cmd->add_option("--classes", flags.classes,
                  "The model's class names, in output order: one a line, or JSON (index -> name or [synset, name], as "
                  "imagenet_class_index.json). Class folders and CSV labels then name classes, any subset of them");
  cmd->add_option("--resize", flags.resize, "Scale each image so that its short side is N pixels (bilinear, antialiased)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--crop", flags.crop, "Then cut the centre N x N pixels")->check(CLI::NonNegativeNumber);
}

DataOptions data_options(const DataFlags& flags, Classifier& model, const torch::Device& device) {
  DataOptions o;
  o.resize = flags.resize;
  o.crop = flags.crop;
  if (!flags.classes.empty()) {
    o.classes = read_class_names(flags.classes);
    o.classes_given = true;
  } else if (model.kind() != "torchscript") {
    // A zoo network: CIFAR-10's classes when it has 10 outputs.
    try {
      torch::NoGradGuard no_grad;
      if (model.forward(torch::zeros({1, 3, 32, 32}, torch::TensorOptions().device(device))).size(1) == 10) {
        o.classes.names = cifar10_classes();
      }
    } catch (const std::exception&) {
    }
  }
  return o;
}

void record_data_flags(nlohmann::json& info, const DataFlags& flags, const std::vector<std::string>& classes) {
  if (!flags.classes.empty()) info["classes_file"] = flags.classes;
  if (flags.resize > 0) info["resize"] = flags.resize;
  if (flags.crop > 0) info["crop"] = flags.crop;
  if (!classes.empty() && classes != cifar10_classes()) info["classes"] = classes;
}

Split to_split(const std::string& split) { return split == "train" ? Split::Train : Split::Test; }

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void add_batch_flag(CLI::App* cmd, int64_t& batch, const std::string& help) {
  cmd->add_option("--batch-size", batch, help)->capture_default_str();
}

void add_count_flag(CLI::App* cmd, int64_t& count, const std::string& help) {
  const int64_t shown = count;
  count = up_to(shown);  // not given: the default, or every image when the data holds fewer
  struct Count {
    int64_t count = 0;
  };
  // The flag's check is its declaration's ("--count must be >= 1 (got 0)").
  static const OptionField<Count> field = option("count", &Count::count, "Images").at_least(1);
  cmd->add_option_function<int64_t>(
         "--count",
         [&count](const int64_t& n) {
           if (std::string e = field.check(Count{n}); !e.empty()) throw Error(e);
           count = n;  // given: exactly n images, an error when the data holds fewer
         },
         help)
      ->default_str(std::to_string(shown));
}

void OptionFlags::add(const std::string& word, Sink s) {
  for (auto& [w, sinks] : words_) {
    if (w == word) {
      sinks.push_back(std::move(s));
      return;
    }
  }
  words_.emplace_back(word, std::vector<Sink>{std::move(s)});
}

namespace {

const char* type_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::Number: return "FLOAT";
    case OptionKind::Integer: return "INT";
    case OptionKind::Switch: return "";
    case OptionKind::Text: return "TEXT";
  }
  return "TEXT";
}

/// One flag: a switch (with its --no- form when `negatable`) or an option taking a value of `kind`.
void add_flag(CLI::App* cmd, const std::string& flag, OptionKind kind, bool negatable, const std::string& help,
              const std::string& default_text, const std::string& group,
              const std::function<void(const std::string&)>& apply) {
  auto grouped = [&](CLI::Option* opt) {
    if (!group.empty()) opt->group(group);  // CLI11 hides the options of group ""
  };
  if (kind == OptionKind::Switch) {
    grouped(cmd->add_flag_callback(flag, [apply] { apply("true"); }, help));
    if (negatable) grouped(cmd->add_flag_callback("--no-" + flag.substr(2), [apply] { apply("false"); }, "Turn " + flag + " off"));
    return;
  }
  auto* opt = cmd->add_option_function<std::string>(flag, apply, help);
  opt->type_name(type_name(kind));
  if (!default_text.empty()) opt->default_str(default_text);
  grouped(opt);
}

}  // namespace

// The flags' callbacks run while CLI11 parses: a value the declaration refuses throws Error, which
// main reports as one line (exit 2), the message the library's own check gives.
void OptionFlags::add_to(CLI::App* cmd) const {
  for (const auto& [word, sinks] : words_) {
    const Sink& first = sinks.front();
    std::string help;
    for (const auto& s : sinks) help += (help.empty() ? "" : "; ") + s.help;
    auto all = [sinks = sinks](const std::string& text) {
      for (const auto& s : sinks) s.apply(text);
    };
    if (first.off) {
      auto* opt = cmd->add_flag_callback("--no-" + word, [all] { all("false"); }, help);
      if (!first.group.empty()) opt->group(first.group);
      continue;
    }
    add_flag(cmd, "--" + word, first.kind, first.optional, help, first.default_text, first.group, all);
    if (sinks.size() < 2) continue;
    for (const auto& s : sinks) {
      add_flag(cmd, "--" + s.set + "." + word, s.kind, false, "--" + word + " for " + s.set + " only: " + s.help,
               s.default_text, s.group, s.apply);
    }
  }
}

void bind_sdsgsm_flags(OptionFlags& flags, SdsgsmOptions& sd, unsigned which, const std::string& group) {
  if (which & kDdiFlags) flags.bind(DdiOptions::option_set(), sd.ddi, group);
  flags.bind(SdsgsmOptions::option_set(), sd, group, which & ~static_cast<unsigned>(kDdiFlags));
}

std::string attack_option_group(const std::string& set) {
  auto names = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& n : v) out += (out.empty() ? "" : ", ") + n;
    return out;
  };
  if (set == DdiOptions::option_set().name() || set == SdsgsmOptions::option_set().name()) {
    return "SD-SGSM (" + names(attack_names(kSdFamily)) + ")";
  }
  if (set == MinNormOptions::option_set().name()) {
    std::vector<std::string> min_norm;
    for (const auto& a : attack_registry()) {
      if (a.family == AttackFamily::MinimumNorm) min_norm.push_back(a.name);
    }
    return "Minimum-norm attacks (" + names(min_norm) + "; unbounded: --eps does not apply, --steps does)";
  }
  return "";
}

void add_sdsgsm_flags(CLI::App* cmd, SdsgsmOptions& sd, unsigned which, const std::string& group) {
  OptionFlags flags;
  bind_sdsgsm_flags(flags, sd, which, group);
  flags.add_to(cmd);
}

namespace {

/// "batch_size" -> "--batch-size".
std::string flag_of(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return "--" + key;
}

/// The flag of a run's config key: the option sets' declaration (ddi's "max_batch" is --ddi-batch),
/// else the key's words ("attack" -> --attack). `ddi`: the key is in the config's "ddi" object.
std::string flag_of_key(const std::string& key, bool ddi) {
  std::string flag;
  visit_attack_option_sets([&](const auto& set, auto) {
    const bool ddi_set = std::is_same_v<std::decay_t<decltype(set)>, OptionSet<DdiOptions>>;
    if (!flag.empty() || ddi_set != ddi) return;
    if (const auto* f = set.find_key(key)) flag = "--" + f->word;
  });
  return flag.empty() ? flag_of(key) : flag;
}

bool given(const std::vector<std::string>& args, const std::string& flag) {
  for (const auto& a : args) {
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> config_arguments(const CLI::App& cmd, const std::string& file,
                                          const std::vector<std::string>& args) {
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(read_file(file));
  } catch (const Error& e) {
    throw Error(fmt::format("--config: {}", e.what()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("--config: '{}' is not JSON ({})", file, e.what()));
  }
  if (!m.is_object() || !m.contains("attack_config") || !m["attack_config"].is_object()) {
    throw Error(fmt::format("--config: '{}' is not the metrics.json of an sdsgsm attack run (no attack_config)", file));
  }
  // The run's data and batching (top level), then the attack's options; DDI's nested.
  std::vector<std::pair<std::string, nlohmann::json>> items;  // flag, value
  for (const char* key : {"model", "data", "split", "offset", "count", "batch_size", "resize", "crop"}) {
    if (m.contains(key)) items.emplace_back(flag_of(key), m[key]);
  }
  if (m.contains("classes_file")) items.emplace_back("--classes", m["classes_file"]);
  const nlohmann::json& config = m["attack_config"];
  for (const auto& [key, value] : config.items()) {
    // An alpha the step rule derived (SD-SGSM family: eps / steps x step factor) is not passed:
    // the rule derives it again, and the run's configuration stays the same.
    if (key == "alpha" && config.contains("step_factor")) continue;
    if (key == "ddi" && value.is_object()) {
      for (const auto& [k, v] : value.items()) items.emplace_back(flag_of_key(k, true), v);
    } else {
      items.emplace_back(flag_of_key(key, false), value);
    }
  }
  std::vector<std::string> out;
  for (const auto& [flag, value] : items) {
    const std::string negated = "--no-" + flag.substr(2);
    if (given(args, flag) || given(args, negated)) continue;  // the command line wins
    // --early-stop-8bit on the command line turns early stop on: the file's --no-early-stop yields.
    if (flag == "--early-stop" && given(args, "--early-stop-8bit")) continue;
    const CLI::Option* opt = cmd.get_option_no_throw(flag);
    if (value.is_boolean()) {
      // A flag, or its --no- form (early stop); false without a --no- form is the default.
      if (value.get<bool>() && opt) out.push_back(flag);
      if (!value.get<bool>() && cmd.get_option_no_throw(negated)) out.push_back(negated);
      continue;
    }
    // Keys without a flag (momentum, direction, bounded, ...) describe the attack; it sets them itself.
    if (!opt || value.is_null() || value.is_object() || value.is_array()) continue;
    out.push_back(flag);
    out.push_back(value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

void expand_config(const CLI::App& app, const std::string& command, std::vector<std::string>& argv) {
  // The command: the first word that is not a global option or its value.
  auto at = argv.begin() + 1;
  while (at != argv.end() && !at->empty() && (*at)[0] == '-') {
    if ((*at == "--threads" || *at == "--device") && at + 1 != argv.end()) ++at;
    ++at;
  }
  if (at == argv.end() || *at != command) return;
  const CLI::App* cmd = nullptr;
  for (const auto* sub : app.get_subcommands({})) {
    if (sub->get_name() == command) cmd = sub;
  }
  if (!cmd) return;
  std::vector<std::string> rest(at + 1, argv.end());
  std::string file;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == "--config" || rest[i].rfind("--config=", 0) == 0) {
      const bool inline_value = rest[i] != "--config";
      if (!inline_value && i + 1 >= rest.size()) throw Error("--config needs a file (a run's metrics.json)");
      file = inline_value ? rest[i].substr(9) : rest[i + 1];
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i), rest.begin() + static_cast<std::ptrdiff_t>(i + (inline_value ? 1 : 2)));
      break;
    }
  }
  if (file.empty()) return;
  std::vector<std::string> expanded(argv.begin(), at + 1);
  for (auto& a : config_arguments(*cmd, file, rest)) expanded.push_back(std::move(a));
  for (auto& a : rest) expanded.push_back(std::move(a));
  argv = std::move(expanded);
}

}  // namespace sdsgsm::cli
