//! The `tada` command line. It only parses arguments and calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

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

#[derive(Subcommand)]
enum Command {
    /// Versions, libtorch, CUDA devices, cuDNN and threads.
    Info,
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
        Command::Info => print!("{}", tada::info::Info::collect()),
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
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the context chain joined, innermost cause last.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
