// One declaration per option. An options struct (AttackOptions, MinNormOptions, SdsgsmOptions,
// DdiOptions) lists its fields once, as OptionField descriptors in an OptionSet: the word (the
// command-line flag --word, the Python keyword word_with_underscores), the JSON key (read and
// written), the kind of value, the check, the help text, and the attack families it applies to.
// The struct's to_json / from_json / validate, the command line's flags (apps/options.cpp), the
// `--config` replay and the Python module's keywords all read the set; adding an option is one
// field and one descriptor.
//
// Options belong to a family (the set's name): two sets may declare the same word. A command that
// takes both has one flag for it that sets each set's own field, parsed and checked by that set's
// descriptor, and also takes the qualified form --SET.word, which sets only that set's field
// (e.g. --norm sets the minimum-norm distance and APGD's ball; --minimum-norm.norm only the former).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

/// The kind of value an option takes: how the command line and Python read it.
enum class OptionKind {
  Number,   ///< a real number; the command line also takes fractions ("8/255")
  Integer,  ///< a whole number
  Switch,   ///< on or off: a flag without value (with a --no- form when the option may be unset)
  Text,     ///< a word from a fixed list (the check names it)
};

/// The integer of command-line text; throws Error "WHAT: 'TEXT' is not an integer".
int64_t parse_integer(const std::string& text, const std::string& what);

/// Which ends of OptionField::in_range's interval belong to it.
enum class RangeEnds { Closed, Open, LeftOpen, RightOpen };

/// Bits of the attack families (1 << AttackFamily) an option applies to.
inline constexpr unsigned kAllFamilies = ~0u;

/// One option of the options struct O, declared once.
template <class O>
struct OptionField {
  std::string word;  ///< --word on the command line; word with '-' written '_' in Python
  std::string key;   ///< its JSON key (the struct's to_json and from_json)
  OptionKind kind = OptionKind::Number;
  std::string help;           ///< the command line's help text
  bool optional = false;      ///< may be unset (attack's default): absent in JSON, None in Python
  bool user = true;           ///< a flag and a keyword (false: set by the attacks themselves)
  bool off_flag = false;      ///< a switch on by default: the command line has only its --no- form
  unsigned families = kAllFamilies;  ///< where it applies (AttackFamily bits): config and help
  unsigned part = 0;          ///< a group within the struct (SD-SGSM: which flags a command takes)
  std::vector<std::string> aliases;  ///< more Python keywords (lambda_: lambda is reserved)
  std::optional<std::string> default_text;  ///< the default the help shows; unset: the bound value's
  std::function<nlohmann::json(const O&)> get;         ///< the value; null where unset
  std::function<void(O&, const nlohmann::json&)> put;  ///< sets it (null: unsets); throws Error
  std::function<std::string(const O&)> check;         ///< "" or the error, naming --word
  std::function<bool(const O&)> written;               ///< to_json writes it; unset: when get is not null
  /// Whether to_json writes it for `o`.
  bool writes(const O& o) const { return written ? written(o) : !get(o).is_null(); }

  /// The Python keyword.
  std::string keyword() const {
    std::string k = word;
    for (char& ch : k) ch = ch == '-' ? '_' : ch;
    return k;
  }
  /// Whether it applies to the family with bit `family_bit`.
  bool applies(unsigned family_bit) const { return (families & family_bit) != 0; }
  /// Sets it from command-line text (a switch: "true" / "false").
  void parse(O& o, const std::string& text) const {
    const std::string flag = "--" + word;
    switch (kind) {
      case OptionKind::Number: put(o, parse_number(text, flag)); break;
      case OptionKind::Integer: put(o, parse_integer(text, flag)); break;
      case OptionKind::Switch: put(o, text == "true"); break;
      case OptionKind::Text: put(o, text); break;
    }
  }
  /// Chained modifiers for the declaration.
  OptionField& checked(std::function<std::string(const O&)> f) { check = std::move(f); return *this; }
  OptionField& when(std::function<bool(const O&)> f) { written = std::move(f); return *this; }
  OptionField& in(unsigned family_bits) { families = family_bits; return *this; }
  OptionField& group(unsigned p) { part = p; return *this; }
  OptionField& json_key(std::string k) { key = std::move(k); return *this; }
  OptionField& alias(std::string a) { aliases.push_back(std::move(a)); return *this; }
  OptionField& shown(std::string d) { default_text = std::move(d); return *this; }
  OptionField& internal() { user = false; return *this; }
  /// A switch on by default whose flag is --no-WORD (help: what turning it off does).
  OptionField& off_switch() { off_flag = true; return *this; }

  /// Checks built from the declaration: each message names the flag, the rule and the value
  /// ("--beta must be > 0 (got -1)"); an unset optional value passes. Numbers must be finite
  /// but where positive_or_infinite says otherwise.
  OptionField& positive() {
    return rule([](double v) { return v > 0 && std::isfinite(v); }, "> 0");
  }
  OptionField& positive_or_infinite() {
    return rule([](double v) { return v > 0; }, "> 0");
  }
  OptionField& at_least(double n) {
    return rule([n](double v) { return v >= n && std::isfinite(v); }, fmt::format(">= {}", n));
  }
  OptionField& in_range(double a, double b, RangeEnds ends = RangeEnds::Closed) {
    const char* open = ends == RangeEnds::Closed || ends == RangeEnds::RightOpen ? "[" : "(";
    const char* close = ends == RangeEnds::Open || ends == RangeEnds::RightOpen ? ")" : "]";
    return rule(
        [a, b, ends](double v) {
          if (ends == RangeEnds::Closed) return v >= a && v <= b;
          if (ends == RangeEnds::Open) return v > a && v < b;
          if (ends == RangeEnds::RightOpen) return v >= a && v < b;
          return v > a && v <= b;
        },
        fmt::format("in {}{}, {}{}", open, a, b, close));
  }
  OptionField& one_of(std::vector<std::string> words) {
    std::string list;
    for (size_t i = 0; i < words.size(); ++i) list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
    check = [get = get, flag = "--" + word, words, list](const O& o) -> std::string {
      const nlohmann::json j = get(o);
      if (j.is_null()) return "";
      const std::string v = j.get<std::string>();
      for (const auto& w : words) {
        if (w == v) return "";
      }
      return fmt::format("{} must be {} (got '{}')", flag, list, v);
    };
    return *this;
  }

 private:
  /// A numeric check: `ok(value)`, else "--word must be WHAT (got value)".
  template <class Ok>
  OptionField& rule(Ok ok, std::string what) {
    check = [get = get, flag = "--" + word, ok, what](const O& o) -> std::string {
      const nlohmann::json j = get(o);
      if (j.is_null()) return "";
      if (ok(j.get<double>())) return "";
      const std::string got = j.is_number_integer() ? fmt::format("{}", j.get<int64_t>()) : fmt::format("{}", j.get<double>());
      return fmt::format("{} must be {} (got {})", flag, what, got);
    };
    return *this;
  }
};

namespace detail {
template <class T> struct option_traits {
  using value = T;
  static constexpr bool optional = false;
};
template <class T> struct option_traits<std::optional<T>> {
  using value = T;
  static constexpr bool optional = true;
};
template <class V> constexpr OptionKind option_kind() {
  if constexpr (std::is_same_v<V, bool>) return OptionKind::Switch;
  else if constexpr (std::is_integral_v<V>) return OptionKind::Integer;
  else if constexpr (std::is_floating_point_v<V>) return OptionKind::Number;
  else return OptionKind::Text;  // strings and enums (with nlohmann to_json / from_json)
}
}  // namespace detail

/// The descriptor of field `member` of O: kind and optionality from its type, the JSON key the
/// word with '_' for '-'. T is double, an integer, bool, std::string, an enum with JSON
/// conversions, or std::optional of one of them.
template <class O, class T>
OptionField<O> option(std::string word, T O::*member, std::string help) {
  using Traits = detail::option_traits<T>;
  using V = typename Traits::value;
  OptionField<O> f;
  f.word = std::move(word);
  f.key = f.keyword();
  f.kind = detail::option_kind<V>();
  f.optional = Traits::optional;
  f.help = std::move(help);
  f.get = [member](const O& o) -> nlohmann::json {
    if constexpr (Traits::optional) {
      if (!(o.*member)) return nullptr;
      return nlohmann::json(*(o.*member));
    } else {
      return nlohmann::json(o.*member);
    }
  };
  const std::string key = f.key, flag = "--" + f.word;
  f.put = [member, key, flag](O& o, const nlohmann::json& j) {
    if (j.is_null()) {
      if constexpr (Traits::optional) {
        (o.*member).reset();
        return;
      }
    }
    if constexpr (std::is_integral_v<V> && std::is_unsigned_v<V> && !std::is_same_v<V, bool>) {
      if (j.is_number_integer() && j.get<int64_t>() < 0) {
        throw Error(fmt::format("{} must be >= 0 (got {})", flag, j.get<int64_t>()));
      }
    }
    bool fits = true;
    if constexpr (std::is_same_v<V, bool>) fits = j.is_boolean();
    else if constexpr (std::is_integral_v<V>) fits = j.is_number_integer();
    else if constexpr (std::is_floating_point_v<V>) fits = j.is_number();
    if (!fits) throw Error(fmt::format("option '{}' has the wrong type ({})", key, j.dump()));
    try {
      o.*member = j.get<V>();
    } catch (const nlohmann::json::exception&) {
      throw Error(fmt::format("option '{}' has the wrong type ({})", key, j.dump()));
    }
  };
  return f;
}

/// Whether a comma-separated list keeps its empty items (",b": an empty first item) or skips them.
enum class EmptyItems { Skip, Keep };

/// The descriptor of a list field (std::vector<std::string>) of O, given as comma-separated text
/// ("resnet20,vgg7bn"): the command line and JSON take the text (JSON also an array of strings);
/// its value, and the default the help shows, is the items joined by ','.
template <class O>
OptionField<O> list_option(std::string word, std::vector<std::string> O::*member, std::string help,
                           EmptyItems empty = EmptyItems::Skip) {
  OptionField<O> f;
  f.word = std::move(word);
  f.key = f.keyword();
  f.kind = OptionKind::Text;
  f.help = std::move(help);
  f.get = [member](const O& o) -> nlohmann::json {
    std::string text;
    for (size_t i = 0; i < (o.*member).size(); ++i) text += (i == 0 ? "" : ",") + (o.*member)[i];
    return text;
  };
  const std::string key = f.key;
  f.put = [member, key, empty](O& o, const nlohmann::json& j) {
    std::vector<std::string> items;
    if (j.is_array()) {
      for (const auto& item : j) {
        if (!item.is_string()) throw Error(fmt::format("option '{}' has the wrong type ({})", key, j.dump()));
        items.push_back(item.get<std::string>());
      }
    } else if (j.is_string()) {
      std::stringstream ss(j.get<std::string>());
      for (std::string item; std::getline(ss, item, ',');) {
        if (!item.empty() || empty == EmptyItems::Keep) items.push_back(item);
      }
    } else {
      throw Error(fmt::format("option '{}' has the wrong type ({})", key, j.dump()));
    }
    o.*member = std::move(items);
  };
  return f;
}

/// The options of one struct O, in the order the help lists them; `name` is the family's (the
/// qualifier of its flags: --NAME.word).
template <class O>
class OptionSet {
 public:
  OptionSet(std::string name, std::vector<OptionField<O>> fields) : name_(std::move(name)), fields_(std::move(fields)) {}

  const std::string& name() const { return name_; }
  const std::vector<OptionField<O>>& fields() const { return fields_; }

  /// The field of a word (or Python keyword, or alias); nullptr when it has none.
  const OptionField<O>* find(const std::string& word) const {
    for (const auto& f : fields_) {
      if (f.word == word || f.keyword() == word) return &f;
      for (const auto& a : f.aliases) {
        if (a == word) return &f;
      }
    }
    return nullptr;
  }
  /// The field of a JSON key; nullptr when it has none.
  const OptionField<O>* find_key(const std::string& key) const {
    for (const auto& f : fields_) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }

  /// The fields to_json writes (each field's rule), of the fields that apply to `family_bits`.
  nlohmann::json to_json(const O& o, unsigned family_bits = kAllFamilies) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : fields_) {
      if (f.applies(family_bits) && f.writes(o)) j[f.key] = f.get(o);
    }
    return j;
  }
  /// The fields to_json writes of those `pick` selects.
  nlohmann::json to_json(const O& o, const std::function<bool(const OptionField<O>&)>& pick) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& f : fields_) {
      if (pick(f) && f.writes(o)) j[f.key] = f.get(o);
    }
    return j;
  }
  /// Reads the keys of `j` the set knows into `o` (the others keep their values); throws Error on
  /// a wrong type or value.
  void read_json(const nlohmann::json& j, O& o) const {
    if (!j.is_object()) return;
    for (const auto& f : fields_) {
      if (j.contains(f.key)) f.put(o, j.at(f.key));
    }
  }
  /// Throws Error with the first failing field's message, in declaration order.
  void validate(const O& o) const {
    for (const auto& f : fields_) {
      if (!f.check) continue;
      if (std::string e = f.check(o); !e.empty()) throw Error(e);
    }
  }

 private:
  std::string name_;
  std::vector<OptionField<O>> fields_;
};

}  // namespace sdsgsm
