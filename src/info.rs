//! `tada info`: what this build runs on (versions, libtorch, CUDA devices, threads).

use std::fmt;
use std::path::{Path, PathBuf};

/// A snapshot of the runtime environment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Info {
    pub tada_version: &'static str,
    pub libtorch_version: String,
    /// Folder of the libtorch actually loaded by this process.
    pub libtorch_dir: Option<PathBuf>,
    /// Whether libtorch's CUDA backend is linked in (it registers even without a GPU).
    pub cuda_backend_linked: bool,
    pub cuda_available: bool,
    pub cuda_device_count: i64,
    /// One line per device, from `nvidia-smi` when it is installed.
    pub cuda_devices: Vec<String>,
    pub cudnn_available: bool,
    pub cudnn_version: Option<i64>,
    pub num_threads: i32,
    pub num_interop_threads: i32,
    pub mkldnn: bool,
    pub openmp: bool,
    /// Whether this build has c10d's NCCL process group for data-parallel runs on GPUs.
    pub nccl: bool,
}

impl Info {
    pub fn collect() -> Self {
        let libtorch_dir = loaded_library_dir("libtorch_cpu.so");
        let cuda_available = tch::Cuda::is_available();
        let cudnn_available = cuda_available && tch::Cuda::cudnn_is_available();
        Self {
            tada_version: env!("CARGO_PKG_VERSION"),
            libtorch_version: libtorch_dir
                .as_deref()
                .and_then(libtorch_version)
                .unwrap_or_else(|| "unknown".into()),
            cuda_backend_linked: loaded_library_dir("libtorch_cuda.so").is_some(),
            libtorch_dir,
            cuda_available,
            cuda_device_count: if cuda_available {
                tch::Cuda::device_count()
            } else {
                0
            },
            cuda_devices: if cuda_available {
                nvidia_smi_devices()
            } else {
                Vec::new()
            },
            cudnn_available,
            cudnn_version: cudnn_available.then(tch::utils::version_cudnn),
            num_threads: tch::get_num_threads(),
            num_interop_threads: tch::get_num_interop_threads(),
            mkldnn: tch::utils::has_mkldnn(),
            openmp: tch::utils::has_openmp(),
            nccl: crate::dist::ProcessGroup::HAS_NCCL,
        }
    }
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tada           {}", self.tada_version)?;
        let dir = self.libtorch_dir.as_ref().map(|d| d.display().to_string());
        writeln!(
            f,
            "libtorch       {} ({})",
            self.libtorch_version,
            dir.as_deref().unwrap_or("?")
        )?;
        writeln!(
            f,
            "CUDA           {} (backend {}linked, {} device(s))",
            if self.cuda_available {
                "available"
            } else {
                "not available"
            },
            if self.cuda_backend_linked { "" } else { "NOT " },
            self.cuda_device_count
        )?;
        for d in &self.cuda_devices {
            writeln!(f, "  device       {d}")?;
        }
        match self.cudnn_version {
            Some(v) => writeln!(f, "cuDNN          available (version {v})")?,
            None => writeln!(f, "cuDNN          not available")?,
        }
        writeln!(
            f,
            "threads        {} intra-op, {} inter-op (OpenMP {}, oneDNN {})",
            self.num_threads,
            self.num_interop_threads,
            yes_no(self.openmp),
            yes_no(self.mkldnn)
        )?;
        writeln!(
            f,
            "distributed    c10d: gloo (CPU tensors){}",
            if self.nccl {
                ", nccl (CUDA tensors)"
            } else {
                "; no nccl in this build"
            }
        )
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Folder holding the shared library `name` mapped into this process, if any.
pub fn loaded_library_dir(name: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| Path::new(p).file_name().is_some_and(|f| f == name))
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
}

/// The version of the libtorch in `lib_dir`: the pip layout has `../version.py`, the
/// standalone libtorch archive `../build-version`.
fn libtorch_version(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn nvidia_smi_devices() -> Vec<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total",
            "--format=csv,noheader",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect(),
        _ => vec!["(names unavailable: nvidia-smi not found)".into()],
    }
}

/// `1234567` as `1,234,567`: parameter counts read at a glance.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits_by_three() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (14_059_849, "14,059,849"),
            (123_456, "123,456"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ];
        for (n, text) in cases {
            assert_eq!(thousands(n), text);
        }
    }
}
