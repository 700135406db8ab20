//! Training views for tada: MoSI pseudo-motion, clip transforms, ParamCrop and crop
//! visualisation. Filled in by the augment issue; the crate exists so the workspace layout is
//! fixed from the start.
