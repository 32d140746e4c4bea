//! The layout of a `multipart/byteranges` body (RFC 9110 §14.6).
//!
//! ```text
//! --BOUNDARY\r\n
//! Content-Type: text/plain\r\n
//! Content-Range: bytes 0-9/100\r\n
//! \r\n
//! <bytes 0-9>\r\n
//! --BOUNDARY\r\n
//! ...
//! <bytes 50-59>\r\n
//! --BOUNDARY--\r\n
//! ```
//!
//! Every boundary and part header is laid out before the first byte is sent, so the
//! exact `Content-Length` is known up front.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::BuildHasher;

use bytes::Bytes;
use http::HeaderValue;

use super::{ByteRange, Segment};

/// A planned multipart body: its `Content-Type` and its segments.
#[derive(Debug)]
pub(crate) struct Multipart {
    pub(crate) content_type: HeaderValue,
    pub(crate) segments: Vec<Segment>,
}

impl Multipart {
    /// Lays out the parts for `ranges` of a representation of `complete` bytes.
    pub(crate) fn new(
        ranges: &[ByteRange],
        complete: u64,
        part_type: Option<&HeaderValue>,
    ) -> Self {
        let boundary = boundary();
        let content_type =
            HeaderValue::try_from(format!("multipart/byteranges; boundary={boundary}"))
                .expect("a boundary of hex digits is a valid header value");

        let mut segments = Vec::with_capacity(ranges.len() * 2 + 1);
        for (i, range) in ranges.iter().enumerate() {
            let mut head = Vec::with_capacity(128);
            if i > 0 {
                head.extend_from_slice(b"\r\n");
            }
            head.extend_from_slice(b"--");
            head.extend_from_slice(boundary.as_bytes());
            head.extend_from_slice(b"\r\n");
            if let Some(part_type) = part_type {
                head.extend_from_slice(b"Content-Type: ");
                head.extend_from_slice(part_type.as_bytes());
                head.extend_from_slice(b"\r\n");
            }
            head.extend_from_slice(b"Content-Range: ");
            head.extend_from_slice(range.content_range(complete).as_bytes());
            head.extend_from_slice(b"\r\n\r\n");
            segments.push(Segment::Static(Bytes::from(head)));
            segments.push(Segment::Source(*range));
        }
        segments.push(Segment::Static(Bytes::from(format!(
            "\r\n--{boundary}--\r\n"
        ))));
        Self {
            content_type,
            segments,
        }
    }
}

/// A fresh 128-bit random boundary in hex.
fn boundary() -> String {
    let mut boundary = String::with_capacity(32);
    for _ in 0..2 {
        // Each `RandomState` has fresh random keys: hashing anything gives random bits.
        let bits = RandomState::new().hash_one(0u8);
        write!(boundary, "{bits:016x}").expect("writing to a String cannot fail");
    }
    boundary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_parts_with_headers_and_a_closing_boundary() {
        let ranges = [
            ByteRange { start: 0, end: 2 },
            ByteRange { start: 5, end: 7 },
        ];
        let part_type = HeaderValue::from_static("text/plain");
        let multipart = Multipart::new(&ranges, 10, Some(&part_type));
        let boundary = multipart
            .content_type
            .to_str()
            .unwrap()
            .strip_prefix("multipart/byteranges; boundary=")
            .unwrap()
            .to_owned();
        assert_eq!(boundary.len(), 32);

        let mut text = String::new();
        for segment in &multipart.segments {
            match segment {
                Segment::Static(bytes) => text.push_str(std::str::from_utf8(bytes).unwrap()),
                Segment::Source(range) => write!(text, "<{}..{}>", range.start, range.end).unwrap(),
            }
        }
        let expected = format!(
            "--{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n<0..2>\
             \r\n--{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n<5..7>\
             \r\n--{b}--\r\n",
            b = boundary
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn parts_have_no_content_type_when_the_representation_has_none() {
        let multipart = Multipart::new(&[ByteRange { start: 0, end: 1 }], 1, None);
        let Segment::Static(head) = &multipart.segments[0] else {
            panic!("first segment is a part header");
        };
        assert!(!head.windows(13).any(|w| w == b"Content-Type:"));
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(boundary(), boundary());
    }
}
