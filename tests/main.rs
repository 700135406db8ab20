//! End-to-end tests, built as one binary so libtorch is linked once.

mod checkpoint;
mod cli;
mod common;
mod config;
mod linking;
mod logging;
mod ops_fixtures;
