//! [`Segment`]: one piece of a planned body, bytes laid out up front or a range
//! of the representation.

use bytes::Bytes;

use super::ByteRange;

/// One piece of a planned body.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    /// Bytes known up front (multipart boundaries and part headers).
    Static(Bytes),
    /// A range of the source.
    Source(ByteRange),
}

impl Segment {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Segment::Static(bytes) => bytes.len() as u64,
            Segment::Source(range) => range.len(),
        }
    }
}
