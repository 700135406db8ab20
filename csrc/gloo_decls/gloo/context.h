// Declarations for tada's c10d shim; see csrc/gloo_decls/README.md.
#pragma once

#include <chrono>

#include <gloo/transport/device.h>

namespace gloo {

// A communication context of one group. Defined in libtorch_cpu.so; the c10d header calls its
// timeout setter (inline ProcessGroupGloo::setTimeout), nothing else.
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};

} // namespace gloo
