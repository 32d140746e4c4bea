//! [`ServeDir`](crate::ServeDir): files under a root directory, by request path, with what people
//! serve directories for: precompressed variants, index pages, listings, and a
//! fallback.
//!
//! Compared with tower-http's `ServeDir`, each feature is there
//! (`precompressed_br/gzip/zstd/deflate` are [`ServeDir::precompressed`](crate::ServeDir::precompressed),
//! `append_index_html_on_directories` is [`ServeDir::index`](crate::ServeDir::index), `fallback` and
//! `not_found_service` are [`ServeDir::fallback`](crate::ServeDir::fallback)), and under
//! [`RangeServeLayer`](crate::RangeServeLayer) precompressed variants get
//! ranges, `If-Range` and 304 on their own bytes.

pub(crate) mod cache;
mod encoding;
mod future;
mod listing;
mod lookup;
mod not_found;
mod open;
pub(crate) mod path;
pub(crate) mod service;

pub use self::cache::OpenFileCache;
pub use self::encoding::{Encoding, ParseEncodingError};
pub use self::future::ResponseFuture;
pub use self::not_found::NotFound;
