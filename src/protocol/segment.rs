//! [`Segment`]: one piece of a planned body, bytes laid out up front or a range
//! of the representation; [`Segments`]: a body's plan of them.

use std::collections::VecDeque;

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

/// The segments of a body not started yet, in order. One segment (a whole
/// representation or a single range: most bodies) is held without allocating.
#[derive(Debug, Default)]
pub(crate) struct Segments {
    /// The next segment; when `None`, `rest` is empty too.
    first: Option<Segment>,
    rest: VecDeque<Segment>,
}

impl Segments {
    /// The next segment.
    pub(crate) fn front(&self) -> Option<&Segment> {
        self.first.as_ref()
    }

    /// Takes the next segment.
    pub(crate) fn pop_front(&mut self) -> Option<Segment> {
        let next = self.first.take();
        self.first = self.rest.pop_front();
        next
    }

    /// The bytes of all the segments.
    pub(crate) fn len(&self) -> u64 {
        self.first.iter().chain(&self.rest).map(Segment::len).sum()
    }
}

impl From<Segment> for Segments {
    fn from(segment: Segment) -> Self {
        Self {
            first: Some(segment),
            rest: VecDeque::new(),
        }
    }
}

impl From<Vec<Segment>> for Segments {
    fn from(segments: Vec<Segment>) -> Self {
        let mut rest = VecDeque::from(segments);
        Self {
            first: rest.pop_front(),
            rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_come_in_order() {
        let range = |start, end| Segment::Source(ByteRange { start, end });
        let mut segments = Segments::from(vec![
            Segment::Static(Bytes::from_static(b"ab")),
            range(0, 5),
            range(7, 8),
        ]);
        assert_eq!(segments.len(), 8);
        assert!(matches!(segments.front(), Some(Segment::Static(_))));
        assert!(matches!(segments.pop_front(), Some(Segment::Static(_))));
        assert!(matches!(segments.front(), Some(Segment::Source(r)) if r.start == 0));
        assert!(matches!(segments.pop_front(), Some(Segment::Source(r)) if r.start == 0));
        assert!(matches!(segments.pop_front(), Some(Segment::Source(r)) if r.start == 7));
        assert!(segments.pop_front().is_none());
        assert!(segments.front().is_none());
        assert_eq!(segments.len(), 0);

        let mut one = Segments::from(range(3, 4));
        assert_eq!(one.len(), 1);
        assert!(one.pop_front().is_some());
        assert!(one.pop_front().is_none());
        assert!(Segments::from(Vec::new()).front().is_none());
    }
}
