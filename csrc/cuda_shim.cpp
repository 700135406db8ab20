// CUDA mixed precision and pinned memory through libtorch's current API. tch 0.24 switches
// autocast on and off only in libtorch's default fp16, through functions libtorch 2.11 marks
// deprecated and warns about on every call, and pins memory through the deprecated
// `pin_memory(device)` overload (another warning per batch). These replacements are what
// PyTorch's own `torch.autocast("cuda", dtype)` and `Tensor.pin_memory()` do.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

extern "C" {

// Enters CUDA autocast in bf16 (bf16 != 0) or fp16; returns whether it was on before, which
// tada_cuda_autocast_exit restores.
int tada_cuda_autocast_enter(int bf16) {
  const bool was_enabled = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, bf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::increment_nesting();
  return was_enabled ? 1 : 0;
}

void tada_cuda_autocast_exit(int was_enabled) {
  // The cache of casted weights lives for the outermost region only, as in PyTorch.
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(at::kCUDA, was_enabled != 0);
}

int tada_cuda_autocast_is_enabled(void) {
  return at::autocast::is_autocast_enabled(at::kCUDA) ? 1 : 0;
}

int tada_cuda_autocast_is_bf16(void) {
  return at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16 ? 1 : 0;
}

// A pinned (page-locked) copy of `*src` (an at::Tensor*, tch's C_tensor), or null when
// libtorch refuses (no CUDA, out of pinned memory); the caller owns the result.
void* tada_pin_memory(const void* src) {
  try {
    const auto* t = static_cast<const at::Tensor*>(src);
    return new at::Tensor(t->pin_memory());
  } catch (...) {
    return nullptr;
  }
}

}  // extern "C"
