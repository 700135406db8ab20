//! Training-step time on the CPU of R2D3D-18 (9-class head) at batch 8, 16x112x112, and of
//! TAda2D-R50 (400-class head) at batch 2, 8x112x112: `cargo bench --bench model_step`
//! (TADA_BENCH_SECONDS sets the budget per model, default 20). The same measurement as
//! `tada bench model`; numbers go to docs/benchmarks.md.

/// (label, config, batch).
const MODELS: [(&str, &str, i64); 2] = [
    (
        "R2D3D-18",
        include_str!("../configs/models/r2d3d_18_k9.yaml"),
        8,
    ),
    (
        "TAda2D-R50",
        include_str!("../configs/models/tada2d_r50_k400.yaml"),
        2,
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs = std::env::var("TADA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    for (label, yaml, batch) in MODELS {
        let loaded = tada::config::load_str(yaml, label, &[])?;
        let r = tada::bench::model::step_time(
            &loaded.config,
            batch,
            None,
            std::time::Duration::from_secs_f64(secs),
        )?;
        println!(
            "{label}, batch {batch}, input {:?}, {} threads: median {:.1} ms/step (mean {:.1}) over {} steps, {:.1} clips/s",
            r.input_shape,
            tch::get_num_threads(),
            r.median * 1e3,
            r.mean * 1e3,
            r.steps,
            r.clips_per_second()
        );
    }
    Ok(())
}
