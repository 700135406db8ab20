//! The loader's sample sources, named by what they make: [`video_clips`] (labelled clips of a
//! dataset's videos), [`epic_clips`] (EPIC-Kitchens segments labelled verb and noun), [`mosi_images`] (MoSI pseudo-motion samples from still images),
//! [`synthetic_images`] and [`synthetic_videos`] (embedded data, so every command runs with
//! nothing on disk). `data::pipeline` picks one per split.

pub mod epic_clips;
pub mod epic_synthetic;
pub mod mosi_images;
pub mod synthetic_images;
pub mod synthetic_videos;
pub mod tal_windows;
pub mod video_clips;
