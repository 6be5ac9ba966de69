#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>
#include <torch/script.h>

#include "models/zoo_internal.hpp"
#include "sdsgsm_config.hpp"

namespace sdsgsm {

std::vector<std::string> zoo_architectures() {
  return {"resnet20", "resnet32", "resnet44", "resnet56", "vgg7bn"};
}

std::vector<ZooModel> zoo_models() {
  std::vector<ZooModel> out;
  for (const auto& a : zoo_architectures()) out.push_back({a, a, fmt::format("sdsgsm train --arch {} --out models/{}.pt", a, a)});
  out.push_back({"resnet20-at", "resnet20",
                 "sdsgsm train --arch resnet20 --adversarial fgsm-rs --epochs 20 --schedule onecycle --lr 0.2 "
                 "--precision bf16 --out models/resnet20-at.pt"});
  return out;
}

const ZooModel* find_zoo_model(const std::string& name) {
  static const std::vector<ZooModel> models = zoo_models();
  for (const auto& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::shared_ptr<Network> make_network(const std::string& arch, int64_t num_classes) {
  if (num_classes < 2) throw Error(fmt::format("a classifier needs at least 2 classes (got {})", num_classes));
  for (int depth : {20, 32, 44, 56}) {
    if (arch == fmt::format("resnet{}", depth)) return make_cifar_resnet(depth, num_classes);
  }
  if (arch == "vgg7bn") return make_vgg7bn(num_classes);
  std::string known;
  for (const auto& a : zoo_architectures()) known += (known.empty() ? "" : ", ") + a;
  throw Error(fmt::format("unknown architecture '{}' (known: {})", arch, known));
}

void save_network(const std::shared_ptr<Network>& net, const std::string& arch, int64_t num_classes,
                  const fs::path& path) {
  torch::serialize::OutputArchive archive;
  net->save(archive);
  archive.write("sdsgsm_arch", c10::IValue(arch));
  archive.write("sdsgsm_num_classes", c10::IValue(num_classes));
  write_via_temp(path, [&](const fs::path& tmp) { archive.save_to(tmp.string()); });
}

void check_model_archive(const fs::path& path) {
  // Both kinds of model file (TorchScript, and sdsgsm weights written by LibTorch) are zip
  // archives; where one begins does not matter to LibTorch's reader (it starts from the end).
  try {
    verify_zip(path);
  } catch (const Error& e) {
    throw Error(fmt::format("'{}' is not a model file (neither sdsgsm weights nor TorchScript): {}", path.string(),
                            std::string(e.what()).substr(path.string().size() + 6)));
  }
  // A file with sound checksums can still crash LibTorch 1.13's TorchScript reader outright (its
  // parser on crafted source, e.g. a class constant without its annotation: fuzz_model). Both kinds
  // of file go through torch::jit::load, so it is tried first in a forked child: a crash there
  // becomes this error; an exception is left to the real load, which words it; a child that is
  // stopped or outlives the limit proves nothing and the load goes on.
  const auto outcome = run_in_child(
      [&] {
        torch::set_num_threads(1);
        (void)torch::jit::load(path.string(), torch::kCPU);
      },
      std::chrono::seconds(120));
  if (outcome.kind == ChildOutcome::crashed) {
    throw Error(fmt::format("'{}' is not a model file (neither sdsgsm weights nor TorchScript): LibTorch's reader "
                            "crashes on it ({}, in a child process)",
                            path.string(), outcome.crash_text()));
  }
}

LoadedNetwork load_network(const fs::path& path) {
  if (!fs::is_regular_file(path)) throw Error(fmt::format("model file '{}' does not exist", path.string()));
  check_model_archive(path);
  return load_checked_network(path);
}

LoadedNetwork load_checked_network(const fs::path& path) {
  torch::serialize::InputArchive archive;
  c10::IValue arch, classes;
  bool has_arch = false, has_classes = false;
  try {
    archive.load_from(path.string());
    has_arch = archive.try_read("sdsgsm_arch", arch);
    has_classes = archive.try_read("sdsgsm_num_classes", classes);
  } catch (const std::exception&) {  // c10::Error, or std::runtime_error from a damaged archive
    throw Error(fmt::format("'{}' is not a model file (neither sdsgsm weights nor TorchScript)", path.string()));
  }
  if (!has_arch || !arch.isString()) {
    throw Error(fmt::format("'{}' is not an sdsgsm weights file", path.string()));
  }
  LoadedNetwork out;
  out.arch = arch.toStringRef();
  if (has_classes && classes.isInt()) out.num_classes = classes.toInt();
  out.net = make_network(out.arch, out.num_classes);
  try {
    out.net->load(archive);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    throw Error(fmt::format("'{}': weights do not fit architecture {}: {}", path.string(), out.arch,
                            why.substr(0, why.find('\n'))));
  } catch (const std::exception& e) {
    std::string why = e.what();
    throw Error(fmt::format("'{}': weights do not fit architecture {}: {}", path.string(), out.arch,
                            why.substr(0, why.find('\n'))));
  }
  return out;
}

void export_torchscript(Network& net, const std::string& arch, const fs::path& out) {
  auto flat = [](std::string name) {
    for (char& c : name) {
      if (c == '.') c = '_';
    }
    return name;
  };
  torch::jit::Module module(c10::QualifiedName("__torch__.sdsgsm." + arch));
  for (const auto& p : net.named_parameters()) {
    module.register_parameter(flat(p.key()), p.value().detach().clone(), /*is_buffer=*/false);
  }
  for (const auto& b : net.named_buffers()) module.register_buffer(flat(b.key()), b.value().detach().clone());
  try {
    module.define(net.script_forward());
  } catch (const std::exception& e) {
    throw Error(fmt::format("internal: the TorchScript source of {} does not compile: {}", arch, e.what()));
  }
  module.eval();
  write_via_temp(out, [&](const fs::path& tmp) { module.save(tmp.string()); });
}

namespace {

/// The folder of the file holding this code: libsdsgsm.so (installed: PREFIX/LIBDIR), or the
/// executable the static library is linked into. Empty when the loader cannot tell.
fs::path library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&find_zoo_weights), &info) == 0 || info.dli_fname == nullptr) return {};
  std::error_code ec;
  fs::path file = fs::weakly_canonical(fs::path(info.dli_fname), ec);
  return ec ? fs::path() : file.parent_path();
}

}  // namespace

fs::path find_zoo_weights(const std::string& name) {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("SDSGSM_MODEL_DIR")) dirs.emplace_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path() / "models");
    dirs.push_back(exe.parent_path().parent_path() / "models");
    dirs.push_back(exe.parent_path().parent_path() / "share" / "sdsgsm" / "models");
  }
  // Installed: PREFIX/share/sdsgsm/models from the library's own folder, wherever the prefix was
  // moved to (a C++ program or Python linking the installed library, not only the tool).
  if (fs::path lib = library_dir(); !lib.empty()) dirs.push_back((lib / SDSGSM_LIB_TO_MODEL_DIR).lexically_normal());
  dirs.emplace_back(SDSGSM_SOURCE_MODEL_DIR);
  dirs.emplace_back(SDSGSM_INSTALL_MODEL_DIR);
  for (const auto& d : dirs) {
    fs::path f = d / (name + ".pt");
    if (fs::is_regular_file(f, ec)) return f;
  }
  return {};
}

}  // namespace sdsgsm
