// Declarations for tada's c10d shim; see csrc/gloo_decls/README.md. The c10d headers hold gloo's
// transport objects through smart pointers only, so incomplete types suffice.
#pragma once

namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
} // namespace transport
} // namespace gloo
