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

/// An image folder's classes (sorted sub-folder names) and its images (sorted by class, then by
/// file name) with their labels. Errors when it has no class folder or no image.
struct ImageFolderListing {
  std::vector<std::string> classes;
  std::vector<fs::path> files;
  std::vector<int64_t> labels;
};
ImageFolderListing list_image_folder(const fs::path& dir);

/// Checks [offset, offset + count) against a data set of `total` images (count < 0: to the end)
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

/// An Error naming `file` unless `image` (3 x H x W) has the folder's `shape`.
void check_image_shape(const fs::path& file, const torch::Tensor& image, at::IntArrayRef shape);

}  // namespace sdsgsm::detail
