//! Link-time fixes for libtorch that a dependency's build script cannot make for us.
//!
//! torch-sys links libtorch, but (1) the final binaries get no RUNPATH, so they only start with
//! LD_LIBRARY_PATH set, and (2) Rust links with `--as-needed` and no symbol of libtorch_cuda is
//! referenced directly, so libtorch_cuda.so is dropped and CUDA silently never registers.
//! `rustc-link-arg` does not propagate from dependencies, so the crate owning the binaries emits it.
//!
//! It also compiles csrc/cuda_shim.cpp against the same libtorch headers: CUDA autocast in bf16
//! or fp16 and pinned memory through libtorch's current API (tch only switches autocast on in
//! fp16, through calls libtorch 2.11 deprecates and warns about on every step).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // torch-sys declares `links = "tch"`, so its exported variable is DEP_TCH_*.
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: binaries get no rpath to libtorch");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // The augment crate shares this script for the rpath; only tada calls the shim.
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("tada") {
        build_autocast_shim(Path::new(&lib));
    }
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:rustc-env=TADA_LIBTORCH_LIB={lib}");
}

/// Compiles the autocast-dtype shim against `<libtorch>/include` (the lib folder's sibling).
fn build_autocast_shim(lib: &Path) {
    let src = "csrc/cuda_shim.cpp";
    println!("cargo:rerun-if-changed={src}");
    let include = lib.parent().unwrap_or(lib).join("include");
    cc::Build::new()
        .cpp(true)
        .file(src)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        // PyPI's libtorch is built with the C++11 ABI.
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false)
        .compile("tada_cuda_shim");
    build_dist_shim(&include);
}

/// Compiles the c10d shim (csrc/dist_shim.cpp: TCPStore, the Gloo process group, DDP's
/// Reducer). The wheel ships ProcessGroupGloo.hpp but not the gloo headers it includes;
/// csrc/gloo_decls holds the few declarations it needs (see its README).
fn build_dist_shim(include: &Path) {
    let src = "csrc/dist_shim.cpp";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=csrc/gloo_decls");
    cc::Build::new()
        .cpp(true)
        .file(src)
        .include("csrc/gloo_decls")
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        // The c10d headers hide their Gloo and distributed declarations behind these.
        .define("USE_C10D_GLOO", None)
        .define("USE_DISTRIBUTED", None)
        .warnings(false)
        .compile("tada_dist_shim");
}
