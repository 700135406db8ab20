//! The `tada` command line. It only parses arguments and calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod cli_io;
mod commands_data;
use cli_io::{batch_size, one_line, print_summary, seconds, workers};
use commands_data::{bench_loader, data_check, video_dataset_config};
use tada::output_path::{check_output_dir, check_output_file};

#[derive(Parser)]
#[command(
    name = "tada",
    version,
    about = "Self-supervised video pretraining of TAdaConv backbones (MoSI, ParamCrop) on libtorch"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What every training command takes.
#[derive(clap::Args)]
struct RunArgs {
    #[arg(long)]
    config: PathBuf,
    /// Run folder (default OUTPUT_DIR).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Continue from the newest checkpoint in the run folder.
    #[arg(long)]
    resume: bool,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl RunArgs {
    fn options(&self, weights: Option<PathBuf>) -> tada::runs::RunOptions {
        tada::runs::RunOptions {
            output: self.output.clone(),
            weights,
            train: tada::train::TrainOptions {
                resume: self.resume,
                ..Default::default()
            },
        }
    }
}

/// A run that a signal stopped has checkpointed; it still fails, so that a shell chain such as
/// `tada pretrain … && tada finetune …` stops there (exit 130 / 143, see [`main`]).
fn stopped_by_signal(s: &tada::train::Summary) -> Result<()> {
    match tada::train::TrainError::interrupted(s) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Versions, libtorch, CUDA devices, cuDNN and threads; with --model, a model's size.
    Info {
        /// A config whose model to describe: parameters and output shape for its input.
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run a configured model with given weights on the tensor `__input__` of a safetensors file.
    Forward {
        #[arg(long)]
        config: PathBuf,
        /// Weights: a safetensors file (tada's, or one written by `tada import`).
        #[arg(long)]
        weights: PathBuf,
        /// A safetensors file holding `__input__`.
        #[arg(long)]
        input: PathBuf,
        /// Where to write `__output__` and `__out_logits__`.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Multi-view test of a trained model: acc@1, acc@5 and per-class accuracy (JSON).
    Test {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        weights: PathBuf,
        /// Where to write the JSON report (default: test_results.json beside the weights).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// On embedded data: pretrain a small backbone (MoSI, or SimCLR + ParamCrop), then
    /// linear-probe it and a random copy.
    Demo {
        /// Folder for the three runs.
        #[arg(long, default_value = "runs/demo")]
        output: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The pretraining: MoSI on synthetic images, or SimCLR with ParamCrop views on
        /// synthetic videos.
        #[arg(long, value_enum, default_value_t = PretextArg::Mosi)]
        pretext: PretextArg,
    },
    /// Pretrain with a pretext task: MoSI (keys the config leaves out default to the MoSI
    /// recipe) or contrastive learning (PRETRAIN.GENERATOR: Contrastive).
    Pretrain {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Fine-tune, or linear-probe with TRAIN.ONLY_LINEAR, from pretrained weights.
    Finetune {
        #[command(flatten)]
        run: RunArgs,
        /// Pretrained weights (only `backbone.*` is loaded); default TRAIN.CHECKPOINT_FILE_PATH.
        #[arg(long)]
        weights: Option<PathBuf>,
    },
    /// Write MoSI pseudo-motion samples as GIF/PNG plus labels.json (built-in synthetic images).
    MosiPreview {
        /// The YAML config; keys it leaves out default to the reference's MoSI run recipe.
        #[arg(long)]
        config: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Override a key: --set PRETRAIN.NUM_FRAMES=8 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Number of source images.
        #[arg(long, default_value_t = 2)]
        images: usize,
        /// Seed of the images and of the random draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Split whose behaviour to show: train (random start, jitter, flip, colour) or test.
        #[arg(long, value_enum, default_value_t = SplitArg::Train)]
        split: SplitArg,
    },
    /// Draw ParamCrop's two views over synthetic source clips; IoU and centre distance to crops.json.
    Crops {
        #[arg(long)]
        config: PathBuf,
        /// A checkpoint holding trained ParamCrop weights (paramcrop.*); default: the initial net.
        #[arg(long)]
        weights: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Number of clips.
        #[arg(long, default_value_t = 4)]
        clips: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Throughput benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Inspect configurations.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Convert an official PyTorch checkpoint (.pyth/.pth/.pt) to safetensors, without Python.
    ///
    /// Reads the reference's checkpoint dict (its model_state) or a bare state dict; the pickle
    /// may only name what rebuilds tensors, anything else is refused before it is read.
    Import {
        /// The torch.save file.
        checkpoint: PathBuf,
        /// The safetensors file to write.
        #[arg(short, long, value_name = "OUT.safetensors")]
        output: PathBuf,
        /// Import the EMA weights (model_ema_state) instead of model_state.
        #[arg(long)]
        ema: bool,
    },
}

/// `tada demo --pretext`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PretextArg {
    Mosi,
    Contrastive,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the merged configuration (bases, defaults and overrides applied) as YAML.
    Show {
        /// The YAML config file.
        #[arg(long)]
        config: PathBuf,
        /// Override a key: --set TRAIN.BATCH_SIZE=8 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Open every file the config's datasets list, in parallel; one line per bad file, then
    /// `checked N, bad M`. Fails when the bad share exceeds DATA_LOADER.MAX_BAD_FRACTION.
    Check {
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Threads (default: DATA_LOADER.NUM_WORKERS), 1 to 256.
        #[arg(long, value_parser = workers)]
        workers: Option<usize>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// MoSI generation rate on one core (synthetic 240x320 images); last line `... N clips/s ...`.
    Data {
        /// A MoSI config; keys it leaves out default to the reference's MoSI run recipe.
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Seconds to measure (over 0, at most 1e6).
        #[arg(long, default_value_t = 10.0, value_parser = seconds)]
        seconds: f64,
    },
    /// Training-step time (forward + backward + update) of the config's model; last line `... N clips/s ...`.
    Model {
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Batch size, 1 to 65536 (default TRAIN.BATCH_SIZE).
        #[arg(long, value_parser = batch_size)]
        batch: Option<i64>,
        /// Seconds to measure (over 0, at most 1e6).
        #[arg(long, default_value_t = 10.0, value_parser = seconds)]
        seconds: f64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SplitArg {
    Train,
    Val,
    Test,
}

impl From<SplitArg> for tada_augment::mosi::Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => Self::Train,
            SplitArg::Val => Self::Val,
            SplitArg::Test => Self::Test,
        }
    }
}

/// K, the number of clips per MoSINet input item, or None for other models.
fn mosi_clips(cfg: &tada::config::Config) -> Result<Option<i64>> {
    if cfg.model.name != tada::models::video_model::MOSI_NET {
        return Ok(None);
    }
    let speeds = tada::tasks::mosi::speed_config(cfg)?;
    Ok(Some(
        tada_augment::mosi::SpeedSet::new(&speeds)?.len() as i64
    ))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { model, set } => {
            print!("{}", tada::info::Info::collect());
            if let Some(path) = model {
                let cfg = tada::config::load(&path, &set)
                    .with_context(|| format!("cannot load config {}", path.display()))?
                    .config;
                let clips = mosi_clips(&cfg)?;
                let s = tada::models::summary::summarize(&cfg, clips)
                    .with_context(|| format!("cannot build the model of {}", path.display()))?;
                println!("model          {}", path.display());
                println!(
                    "parameters     {} ({} in the backbone)",
                    s.parameters, s.backbone_parameters
                );
                println!("input          {:?}", s.input_shape);
                println!("output         {:?}", s.output_shape);
                if let Some((name, n)) = s.reference {
                    println!(
                        "reference      {name} backbone: {n} parameters (BACKBONES.md §8){}",
                        if n == s.backbone_parameters {
                            ", equal"
                        } else {
                            ", differs (reduced config?)"
                        }
                    );
                }
            }
        }
        Command::Forward {
            config,
            weights,
            input,
            output,
            set,
        } => {
            check_output_file(&output, &[&config, &weights, &input])?;
            let cfg = tada::config::load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?
                .config;
            let report = tada::models::inference::forward_file(&cfg, &weights, &input, &output)?;
            if !report.unexpected.is_empty() {
                tracing::warn!(
                    "{} tensor(s) in {} are not in the model: {}",
                    report.unexpected.len(),
                    weights.display(),
                    report.unexpected.join(", ")
                );
            }
            println!(
                "loaded {} tensors; wrote {}",
                report.loaded,
                output.display()
            );
        }
        Command::Test {
            config,
            weights,
            output,
            set,
        } => {
            // Checked before the evaluation, which can take hours.
            let out = output.unwrap_or_else(|| weights.with_file_name("test_results.json"));
            check_output_file(&out, &[&config, &weights])?;
            let loaded = tada::config::load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?;
            let r = tada::runs::test::test(&loaded, &weights)?;
            tada::atomic_write::write(&out, serde_json::to_string_pretty(&r)?.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "{} videos x {} views ({} fusion): acc@1 {:.2}%, acc@5 {}; per-class accuracy in {}",
                r.videos,
                r.views_per_video,
                r.ensemble,
                100.0 * r.acc1,
                r.acc5.map_or("n/a (fewer than 5 classes)".into(), |a| format!(
                    "{:.2}%",
                    100.0 * a
                )),
                out.display()
            );
        }
        Command::Demo {
            output,
            seed,
            pretext,
        } => {
            use tada::runs::demo::DemoPretext;
            let pretext = match pretext {
                PretextArg::Mosi => DemoPretext::Mosi,
                PretextArg::Contrastive => DemoPretext::Contrastive,
            };
            let opts = tada::runs::demo::DemoOptions {
                output,
                seed,
                pretext,
            };
            let r = tada::runs::demo::demo(&opts)?;
            let label = r.pretext.label();
            let stage = match r.pretext {
                DemoPretext::Mosi => "MoSI pretraining (synthetic images)",
                DemoPretext::Contrastive => "SimCLR + ParamCrop pretraining (synthetic videos)",
            };
            println!("| stage | result | time |");
            println!("| --- | --- | --- |");
            let overlap = r.view_overlap.map_or(String::new(), |(iou, dist)| {
                format!("; last views: IoU {iou:.2}, centre distance {dist:.2}")
            });
            println!(
                "| {stage} | pretext accuracy {:.1}%{overlap} | {:.0} s |",
                100.0 * r.pretext_accuracy,
                r.pretrain_seconds
            );
            println!(
                "| linear probe, random init | {:.1}% | |",
                100.0 * r.probe_random
            );
            println!(
                "| linear probe, {label} | {:.1}% | {:.0} s (both probes) |",
                100.0 * r.probe_pretrained,
                r.probe_seconds
            );
            println!(
                "probe accuracy: random init {:.1}% | {label} {:.1}% ({:.0} s in all)",
                100.0 * r.probe_random,
                100.0 * r.probe_pretrained,
                r.total_seconds
            );
        }
        Command::Pretrain { run } => {
            let loaded = tada::config::recipes::load_pretrain(&run.config, &run.set)
                .with_context(|| format!("cannot load config {}", run.config.display()))?;
            let s = tada::runs::pretrain(&loaded, &run.options(None))?;
            print_summary(&s);
            stopped_by_signal(&s)?;
        }
        Command::Finetune { run, weights } => {
            let loaded = tada::config::load(&run.config, &run.set)
                .with_context(|| format!("cannot load config {}", run.config.display()))?;
            let (s, report) = tada::runs::finetune(&loaded, &run.options(weights))?;
            if let Some(r) = report {
                println!(
                    "weights {}: {}; dropped {} tensors outside backbone.*",
                    r.path.display(),
                    r.load,
                    r.dropped.len()
                );
            }
            print_summary(&s);
            stopped_by_signal(&s)?;
        }
        Command::MosiPreview {
            config,
            out,
            set,
            images,
            seed,
            split,
        } => {
            use tada::tasks::mosi::preview::{mosi_preview, PreviewOptions};
            check_output_dir(&out, &["labels.json"], &[&config])?;
            let loaded = tada::config::recipes::MOSI
                .load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?;
            let opts = PreviewOptions {
                images,
                seed,
                split: split.into(),
                ..PreviewOptions::default()
            };
            let files = mosi_preview(&loaded.config, &out, &opts)
                .with_context(|| format!("cannot make the MoSI preview of {}", config.display()))?;
            println!("wrote {} files to {}", files.len(), out.display());
        }
        Command::Bench {
            command:
                BenchCommand::Data {
                    config,
                    set,
                    seconds,
                },
        } => {
            let budget = std::time::Duration::from_secs_f64(seconds);
            if let Some(cfg) = video_dataset_config(&config, &set)? {
                return bench_loader(&cfg, budget);
            }
            let loaded = tada::config::recipes::MOSI
                .load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?;
            let r = tada::bench::data::mosi_generation(&loaded.config, budget, 0)?;
            println!(
                "MoSI generation, 1 thread, 240x320 -> {:?} per clip: {} images, {} clips in {:.2} s",
                r.clip_shape, r.images, r.clips, r.seconds
            );
            println!(
                "{:.2} images/s, {:.1} clips/s per core",
                r.images_per_second(),
                r.clips_per_second()
            );
        }
        Command::Bench {
            command:
                BenchCommand::Model {
                    config,
                    set,
                    batch,
                    seconds,
                },
        } => {
            let cfg = tada::config::load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?
                .config;
            let clips = mosi_clips(&cfg)?;
            let batch = batch.unwrap_or(cfg.train.batch_size as i64);
            let budget = std::time::Duration::from_secs_f64(seconds);
            let r = tada::bench::model::step_time(&cfg, batch, clips, budget)?;
            println!(
                "training step on {:?}, input {:?}, {} threads: median {:.1} ms, mean {:.1} ms over {} steps",
                r.device, r.input_shape, tch::get_num_threads(), r.median * 1e3, r.mean * 1e3, r.steps
            );
            println!("{:.1} clips/s", r.clips_per_second());
        }
        Command::Data {
            command:
                DataCommand::Check {
                    config,
                    set,
                    workers,
                },
        } => {
            let cfg = tada::config::load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?
                .config;
            data_check(&cfg, workers)?;
        }
        Command::Crops {
            config,
            weights,
            out,
            set,
            clips,
            seed,
        } => {
            let inputs: Vec<&std::path::Path> = [Some(config.as_path()), weights.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            check_output_dir(&out, &["crops.json"], &inputs)?;
            let cfg = tada::config::load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?
                .config;
            let stats = tada::tasks::contrastive::crops::crops(
                &cfg,
                weights.as_deref(),
                &out,
                clips,
                seed,
            )?;
            for (i, s) in stats.iter().enumerate() {
                println!(
                    "clip {i}: IoU {:.3} (spatial {:.3}, temporal {:.3}), centre distance {:.3}",
                    s.iou, s.spatial_iou, s.temporal_iou, s.centre_distance
                );
            }
            println!("wrote {}", out.join("crops.json").display());
        }
        Command::Config {
            command: ConfigCommand::Show { config, set },
        } => {
            let loaded = tada::config::load(&config, &set)
                .with_context(|| format!("cannot load config {}", config.display()))?;
            print!("{}", loaded.to_yaml());
        }
        Command::Import {
            checkpoint,
            output,
            ema,
        } => {
            let options = tada::checkpoint::ImportOptions { ema };
            let summary = tada::checkpoint::import_to_safetensors(&checkpoint, &output, options)?;
            println!("{summary}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli_io::usage_error(e),
    };
    init_logging();
    tada::train::step_guard::install_panic_hook();
    // A libtorch failure that tch turns into a panic (an allocation, a shape a layer cannot
    // take) is reported as one line like any error; RUST_LOG=debug shows the whole text.
    let result = tada::train::step_guard::guarded(|| run(cli))
        .unwrap_or_else(|message| Err(anyhow::anyhow!(message)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let status = e
                .chain()
                .find_map(|c| c.downcast_ref::<tada::train::TrainError>())
                .and_then(tada::train::TrainError::exit_status);
            match status {
                Some(code) => {
                    eprintln!("{}", one_line(&e));
                    ExitCode::from(code)
                }
                None => {
                    eprintln!("error: {}", one_line(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
