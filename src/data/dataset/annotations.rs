//! Placeholder: the annotation readers are being written (UCF101, HMDB51, Kinetics-400, SSv2,
//! image lists).
