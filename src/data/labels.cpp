// Class names and labels by name (include/sdsgsm/data.hpp): --classes files, image folders whose
// sub-folders name a model's classes, and CSV lists of images.
#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/data_internal.hpp"

namespace sdsgsm {
namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_synset(const std::string& s) {
  return s.size() == 9 && s[0] == 'n' &&
         std::all_of(s.begin() + 1, s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

/// A non-negative decimal integer, or -1.
int64_t parse_index(const std::string& s) {
  if (s.empty() || s.size() > 12 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
    return -1;
  }
  return std::stoll(s);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

ClassNames class_names_from_json(const fs::path& file, const nlohmann::json& j) {
  ClassNames c;
  auto entry = [&](const std::string& where, const nlohmann::json& v) {
    if (v.is_string()) {
      c.names.push_back(v.get<std::string>());
      c.ids.emplace_back();
    } else if (v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_string()) {
      c.ids.push_back(v[0].get<std::string>());
      c.names.push_back(v[1].get<std::string>());
    } else {
      throw Error(fmt::format("class names '{}': entry {} must be a name or [id, name] (got {})", file.string(), where,
                              v.dump().substr(0, 60)));
    }
    if (trim(c.names.back()).empty()) {
      throw Error(fmt::format("class names '{}': entry {} has an empty name", file.string(), where));
    }
  };
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) entry(std::to_string(i), j[i]);
  } else if (j.is_object()) {
    std::map<int64_t, nlohmann::json> by_index;
    for (const auto& [key, value] : j.items()) {
      const int64_t k = parse_index(key);
      if (k < 0) throw Error(fmt::format("class names '{}': key '{}' is not a class index", file.string(), key));
      by_index[k] = value;
    }
    int64_t expect = 0;
    for (const auto& [k, value] : by_index) {
      if (k != expect) {
        throw Error(fmt::format("class names '{}': index {} is missing (the indices must be 0..{})", file.string(), expect,
                                static_cast<int64_t>(by_index.size()) - 1));
      }
      entry(std::to_string(k), value);
      ++expect;
    }
  } else {
    throw Error(fmt::format("class names '{}': JSON must map index to name or [id, name], or list the names",
                            file.string()));
  }
  return c;
}

/// Where `name` is among `classes` (names and ids; exact, else ignoring case): its index, -1 when
/// nowhere, -2 when it names two classes.
int64_t find_class(const ClassNames& classes, const std::string& name) {
  for (bool fold : {false, true}) {
    const std::string want = fold ? lower(name) : name;
    int64_t found = -1;
    for (int64_t k = 0; k < classes.size(); ++k) {
      const auto& n = classes.names[static_cast<size_t>(k)];
      const bool id = !classes.ids.empty() && !classes.ids[static_cast<size_t>(k)].empty() &&
                      (fold ? lower(classes.ids[static_cast<size_t>(k)]) : classes.ids[static_cast<size_t>(k)]) == want;
      if ((fold ? lower(n) : n) == want || id) {
        if (found >= 0) return -2;
        found = k;
      }
    }
    if (found >= 0) return found;
  }
  return -1;
}

std::string some_names(const ClassNames& classes) {
  std::string s;
  const size_t show = std::min<size_t>(classes.names.size(), 5);
  for (size_t k = 0; k < show; ++k) {
    s += (k ? ", " : "") + classes.names[k];
    if (!classes.ids.empty() && !classes.ids[k].empty()) s += " (" + classes.ids[k] + ")";
  }
  return s + (classes.names.size() > show ? ", ..." : "");
}

}  // namespace

ClassNames read_class_names(const fs::path& file) {
  if (!fs::is_regular_file(file)) throw Error(fmt::format("class names '{}' does not exist", file.string()));
  const std::string text = read_file(file);
  const std::string start = trim(text.substr(0, 64));
  ClassNames c;
  if (!start.empty() && (start[0] == '{' || start[0] == '[')) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("class names '{}' is not valid JSON ({})", file.string(), e.what()));
    }
    c = class_names_from_json(file, j);
  } else {
    auto lines = lines_of(text);
    while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
    // Caffe's synset_words.txt: "n01440764 tench, Tinca tinca" (id, then names; the first is shown).
    bool synset_words = !lines.empty();
    for (const auto& l : lines) synset_words = synset_words && l.size() > 10 && is_synset(l.substr(0, 9)) && l[9] == ' ';
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string line = trim(lines[i]);
      if (line.empty()) {
        throw Error(fmt::format("class names '{}': line {} is empty (one class name a line, in the model's output order)",
                                file.string(), i + 1));
      }
      if (synset_words) {
        c.ids.push_back(line.substr(0, 9));
        std::string rest = trim(line.substr(10));
        line = trim(rest.substr(0, rest.find(',')));
      }
      c.names.push_back(line);
    }
  }
  if (c.names.empty()) throw Error(fmt::format("class names '{}' names no class", file.string()));
  if (std::all_of(c.ids.begin(), c.ids.end(), [](const std::string& s) { return s.empty(); })) c.ids.clear();
  return c;
}

namespace detail {

int64_t class_index(const DataOptions& o, const std::string& name, const std::string& where) {
  const int64_t k = find_class(o.classes, name);
  if (k == -2) {
    throw Error(fmt::format("{}: '{}' names more than one of the {} classes (ImageNet has two 'crane's): name it by its "
                            "id (synset) instead",
                            where, name, o.classes.size()));
  }
  if (k < 0) {
    throw Error(fmt::format("{}: '{}' is none of the {} classes{} ({}); name it by a class{}", where, name,
                            o.classes.size(), o.classes_given ? " of --classes" : " the model knows", some_names(o.classes),
                            o.classes_given ? "" : ", or give the model's class names with --classes FILE"));
  }
  return k;
}

void label_folders(ImageFolderListing& listing, const fs::path& dir, const DataOptions& o,
                   const std::vector<std::string>& folders) {
  if (o.classes.empty()) return;
  if (!o.classes_given) {
    // Names known only from the model: used when some folder is named by them.
    bool any = false;
    for (const auto& f : folders) any = any || find_class(o.classes, f) >= 0;
    if (!any) return;
  }
  std::vector<int64_t> index;
  for (const auto& f : folders) index.push_back(class_index(o, f, fmt::format("image folder '{}': sub-folder", dir.string())));
  for (auto& label : listing.labels) label = index[static_cast<size_t>(label)];
  listing.classes = o.classes.names;
}

ImageFolderListing list_csv(const fs::path& file, const DataOptions& o) {
  if (!fs::is_regular_file(file)) throw Error(fmt::format("image list '{}' does not exist", file.string()));
  const fs::path base = file.parent_path();
  const auto lines = lines_of(read_file(file));
  ImageFolderListing out;
  out.classes = o.classes.names;
  bool seen_row = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string line = trim(lines[i]);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = fmt::format("image list '{}' line {}", file.string(), i + 1);
    const size_t comma = line.rfind(',');
    if (comma == std::string::npos) throw Error(fmt::format("{}: expected 'path,label', got '{}'", where, line.substr(0, 80)));
    auto unquote = [](std::string s) {
      s = trim(s);
      if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
      return s;
    };
    const std::string path = unquote(line.substr(0, comma)), label = unquote(line.substr(comma + 1));
    if (path.empty() || label.empty()) {
      throw Error(fmt::format("{}: expected 'path,label', got '{}'", where, line.substr(0, 80)));
    }
    int64_t k = parse_index(label);
    // A header: the first row, when its label is no index and its path no image file name.
    if (out.files.empty() && !seen_row && k < 0 && !is_image_file(path)) {
      seen_row = true;
      continue;
    }
    seen_row = true;
    if (k < 0) {
      if (label[0] == '-' && parse_index(label.substr(1)) >= 0) {
        throw Error(fmt::format("{}: label {} is negative", where, label));
      }
      if (o.classes.empty()) {
        throw Error(fmt::format("{}: label '{}' is not a class index, and the model's class names are unknown (give them "
                                "with --classes FILE)",
                                where, label));
      }
      k = class_index(o, label, where + ": label");
    } else if (!o.classes.empty() && k >= o.classes.size()) {
      throw Error(fmt::format("{}: label {} is beyond the {} classes (0..{})", where, k, o.classes.size(),
                              o.classes.size() - 1));
    }
    fs::path p(path);
    if (p.is_relative()) p = base / p;
    out.files.push_back(p);
    out.labels.push_back(k);
  }
  if (out.files.empty()) throw Error(fmt::format("image list '{}' lists no image (rows 'path,label')", file.string()));
  return out;
}

}  // namespace detail
}  // namespace sdsgsm
