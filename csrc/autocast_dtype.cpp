// tch can switch CUDA autocast on and off but not choose its dtype, which libtorch defaults to
// fp16. These two functions expose the dtype setting so bf16 autocast is possible from Rust.
#include <ATen/autocast_mode.h>

extern "C" {

void tada_set_cuda_autocast_bf16(int bf16) {
  at::autocast::set_autocast_dtype(at::kCUDA, bf16 ? at::kBFloat16 : at::kHalf);
}

int tada_cuda_autocast_is_bf16(void) {
  return at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16 ? 1 : 0;
}

}  // extern "C"
