#include <fmt/format.h>

#include "sdsgsm/sdsgsm.hpp"

namespace sdsgsm {

std::vector<std::string> attack_names() {
  return {"fgsm", "ifgsm", "mifgsm", "nifgsm", "pgd", "sdsgsm", "sd-ifgsm", "sgsm", "deepfool", "cw", "ddn", "fmn"};
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options) {
  return make_attack(name, options, SdsgsmOptions());
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options, const SdsgsmOptions& sd) {
  return make_attack(name, options, sd, MinNormOptions());
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options, const SdsgsmOptions& sd,
                                    const MinNormOptions& mn) {
  if (name == "sdsgsm" || name == "sd-ifgsm" || name == "sgsm") return make_sdsgsm_variant(name, options, sd);
  if (name == "fgsm") return make_fgsm(options);
  if (name == "ifgsm" || name == "bim") return make_ifgsm(options);
  if (name == "mifgsm") return make_mifgsm(options);
  if (name == "nifgsm") return make_nifgsm(options);
  if (name == "pgd") return make_pgd(options);
  if (name == "deepfool") return make_deepfool(options, mn);
  if (name == "cw") return make_cw(options, mn);
  if (name == "ddn") return make_ddn(options, mn);
  if (name == "fmn") return make_fmn(options, mn);
  std::string known;
  for (const auto& a : attack_names()) known += (known.empty() ? "" : ", ") + a;
  throw Error(fmt::format("unknown attack '{}' (known: {})", name, known));
}

}  // namespace sdsgsm
