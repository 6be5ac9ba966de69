// The declarations of `sdsgsm robust`'s options (RobustOptions): its flags and their checks come from
// them, as train's, reproduce's and transfer's come from theirs.
#pragma once

#include "sdsgsm/options.hpp"
#include "sdsgsm/robust.hpp"

namespace sdsgsm {

/// The fields of RobustOptions that the command takes as they are, each with its check; the budget
/// (--eps, a list), the ball (--norm) and the sequence (--attacks) are parsed from text by the command
/// and checked by RobustOptions::validate, the budget's range depending on the ball.
const OptionSet<RobustOptions>& robust_option_set();

}  // namespace sdsgsm
