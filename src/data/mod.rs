//! Data sources. The datasets, video decoding and the parallel loader arrive with the data
//! issue; the synthetic image source is here already so MoSI tools run with no data on disk.

pub mod synthetic;
