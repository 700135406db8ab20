//! Training-step time of R2D3D-18 (9-class head) at batch 8, 16x112x112, on the CPU:
//! `cargo bench --bench model_step` (TADA_BENCH_SECONDS sets the budget, default 20).
//! The same measurement as `tada bench model`; numbers go to docs/benchmarks.md.

const R2D3D_18: &str = include_str!("../configs/models/r2d3d_18_k9.yaml");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let loaded = tada::config::load_str(R2D3D_18, "r2d3d_18.yaml", &[])?;
    let secs = std::env::var("TADA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let r = tada::bench::model::step_time(
        &loaded.config,
        8,
        None,
        std::time::Duration::from_secs_f64(secs),
    )?;
    println!(
        "R2D3D-18, batch 8, input {:?}, {} threads: median {:.1} ms/step over {} steps, {:.1} clips/s",
        r.input_shape,
        tch::get_num_threads(),
        r.median * 1e3,
        r.steps,
        r.clips_per_second()
    );
    Ok(())
}
