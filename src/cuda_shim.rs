//! The Rust side of csrc/cuda_shim.cpp (compiled by build.rs): CUDA autocast in a chosen dtype
//! and pinned host memory through libtorch's current API, where tch 0.24 offers only fp16
//! autocast and calls that libtorch 2.11 deprecates (and warns about on every call).

use tch::Tensor;

extern "C" {
    fn tada_cuda_autocast_enter(bf16: i32) -> i32;
    fn tada_cuda_autocast_exit(was_enabled: i32);
    fn tada_cuda_autocast_is_enabled() -> i32;
    fn tada_cuda_autocast_is_bf16() -> i32;
    fn tada_pin_memory(src: *const torch_sys::C_tensor) -> *mut torch_sys::C_tensor;
}

/// Whether CUDA autocast is on (in this thread).
pub fn cuda_autocast_is_enabled() -> bool {
    // SAFETY: reads a thread-local libtorch setting; no pointers cross.
    unsafe { tada_cuda_autocast_is_enabled() != 0 }
}

/// Whether CUDA autocast casts to bf16 (else fp16) when on.
pub fn cuda_autocast_is_bf16() -> bool {
    // SAFETY: as above.
    unsafe { tada_cuda_autocast_is_bf16() != 0 }
}

/// Leaves the autocast region on drop, so a panic inside it does not leave autocast on.
pub struct AutocastRegion {
    was_enabled: i32,
}

impl AutocastRegion {
    /// Enters CUDA autocast casting to bf16 (`bf16`) or fp16.
    pub fn enter(bf16: bool) -> Self {
        // SAFETY: sets libtorch's thread-local autocast state; undone by Drop.
        let was_enabled = unsafe { tada_cuda_autocast_enter(i32::from(bf16)) };
        Self { was_enabled }
    }
}

impl Drop for AutocastRegion {
    fn drop(&mut self) {
        // SAFETY: pairs with the enter above.
        unsafe { tada_cuda_autocast_exit(self.was_enabled) }
    }
}

/// A page-locked copy of `t`, so its copy to the GPU can run asynchronously; `None` when
/// libtorch cannot pin (no CUDA driver, pinned memory exhausted).
pub fn pinned(t: &Tensor) -> Option<Tensor> {
    // SAFETY: `t.as_ptr()` is a live at::Tensor; the shim returns a new heap at::Tensor (or
    // null) whose ownership passes to the returned Tensor.
    unsafe {
        let p = tada_pin_memory(t.as_ptr());
        (!p.is_null()).then(|| Tensor::from_ptr(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn an_autocast_region_sets_the_dtype_and_restores_the_state() {
        // Thread-local settings of libtorch: no GPU needed to enter a region and read them.
        assert!(!cuda_autocast_is_enabled());
        {
            let _outer = AutocastRegion::enter(true);
            assert!(cuda_autocast_is_enabled() && cuda_autocast_is_bf16());
            {
                let _inner = AutocastRegion::enter(false);
                assert!(cuda_autocast_is_enabled() && !cuda_autocast_is_bf16());
            }
            assert!(
                cuda_autocast_is_enabled(),
                "the inner region must not switch it off"
            );
        }
        assert!(!cuda_autocast_is_enabled());
        // A panic inside the region still leaves it.
        let r = std::panic::catch_unwind(|| {
            let _region = AutocastRegion::enter(true);
            panic!("inside");
        });
        assert!(r.is_err());
        assert!(!cuda_autocast_is_enabled());
    }

    #[test]
    fn pinning_needs_cuda_and_keeps_the_values() {
        let x = Tensor::arange(6, (Kind::Float, Device::Cpu));
        match pinned(&x) {
            Some(p) => {
                assert!(tch::Cuda::is_available());
                assert_eq!(
                    Vec::<f32>::try_from(&p).unwrap(),
                    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
                );
            }
            None => assert!(
                !tch::Cuda::is_available(),
                "pinning failed with CUDA present"
            ),
        }
    }
}
