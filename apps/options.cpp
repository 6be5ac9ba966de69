// Flags and parsing shared by the sub-commands.
#include <sstream>

#include "commands.hpp"

namespace sdsgsm::cli {

void add_model_data_flags(CLI::App* cmd, std::string& model, std::string& data, std::string& split) {
  cmd->add_option("--model", model, "Zoo name or model file (sdsgsm weights or TorchScript)")->capture_default_str();
  cmd->add_option("--data", data, "CIFAR-10 binary folder, .bin file or image folder")->capture_default_str();
  cmd->add_option("--split", split, "CIFAR-10 split: test or train")
      ->check(CLI::IsMember({"test", "train"}))
      ->capture_default_str();
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

}  // namespace sdsgsm::cli
