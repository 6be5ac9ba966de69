// A training run's checkpoint state (state.json) and its history's records, each written and read
// by one type.
#include "sdsgsm/training.hpp"

namespace sdsgsm {

nlohmann::json EpochRecord::to_json(bool guard) const {
  nlohmann::json j = {{"epoch", epoch},   {"lr", lr}, {"train_loss", train_loss}, {"train_accuracy", train_accuracy},
                      {"test_accuracy", test_accuracy}, {"seconds", seconds}};
  if (guard) j["robust_accuracy"] = robust_accuracy;
  j["wall_seconds"] = wall_seconds;
  return j;
}

EpochRecord EpochRecord::from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  r.lr = j.at("lr").get<double>();
  r.train_loss = j.at("train_loss").get<double>();
  r.train_accuracy = j.at("train_accuracy").get<double>();
  r.test_accuracy = j.at("test_accuracy").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.robust_accuracy = j.value("robust_accuracy", -1.0);
  r.wall_seconds = j.value("wall_seconds", r.seconds);  // logs older than the field: training time
  return r;
}

void TrainCheckpoint::save(const fs::path& dir) const {
  nlohmann::json state;
  state["config"] = config;
  state["epochs_done"] = epochs_done;
  state["history"] = nlohmann::json::array();
  for (const auto& r : history) state["history"].push_back(r.to_json(guard));
  if (guard) {
    state["best_epoch"] = best_epoch;
    state["best_robust_accuracy"] = best_robust_accuracy;
  }
  if (stopped_epoch > 0) state["stopped_early"] = {{"epoch", stopped_epoch}, {"reason", stop_reason}};
  write_file_atomic(dir / "state.json", state.dump(2));
}

std::optional<TrainCheckpoint> TrainCheckpoint::load(const fs::path& dir) {
  const fs::path file = dir / "state.json";
  if (!fs::exists(file)) return std::nullopt;
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_file(file));
    TrainCheckpoint c;
    c.config = state.at("config");
    c.epochs_done = state.at("epochs_done").get<int64_t>();
    for (const auto& h : state.at("history")) c.history.push_back(EpochRecord::from_json(h));
    if (state.contains("best_epoch")) {
      c.guard = true;
      c.best_epoch = state["best_epoch"].get<int64_t>();
      c.best_robust_accuracy = state["best_robust_accuracy"].get<double>();
    }
    if (state.contains("stopped_early")) {
      c.stopped_epoch = state["stopped_early"].at("epoch").get<int64_t>();
      c.stop_reason = state["stopped_early"].at("reason").get<std::string>();
    }
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("cannot resume from '{}': its state.json is damaged ({})", dir.string(), e.what()));
  }
}

}  // namespace sdsgsm
