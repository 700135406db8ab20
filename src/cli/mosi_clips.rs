//! How many clips one MoSINet input item holds, which the model's summary and the step
//! benchmark need to shape their input (kept here until the library offers it).

use anyhow::Result;

/// K, the number of clips per MoSINet input item, or None for other models.
pub fn mosi_clips(cfg: &tada::config::Config) -> Result<Option<i64>> {
    if cfg.model.name != tada::models::video_model::MOSI_NET {
        return Ok(None);
    }
    let speeds = tada::ssl::mosi::speed_config(cfg)?;
    Ok(Some(
        tada_augment::mosi::SpeedSet::new(&speeds)?.len() as i64
    ))
}
