//! Safe handles over csrc/dist_shim.cpp: the c10d TCPStore, a Gloo process group with its
//! collectives, and DDP's gradient Reducer. Every call that can fail returns the C++ exception's
//! message as a [`DistError::C10d`].

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;

use tch::Tensor;

use super::DistError;

type CTensor = *mut torch_sys::C_tensor;

extern "C" {
    fn tada_dist_last_error() -> *const c_char;
    fn tada_dist_store_new(
        host: *const c_char,
        port: c_int,
        is_server: c_int,
        world_size: c_int,
        timeout_ms: i64,
        prefix: *const c_char,
    ) -> *mut c_void;
    fn tada_dist_store_clone(store: *mut c_void) -> *mut c_void;
    fn tada_dist_store_free(store: *mut c_void);
    fn tada_dist_store_set(store: *mut c_void, key: *const c_char, v: *const u8, n: usize)
        -> c_int;
    fn tada_dist_store_get(
        store: *mut c_void,
        key: *const c_char,
        out: *mut *mut u8,
        n: *mut usize,
    ) -> c_int;
    fn tada_dist_bytes_free(p: *mut u8);
    fn tada_dist_store_check(store: *mut c_void, key: *const c_char) -> c_int;
    fn tada_dist_store_add(
        store: *mut c_void,
        key: *const c_char,
        delta: i64,
        value: *mut i64,
    ) -> c_int;
    fn tada_dist_group_new(
        store: *mut c_void,
        rank: c_int,
        size: c_int,
        timeout_ms: i64,
        threads: c_int,
    ) -> *mut c_void;
    fn tada_dist_group_free(group: *mut c_void);
    #[cfg(tada_nccl)]
    fn tada_dist_group_add_nccl(
        group: *mut c_void,
        store: *mut c_void,
        rank: c_int,
        size: c_int,
        timeout_ms: i64,
    ) -> c_int;
    fn tada_dist_all_reduce(group: *mut c_void, ts: *const CTensor, n: c_int, op: c_int) -> c_int;
    fn tada_dist_broadcast(group: *mut c_void, ts: *const CTensor, n: c_int, root: c_int) -> c_int;
    fn tada_dist_barrier(group: *mut c_void) -> c_int;
    fn tada_dist_all_gather(group: *mut c_void, t: CTensor) -> CTensor;
    fn tada_dist_all_reduce_grad(group: *mut c_void, t: CTensor) -> CTensor;
    fn tada_dist_all_gather_grad(group: *mut c_void, t: CTensor) -> CTensor;
    fn tada_dist_ddp_new(
        group: *mut c_void,
        params: *const CTensor,
        n: c_int,
        bucket_bytes: i64,
        first_bucket_bytes: i64,
        find_unused: c_int,
    ) -> *mut c_void;
    fn tada_dist_ddp_prepare(ddp: *mut c_void, outputs: *const CTensor, n: c_int) -> c_int;
    fn tada_dist_ddp_free(ddp: *mut c_void);
}

/// The message of the last failed shim call on this thread.
fn last_error(what: &str) -> DistError {
    // SAFETY: the shim returns a pointer into its thread-local string, valid until the next
    // failing call on this thread; it is copied at once.
    let msg = unsafe { CStr::from_ptr(tada_dist_last_error()) }
        .to_string_lossy()
        .into_owned();
    DistError::C10d {
        what: what.to_string(),
        message: msg.trim().replace('\n', " "),
    }
}

fn check(rc: c_int, what: &str) -> Result<(), DistError> {
    match rc {
        0 => Ok(()),
        _ => Err(last_error(what)),
    }
}

fn c_string(s: &str) -> CString {
    // Keys and host names are tada's own or an address; an interior NUL cannot come from them.
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A client (or, on the serving rank, the server and a client) of a c10d TCPStore.
pub struct Store {
    ptr: *mut c_void,
}

// SAFETY: c10d's TCPStore client serialises its requests with its own lock.
unsafe impl Send for Store {}
unsafe impl Sync for Store {}

impl Store {
    /// Connects to (or with `serve`, starts and connects to) the store at `host:port`, waiting
    /// up to `timeout` for the server; every key goes under `prefix`.
    pub fn connect(
        host: &str,
        port: u16,
        serve: bool,
        world_size: usize,
        timeout: Duration,
        prefix: &str,
    ) -> Result<Self, DistError> {
        let h = c_string(host);
        let pre = c_string(prefix);
        // SAFETY: plain values and a NUL-terminated string that outlives the call.
        let ptr = unsafe {
            tada_dist_store_new(
                h.as_ptr(),
                c_int::from(port),
                c_int::from(serve),
                world_size as c_int,
                millis(timeout),
                pre.as_ptr(),
            )
        };
        match ptr.is_null() {
            true => Err(last_error(&format!(
                "the rendezvous store at {host}:{port}"
            ))),
            false => Ok(Self { ptr }),
        }
    }

    /// A second connection to the same store, for another thread.
    pub fn reconnect(&self) -> Result<Self, DistError> {
        // SAFETY: `self.ptr` is a live handle.
        let ptr = unsafe { tada_dist_store_clone(self.ptr) };
        match ptr.is_null() {
            true => Err(last_error("a second connection to the rendezvous store")),
            false => Ok(Self { ptr }),
        }
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), DistError> {
        let k = c_string(key);
        // SAFETY: live handle, NUL-terminated key, and a slice valid for the call.
        let rc = unsafe { tada_dist_store_set(self.ptr, k.as_ptr(), value.as_ptr(), value.len()) };
        check(rc, &format!("store set {key}"))
    }

    /// The value of `key`, waiting up to the store's timeout for it to be set.
    pub fn get(&self, key: &str) -> Result<Vec<u8>, DistError> {
        let k = c_string(key);
        let (mut p, mut n) = (std::ptr::null_mut(), 0usize);
        // SAFETY: live handle; on success the shim hands over a malloc'd buffer of n bytes.
        let rc = unsafe { tada_dist_store_get(self.ptr, k.as_ptr(), &mut p, &mut n) };
        check(rc, &format!("store get {key}"))?;
        // SAFETY: p holds n initialised bytes (see above); freed right after the copy.
        let v = unsafe { std::slice::from_raw_parts(p, n).to_vec() };
        // SAFETY: the buffer the shim allocated.
        unsafe { tada_dist_bytes_free(p) };
        Ok(v)
    }

    /// Whether `key` is set, without waiting.
    pub fn check(&self, key: &str) -> Result<bool, DistError> {
        let k = c_string(key);
        // SAFETY: live handle and key.
        match unsafe { tada_dist_store_check(self.ptr, k.as_ptr()) } {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(last_error(&format!("store check {key}"))),
        }
    }

    /// Adds `delta` to the counter `key`; its new value.
    pub fn add(&self, key: &str, delta: i64) -> Result<i64, DistError> {
        let k = c_string(key);
        let mut v = 0i64;
        // SAFETY: live handle and key; `v` outlives the call.
        let rc = unsafe { tada_dist_store_add(self.ptr, k.as_ptr(), delta, &mut v) };
        check(rc, &format!("store add {key}")).map(|()| v)
    }

    fn raw(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: the handle is freed once, here.
        unsafe { tada_dist_store_free(self.ptr) }
    }
}

/// How [`ProcessGroup::all_reduce`] combines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum = 0,
    Max = 1,
    Min = 2,
}

/// A c10d ProcessGroup with a Gloo backend: `size` ranks, this one `rank`.
pub struct ProcessGroup {
    ptr: *mut c_void,
    pub rank: usize,
    pub size: usize,
}

// SAFETY: c10d process groups are called from several threads in PyTorch too (each collective
// is queued to Gloo's own worker threads).
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

fn raw_tensors(ts: &[&Tensor]) -> Vec<CTensor> {
    ts.iter().map(|t| t.as_ptr() as CTensor).collect()
}

impl ProcessGroup {
    /// Rendezvous of `size` ranks through `store`; a collective that waits longer than
    /// `timeout` for a peer fails.
    pub fn new(
        store: &Store,
        rank: usize,
        size: usize,
        timeout: Duration,
        threads: usize,
    ) -> Result<Self, DistError> {
        // SAFETY: a live store handle (the group keeps its own reference) and plain values.
        let ptr = unsafe {
            tada_dist_group_new(
                store.raw(),
                rank as c_int,
                size as c_int,
                millis(timeout),
                threads as c_int,
            )
        };
        match ptr.is_null() {
            true => Err(last_error("the Gloo process group")),
            false => Ok(Self { ptr, rank, size }),
        }
    }

    /// Whether this build can add NCCL for CUDA tensors ([`Self::add_nccl`]): libtorch has CUDA
    /// and build.rs found the CUDA and NCCL headers.
    pub const HAS_NCCL: bool = cfg!(tada_nccl);

    /// Adds an NCCL backend for CUDA tensors: the collectives on CUDA tensors (gradient buckets,
    /// SyncBatchNorm statistics, gathered embeddings) run on NCCL, the CPU ones stay on Gloo.
    /// Communicators are created on the first CUDA collective, on its tensors' device.
    pub fn add_nccl(&self, store: &Store, timeout: Duration) -> Result<(), DistError> {
        #[cfg(tada_nccl)]
        {
            // SAFETY: live group and store handles (the backend keeps its own store reference).
            let rc = unsafe {
                tada_dist_group_add_nccl(
                    self.ptr,
                    store.raw(),
                    self.rank as c_int,
                    self.size as c_int,
                    millis(timeout),
                )
            };
            check(rc, "the NCCL process group")
        }
        #[cfg(not(tada_nccl))]
        {
            let _ = (store, timeout);
            Err(DistError::C10d {
                what: "the NCCL process group".into(),
                message: "this tada was built without NCCL (libtorch without CUDA, or no CUDA / \
                          NCCL headers: see the build warning)"
                    .into(),
            })
        }
    }

    /// Combines every tensor in place across the ranks (same shapes and dtypes on every rank).
    pub fn all_reduce(&self, ts: &[&Tensor], op: ReduceOp) -> Result<(), DistError> {
        let raw = raw_tensors(ts);
        // SAFETY: live group; the tensors outlive the (blocking) call.
        let rc = unsafe {
            tada_dist_all_reduce(self.ptr, raw.as_ptr(), raw.len() as c_int, op as c_int)
        };
        check(rc, "all_reduce")
    }

    /// Every rank's tensors become rank `root`'s, in place.
    pub fn broadcast(&self, ts: &[&Tensor], root: usize) -> Result<(), DistError> {
        let raw = raw_tensors(ts);
        // SAFETY: as all_reduce.
        let rc = unsafe {
            tada_dist_broadcast(self.ptr, raw.as_ptr(), raw.len() as c_int, root as c_int)
        };
        check(rc, "broadcast")
    }

    /// Waits until every rank gets here.
    pub fn barrier(&self) -> Result<(), DistError> {
        // SAFETY: live group.
        check(unsafe { tada_dist_barrier(self.ptr) }, "barrier")
    }

    /// Every rank's `t` stacked in rank order, outside autograd.
    ///
    /// # Shapes
    /// `(B, ...)` on every rank -> `(W·B, ...)`.
    pub fn all_gather(&self, t: &Tensor) -> Result<Tensor, DistError> {
        self.new_tensor(
            |g| unsafe { tada_dist_all_gather(g, t.as_ptr() as CTensor) },
            "all_gather",
        )
    }

    /// The sum over ranks, differentiable: the gradient is the sum over ranks of the result's
    /// gradients (SyncBatchNorm's statistics).
    ///
    /// # Shapes
    /// any -> the same.
    pub fn all_reduce_grad(&self, t: &Tensor) -> Result<Tensor, DistError> {
        self.new_tensor(
            |g| unsafe { tada_dist_all_reduce_grad(g, t.as_ptr() as CTensor) },
            "all_reduce (autograd)",
        )
    }

    /// [`Self::all_gather`], differentiable: this rank's rows get the sum over ranks of the
    /// gradients their copies received.
    ///
    /// # Shapes
    /// `(B, ...)` -> `(W·B, ...)`.
    pub fn all_gather_grad(&self, t: &Tensor) -> Result<Tensor, DistError> {
        self.new_tensor(
            |g| unsafe { tada_dist_all_gather_grad(g, t.as_ptr() as CTensor) },
            "all_gather (autograd)",
        )
    }

    fn new_tensor(
        &self,
        call: impl FnOnce(*mut c_void) -> CTensor,
        what: &str,
    ) -> Result<Tensor, DistError> {
        // The calls above pass a live tensor and this live group; the shim returns a new heap
        // at::Tensor (or null) whose ownership passes to the Tensor.
        let p = call(self.ptr);
        match p.is_null() {
            true => Err(last_error(what)),
            // SAFETY: see above.
            false => Ok(unsafe { Tensor::from_ptr(p) }),
        }
    }

    pub(super) fn raw(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: freed once, here. Autograd nodes that captured the group hold a pointer to
        // this handle, so groups used under autograd live as long as the process ([`super::World`]).
        unsafe { tada_dist_group_free(self.ptr) }
    }
}

/// DDP's Reducer: averages the gradients of its parameters over the ranks in buckets, each
/// bucket's all-reduce launched from autograd hooks as soon as its gradients are ready, so
/// communication overlaps the rest of backward.
pub struct GradReducer {
    ptr: *mut c_void,
}

// SAFETY: the Reducer locks its own state; tada drives it from the training thread.
unsafe impl Send for GradReducer {}

impl GradReducer {
    /// A reducer over `params` (leaves that require grad, in model order); buckets of at most
    /// `bucket_bytes`, the first (the last layers, whose gradients come first) of at most
    /// `first_bucket_bytes`. `find_unused`: parameters the loss does not reach are found each
    /// step and count as ready (with a zero gradient), as DDP's `find_unused_parameters`.
    pub fn new(
        group: &ProcessGroup,
        params: &[Tensor],
        bucket_bytes: i64,
        first_bucket_bytes: i64,
        find_unused: bool,
    ) -> Result<Self, DistError> {
        let refs: Vec<&Tensor> = params.iter().collect();
        let raw = raw_tensors(&refs);
        // SAFETY: live group and tensors; the Reducer keeps its own references.
        let ptr = unsafe {
            tada_dist_ddp_new(
                group.raw(),
                raw.as_ptr(),
                raw.len() as c_int,
                bucket_bytes,
                first_bucket_bytes,
                c_int::from(find_unused),
            )
        };
        match ptr.is_null() {
            true => Err(last_error("DDP's gradient reducer")),
            false => Ok(Self { ptr }),
        }
    }

    /// Arms the hooks for the next backward pass from `outputs` (the loss): call between the
    /// forward and the backward of a pass whose gradients must be averaged; passes not armed
    /// accumulate locally (DDP's `no_sync`).
    pub fn prepare(&self, outputs: &[&Tensor]) -> Result<(), DistError> {
        let raw = raw_tensors(outputs);
        // SAFETY: live reducer and tensors.
        let rc = unsafe { tada_dist_ddp_prepare(self.ptr, raw.as_ptr(), raw.len() as c_int) };
        check(rc, "DDP prepare_for_backward")
    }
}

impl Drop for GradReducer {
    fn drop(&mut self) {
        // SAFETY: freed once, here.
        unsafe { tada_dist_ddp_free(self.ptr) }
    }
}
