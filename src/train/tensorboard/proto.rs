//! Hand-written prost messages for the subset of TensorFlow's
//! `tensorboard/compat/proto/event.proto` and `summary.proto` that this
//! module writes and reads.
//!
//! Field numbers are the wire format and must match the upstream protos
//! exactly; names and nesting follow what `prost-build` would generate so the
//! types read the same as generated code. Fields and oneof variants left out
//! here (graphs, histograms, audio, tensors, metadata, ...) are skipped by the
//! decoder, so files from other writers still decode.

/// One record of an event file (`tensorflow.Event`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global training step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// Payload; `None` for payload kinds not modelled here.
    #[prost(oneof = "event::What", tags = "3, 5")]
    pub what: Option<event::What>,
}

/// Nested types of [`Event`].
pub mod event {
    /// The `oneof what` of `Event`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// File header, always `"brain.Event:2"` for current files.
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// A set of tagged values.
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

/// A set of tagged values (`tensorflow.Summary`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

/// Nested types of [`Summary`].
pub mod summary {
    /// One tagged value (`tensorflow.Summary.Value`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        /// Series name, e.g. `loss/train`.
        #[prost(string, tag = "1")]
        pub tag: String,
        /// The value; `None` for value kinds not modelled here.
        #[prost(oneof = "value::Value", tags = "2, 4")]
        pub value: Option<value::Value>,
    }

    /// Nested types of [`Value`].
    pub mod value {
        /// The `oneof value` of `Summary.Value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// A scalar.
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            /// An encoded image.
            #[prost(message, tag = "4")]
            Image(super::Image),
        }
    }

    /// An encoded image (`tensorflow.Summary.Image`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        /// Number of rows.
        #[prost(int32, tag = "1")]
        pub height: i32,
        /// Number of columns.
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 grayscale, 2 grayscale+alpha, 3 RGB, 4 RGBA, 5 YUV, 6 BGRA.
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        /// Encoded image bytes (PNG here).
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Hand-assembled wire bytes pin the field numbers and wire types, so a
    /// typo in a `tag = "..."` attribute cannot round-trip unnoticed.
    #[test]
    fn wire_format_matches_upstream_field_numbers() {
        let ev = Event {
            wall_time: 0.0,
            step: 7,
            what: Some(event::What::Summary(Summary {
                value: vec![summary::Value {
                    tag: "a".into(),
                    value: Some(summary::value::Value::Image(summary::Image {
                        height: 2,
                        width: 3,
                        colorspace: 3,
                        encoded_image_string: vec![0xAB],
                    })),
                }],
            })),
        };
        let image = [0x08, 2, 0x10, 3, 0x18, 3, 0x22, 1, 0xAB];
        let mut value = vec![0x0A, 1, b'a', 0x22, image.len() as u8];
        value.extend_from_slice(&image);
        let mut summary = vec![0x0A, value.len() as u8];
        summary.extend_from_slice(&value);
        let mut expected = vec![0x10, 7, 0x2A, summary.len() as u8];
        expected.extend_from_slice(&summary);
        assert_eq!(ev.encode_to_vec(), expected);

        let header = Event {
            wall_time: 1.5,
            step: 0,
            what: Some(event::What::FileVersion("v".into())),
        };
        let mut expected = vec![0x09];
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x1A, 1, b'v']);
        assert_eq!(header.encode_to_vec(), expected);

        let scalar = summary::Value {
            tag: String::new(),
            value: Some(summary::value::Value::SimpleValue(1.0)),
        };
        let mut expected = vec![0x15];
        expected.extend_from_slice(&1.0f32.to_le_bytes());
        assert_eq!(scalar.encode_to_vec(), expected);
    }
}
