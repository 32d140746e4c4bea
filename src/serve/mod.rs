//! The middleware: [`RangeServeLayer`], [`RangeServe`], their future and bodies
//! ([`ResponseBody`], and [`RangeBody`] with its frame loop: throttle, ramp,
//! tracker), joining the protocol, the source, the throttle and the lifecycle.

mod body;
mod file_response;
mod future;
mod layer;
#[cfg(feature = "object-store")]
mod object_headers;
mod pace;
mod quota;
mod ramp;
mod range_body;
mod respond;
mod service;

pub use self::body::ResponseBody;
pub use self::file_response::FileResponse;
pub(crate) use self::file_response::{FileHeaders, Representation, SharedChecksums};
pub use self::future::ResponseFuture;
pub use self::layer::{DEFAULT_MAX_RANGES, RangeServeLayer};
pub use self::range_body::RangeBody;
pub use self::service::RangeServe;
