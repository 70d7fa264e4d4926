// GCC 12 reports a false -Wmaybe-uninitialized inside its own AVX-512 intrinsics
// (_mm512_undefined_ps) wherever Eigen's vectorised products get inlined in this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "app/learning/gradient_projection.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "app/learning/network.hpp"

namespace metaplast::learning {
namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapF = Eigen::Map<RowMajorF>;
using ConstMapF = Eigen::Map<const RowMajorF>;

// The eigenvectors of `residual` (symmetric, the part of a task's Gram matrix outside the
// protected directions), largest first, until `wanted` more energy is protected; each is
// orthogonalised against the basis so far (rounding) and appended as a column.
Eigen::MatrixXd grow_basis(const Eigen::MatrixXd& basis, const Eigen::MatrixXd& residual,
                           double wanted) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(residual);
  if (solver.info() != Eigen::Success) {
    throw std::runtime_error(
        "gradient projection: the eigendecomposition of a layer's inputs "
        "failed (non-finite inputs?)");
  }
  const Eigen::Index n = residual.rows();
  std::vector<Eigen::VectorXd> added;
  double gained = 0.0;
  for (Eigen::Index i = n - 1; i >= 0 && gained < wanted; --i) {
    const double energy = solver.eigenvalues()(i);
    if (energy <= 0.0 || basis.cols() + static_cast<Eigen::Index>(added.size()) >= n) break;
    Eigen::VectorXd v = solver.eigenvectors().col(i);
    if (basis.cols() > 0) v -= basis * (basis.transpose() * v);
    for (const Eigen::VectorXd& a : added) v -= a * a.dot(v);
    const double norm = v.norm();
    if (norm < 1e-6) continue;  // already protected, up to rounding
    added.push_back(v / norm);
    gained += energy;
  }
  Eigen::MatrixXd grown(n, basis.cols() + static_cast<Eigen::Index>(added.size()));
  grown.leftCols(basis.cols()) = basis;
  for (std::size_t j = 0; j < added.size(); ++j) {
    grown.col(basis.cols() + static_cast<Eigen::Index>(j)) = added[j];
  }
  return grown;
}

}  // namespace

bool protected_space_fits(const ProtectedSpace& space, std::size_t inputs, std::size_t outputs) {
  const auto finite = [](const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
  };
  return space.rank <= inputs && space.basis.size() == inputs * space.rank &&
         space.anchor.size() == outputs * space.rank && finite(space.basis) && finite(space.anchor);
}

GradientProjection::GradientProjection(ProjectionConfig config, const Network& network)
    : config_(config) {
  if (!(config.threshold >= 0.0f && config.threshold < 1.0f)) {
    throw std::invalid_argument("gradient projection: threshold must lie in [0, 1), got " +
                                std::to_string(config.threshold));
  }
  if (!(config.feedback >= 0.0f) || !std::isfinite(config.feedback)) {
    throw std::invalid_argument("gradient projection: feedback must be finite and >= 0, got " +
                                std::to_string(config.feedback));
  }
  if (config.feedback_every < 1) {
    throw std::invalid_argument("gradient projection: feedback_every must be >= 1, got " +
                                std::to_string(config.feedback_every));
  }
  for (const DenseLayer& layer : network.layers()) {
    shapes_.push_back({layer.inputs, layer.outputs});
  }
  spaces_.resize(shapes_.size());
}

void GradientProjection::begin_task() {
  gram_.clear();
  for (const Shape& s : shapes_) {
    const auto n = static_cast<Eigen::Index>(s.inputs);
    gram_.push_back(Eigen::MatrixXd::Zero(n, n));
  }
}

void GradientProjection::add_batch(const Network& network, std::size_t batch) {
  if (gram_.size() != shapes_.size()) {
    throw std::logic_error("GradientProjection::add_batch before begin_task");
  }
  for (std::size_t l = 0; l < shapes_.size(); ++l) {
    const std::span<const float> inputs = network.layer_inputs(l);
    if (inputs.size() != batch * shapes_[l].inputs) {
      throw std::invalid_argument("GradientProjection::add_batch: layer " + std::to_string(l) +
                                  " had " + std::to_string(inputs.size()) + " inputs, expected " +
                                  std::to_string(batch * shapes_[l].inputs));
    }
    const ConstMapF x(inputs.data(), static_cast<Eigen::Index>(batch),
                      static_cast<Eigen::Index>(shapes_[l].inputs));
    gram_[l].selfadjointView<Eigen::Lower>().rankUpdate(x.transpose().cast<double>());
  }
}

void GradientProjection::end_task(const Network& network) {
  if (gram_.size() != shapes_.size()) {
    throw std::logic_error("GradientProjection::end_task before begin_task");
  }
  for (std::size_t l = 0; l < shapes_.size(); ++l) {
    const Shape& s = shapes_[l];
    const auto inputs = static_cast<Eigen::Index>(s.inputs);
    ProtectedSpace& space = spaces_[l];
    const Eigen::MatrixXd gram = gram_[l].selfadjointView<Eigen::Lower>();
    const Eigen::MatrixXd basis =
        ConstMapF(space.basis.data(), inputs, static_cast<Eigen::Index>(space.rank)).cast<double>();
    Eigen::MatrixXd residual = gram;
    if (space.rank > 0) {
      const Eigen::MatrixXd outside =
          Eigen::MatrixXd::Identity(inputs, inputs) - basis * basis.transpose();
      residual = outside * gram * outside;
    }
    const double total = gram.trace();
    const double wanted = config_.threshold * total - (total - residual.trace());
    const Eigen::MatrixXd grown = wanted > 0.0 ? grow_basis(basis, residual, wanted) : basis;
    space.rank = static_cast<std::size_t>(grown.cols());
    space.basis.resize(s.inputs * space.rank);
    MapF(space.basis.data(), inputs, grown.cols()) = grown.cast<float>();
    space.anchor.resize(s.outputs * space.rank);
    const ConstMapF quantized(network.layers()[l].quantized.data(),
                              static_cast<Eigen::Index>(s.outputs), inputs);
    MapF(space.anchor.data(), static_cast<Eigen::Index>(s.outputs), grown.cols()) =
        quantized * grown.cast<float>();
  }
  gram_.clear();
}

void GradientProjection::project_step(std::size_t l, std::span<const float> before,
                                      std::span<float> hidden, std::span<const float> quantized,
                                      std::int64_t step) {
  const Shape& s = shapes_.at(l);
  const ProtectedSpace& space = spaces_[l];
  const std::size_t size = s.outputs * s.inputs;
  if (before.size() != size || hidden.size() != size || quantized.size() != size) {
    throw std::invalid_argument("GradientProjection::project_step: layer " + std::to_string(l) +
                                " has " + std::to_string(size) + " weights");
  }
  if (space.rank == 0) return;
  const auto out = static_cast<Eigen::Index>(s.outputs);
  const auto in = static_cast<Eigen::Index>(s.inputs);
  const auto k = static_cast<Eigen::Index>(space.rank);
  const ConstMapF u(space.basis.data(), in, k);
  const ConstMapF anchor(space.anchor.data(), out, k);
  const ConstMapF w_before(before.data(), out, in);
  const ConstMapF w_quantized(quantized.data(), out, in);
  MapF w(hidden.data(), out, in);
  scratch_.noalias() = w * u;
  scratch_.noalias() -= w_before * u;
  if (config_.feedback > 0.0f && step % config_.feedback_every == 0) {
    scratch_.noalias() += config_.feedback * (w_quantized * u);
    scratch_ -= config_.feedback * anchor;
  }
  w.noalias() -= scratch_ * u.transpose();
}

void GradientProjection::restore(std::vector<ProtectedSpace> spaces) {
  if (spaces.size() != shapes_.size()) {
    throw std::invalid_argument("gradient projection state: " + std::to_string(spaces.size()) +
                                " layers, the network has " + std::to_string(shapes_.size()));
  }
  for (std::size_t l = 0; l < spaces.size(); ++l) {
    if (!protected_space_fits(spaces[l], shapes_[l].inputs, shapes_[l].outputs)) {
      throw std::invalid_argument("gradient projection state: layer " + std::to_string(l) +
                                  " (rank " + std::to_string(spaces[l].rank) +
                                  ") does not fit its " + std::to_string(shapes_[l].inputs) +
                                  " inputs");
    }
  }
  spaces_ = std::move(spaces);
}

}  // namespace metaplast::learning
