//! The middleware: [`RangeServeLayer`], [`RangeServe`], and their future and body.

mod body;
mod file_response;
mod future;
mod layer;
mod respond;
mod service;

pub use self::body::ResponseBody;
pub use self::file_response::FileResponse;
pub(crate) use self::file_response::{FileHeaders, Representation, SharedChecksums};
pub use self::future::ResponseFuture;
pub use self::layer::{DEFAULT_MAX_RANGES, RangeServeLayer};
pub use self::service::RangeServe;
