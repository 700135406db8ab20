// c10d for tada: the TCPStore rendezvous, a Gloo process group, collectives, differentiable
// all-reduce / all-gather for SyncBatchNorm and cross-rank contrastive losses, and DDP's own
// gradient Reducer (bucketed all-reduce launched from autograd hooks while backward runs).
//
// A C ABI for src/dist/ffi.rs: handles are opaque heap objects, tensors are tch's C_tensor (an
// at::Tensor*), and every entry point catches C++ exceptions and leaves the message in a
// thread-local string (tada_dist_last_error) instead of unwinding into Rust.

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/logger.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

thread_local std::string last_error;

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return -1;
}

struct StoreHandle {
  c10::intrusive_ptr<c10d::Store> store;
};

struct GroupHandle {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
};

struct DdpHandle {
  std::shared_ptr<c10d::Reducer> reducer;
  // The reducer reports through a logger it holds weakly (as Python's DDP sets it up).
  std::shared_ptr<c10d::Logger> logger;
};

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case 1:
      return c10d::ReduceOp(c10d::ReduceOp::MAX);
    case 2:
      return c10d::ReduceOp(c10d::ReduceOp::MIN);
    default:
      return c10d::ReduceOp(c10d::ReduceOp::SUM);
  }
}

void all_reduce_sum(const c10::intrusive_ptr<c10d::ProcessGroup>& pg, at::Tensor& t) {
  std::vector<at::Tensor> ts{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp(c10d::ReduceOp::SUM);
  pg->allreduce(ts, o)->wait();
}

// (W·B, ...): every rank's (B, ...) in rank order.
at::Tensor all_gather_cat(const c10::intrusive_ptr<c10d::ProcessGroup>& pg, const at::Tensor& t) {
  auto x = t.contiguous();
  std::vector<at::Tensor> parts;
  for (int r = 0; r < pg->getSize(); ++r) {
    parts.push_back(at::empty_like(x));
  }
  std::vector<std::vector<at::Tensor>> out{parts};
  std::vector<at::Tensor> in{x};
  pg->allgather(out, in)->wait();
  return at::cat(out[0], 0);
}

c10::intrusive_ptr<c10d::ProcessGroup> group_of(int64_t handle) {
  return reinterpret_cast<GroupHandle*>(handle)->pg;
}

// Σ over ranks, whose gradient is the Σ over ranks of the output's gradient: the statistics
// all-reduce of SyncBatchNorm, differentiable.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(
      torch::autograd::AutogradContext* ctx,
      const at::Tensor& x,
      int64_t group) {
    ctx->saved_data["group"] = group;
    auto y = x.clone();
    all_reduce_sum(group_of(group), y);
    return y;
  }
  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grads) {
    auto g = grads[0].clone();
    all_reduce_sum(group_of(ctx->saved_data["group"].toInt()), g);
    return {g, at::Tensor()};
  }
};

// Every rank's rows in rank order; the gradient of this rank's rows is the Σ over ranks of the
// gradient their copies received, because every rank's loss reads them.
struct AllGatherGrad : public torch::autograd::Function<AllGatherGrad> {
  static at::Tensor forward(
      torch::autograd::AutogradContext* ctx,
      const at::Tensor& x,
      int64_t group) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["rows"] = x.size(0);
    return all_gather_cat(group_of(group), x);
  }
  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grads) {
    auto pg = group_of(ctx->saved_data["group"].toInt());
    auto rows = ctx->saved_data["rows"].toInt();
    auto g = grads[0].contiguous().clone();
    all_reduce_sum(pg, g);
    return {g.narrow(0, rows * pg->getRank(), rows), at::Tensor()};
  }
};

std::vector<at::Tensor> tensors_of(void* const* ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; ++i) {
    v.push_back(*static_cast<at::Tensor*>(ts[i]));
  }
  return v;
}

}  // namespace

extern "C" {

const char* tada_dist_last_error() {
  return last_error.c_str();
}

// Rank 0 serves the store (is_server) and every rank connects; under torchrun's agent store every
// rank is a client of the store the agent serves at host:port. Keys go under `prefix`.
void* tada_dist_store_new(
    const char* host,
    int port,
    int is_server,
    int world_size,
    int64_t timeout_ms,
    const char* prefix) {
  StoreHandle* out = nullptr;
  guarded([&] {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    if (is_server != 0) {
      o.numWorkers = world_size;
    }
    o.waitWorkers = false;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    c10::intrusive_ptr<c10d::Store> s = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    // Keys of this run (and attempt) apart from a launcher's own keys in a shared store.
    if (prefix != nullptr && prefix[0] != 0) {
      s = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), s);
    }
    out = new StoreHandle{s};
  });
  return out;
}

// A second connection to the same store (for a watchdog thread).
void* tada_dist_store_clone(void* store) {
  StoreHandle* out = nullptr;
  guarded([&] { out = new StoreHandle{static_cast<StoreHandle*>(store)->store->clone()}; });
  return out;
}

void tada_dist_store_free(void* store) {
  delete static_cast<StoreHandle*>(store);
}

int tada_dist_store_set(void* store, const char* key, const uint8_t* value, size_t len) {
  return guarded([&] {
    std::vector<uint8_t> v(value, value + len);
    static_cast<StoreHandle*>(store)->store->set(std::string(key), v);
  });
}

// The value of `key` into a buffer the caller frees with tada_dist_bytes_free; waits up to the
// store's timeout for the key to appear.
int tada_dist_store_get(void* store, const char* key, uint8_t** out, size_t* len) {
  return guarded([&] {
    auto v = static_cast<StoreHandle*>(store)->store->get(std::string(key));
    *len = v.size();
    *out = static_cast<uint8_t*>(std::malloc(v.size() > 0 ? v.size() : 1));
    std::memcpy(*out, v.data(), v.size());
  });
}

void tada_dist_bytes_free(uint8_t* p) {
  std::free(p);
}

// 1 when `key` is set, 0 when not, -1 on error.
int tada_dist_store_check(void* store, const char* key) {
  int found = 0;
  if (guarded([&] {
        found = static_cast<StoreHandle*>(store)->store->check({std::string(key)}) ? 1 : 0;
      }) != 0) {
    return -1;
  }
  return found;
}

// Adds `delta` to the counter `key`; the new value into *value.
int tada_dist_store_add(void* store, const char* key, int64_t delta, int64_t* value) {
  return guarded(
      [&] { *value = static_cast<StoreHandle*>(store)->store->add(std::string(key), delta); });
}

// A process group of `size` ranks over `store` with a Gloo backend for CPU tensors.
void* tada_dist_group_new(void* store, int rank, int size, int64_t timeout_ms, int threads) {
  GroupHandle* out = nullptr;
  guarded([&] {
    auto s = static_cast<StoreHandle*>(store)->store;
    auto opts = c10d::ProcessGroupGloo::Options::create_default(
        std::chrono::milliseconds(timeout_ms));
    if (threads > 0) {
      opts->threads = threads;
    }
    auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(s, rank, size, opts);
    auto pg = c10::make_intrusive<c10d::ProcessGroup>(s, rank, size);
    pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
    pg->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    out = new GroupHandle{pg};
  });
  return out;
}

#ifdef USE_C10D_NCCL
// Adds NCCL to `group` for CUDA tensors (the Gloo backend keeps the CPU tensors and barriers),
// as `init_process_group("cpu:gloo,cuda:nccl")` does: collectives dispatch on the tensors'
// device. Its keys go under "cuda/" in the store, apart from Gloo's. Communicators are made
// lazily, on the first CUDA collective, on the device of its tensors.
int tada_dist_group_add_nccl(void* group, void* store, int rank, int size, int64_t timeout_ms) {
  return guarded([&] {
    auto s = c10::make_intrusive<c10d::PrefixStore>(
        "cuda/", static_cast<StoreHandle*>(store)->store);
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(timeout_ms);
    auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(s, rank, size, opts);
    static_cast<GroupHandle*>(group)->pg->setBackend(
        c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
  });
}
#endif

void tada_dist_group_free(void* group) {
  delete static_cast<GroupHandle*>(group);
}

// In place on every tensor; op 0 sum, 1 max, 2 min.
int tada_dist_all_reduce(void* group, void* const* tensors, int n, int op) {
  return guarded([&] {
    auto ts = tensors_of(tensors, n);
    c10d::AllreduceOptions o;
    o.reduceOp = reduce_op(op);
    static_cast<GroupHandle*>(group)->pg->allreduce(ts, o)->wait();
  });
}

// In place: every rank's tensors become root's.
int tada_dist_broadcast(void* group, void* const* tensors, int n, int root) {
  return guarded([&] {
    auto ts = tensors_of(tensors, n);
    c10d::BroadcastOptions o;
    o.rootRank = root;
    static_cast<GroupHandle*>(group)->pg->broadcast(ts, o)->wait();
  });
}

int tada_dist_barrier(void* group) {
  return guarded([&] { static_cast<GroupHandle*>(group)->pg->barrier()->wait(); });
}

// (W·B, ...) every rank's `tensor` (B, ...) in rank order, outside autograd.
void* tada_dist_all_gather(void* group, const void* tensor) {
  at::Tensor* out = nullptr;
  guarded([&] {
    out = new at::Tensor(all_gather_cat(
        static_cast<GroupHandle*>(group)->pg, *static_cast<const at::Tensor*>(tensor)));
  });
  return out;
}

// The differentiable forms (see AllReduceSum and AllGatherGrad).
void* tada_dist_all_reduce_grad(void* group, const void* tensor) {
  at::Tensor* out = nullptr;
  guarded([&] {
    out = new at::Tensor(AllReduceSum::apply(
        *static_cast<const at::Tensor*>(tensor), reinterpret_cast<int64_t>(group)));
  });
  return out;
}

void* tada_dist_all_gather_grad(void* group, const void* tensor) {
  at::Tensor* out = nullptr;
  guarded([&] {
    out = new at::Tensor(AllGatherGrad::apply(
        *static_cast<const at::Tensor*>(tensor), reinterpret_cast<int64_t>(group)));
  });
  return out;
}

// DDP's Reducer over `params` (leaf tensors that require grad), with buckets of at most
// `bucket_bytes` (a first bucket of at most `first_bucket_bytes`), filled in reverse parameter
// order as Python's DDP does, because backward produces the last layers' gradients first.
void* tada_dist_ddp_new(
    void* group,
    void* const* params,
    int n,
    int64_t bucket_bytes,
    int64_t first_bucket_bytes,
    int find_unused) {
  DdpHandle* out = nullptr;
  guarded([&] {
    auto pg = static_cast<GroupHandle*>(group)->pg;
    auto ps = tensors_of(params, n);
    std::vector<bool> sparse(ps.size(), false);
    std::vector<size_t> limits{
        static_cast<size_t>(first_bucket_bytes), static_cast<size_t>(bucket_bytes)};
    auto [indices, per_bucket] = c10d::compute_bucket_assignment_by_size(ps, limits, sparse);
    (void)per_bucket;
    std::reverse(indices.begin(), indices.end());
    std::unordered_map<size_t, std::string> names;
    auto reducer = std::make_shared<c10d::Reducer>(
        ps,
        indices,
        pg,
        sparse,
        bucket_bytes,
        /*find_unused_parameters=*/find_unused != 0,
        /*gradient_as_bucket_view=*/false,
        names,
        first_bucket_bytes,
        /*skip_all_reduce_unused_params=*/false,
        /*use_python_reducer=*/false,
        std::vector<int64_t>{});
    auto logger = std::make_shared<c10d::Logger>(reducer);
    reducer->set_logger(logger);
    out = new DdpHandle{reducer, logger};
  });
  return out;
}

// Between the forward and the backward of a pass whose gradients must be averaged: arms the
// reducer's hooks (and, finding unused parameters, walks the graph from `outputs`).
int tada_dist_ddp_prepare(void* ddp, void* const* outputs, int n) {
  return guarded([&] {
    auto& r = static_cast<DdpHandle*>(ddp)->reducer;
    r->prepare_for_forward();
    r->prepare_for_backward(tensors_of(outputs, n));
  });
}

void tada_dist_ddp_free(void* ddp) {
  delete static_cast<DdpHandle*>(ddp);
}

}  // extern "C"
