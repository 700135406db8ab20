//! Link-time fixes for libtorch that a dependency's build script cannot make for us.
//!
//! torch-sys links libtorch, but (1) the final binaries get no RUNPATH, so they only start with
//! LD_LIBRARY_PATH set, and (2) Rust links with `--as-needed` and no symbol of libtorch_cuda is
//! referenced directly, so libtorch_cuda.so is dropped and CUDA silently never registers.
//! `rustc-link-arg` does not propagate from dependencies, so the crate owning the binaries emits it.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // torch-sys declares `links = "tch"`, so its exported variable is DEP_TCH_*.
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: binaries get no rpath to libtorch");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:rustc-env=TADA_LIBTORCH_LIB={lib}");
}
