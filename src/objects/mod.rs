//! [`ServeObjects`]: the objects under a prefix of an object store (S3, GCS,
//! Azure Blob, R2, …), by request path, like [`ServeDir`](crate::ServeDir) serves
//! a folder.
//!
//! Needs the `object-store` feature. Each object is opened with one `HEAD` and
//! answered as a [`FileResponse`](crate::FileResponse) of an
//! [`ObjectSource`](crate::source::ObjectSource): its length, ETag, Last-Modified
//! and Content-Type feed the same decisions as a file's (ranges, `If-Range`, 304,
//! 412, 416) under [`RangeServeLayer`](crate::RangeServeLayer), and its bytes come
//! from one ranged `GET` per planned range, pinned to the version seen at opening.
//!
//! # Status codes
//!
//! | what happened | answer |
//! |---|---|
//! | method other than `GET` and `HEAD` | 405, `Allow: GET, HEAD` |
//! | a path that `ServeDir` refuses (`..`, backslash, NUL, drive prefix, invalid UTF-8), or `/` | 404 |
//! | no object at the key | 404 |
//! | the store did not answer the `HEAD` within [`open_timeout`](ServeObjects::open_timeout) (10 s by default), or failed with a timeout | 504 Gateway Timeout |
//! | the store could not be reached (connection refused, reset or aborted) | 503 Service Unavailable |
//! | any other store error (bad credentials, access denied, an invalid answer, a 5xx after the store client's retries) | 502 Bad Gateway |
//!
//! These are the answers before the response head. Once the head is sent, a store
//! error or an object overwritten mid-download ends the body with an error (the
//! connection is aborted), never a completed response with wrong bytes.

mod future;
mod service;

pub use self::future::ResponseFuture;
pub use self::service::ServeObjects;
