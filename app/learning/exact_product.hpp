// Exact forward products (docs/method.md, "Exact forward products"). When a layer's weights are
// levels of a uniform level set symmetric about 0 (Q_i = float(step * c_i), c_i = 2i - (N - 1))
// and its inputs lie on an integer grid (pixels u / 255, sign activations -1, 0, +1), the forward
// product z = x W^T is computed in integers, exactly, and rounded once:
//   z_bo = float(sum_j p_bj c_oj) * scale,   scale = step * input_step (one float product).
// The result does not depend on the summation order: every thread count, and every machine, gives
// the same bits. Two kernels compute it: 8-bit dot products (AVX-512 VNNI) where the build has
// them, and float sgemm on the integer values otherwise (exact too: every partial sum is an
// integer below 2^24, which fits() guarantees).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "app/learning/quantizer.hpp"

namespace metaplast::learning {

// The integer codes of a level set: level i is float(step * (2i - max_code)).
struct LevelCodes {
  float step = 0.0f;          // half the level spacing
  int max_code = 0;           // N - 1
  std::vector<float> levels;  // Q_0..Q_{N-1}, to check that a weight is a level
};

// The codes of the quantizer's levels; nullopt when the levels are not uniform and symmetric about
// 0 to the last bit, or when N > 128 (codes beyond 8 bits).
std::optional<LevelCodes> level_codes(const Quantizer& quantizer);

// Which kernel computes the integer sums. automatic: VNNI where the build has it (vnni_built()),
// float sgemm otherwise. Asking for vnni in a build without it throws std::invalid_argument.
enum class ExactKernel { automatic, vnni, float_sgemm };
bool vnni_built();

// A batch of layer inputs on an integer grid: x_bj = (values[b * stride + j] - offset) * step,
// values in [0, 255]; columns from `inputs` to the stride must be 0.
struct GridInputs {
  const std::uint8_t* values = nullptr;
  std::size_t rows = 0;
  std::size_t stride = 0;  // ExactProduct::padded_inputs(inputs)
  int offset = 0;          // 0 for pixels, 1 for sign activations (stored as 1 + sign)
  float step = 1.0f;       // 1 / 255.0f for pixels, 1 for sign activations
  int max_abs = 0;         // the largest |value - offset| the grid allows (255, 1)
};

// Pixels as grid inputs: out[b * stride + j] = u when in[b * inputs + j] == float(u) / 255.0f for
// an integer u in [0, 255] (what Dataset::gather writes); false as soon as a value is not.
bool pixels_to_grid(const float* in, std::size_t rows, std::size_t inputs, std::uint8_t* out);

// One layer's weights (outputs x inputs) as codes of one level set, packed for the kernel, and the
// product.
class ExactProduct {
 public:
  ExactProduct(std::size_t outputs, std::size_t inputs, LevelCodes codes,
               ExactKernel kernel = ExactKernel::automatic);
  // Moves keep the packed buffer (and its alignment); copies would not.
  ExactProduct(ExactProduct&&) = default;
  ExactProduct& operator=(ExactProduct&&) = default;
  ExactProduct(const ExactProduct&) = delete;
  ExactProduct& operator=(const ExactProduct&) = delete;

  // Row stride of GridInputs for `inputs` columns (a multiple of 4; the padding is 0).
  static std::size_t padded_inputs(std::size_t inputs);

  // Packs W (row-major, outputs x inputs). false, and nothing usable packed, when a weight is not
  // one of the levels (for example a device's effective weight): the layer then takes the float
  // product. Splits the work over the hot-path pool.
  bool pack(std::span<const float> weights);
  // After a successful pack(): the weights changed only at the listed elements (row-major
  // indices); updates their codes. false (the packed codes no longer usable) when one is not a
  // level; std::invalid_argument for an index outside the layer.
  bool update(std::span<const float> weights, std::span<const std::uint32_t> changed);

  // Whether every sum of a product with inputs of at most max_abs stays below 2^24 in magnitude.
  bool fits(int max_abs) const;

  // c (rows x outputs, row-major) = the exact product of the inputs and the packed weights, times
  // in.step * codes.step. Splits over outputs.
  void multiply(const GridInputs& in, float* c) const;

  ExactKernel kernel() const { return kernel_; }

 private:
  // std::invalid_argument unless `weights` is outputs x inputs.
  void check_size(std::size_t weights) const;
  void pack_panels(const float* weights, std::size_t first_panel, std::size_t end_panel,
                   std::atomic<bool>& ok);
  void multiply_panels(const GridInputs& in, float* c, std::size_t first_panel,
                       std::size_t end_panel) const;

  std::size_t outputs_, inputs_, stride_, panels_;
  LevelCodes codes_;
  float inverse_step_;  // 1 / codes_.step
  ExactKernel kernel_;
  // VNNI: panels of 16 outputs, per 4 inputs 64 bytes (16 outputs x 4 codes); float: the codes as
  // floats, outputs x stride.
  std::vector<std::int8_t> packed_;
  std::size_t packed_offset_ = 0;  // to the first 64-byte boundary in packed_
  std::vector<float> float_codes_;
  std::vector<std::int32_t> code_sums_;  // per output, sum_j c_oj (for the inputs' offset)
  mutable std::vector<float> float_inputs_;
};

}  // namespace metaplast::learning
