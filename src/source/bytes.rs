//! In-memory representations.

use std::io;
use std::sync::Arc;

use bytes::Bytes;

use super::{RangeSource, ReadFuture};

/// Serves a `Bytes` by range without copying: each chunk is a slice of it.
impl RangeSource for Bytes {
    fn len(&self) -> u64 {
        Bytes::len(self) as u64
    }

    fn read_at(self: Arc<Self>, offset: u64, len: usize) -> ReadFuture {
        Box::pin(std::future::ready(slice(&self, offset, len)))
    }

    fn read_now(&self, offset: u64, len: usize) -> Option<io::Result<Bytes>> {
        Some(slice(self, offset, len))
    }
}

/// The `len` bytes of `bytes` from `offset` (no copy), or an error past the end.
pub(super) fn slice(bytes: &Bytes, offset: u64, len: usize) -> io::Result<Bytes> {
    usize::try_from(offset)
        .ok()
        .and_then(|start| Some(start..start.checked_add(len)?))
        .filter(|range| range.end <= bytes.len())
        .map(|range| bytes.slice(range))
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_slice() {
        let source = Arc::new(Bytes::from_static(b"hello world"));
        assert_eq!(source.clone().read_at(6, 5).await.unwrap(), "world");
        assert_eq!(source.read_now(0, 5).unwrap().unwrap(), "hello");
        assert_eq!(RangeSource::len(&*source), 11);
    }

    #[tokio::test]
    async fn reading_past_the_end_is_an_error() {
        let source = Arc::new(Bytes::from_static(b"hello"));
        let err = source.clone().read_at(3, 5).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(source.read_now(3, 5).unwrap().is_err());
        assert!(source.read_at(u64::MAX, 1).await.is_err());
    }
}
