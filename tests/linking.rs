//! The build.rs link fix: the binary carries a RUNPATH to libtorch and keeps libtorch_cuda.so,
//! so it runs with no LD_LIBRARY_PATH and CUDA can register where a GPU exists.

use std::process::Command;

use crate::common::tada_bin;

#[test]
fn binary_has_runpath_and_needs_libtorch_cuda() {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(tada_bin())
        .output()
        .expect("readelf (binutils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let runpath = text
        .lines()
        .find(|l| l.contains("(RUNPATH)"))
        .expect("RUNPATH entry");
    assert!(runpath.contains("lib"), "{runpath}");
    let needed: Vec<&str> = text.lines().filter(|l| l.contains("(NEEDED)")).collect();
    for lib in ["libtorch_cuda.so", "libtorch_cpu.so", "libc10.so"] {
        assert!(
            needed.iter().any(|l| l.contains(lib)),
            "{lib} not NEEDED:\n{text}"
        );
    }
}

#[test]
fn binary_runs_with_an_empty_environment() {
    let out = Command::new(tada_bin())
        .arg("info")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("backend linked"),
        "libtorch_cuda must be loaded: {text}"
    );
}

#[test]
fn libtorch_cuda_is_mapped_in_test_binaries_too() {
    // Touch libtorch so it is certainly loaded, then look at this process's mappings.
    let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
    assert!(tada::info::loaded_library_dir("libtorch_cuda.so").is_some());
}
