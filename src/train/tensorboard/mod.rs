//! placeholder until the event writer lands
pub struct EventWriter;
