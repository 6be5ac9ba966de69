// Pieces shared by the in-memory readers and the streaming sources.
#pragma once

#include "sdsgsm/data.hpp"

namespace sdsgsm::detail {

/// Copies `n` CIFAR-10 records (label byte + 3072 pixel bytes) into images (uint8, n x 3 x 32 x 32)
/// and labels (int64, n); a label outside 0..9 is an Error naming `file` and the record index
/// (`first_record` + i).
void parse_cifar_records(const char* records, int64_t n, const fs::path& file, int64_t first_record,
                         uint8_t* images, int64_t* labels);

/// Records in a CIFAR-10 batch file, after checking its size (a non-zero multiple of the record).
int64_t cifar_record_count(const fs::path& file);

/// The CIFAR-10 files of a split in a folder.
std::vector<fs::path> cifar_split_files(const fs::path& dir, Split split);

/// An image folder's classes and its images (sorted by sub-folder name, then by file name) with
/// their labels. Without class names (options.classes) the classes are the sorted sub-folder names
/// and a label is its folder's index; with them, a label is the index of the class its folder
/// names (DataOptions). Errors when it has no class folder or no image, or a folder names no class.
struct ImageFolderListing {
  std::vector<std::string> classes;
  std::vector<fs::path> files;
  std::vector<int64_t> labels;
};
ImageFolderListing list_image_folder(const fs::path& dir, const DataOptions& options = {});

/// A CSV list of `path,label` rows (see open_dataset); errors name the file and line.
ImageFolderListing list_csv(const fs::path& file, const DataOptions& options);

/// A listing's images as a source, read `options`' way (offset/count as open_image_source's).
std::unique_ptr<ImageSource> listed_source(ImageFolderListing listing, std::string source, int64_t offset, int64_t count,
                                           const DataOptions& options);

/// Whether a path is a CSV list (its extension is .csv, any case).
bool is_csv_list(const fs::path& path);

/// Whether a file name ends in an image extension stb_image reads (.png .jpg .jpeg .bmp).
bool is_image_file(const fs::path& path);

/// The index of the class `name` names among options.classes (names or ids, exactly, else ignoring
/// case); an Error beginning with `where` when it names none, or two.
int64_t class_index(const DataOptions& options, const std::string& name, const std::string& where);

/// Relabels a listing whose labels index `folders` by the class each folder names (see DataOptions).
void label_folders(ImageFolderListing& listing, const fs::path& dir, const DataOptions& options,
                   const std::vector<std::string>& folders);

/// Resizes (short side to options.resize; bilinear, antialiased, as torchvision's Resize) and
/// centre-crops (options.crop) an RGB uint8 3 x H x W image; an Error names `file` when the image
/// is smaller than the crop.
torch::Tensor resize_and_crop(const fs::path& file, torch::Tensor image, const DataOptions& options);

/// Checks [offset, offset + count) against a data set of `total` images (count -1: to the end; up_to(n), data.hpp: at most n)
/// and returns the count; errors say what was asked and what `source` holds.
int64_t checked_range(int64_t offset, int64_t count, int64_t total, const std::string& source);

/// Bounds on one image of a folder (far above what a classifier takes; they keep a damaged or
/// hostile header from making the decoder fill gigabytes).
inline constexpr uint64_t kMaxImageFileBytes = uint64_t{256} << 20;
inline constexpr int kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 24;

/// Decodes one image file to RGB uint8 3 x H x W; an Error names the file when it cannot, or when
/// it is larger than the bounds above.
torch::Tensor decode_rgb(const fs::path& file);

/// An Error naming `file` unless `image` (3 x H x W) has the folder's `shape` (suggesting --resize
/// and --crop unless `options` already crop).
void check_image_shape(const fs::path& file, const torch::Tensor& image, at::IntArrayRef shape,
                       const DataOptions& options = {});

}  // namespace sdsgsm::detail
