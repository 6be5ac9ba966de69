// Pieces of the robust-accuracy evaluation shared by its files (private to src/evaluation).
#pragma once

#include <string>
#include <vector>

#include "sdsgsm/robust.hpp"

namespace sdsgsm::robust_detail {

/// Runs attack `a` on the images `rows` of x (still robust) and returns which of them it fooled
/// (on the CPU); with `stage`, adds the run's counts and time to it.
torch::Tensor attack_rows(Classifier& model, const Attack& a, const torch::Tensor& x, const torch::Tensor& y,
                          const torch::Tensor& ids, const torch::Tensor& rows, RobustStage* stage);

/// Appends the masking checks to `res` (its stages and fooled_by already set by the sequence
/// `names`). With `checks_file`, the outcomes of the checks that run attacks are read from it when
/// it exists (a resumed run) and written to it otherwise.
void add_masking_checks(Classifier& model, const ImageSource& source, const RobustOptions& o,
                        const std::vector<std::string>& names, RobustResult& res, const fs::path& checks_file);

/// The checks of the model itself on the first batch (two forward passes): randomness and
/// probability outputs; sets res.classes. A randomised model switches `o` to the rand version
/// when the user did not ask for one (with a warning), and throws Error with advice when the
/// version asked for does not average over passes.
std::vector<RobustCheck> check_model(Classifier& model, const ImageSource& source, RobustOptions& o, RobustResult& res);

/// The plan for a model of `classes` classes: on 2 classes the DLR attacks (apgd-dlr, apgd-t) are
/// left out, with a note.
std::vector<RobustStagePlan> adapt_to_classes(const std::vector<RobustStagePlan>& plan, int64_t classes,
                                              std::vector<std::string>& notes);

/// The targets check: APGD-T and FAB-T take min(9, classes - 1) targets; warns below 9.
RobustCheck targets_check(const std::vector<RobustStagePlan>& plan, int64_t classes);

/// What every robust run does first: the model's checks (check_model, which may switch `o` to the
/// rand version), then the plan adapted to the class count; the checks, the targets check last,
/// are appended to `checks`.
std::vector<RobustStagePlan> checked_plan(Classifier& model, const ImageSource& source, RobustOptions& o,
                                          RobustResult& res, std::vector<RobustCheck>& checks);

}  // namespace sdsgsm::robust_detail
