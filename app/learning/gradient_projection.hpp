// Gradient projection (docs/method.md 5.1): when a task ends, the directions of each layer's input
// space that carry a set fraction of that task's input energy are protected, and every later step
// of the hidden weights is projected off them, so the layer's outputs on the earlier tasks' inputs
// stay where they were (GPM, Saha et al. 2021, applied to the optimizer's step rather than the
// gradient: Adam's per-weight scaling would undo a projected gradient). Quantization moves W_Q
// wherever W_H crosses a threshold, whatever direction W_H moved in; a feedback term pulls W_H back
// against the drift of W_Q inside the protected directions.
//
// Per layer (weights outputs x inputs, row-major) with protected basis U (inputs x k, orthonormal
// columns) and anchor A = W_Q U taken when the basis last grew, a step from W_H to W_H' becomes
//   W_H' - [(W_H' - W_H) U + feedback (W_Q U - A)] U^T
// where W_Q is the quantized weights before the step; the feedback term only at every
// feedback_every-th step of a task (fed back at every step, it dithers the levels).
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace metaplast::learning {

class Network;

struct ProjectionConfig {
  // Fraction in [0, 1) of each finished task's input energy (sum of squares) per layer whose
  // directions later tasks may not move; 0 turns the projection off.
  float threshold = 0.0f;
  // Fraction of W_Q's drift inside the protected directions fed back to W_H (>= 0), at every
  // feedback_every-th step of a task (>= 1).
  float feedback = 0.1f;
  int feedback_every = 1;
};

// One layer's protected directions.
struct ProtectedSpace {
  std::size_t rank = 0;       // k
  std::vector<float> basis;   // U, inputs x k, row-major
  std::vector<float> anchor;  // A = W_Q U, outputs x k, row-major
  bool operator==(const ProtectedSpace&) const = default;
};

// Whether `space` fits a layer of `inputs` x `outputs` weights: rank at most `inputs`, basis and
// anchor of their sizes, every value finite (a restored state, a checkpoint read back).
bool protected_space_fits(const ProtectedSpace& space, std::size_t inputs, std::size_t outputs);

class GradientProjection {
 public:
  // Sized for `network`'s layers; throws std::invalid_argument for a threshold outside [0, 1) or a
  // negative or non-finite feedback.
  GradientProjection(ProjectionConfig config, const Network& network);

  // A finished task's inputs: begin, then add every evaluated batch (the network's layer inputs of
  // its last forward pass, `batch` rows), then end: each layer's basis grows by the directions,
  // outside those already protected, that bring the protected share of this task's energy to the
  // threshold, and every anchor is taken from the network's W_Q.
  void begin_task();
  void add_batch(const Network& network, std::size_t batch);
  void end_task(const Network& network);

  // Whether layer l has protected directions (else its steps are left as they are).
  bool protects(std::size_t l) const { return spaces_.at(l).rank > 0; }
  // Projects layer l's step number `step` of its task (from 1): `before` holds W_H before the
  // optimizer's step, `hidden` after it (and receives the projected W_H); `quantized` holds W_Q
  // before the step.
  void project_step(std::size_t l, std::span<const float> before, std::span<float> hidden,
                    std::span<const float> quantized, std::int64_t step);

  // State, for checkpoints.
  const std::vector<ProtectedSpace>& spaces() const { return spaces_; }
  // Throws std::invalid_argument when a space does not fit its layer (sizes, rank at most the
  // layer's inputs, finite values).
  void restore(std::vector<ProtectedSpace> spaces);

 private:
  struct Shape {
    std::size_t inputs, outputs;
  };
  ProjectionConfig config_;
  std::vector<Shape> shapes_;
  std::vector<ProtectedSpace> spaces_;
  std::vector<Eigen::MatrixXd> gram_;  // per layer, inputs x inputs, while a task's inputs come in
  Eigen::MatrixXf scratch_;            // outputs x k
};

}  // namespace metaplast::learning
