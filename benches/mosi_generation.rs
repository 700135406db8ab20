//! MoSI generation rate on one thread: 240x320 synthetic images -> 9 clips of 3x16x112x112 with
//! the built-in MoSI recipe, first with the reference's grayscale-only colour step
//! (`AUGMENTATION.COLOR_P=0`, like for like with the reference generator), then with tada's
//! default per-frame colour jitter. `cargo bench --bench mosi_generation` (TADA_BENCH_SECONDS
//! sets the budget per setting, default 15). The same measurement as `tada bench data`; numbers
//! go to docs/benchmarks.md.

use tada::config::recipes::MOSI;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs = std::env::var("TADA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15.0);
    let budget = std::time::Duration::from_secs_f64(secs);
    for (label, overrides) in [
        (
            "grayscale only (COLOR_P=0)",
            vec!["AUGMENTATION.COLOR_P=0".to_string()],
        ),
        ("full per-frame colour jitter (default)", vec![]),
    ] {
        let loaded = tada::config::load_str(MOSI.text, MOSI.name, &overrides)?;
        let r = tada::bench::data::mosi_generation(&loaded.config, budget, 0)?;
        println!(
            "MoSI generation, 1 thread, 240x320 -> {:?} per clip, {label}: {} images, {} clips in \
             {:.2} s, {:.1} clips/s per core",
            r.clip_shape,
            r.images,
            r.clips,
            r.seconds,
            r.clips_per_second()
        );
    }
    Ok(())
}
