//! Contrastive pretraining pieces: the InfoNCE losses and the two-view pipeline (random cubic
//! crops or ParamCrop). The task that wires them to a model is `train::contrastive_task`.

pub mod loss;
pub mod views;
