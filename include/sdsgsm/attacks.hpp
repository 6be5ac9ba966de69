// Attacks on image classifiers, in four families (AttackFamily; each registry row names its own,
// src/attacks/registry.cpp):
//
// Fixed-budget attacks (fgsm, ifgsm, mifgsm, nifgsm, pgd, the SD-SGSM family) are all run by ONE
// iterative l_inf engine (EngineAttack), an attack being a configuration of its hooks: the start
// (clean or a seeded uniform point in the budget), the per-pixel allocation map M (uniform for
// the classic attacks), the momentum rule (none, MI-FGSM, or MI with the Nesterov look-ahead), and
// the step direction (sign, or SD-SGSM's tanh). The engine computes the gradient of the loss with
// respect to the input (the model is in eval mode with frozen parameters), steps by
// alpha * M * direction, and projects onto [x - eps * M, x + eps * M] and then [0,1].
//
// Minimum-norm attacks (deepfool, cw, ddn, fmn) are unbounded: they search for the smallest
// perturbation (l2, or l_inf for deepfool and fmn) that fools the model, and --eps does not bound
// them. They share one base (src/attacks/minnorm.hpp: targets, the success test, per-sample
// bookkeeping of the best adversarial and its norm) and take their own options from
// MinNormOptions.
//
// Adaptive-step attacks: APGD (apgd-ce, apgd-dlr, apgd-t; src/attacks/apgd.cpp) and FAB-T, bounded
// by --eps in l_inf, l2 or l1 (AttackOptions::norm), with its step-size schedule, checkpoints, momentum and
// restarts. Score-based attacks: Square (src/attacks/square.cpp), gradient-free: it only reads the
// model's scores (l_inf, l2 or l1).
// `sdsgsm robust` runs them in sequence, AutoAttack's way (src/evaluation/robust.cpp).
//
// Tensor shapes: images N x C x H x W float in [0,1]; labels N int64; maps N x 1 x H x W.
// Losses are per-sample and SUMMED over the batch, so no sample's result depends on the batch it
// is in; per-sample randomness is seeded by (seed, sample id) for the same reason.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sdsgsm/models.hpp"
#include "sdsgsm/options.hpp"

namespace sdsgsm {

/// The step size alpha of an attack that sets none (the l_inf baselines): 2/255.
inline constexpr double kDefaultAlpha = 2.0 / 255;

/// How a targeted attack picks its target label. None: untargeted.
enum class TargetMode { None, Given, Random, LeastLikely };

TargetMode parse_target_mode(const std::string& text);
std::string to_string(TargetMode mode);

/// A distance: what a minimum-norm attack minimises, or the ball an APGD, FAB-T or Square attack
/// stays in. L1 is a ball only (APGD and FAB-T).
enum class Norm { L2, Linf, L1 };

/// "2"/"l2", "inf"/"linf" or "1"/"l1"; throws Error naming --norm.
Norm parse_norm(const std::string& text);
std::string to_string(Norm norm);   ///< "l2", "linf" or "l1"
std::string norm_label(Norm norm);  ///< for people: "l2", "l_inf" or "l1"

/// JSON conversions (the options' descriptors read and write them as their words); reading a
/// wrong word throws Error naming the flag.
inline void to_json(nlohmann::json& j, TargetMode m) { j = to_string(m); }
inline void from_json(const nlohmann::json& j, TargetMode& m) { m = parse_target_mode(j.get<std::string>()); }
inline void to_json(nlohmann::json& j, Norm n) { j = to_string(n); }
inline void from_json(const nlohmann::json& j, Norm& n) { n = parse_norm(j.get<std::string>()); }

/// An attack's family: how it runs and what its options mean.
enum class AttackFamily {
  FixedBudget,  ///< the l_inf engine (EngineAttack): --eps bounds it, --steps iterations
  MinimumNorm,  ///< unbounded searches for the smallest perturbation (MinNormAttack)
  Adaptive,     ///< APGD, FAB-T: eps-bounded (l_inf, l2 or l1), own step-size schedules, restarts
  ScoreBased,   ///< gradient-free (Square): eps-bounded, --steps queries of the model's scores
};
/// "fixed budget", "minimum norm", "adaptive step" or "score-based"
std::string to_string(AttackFamily family);
/// The family's bit in OptionField::families.
constexpr unsigned family_bit(AttackFamily f) { return 1u << static_cast<unsigned>(f); }

/// Every attack parameter, one to one with the command-line flags (chained setters with named
/// defaults, as LibTorch's options objects). Defaults are those of the field's most used library:
/// eps 8/255, alpha 2/255, 10 steps, momentum decay 1.0.
struct AttackOptions {
  SDSGSM_OPTION(double, eps, 8.0 / 255)     ///< l_inf budget on the [0,1] scale
  /// Step size; unset: the attack's default (2/255 for the baselines, eps / steps * step factor
  /// for the SD-SGSM family). FGSM steps by eps.
  SDSGSM_OPTION(std::optional<double>, alpha, std::nullopt)
  SDSGSM_OPTION(int64_t, steps, 10)         ///< iterations (FGSM: 1)
  /// Momentum decay mu; unset: the attack's default (1.0 for MI-FGSM and NI-FGSM, 0 for the
  /// SD-SGSM family, where 0 turns momentum off).
  SDSGSM_OPTION(std::optional<double>, decay, std::nullopt)
  /// Freeze samples as soon as they succeed; unset: the attack's default (off for the classic
  /// attacks, as the literature defines them; on for the SD-SGSM family).
  SDSGSM_OPTION(std::optional<bool>, early_stop, std::nullopt)
  /// With early stop: freeze a sample only when its adversarial rounded to 8-bit pixels succeeds
  /// too (one extra forward pass of the samples about to leave), so a saved PNG keeps the
  /// success. Needs early stop.
  SDSGSM_OPTION(bool, early_stop_8bit, false)
  SDSGSM_OPTION(bool, random_start, false)  ///< uniform start in the budget (PGD: on)
  SDSGSM_OPTION(uint64_t, seed, 0)
  SDSGSM_OPTION(TargetMode, targeted, TargetMode::None)
  SDSGSM_OPTION(int64_t, target_label, -1)  ///< for TargetMode::Given
  /// After the attack, up to this many more model passes per image shrinking the perturbation
  /// of each adversarial that fools after 8-bit rounding, keeping it fooling once rounded
  /// (refine_8bit, src/attacks/refine.cpp); 0: off. Any attack can take it.
  SDSGSM_OPTION(int64_t, refine, 0)
  /// The refinement's step, relative to the perturbation's norm (cosine-annealed to 1/100), and
  /// its norm's update factor; defaults tuned on test images 5000-5099 (docs/tuning/refine.md).
  SDSGSM_OPTION(double, refine_step, 2.0)
  SDSGSM_OPTION(double, refine_gamma, 0.2)
  /// The ball of the budget eps, for the attacks that take more than one (APGD, FAB-T and Square:
  /// l_inf, l2 or l1); unset: l_inf. The l_inf engine takes l_inf only.
  SDSGSM_OPTION(std::optional<Norm>, norm, std::nullopt)
  /// Runs from a new random start for the samples still not fooled (APGD: restarts per target).
  SDSGSM_OPTION(int64_t, restarts, 1)
  /// apgd-t, fab-t: how many of the clean prediction's most likely other classes are targets
  /// (fewer when the model has fewer). AutoAttack: 9; its l1 standard version's apgd-t: 5.
  SDSGSM_OPTION(int64_t, targets, 9)
  /// apgd-ce, apgd-dlr, apgd-t with norm l1: each restart runs through the radii 3 eps, 2 eps and
  /// eps (30%, 30% and 40% of the steps, each from the last one's best point projected onto the
  /// smaller ball) and success counts at eps only (AutoAttack's l1 `use_largereps`).
  SDSGSM_OPTION(bool, shrinking_radius, false)
  /// Square's window schedule: "stretched" (the 10,000-query schedule's fractions of --steps) or
  /// "autoattack" (the queries as counted, AutoAttack's standard version).
  SDSGSM_OPTION(std::string, square_schedule, "stretched")
  /// Throws Error naming the flag of the first invalid value.
  void validate() const;
  /// alpha, or `fallback` when unset.
  double alpha_or(double fallback) const { return alpha.value_or(fallback); }
  nlohmann::json to_json() const;
  /// The options to_json() wrote (keys it lacks keep their defaults); throws Error on a wrong
  /// type or value.
  static AttackOptions from_json(const nlohmann::json& j);
  /// Every field's declaration: flag, JSON key, check, help, Python keyword, families.
  static const OptionSet<AttackOptions>& option_set();
};

/// What one attack call returns; all tensors have N rows.
struct AttackResult {
  torch::Tensor adversarial;  ///< N x C x H x W, float in [0,1]
  torch::Tensor clean_pred;   ///< int64: prediction on the clean images
  torch::Tensor adv_pred;     ///< int64: prediction on the adversarial images
  torch::Tensor target;       ///< int64: the target label (targeted) or the true label
  torch::Tensor success;      ///< bool: misclassified (untargeted) / target hit (targeted)
  torch::Tensor iterations;   ///< int64: gradient steps spent on each sample
  /// int64: the model's forward passes each sample went through in the attack (the clean pass,
  /// every step, DDI's occluded images, 8-bit checks, the refinement); the forward passes of the
  /// prediction reported for the result are not counted.
  torch::Tensor forward_passes;
  torch::Tensor backward_passes;  ///< int64: the backward passes (input gradients) of each sample
  int64_t zero_gradient_samples = 0;  ///< samples whose input gradient was all zeros at step 1
  double allocation_seconds = 0;      ///< time spent computing allocation maps (SD-SGSM's DDI)
};

/// The one success criterion: the prediction differs from the label (untargeted) or equals the
/// target (targeted). `goal` is the label or the target.
torch::Tensor attack_success(const torch::Tensor& pred, const torch::Tensor& goal, bool targeted);

/// The same on logits, with a margin: the goal's logit margin (attack_margin) is below -margin.
/// margin 0 is attack_success of the argmax but for exact ties.
torch::Tensor attack_success_logits(const torch::Tensor& logits, const torch::Tensor& goal, bool targeted,
                                    double margin = 0);

/// The goal's logit margin per sample: z_goal - max_{j != goal} z_j (untargeted) or
/// max_{j != goal} z_j - z_goal (targeted); < 0 where the goal is met.
torch::Tensor attack_margin(const torch::Tensor& logits, const torch::Tensor& goal, bool targeted);

/// What an attack's body works on, set up by Attack::run (the clean pass and the targets done):
/// the inputs on the model's device, and the result it fills in. Everything per sample has the
/// batch's N rows; `rows` arguments pick a subset (undefined: all rows).
struct AttackContext {
  Classifier& model;
  torch::Tensor x;             ///< float32, contiguous, N x C x H x W
  torch::Tensor y;             ///< int64 labels
  torch::Tensor ids;           ///< int64 sample ids (on x's device)
  torch::Tensor ids_cpu;       ///< the same on the CPU
  torch::Tensor clean_logits;  ///< without gradient
  bool targeted = false;
  AttackResult& r;  ///< clean_pred, target, iterations, passes set; the body sets adversarial

  int64_t size() const { return x.size(0); }
  /// The label to leave (untargeted) or the target to reach, per sample.
  const torch::Tensor& goal() const { return targeted ? r.target : y; }
  /// attack_success for the samples `rows` with predictions `pred`.
  torch::Tensor succeeded(const torch::Tensor& pred, const torch::Tensor& rows = {}) const;
  /// Counts `k` forward (backward) passes for the samples `rows`.
  void count_forward(const torch::Tensor& rows = {}, int64_t k = 1);
  void count_backward(const torch::Tensor& rows = {}, int64_t k = 1);
};

/// What the allocation hook is asked for: maps for these images.
struct AllocationInput {
  const torch::Tensor& x;    ///< the images (clean, or the current iterate when recomputed), N x C x H x W
  const torch::Tensor& y;    ///< their true labels
  const torch::Tensor& ids;  ///< their sample ids (data-set indices), for caches
  int64_t iteration = 0;     ///< 0: the initial map of the clean images; t: recomputed before step t
  torch::Tensor logits = {};  ///< the model's logits on x when the engine has them (iteration 0)
};

/// The engine's hooks. An attack is a name, its options and these.
struct AttackHooks {
  /// Per-pixel weight map M in [0,1] (N x 1 x H x W) for the images given; empty function:
  /// uniform M = 1. Computed before the first step for the samples that take one (with early
  /// stop, samples already misclassified are frozen first and get no map).
  std::function<torch::Tensor(Classifier&, const AllocationInput&)> allocation;
  /// The forward passes the allocation costs each image of H x W (DDI: one per window), besides
  /// the pass on the image itself when its logits are not given; counted in forward_passes.
  std::function<int64_t(int64_t height, int64_t width)> allocation_passes;
  /// Checks the input against the attack's own parameters before anything runs (e.g. SD-SGSM's
  /// window must fit the image); throws Error.
  std::function<void(const torch::Tensor& x)> check_input;
  /// Step direction from the (momentum-accumulated) gradient; default sign.
  std::function<torch::Tensor(const torch::Tensor& g)> direction;
  bool momentum = false;  ///< accumulate g = decay * g + grad / mean|grad| (MI-FGSM)
  bool nesterov = false;  ///< take the gradient at x + alpha * decay * g (NI-FGSM)
  /// Step map alpha * M / mean(M) (per sample) instead of alpha * M: moves step size from the
  /// background to the domain; the budget stays eps * M.
  bool rescale_step = false;
  /// Recompute the allocation map from the current iterate every R iterations (0: never).
  int64_t reallocate_every = 0;
  /// The attack's own parameters (e.g. SD-SGSM's rho, lambda, beta), reported with its config.
  nlohmann::json parameters = nlohmann::json::object();
};

/// An attack: a name, the shared options and an algorithm (of one of the families above).
/// Attack::run is the one template every attack runs: check the input, the clean pass and the
/// targets, the attack's own body (`attack`), the post-steps any attack can take (the 8-bit
/// refinement, AttackOptions::refine), then the result's prediction and success.
class Attack {
 public:
  virtual ~Attack() = default;

  /// Attacks a batch. `sample_ids` (int64, N) seed the per-sample randomness (random start,
  /// random targets); by default 0..N-1. The input tensors are not modified.
  AttackResult run(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                   const torch::Tensor& sample_ids = {}) const;

  const std::string& name() const { return name_; }
  const AttackOptions& options() const { return options_; }
  /// Name, options and parameters as JSON, for reports.
  virtual nlohmann::json config() const = 0;

 protected:
  Attack(std::string name, AttackOptions options) : name_(std::move(name)), options_(std::move(options)) {}

  /// The attack's own body: sets c.r.adversarial (N x C x H x W in [0,1]), counts its steps in
  /// c.r.iterations and its passes (c.count_forward / count_backward).
  virtual void attack(AttackContext& c) const = 0;
  /// Checks the input against the attack's own parameters before anything runs; throws Error.
  virtual void check_input(const torch::Tensor& x) const { (void)x; }
  /// The l_inf budget the refinement must keep (bounded attacks: eps); < 0: none.
  virtual double refine_bound() const { return -1; }

  std::string name_;
  AttackOptions options_;
};

/// The fixed-budget l_inf engine: an attack is its hooks.
class EngineAttack final : public Attack {
 public:
  /// Unset alpha / decay take the engine's defaults (kDefaultAlpha; 1.0 with momentum, else 0).
  EngineAttack(std::string name, AttackOptions options, AttackHooks hooks);

  nlohmann::json config() const override;

 protected:
  void attack(AttackContext& c) const override;
  void check_input(const torch::Tensor& x) const override;
  double refine_bound() const override { return options_.eps; }

 private:
  AttackHooks hooks_;
};

/// The options of the minimum-norm attacks (deepfool, cw, ddn, fmn), one to one with the flags of
/// `sdsgsm attack`'s group "Minimum-norm attacks". Their iteration count is AttackOptions::steps
/// (DeepFool: at most; C&W: Adam steps per binary-search step; DDN, FMN: steps), and the target
/// modes are AttackOptions' too; eps, alpha, decay, early stop and random start do not apply.
/// Defaults are the literature's where they fit the shared 10 steps (see each attack's file).
struct MinNormOptions {
  /// deepfool and fmn: l2 or l_inf (cw and ddn are l2 attacks and refuse linf).
  SDSGSM_OPTION(Norm, norm, Norm::L2)
  /// deepfool: classes considered, the clean top-k (the label included); 0: all.
  SDSGSM_OPTION(int64_t, candidates, 10)
  /// deepfool: each iterate is x + (1 + overshoot) * (accumulated step), to cross the boundary.
  SDSGSM_OPTION(double, overshoot, 0.02)
  /// cw: binary-search steps over the constant c.
  SDSGSM_OPTION(int64_t, binary_steps, 5)
  /// cw: c of the first binary-search step.
  SDSGSM_OPTION(double, initial_const, 1.0)
  /// cw: confidence kappa, the logit margin a success must have.
  SDSGSM_OPTION(double, confidence, 0.0)
  /// Step size; unset: the attack's default (cw: Adam's learning rate 0.01; ddn: 1.0, an l2 step,
  /// cosine-annealed to 1/100 of it; fmn: 1.0 times the current norm, annealed likewise).
  SDSGSM_OPTION(std::optional<double>, learning_rate, std::nullopt)
  /// ddn and fmn: the norm's multiplicative update (eps * (1 -+ gamma)); fmn anneals it to 1/50.
  SDSGSM_OPTION(double, norm_gamma, 0.05)
  /// ddn: the norm of the first step.
  SDSGSM_OPTION(double, initial_norm, 1.0)
  /// The grid a saved image lies on: values per channel (256: 8-bit pixels); 0: none. ddn rounds
  /// each iterate to it (as its paper and reference implementation do); deepfool, cw and fmn
  /// finish by pushing each adversarial they find onto it (the smallest scale of the perturbation,
  /// 1 to 2x, then 3, 4, 6 or 8x, whose rounded image still fools, at most 12 forward passes).
  SDSGSM_OPTION(int64_t, levels, 256)
  /// Throws Error naming the flag of the first invalid value.
  void validate() const;
  nlohmann::json to_json() const;
  /// The options to_json() wrote (keys it lacks keep their defaults); throws Error on a wrong
  /// type or value.
  static MinNormOptions from_json(const nlohmann::json& j);
  /// The part (OptionField::part) of the options every minimum-norm attack takes and reports
  /// (norm, levels); the others are single attacks' own.
  static constexpr unsigned kEveryMinNormAttack = 1;
  /// Every field's declaration (the set "minimum-norm").
  static const OptionSet<MinNormOptions>& option_set();
};

struct SdsgsmOptions;

/// What an attack is, beyond its family: bits of a registry row that code asks an attack about
/// (sweeps vary the momentum decay of a kMomentum attack, kDdiMap attacks share a SensitivityCache).
enum AttackTrait : unsigned {
  kSdFamily = 1u << 1,  ///< SD-SGSM or one of its ablations (SdsgsmOptions configure it)
  kMomentum = 1u << 2,  ///< takes a momentum decay that sweeps and tuning vary
  kDdiMap = 1u << 3,    ///< spends the budget by a DDI allocation map (shares a SensitivityCache)
  kSmoothed = 1u << 4,  ///< steps along tanh(beta g / sigma(g)): beta applies
  kL2 = 1u << 8,        ///< also runs in the l2 norm (--norm l2); every bounded attack runs in l_inf
  kL1 = 1u << 9,        ///< also runs in the l1 norm (--norm 1)
};

/// Which plans use an attack: a plan's list is the rows that name it (attack_names(kEnsemble)), in
/// registry order, so a plan asks for "the textbook baselines" or "the ensemble", never for names.
/// These bits say nothing of the attack itself (AttackTrait does).
enum PlanMembership : unsigned {
  kTextbook = 1u << 0,   ///< reproduce's textbook rows at alpha 2/255, and the baselines tune and sweep tune
  kStrength = 1u << 5,   ///< an adaptive row of reproduce's strength table (on its own defaults)
  kEnsemble = 1u << 6,   ///< in the AutoAttack-style sequence of `robust`
  kTransfer = 1u << 7,   ///< in reproduce's transfer matrices by default
};

/// One row of the attack registry (src/attacks/registry.cpp): everything the CLI, the Python
/// module, the plans and the reports know of an attack, in one place.
struct AttackInfo {
  std::string name;   ///< what make_attack and --attack take
  std::string label;  ///< for tables: "I-FGSM", "SD-SGSM", ...
  AttackFamily family = AttackFamily::FixedBudget;
  bool bounded = true;        ///< keeps the budget --eps (l_inf, or APGD's --norm ball): every family but MinimumNorm
  bool targeted = false;      ///< supports --targeted
  int64_t default_steps = 1;  ///< its iterations when --steps is not given (the literature's)
  std::string summary;        ///< one line for --help
  std::vector<std::string> aliases;
  unsigned traits = 0;  ///< AttackTrait bits: what it is
  unsigned plans = 0;   ///< PlanMembership bits: the plans it is in

  bool has(AttackTrait t) const { return (traits & t) != 0; }
  bool in(PlanMembership p) const { return (plans & p) != 0; }
};

/// The registry, in the order help and plans list attacks.
const std::vector<AttackInfo>& attack_registry();

/// The registry row of a name or alias; throws Error naming the known attacks.
const AttackInfo& attack_info(const std::string& name);

/// The registry's names, in order: fgsm, ifgsm, mifgsm, nifgsm, pgd, sdsgsm, sd-ifgsm, sgsm,
/// deepfool, cw, ddn, fmn, apgd-ce, apgd-dlr, apgd-t, square.
std::vector<std::string> attack_names();

/// The names of the rows that have every bit of `bits` (AttackTrait and PlanMembership bits), in
/// registry order: attack_names(kEnsemble | kL2) is the ensemble's l2 form.
std::vector<std::string> attack_names(unsigned bits);

/// The attack list of `attack --help`: each family, then its attacks (name, aliases, help line).
std::string attack_help();

/// The names other code picks one attack by (a plan that runs I-FGSM or DDN on purpose). Each is
/// defined in its attack's own file; nothing outside src/attacks/ spells an attack's name.
extern const char kFgsm[], kIfgsm[], kMifgsm[], kNifgsm[], kPgd[];
extern const char kSdsgsm[], kSdIfgsm[], kSgsm[];
extern const char kDeepfool[], kCw[], kDdn[], kFmn[];
extern const char kApgdCe[], kApgdDlr[], kApgdT[], kFabT[], kSquare[];

/// Builds a named attack; throws Error for an unknown name or invalid options. `sd` configures
/// the SD-SGSM family, `mn` the minimum-norm attacks (defaults when omitted); each attack ignores
/// the other's. The options are taken as given (steps included: attack_info(name).default_steps
/// is what the command line uses when --steps is not given).
std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options);
std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options, const SdsgsmOptions& sd);
std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options, const SdsgsmOptions& sd,
                                    const MinNormOptions& mn);


/// sign(g), the classic direction.
torch::Tensor sign_direction(const torch::Tensor& g);

}  // namespace sdsgsm
