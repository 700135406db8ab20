// Declarations for tada's c10d shim; see csrc/gloo_decls/README.md. ProcessGroupGloo.hpp includes
// this file but uses nothing from it.
#pragma once
