//! Networks: the TAdaConv operators now; backbones and heads build on them.

pub mod ops;
