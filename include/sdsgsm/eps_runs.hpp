// What `compare` and `reproduce` both run beside an attack's main run, written once: its ASR
// against eps (one run per budget, as Foolbox's epsilons) and each image's smallest eps by
// bisection (sdsgsm/min_eps.hpp).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdsgsm/curves.hpp"
#include "sdsgsm/min_eps.hpp"
#include "sdsgsm/runner.hpp"

namespace sdsgsm {

/// An attack at a budget, with its own step rule (the SD-SGSM family's alpha follows eps).
using AttackAtEps = std::function<std::unique_ptr<Attack>(double eps)>;

/// `make(eps)` at each eps of `epsilons` on `data`, without outputs or progress bar: the float
/// and 8-bit ASR, as the curve `name`. Collective under mpirun (every rank attacks its batches);
/// rank 0 holds the curve, the others an empty one.
EpsCurve run_eps_curve(Classifier& model, const Dataset& data, const std::string& name,
                       const std::vector<double>& epsilons, const AttackAtEps& make, const RunOptions& run);

/// Each image of `data` its smallest eps in (0, eps_max] after `rounds` of bisection, by `make`
/// (run's batch size, first index and device); writes dir/min_eps.csv and returns the summary
/// (min_eps_summary) over the images `r`, the attack's run on the same first images, classifies
/// correctly. Rank 0 alone (it holds `r`).
nlohmann::json run_min_eps(Classifier& model, const Dataset& data, const AttackAtEps& make, const AttackRunResult& r,
                           double eps_max, int rounds, const RunOptions& run, const fs::path& dir);

}  // namespace sdsgsm
