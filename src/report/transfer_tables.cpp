// The transfer matrices as Markdown (evaluation_tables.hpp).
#include <algorithm>

#include <fmt/format.h>

#include "sdsgsm/evaluation_tables.hpp"

namespace sdsgsm {

std::string transfer_tables(const std::vector<TransferCell>& cells) {
  std::vector<std::string> attacks, sources, targets;
  auto add = [](std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  };
  for (const auto& c : cells) {
    add(attacks, c.attack);
    add(sources, c.source);
    add(targets, c.target);
  }
  std::string out;
  for (const auto& a : attacks) {
    out += fmt::format("\n{}: transfer ASR, float (8-bit rounded); rows: the model attacked, columns: the model fooled "
                       "(the diagonal: the white-box ASR over the images it classifies correctly)\n\n| made on \\ fools |", a);
    for (const auto& t : targets) out += " " + t + " |";
    out += "\n|---|";
    for (size_t i = 0; i < targets.size(); ++i) out += "---:|";
    out += "\n";
    for (const auto& s : sources) {
      out += "| " + s + " |";
      for (const auto& t : targets) {
        auto it = std::find_if(cells.begin(), cells.end(),
                               [&](const TransferCell& c) { return c.attack == a && c.source == s && c.target == t; });
        out += it == cells.end() ? " |"
                                 : fmt::format(" {:.1f}% ({:.1f}%) of {} |", 100 * it->asr(), 100 * it->asr_8bit(), it->counted);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace sdsgsm
