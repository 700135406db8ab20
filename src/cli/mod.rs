//! The commands of `tada`: what each one is called and says in `--help`, and which module runs
//! it. Each subcommand's flags and printing live in its own module; this one only dispatches.

mod bench;
mod completions;
mod config;
mod config_args;
mod crops;
mod data;
mod data_localization;
mod demo;
pub mod errors;
mod export;
mod extract;
mod flags;
mod forward;
mod import;
mod info;
mod launch;
mod localize;
mod mosi_preview;
mod test;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Where `--help` lists `-v` and `-q`: after every command's own flags.
const LOG_FLAGS: usize = 1000;

#[derive(Parser)]
#[command(
    name = "tada",
    version,
    about = "Self-supervised video pretraining of TAdaConv backbones (MoSI, ParamCrop) on libtorch"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output on stderr and in run.log: -v debug, -vv trace (RUST_LOG wins when set).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, display_order = LOG_FLAGS)]
    verbose: u8,
    /// Only warnings and errors on stderr and in run.log (RUST_LOG wins when set).
    #[arg(short, long, global = true, conflicts_with = "verbose", display_order = LOG_FLAGS)]
    quiet: bool,
}

// The doc comments of the variants are the commands' help; those of the argument structs are
// not shown (a variant's text replaces them).
#[derive(Subcommand)]
enum Command {
    /// Versions, libtorch, CUDA devices, cuDNN and threads; with --model, a model's size.
    Info(info::Info),
    /// Run a configured model with given weights on the tensor `__input__` of a safetensors file.
    Forward(forward::Forward),
    /// Multi-view test of a trained model: acc@1, acc@5, per-class accuracy and confusion matrix
    /// (JSON, and a PNG heat map), written into the run folder of the weights.
    Test(test::Test),
    /// Temporal action localisation test of a BMN model: proposals and detections of every
    /// video of TEST.TEST_SET (sliding windows fused per video), and their mAP on a labelled set.
    Localize(localize::Localize),
    /// On embedded data: pretrain a small backbone (MoSI, or SimCLR + ParamCrop), then
    /// linear-probe it and a random copy.
    Demo(demo::Demo),
    /// Pretrain with a pretext task: MoSI (keys the config leaves out default to the MoSI
    /// recipe) or contrastive learning (PRETRAIN.GENERATOR: Contrastive).
    Pretrain(train::Pretrain),
    /// Fine-tune, or linear-probe with TRAIN.ONLY_LINEAR, from pretrained weights.
    Finetune(train::Finetune),
    /// Run N local ranks of a training command (torchrun's job, for users without it):
    /// `tada launch --nproc 2 -- pretrain --config F`.
    Launch(launch::Launch),
    /// Write MoSI pseudo-motion samples as GIF/PNG plus labels.json (built-in synthetic images).
    MosiPreview(mosi_preview::MosiPreview),
    /// Draw ParamCrop's two views over synthetic source clips; IoU and centre distance to crops.json.
    Crops(crops::Crops),
    /// Throughput benchmarks: the input pipeline a config trains on, and a training step.
    Bench {
        #[command(subcommand)]
        command: bench::Bench,
    },
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: data::Data,
    },
    /// Inspect configurations.
    Config {
        #[command(subcommand)]
        command: config::Config,
    },
    /// Convert an official PyTorch checkpoint (.pyth/.pth/.pt) to safetensors, without Python.
    ///
    /// Reads the reference's checkpoint dict (its model_state) or a bare state dict; the pickle
    /// may only name what rebuilds tensors, anything else is refused before it is read.
    Import(import::Import),
    /// Write a checkpoint's model weights alone, under the reference's state_dict names:
    /// `model.load_state_dict(safetensors.torch.load_file(OUT))` loads them in PyTorch.
    Export(export::Export),
    /// Pre-extract BMN's input: a model's pooled features every DATA.CLIP_INTERVAL frames of
    /// each video, written as 5-second clip files with their lists (docs/extract-features.md).
    ExtractFeatures(extract::ExtractFeatures),
    /// Print a shell completion script: `tada completions bash > /etc/bash_completion.d/tada`.
    Completions(completions::Completions),
}

impl Cli {
    /// How much to log, from `-v` / `-q`.
    /// Ranks other than 0 of a distributed run log warnings and errors only (rank 0 reports
    /// the run), unless -v asks for more.
    pub fn verbosity(&self) -> tada::logging::Verbosity {
        let other_rank = tada::dist::placement(|k| std::env::var(k).ok())
            .ok()
            .flatten()
            .is_some_and(|p| p.rank != 0);
        tada::logging::Verbosity::from_flags(
            self.verbose,
            self.quiet || (other_rank && self.verbose == 0),
        )
    }

    /// Runs the command; it prints its own results on stdout.
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Info(c) => c.run(),
            Command::Forward(c) => c.run(),
            Command::Test(c) => c.run(),
            Command::Localize(c) => c.run(),
            Command::Demo(c) => c.run(),
            Command::Pretrain(c) => c.run(),
            Command::Launch(c) => c.run(),
            Command::Finetune(c) => c.run(),
            Command::MosiPreview(c) => c.run(),
            Command::Crops(c) => c.run(),
            Command::Bench { command } => command.run(),
            Command::Data { command } => command.run(),
            Command::Config { command } => command.run(),
            Command::Import(c) => c.run(),
            Command::Export(c) => c.run(),
            Command::ExtractFeatures(c) => c.run(),
            Command::Completions(c) => c.run(),
        }
    }
}
