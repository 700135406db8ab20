//! `tada demo`: pretraining and two linear probes on embedded data, printed as a table.

use std::path::PathBuf;

use anyhow::Result;
use tada::runs::demo::{DemoOptions, DemoPretext, DemoReport};

#[derive(clap::Args)]
pub struct Demo {
    /// Folder for the three runs.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "runs/demo"
    )]
    output: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The pretraining: MoSI on synthetic images, or SimCLR with ParamCrop views on
    /// synthetic videos.
    #[arg(long, value_enum, default_value_t = PretextArg::Mosi)]
    pretext: PretextArg,
    /// `pretrain`: pretraining and two linear probes; `localization`: BMN trained and tested
    /// on tiny-tal (an embedded EPIC-format localisation set), its AR@100 beside random
    /// proposals'.
    #[arg(long, value_enum, default_value_t = TaskArg::Pretrain)]
    task: TaskArg,
}

/// `--task`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TaskArg {
    Pretrain,
    Localization,
}

/// `--pretext`: the library's [`DemoPretext`] as clap spells its values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PretextArg {
    Mosi,
    Contrastive,
}

impl From<PretextArg> for DemoPretext {
    fn from(p: PretextArg) -> Self {
        match p {
            PretextArg::Mosi => Self::Mosi,
            PretextArg::Contrastive => Self::Contrastive,
        }
    }
}

impl Demo {
    pub fn run(self) -> Result<()> {
        if self.task == TaskArg::Localization {
            let r = tada::runs::localize::demo::demo(&self.output, self.seed)?;
            print_localization(&r);
            return Ok(());
        }
        let opts = DemoOptions {
            output: self.output,
            seed: self.seed,
            pretext: self.pretext.into(),
        };
        print_table(&tada::runs::demo::demo(&opts)?);
        Ok(())
    }
}

/// The results as a Markdown table, then one summary line.
fn print_table(r: &DemoReport) {
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

/// The localisation demo's results as a Markdown table, then one summary line.
fn print_localization(r: &tada::runs::localize::demo::LocalizationDemo) {
    println!("| proposals (tiny-tal validation) | AR@100 | AUC | action mAP |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| uniform random, 100 per video | {:.1}% | {:.1} | |",
        100.0 * r.uniform_ar100,
        r.uniform_auc
    );
    println!(
        "| BMN ({:.1} s of training) | {:.1}% | {:.1} | {:.1}% |",
        r.train_seconds,
        100.0 * r.ar100,
        r.auc,
        100.0 * r.action_map
    );
    println!(
        "AR@100 (tIoU 0.5:0.95): uniform {:.1}% | BMN {:.1}% ({:.1} s in all{})",
        100.0 * r.uniform_ar100,
        100.0 * r.ar100,
        r.total_seconds,
        r.metrics_file
            .as_ref()
            .map_or(String::new(), |f| format!("; metrics in {}", f.display()))
    );
}
