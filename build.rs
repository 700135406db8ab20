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
/// Reducer, and NCCL for CUDA tensors where the headers allow). The wheel ships
/// ProcessGroupGloo.hpp but not the gloo headers it includes; csrc/gloo_decls holds the few
/// declarations it needs (see its README).
fn build_dist_shim(include: &Path) {
    let src = "csrc/dist_shim.cpp";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=csrc/gloo_decls");
    println!("cargo:rustc-check-cfg=cfg(tada_nccl)");
    let mut build = cc::Build::new();
    build
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
        .warnings(false);
    match nccl_includes(include) {
        Ok(dirs) => {
            build.define("USE_C10D_NCCL", None);
            build.includes(dirs);
            println!("cargo:rustc-cfg=tada_nccl");
        }
        Err(why) => println!("cargo:warning=no NCCL process group in this build: {why}"),
    }
    build.compile("tada_dist_shim");
}

/// The header folders ProcessGroupNCCL.hpp needs beyond libtorch's own: the CUDA runtime (with
/// its `crt/` and CCCL's `nv/` folders) and nccl.h. A pip-installed torch has them under
/// site-packages/nvidia (scripts/setup.sh adds the two header-only packages the torch wheel
/// lacks); a standalone CUDA toolkit under CUDA_HOME or /usr/local/cuda also works.
fn nccl_includes(include: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=TADA_NO_NCCL");
    if std::env::var_os("TADA_NO_NCCL").is_some() {
        return Err("TADA_NO_NCCL is set".into());
    }
    let lib = include.parent().map(|p| p.join("lib")).unwrap_or_default();
    if !lib.join("libtorch_cuda.so").exists() {
        return Err("libtorch has no CUDA".into());
    }
    if !include
        .join("torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")
        .exists()
    {
        return Err("libtorch ships no ProcessGroupNCCL.hpp".into());
    }
    // `.libtorch` is a link into the venv: the nvidia folder is beside the real torch folder.
    let torch_include = include.canonicalize().map_err(|e| e.to_string())?;
    let nvidia = torch_include
        .parent()
        .and_then(Path::parent)
        .map(|site| site.join("nvidia"))
        .unwrap_or_default();
    let mut roots: Vec<std::path::PathBuf> = ["cu13", "cu12"]
        .iter()
        .map(|v| nvidia.join(v).join("include"))
        .collect();
    if let Some(home) = std::env::var_os("CUDA_HOME") {
        roots.push(Path::new(&home).join("include"));
    }
    roots.push("/usr/local/cuda/include".into());
    let find = |rel: &str| {
        roots
            .iter()
            .flat_map(|r| [r.clone(), r.join("cccl")])
            .find(|d| d.join(rel).exists())
    };
    let mut dirs = Vec::new();
    for rel in ["cuda_runtime.h", "crt/host_config.h", "nv/target"] {
        dirs.push(find(rel).ok_or_else(|| {
            format!("no CUDA header {rel} (run scripts/setup.sh, or set CUDA_HOME)")
        })?);
    }
    let wheel_nccl = nvidia.join("nccl/include");
    if wheel_nccl.join("nccl.h").exists() {
        dirs.push(wheel_nccl);
    } else if !Path::new("/usr/include/nccl.h").exists() {
        return Err("no nccl.h".into());
    }
    dirs.dedup();
    Ok(dirs)
}
