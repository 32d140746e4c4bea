//! The middleware: [`RangeServeLayer`], [`RangeServe`], and their future and body.

mod body;
mod future;
mod layer;
mod respond;
mod service;

pub use self::body::ResponseBody;
pub use self::future::ResponseFuture;
pub use self::layer::{RangeServeLayer, DEFAULT_MAX_RANGES};
pub use self::service::RangeServe;
