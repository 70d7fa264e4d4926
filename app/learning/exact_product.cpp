#include "app/learning/exact_product.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "app/util/thread_pool.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
// GCC 12 warns that the conversion intrinsics' internal "undefined" vectors may be used
// uninitialised (a known false positive of its avx512fintrin.h); nothing here reads one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#define METAPLAST_EXACT_VNNI 1
#else
#define METAPLAST_EXACT_VNNI 0
#endif

namespace metaplast::learning {

namespace {

constexpr std::size_t kPanel = 16;          // outputs per panel (one 512-bit vector of sums)
constexpr std::size_t kGroup = 4;           // inputs per 32-bit lane of a dot product
constexpr std::size_t kMinPanelsSplit = 4;  // fewer panels than this per thread: one thread
constexpr double kExactLimit = 16777216.0;  // 2^24: integers below it are exact in float

int split_threads(std::size_t panels) {
  return panels >= 2 * kMinPanelsSplit ? util::compute_threads() : 1;
}

// The code of w, or a value outside [-max_code, max_code] when w is not a level.
int code_of(float w, const LevelCodes& codes, float inverse_step) {
  const float t = w * inverse_step;
  if (!(std::abs(t) <= static_cast<float>(codes.max_code) + 0.5f)) return codes.max_code + 1;
  const int c = static_cast<int>(std::lrint(t));
  const int shifted = c + codes.max_code;
  if ((shifted & 1) != 0 || codes.levels[static_cast<std::size_t>(shifted / 2)] != w) {
    return codes.max_code + 1;
  }
  return c;
}

// One row of weights as codes (the padding left as it is, 0). Returns false when a weight is not a
// level; sum = the row's code sum.
bool row_codes(const float* w, std::size_t n, const LevelCodes& codes, float inverse_step,
               std::int8_t* out, std::int32_t& sum) {
  std::size_t j = 0;
  sum = 0;
#if METAPLAST_EXACT_VNNI
  if (codes.levels.size() <= 16) {
    float table_values[16] = {};
    std::copy(codes.levels.begin(), codes.levels.end(), table_values);
    const __m512 table = _mm512_loadu_ps(table_values);
    const __m512 inv = _mm512_set1_ps(inverse_step);
    const __m512i max_code = _mm512_set1_epi32(codes.max_code);
    const __m512i top = _mm512_set1_epi32(2 * codes.max_code);
    const __m512 limit = _mm512_set1_ps(static_cast<float>(codes.max_code) + 0.5f);
    __m512i sums = _mm512_setzero_si512();
    for (; j < n; j += 16) {
      const __mmask16 m = n - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - j)) - 1);
      const __m512 x = _mm512_maskz_loadu_ps(m, w + j);
      const __m512 t = _mm512_mul_ps(x, inv);
      // |t| <= max_code + 0.5 (false for NaN), so the conversion cannot overflow.
      const __mmask16 in_range = _mm512_cmp_ps_mask(_mm512_abs_ps(t), limit, _CMP_LE_OQ);
      const __m512i c = _mm512_cvtps_epi32(t);  // round to nearest even
      const __m512i shifted = _mm512_add_epi32(c, max_code);
      const __mmask16 even = _mm512_testn_epi32_mask(shifted, _mm512_set1_epi32(1)) &
                             _mm512_cmple_epu32_mask(shifted, top);
      const __m512 level = _mm512_permutexvar_ps(_mm512_srli_epi32(shifted, 1), table);
      const __mmask16 equal = _mm512_cmp_ps_mask(level, x, _CMP_EQ_OQ);
      if ((in_range & even & equal & m) != m) return false;
      const __m512i cm = _mm512_maskz_mov_epi32(m, c);
      sums = _mm512_add_epi32(sums, cm);
      _mm_mask_storeu_epi8(out + j, m, _mm512_cvtepi32_epi8(cm));
    }
    sum = _mm512_reduce_add_epi32(sums);
    return true;
  }
#endif
  for (; j < n; ++j) {
    const int c = code_of(w[j], codes, inverse_step);
    if (c > codes.max_code) return false;
    out[j] = static_cast<std::int8_t>(c);
    sum += c;
  }
  return true;
}

// 16 rows of codes (row-major, `stride` bytes apart) to the kernel's layout: per 4 inputs, the 16
// rows' 4 codes side by side (64 bytes).
void regroup_panel(const std::int8_t* rows, std::size_t stride, std::size_t blocks,
                   std::int8_t* panel) {
#if METAPLAST_EXACT_VNNI
  const __m512i offsets =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(stride)));
  for (std::size_t k = 0; k < blocks; ++k) {
    const __m512i v = _mm512_i32gather_epi32(offsets, rows + k * kGroup, 1);
    _mm512_store_si512(panel + k * 64, v);
  }
#else
  for (std::size_t k = 0; k < blocks; ++k) {
    for (std::size_t r = 0; r < kPanel; ++r) {
      std::copy_n(rows + r * stride + k * kGroup, kGroup, panel + k * 64 + r * kGroup);
    }
  }
#endif
}

#if METAPLAST_EXACT_VNNI
// MR rows x NR panels of C: sums of u8 inputs times s8 codes over `blocks` groups of 4 inputs, the
// offset correction, the scale; stores the first `valid` columns of the NR * 16.
template <int MR, int NR>
void vnni_tile(const std::uint8_t* a, std::size_t stride, std::size_t blocks, const std::int8_t* b,
               std::size_t panel_bytes, const std::int32_t* correction, float scale, float* c,
               std::size_t ldc, std::size_t valid) {
  __m512i acc[MR][NR];
  for (int r = 0; r < MR; ++r) {
    for (int p = 0; p < NR; ++p) acc[r][p] = _mm512_setzero_si512();
  }
  for (std::size_t k = 0; k < blocks; ++k) {
    __m512i w[NR];
    for (int p = 0; p < NR; ++p) {
      w[p] = _mm512_load_si512(b + static_cast<std::size_t>(p) * panel_bytes + k * 64);
    }
    for (int r = 0; r < MR; ++r) {
      std::int32_t four;
      __builtin_memcpy(&four, a + static_cast<std::size_t>(r) * stride + k * kGroup, 4);
      const __m512i x = _mm512_set1_epi32(four);
      for (int p = 0; p < NR; ++p) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], x, w[p]);
    }
  }
  const __m512 s = _mm512_set1_ps(scale);
  for (int p = 0; p < NR; ++p) {
    const std::size_t first = static_cast<std::size_t>(p) * kPanel;
    if (first >= valid) break;
    const std::size_t count = std::min(kPanel, valid - first);
    const __mmask16 m = count == kPanel ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1);
    const __m512i corr = _mm512_loadu_si512(correction + first);
    for (int r = 0; r < MR; ++r) {
      const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][p], corr)), s);
      _mm512_mask_storeu_ps(c + static_cast<std::size_t>(r) * ldc + first, m, v);
    }
  }
}

using Tile = void (*)(const std::uint8_t*, std::size_t, std::size_t, const std::int8_t*,
                      std::size_t, const std::int32_t*, float, float*, std::size_t, std::size_t);

constexpr int kRows = 6;  // MR: 6 x 4 accumulators + 4 weight vectors + 1 input fit 32 registers

template <int MR>
Tile tile_for(int panels) {
  switch (panels) {
    case 1:
      return vnni_tile<MR, 1>;
    case 2:
      return vnni_tile<MR, 2>;
    case 3:
      return vnni_tile<MR, 3>;
    default:
      return vnni_tile<MR, 4>;
  }
}

Tile tile_for(int rows, int panels) {
  switch (rows) {
    case 1:
      return tile_for<1>(panels);
    case 2:
      return tile_for<2>(panels);
    case 3:
      return tile_for<3>(panels);
    case 4:
      return tile_for<4>(panels);
    case 5:
      return tile_for<5>(panels);
    default:
      return tile_for<6>(panels);
  }
}
#endif

}  // namespace

std::optional<LevelCodes> level_codes(const Quantizer& quantizer) {
  const auto levels = quantizer.levels();
  const std::size_t n = levels.size();
  if (n < 2 || n > 128) return std::nullopt;
  LevelCodes codes;
  codes.max_code = static_cast<int>(n - 1);
  codes.step = (levels[n - 1] - levels[0]) / static_cast<float>(2 * (n - 1));
  if (!(codes.step > 0.0f) || !std::isfinite(codes.step)) return std::nullopt;
  for (std::size_t i = 0; i < n; ++i) {
    const int c = 2 * static_cast<int>(i) - codes.max_code;
    if (codes.step * static_cast<float>(c) != levels[i]) return std::nullopt;
  }
  codes.levels.assign(levels.begin(), levels.end());
  return codes;
}

bool vnni_built() { return METAPLAST_EXACT_VNNI != 0; }

bool pixels_to_grid(const float* in, std::size_t rows, std::size_t inputs, std::uint8_t* out) {
  const std::size_t stride = ExactProduct::padded_inputs(inputs);
  for (std::size_t b = 0; b < rows; ++b) {
    const float* x = in + b * inputs;
    std::uint8_t* u = out + b * stride;
    std::size_t j = 0;
#if METAPLAST_EXACT_VNNI
    const __m512 k255 = _mm512_set1_ps(255.0f);
    for (; j < inputs; j += 16) {
      const __mmask16 m =
          inputs - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (inputs - j)) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(m, x + j);
      const __m512 t =
          _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, k255), _mm512_setzero_ps()), k255);
      const __m512i p = _mm512_cvtps_epi32(t);
      const __m512 back = _mm512_div_ps(_mm512_cvtepi32_ps(p), k255);
      if ((_mm512_cmp_ps_mask(back, v, _CMP_EQ_OQ) & m) != m) return false;
      _mm_mask_storeu_epi8(u + j, m, _mm512_cvtepi32_epi8(p));
    }
#endif
    for (; j < inputs; ++j) {
      const float t = std::clamp(x[j] * 255.0f, 0.0f, 255.0f);  // NaN fails the check below
      const long p = std::isnan(t) ? 0 : std::lrint(t);
      if (static_cast<float>(p) / 255.0f != x[j]) return false;
      u[j] = static_cast<std::uint8_t>(p);
    }
  }
  return true;
}

ExactProduct::ExactProduct(std::size_t outputs, std::size_t inputs, LevelCodes codes,
                           ExactKernel kernel)
    : outputs_(outputs),
      inputs_(inputs),
      stride_(padded_inputs(inputs)),
      panels_((outputs + kPanel - 1) / kPanel),
      codes_(std::move(codes)),
      inverse_step_(1.0f / codes_.step),
      kernel_(kernel) {
  if (kernel_ == ExactKernel::vnni && !vnni_built()) {
    throw std::invalid_argument(
        "exact product: this build has no AVX-512 VNNI kernel (built without -march for a CPU "
        "that has it); use the float kernel");
  }
  if (kernel_ == ExactKernel::automatic) {
    kernel_ = vnni_built() ? ExactKernel::vnni : ExactKernel::float_sgemm;
  }
  if (kernel_ == ExactKernel::vnni) {
    // The panels start on a 64-byte boundary (one cache line per 16 x 4 codes).
    packed_.assign(panels_ * (stride_ / kGroup) * 64 + 64, 0);
    packed_offset_ = (64 - reinterpret_cast<std::uintptr_t>(packed_.data()) % 64) % 64;
  } else {
    float_codes_.assign(outputs_ * stride_, 0.0f);
  }
  code_sums_.assign(panels_ * kPanel, 0);
}

std::size_t ExactProduct::padded_inputs(std::size_t inputs) {
  return (inputs + kGroup - 1) / kGroup * kGroup;
}

bool ExactProduct::fits(int max_abs) const {
  return static_cast<double>(inputs_) * max_abs * codes_.max_code < kExactLimit;
}

void ExactProduct::check_size(std::size_t weights) const {
  if (weights != outputs_ * inputs_) {
    throw std::invalid_argument("exact product: " + std::to_string(weights) + " weights for a " +
                                std::to_string(outputs_) + " x " + std::to_string(inputs_) +
                                " layer");
  }
}

bool ExactProduct::pack(std::span<const float> weights) {
  check_size(weights.size());
  std::atomic<bool> ok{true};
  util::parallel_ranges(panels_, split_threads(panels_), [&](std::size_t begin, std::size_t end) {
    pack_panels(weights.data(), begin, end, ok);
  });
  return ok.load();
}

bool ExactProduct::update(std::span<const float> weights, std::span<const std::uint32_t> changed) {
  check_size(weights.size());
  const std::size_t blocks = stride_ / kGroup;
  for (const std::uint32_t k : changed) {
    if (k >= weights.size()) {
      throw std::invalid_argument("exact product: weight " + std::to_string(k) +
                                  " outside a layer of " + std::to_string(outputs_ * inputs_));
    }
    const int c = code_of(weights[k], codes_, inverse_step_);
    if (c > codes_.max_code) return false;
    const std::size_t o = k / inputs_, j = k % inputs_;
    int before = 0;
    if (kernel_ == ExactKernel::vnni) {
      std::int8_t& code = packed_[packed_offset_ + (o / kPanel) * blocks * 64 + (j / kGroup) * 64 +
                                  (o % kPanel) * kGroup + j % kGroup];
      before = code;
      code = static_cast<std::int8_t>(c);
    } else {
      float& code = float_codes_[o * stride_ + j];
      before = static_cast<int>(code);
      code = static_cast<float>(c);
    }
    code_sums_[o] += c - before;
  }
  return true;
}

void ExactProduct::pack_panels(const float* weights, std::size_t first_panel, std::size_t end_panel,
                               std::atomic<bool>& ok) {
  const std::size_t blocks = stride_ / kGroup;
  // One panel's rows as codes, row-major (rows past the last output stay 0), then regrouped.
  thread_local std::vector<std::int8_t> rows;
  rows.assign(kPanel * stride_, 0);
  for (std::size_t p = first_panel; p < end_panel && ok.load(std::memory_order_relaxed); ++p) {
    for (std::size_t r = 0; r < kPanel; ++r) {
      const std::size_t o = p * kPanel + r;
      if (o >= outputs_) break;
      if (!row_codes(weights + o * inputs_, inputs_, codes_, inverse_step_,
                     rows.data() + r * stride_, code_sums_[o])) {
        ok.store(false, std::memory_order_relaxed);
        return;
      }
    }
    if (kernel_ == ExactKernel::vnni) {
      std::int8_t* panel = packed_.data() + packed_offset_ + p * blocks * 64;
      regroup_panel(rows.data(), stride_, blocks, panel);
    } else {
      const std::size_t count = std::min(kPanel, outputs_ - p * kPanel);
      float* out = float_codes_.data() + p * kPanel * stride_;
      for (std::size_t i = 0; i < count * stride_; ++i) out[i] = static_cast<float>(rows[i]);
    }
  }
}

void ExactProduct::multiply(const GridInputs& in, float* c) const {
  if (in.stride != stride_) {
    throw std::invalid_argument("exact product: inputs with stride " + std::to_string(in.stride) +
                                ", the layer needs " + std::to_string(stride_));
  }
  if (kernel_ == ExactKernel::float_sgemm) {
    float_inputs_.resize(std::max(float_inputs_.size(), in.rows * stride_));
    for (std::size_t i = 0; i < in.rows * stride_; ++i) {
      float_inputs_[i] = static_cast<float>(int{in.values[i]} - in.offset);
    }
    // The padding columns hold -offset here, and 0 codes: they add nothing.
  }
  util::parallel_ranges(panels_, split_threads(panels_), [&](std::size_t begin, std::size_t end) {
    multiply_panels(in, c, begin, end);
  });
}

void ExactProduct::multiply_panels(const GridInputs& in, float* c, std::size_t first_panel,
                                   std::size_t end_panel) const {
  const float scale = in.step * codes_.step;
  const std::size_t first = first_panel * kPanel;
  const std::size_t end = std::min(end_panel * kPanel, outputs_);
  if (first >= end) return;
  if (kernel_ == ExactKernel::float_sgemm) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(in.rows),
                static_cast<int>(end - first), static_cast<int>(stride_), 1.0f,
                float_inputs_.data(), static_cast<int>(stride_),
                float_codes_.data() + first * stride_, static_cast<int>(stride_), 0.0f, c + first,
                static_cast<int>(outputs_));
    for (std::size_t b = 0; b < in.rows; ++b) {
      float* row = c + b * outputs_;
      for (std::size_t o = first; o < end; ++o) row[o] *= scale;
    }
    return;
  }
#if METAPLAST_EXACT_VNNI
  const std::size_t blocks = stride_ / kGroup;
  const std::size_t panel_bytes = blocks * 64;
  std::int32_t correction[kGroup * kPanel];
  for (std::size_t p = first_panel; p < end_panel; p += kGroup) {
    const int panels = static_cast<int>(std::min(kGroup, end_panel - p));
    const std::size_t col = p * kPanel;
    const std::size_t valid = std::min(static_cast<std::size_t>(panels) * kPanel, outputs_ - col);
    for (std::size_t i = 0; i < static_cast<std::size_t>(panels) * kPanel; ++i) {
      correction[i] = in.offset * code_sums_[col + i];
    }
    const std::int8_t* b = packed_.data() + packed_offset_ + p * panel_bytes;
    for (std::size_t r = 0; r < in.rows; r += kRows) {
      const int rows = static_cast<int>(std::min<std::size_t>(kRows, in.rows - r));
      tile_for(rows, panels)(in.values + r * stride_, stride_, blocks, b, panel_bytes, correction,
                             scale, c + r * outputs_ + col, outputs_, valid);
    }
  }
#endif
}

}  // namespace metaplast::learning
