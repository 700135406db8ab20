//! Contrastive pretraining: two views cut from every source clip (random cubic crops, or
//! ParamCrop's learned crops behind a gradient-reversal layer) and an InfoNCE loss that pulls
//! the views of one video together — SimCLR (one encoder) or MoCo v2 (a momentum key encoder
//! and a queue). This folder owns the task, both frameworks, the adversarial crop, the losses,
//! the view pipeline and `tada crops`.

pub mod crops;
pub mod curriculum;
mod embedding;
pub mod loss;
pub mod moco;
pub mod paramcrop;
mod simclr;
pub mod task;
pub mod views;

pub use task::ContrastiveTask;
