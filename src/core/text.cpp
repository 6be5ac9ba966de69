// Text helpers: number parsing and the version line.
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "sdsgsm/core.hpp"
#include "sdsgsm/options.hpp"
#include "sdsgsm_config.hpp"

namespace sdsgsm {

void check_batch_size(int64_t batch_size) {
  // Declared as an option set's field, so that its check is the declaration's ("--batch-size must be >= 1").
  struct Batch {
    int64_t batch_size = 0;
  };
  static const OptionField<Batch> field = option("batch-size", &Batch::batch_size, "Images per batch").at_least(1);
  if (std::string e = field.check(Batch{batch_size}); !e.empty()) throw Error(e);
}

double parse_number(const std::string& text, const std::string& what) {
  auto parse_plain = [&](const std::string& t) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size() || !std::isfinite(v)) {
      throw Error(fmt::format("{}: '{}' is not a number (write e.g. 0.03 or 8/255)", what, text));
    }
    return v;
  };
  auto slash = text.find('/');
  if (slash == std::string::npos) return parse_plain(text);
  double num = parse_plain(text.substr(0, slash));
  double den = parse_plain(text.substr(slash + 1));
  if (den == 0) throw Error(fmt::format("{}: '{}' divides by zero", what, text));
  return num / den;
}

int64_t parse_integer(const std::string& text, const std::string& what) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw Error(fmt::format("{}: '{}' is not an integer", what, text));
  return v;
}

std::string version_string() {
  return fmt::format("sdsgsm {} (LibTorch {}.{}.{})", SDSGSM_VERSION, TORCH_VERSION_MAJOR,
                     TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
}

}  // namespace sdsgsm
