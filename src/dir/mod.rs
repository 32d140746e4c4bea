//! [`ServeDir`]: files under a root directory, by request path.

mod future;
pub(crate) mod path;
mod service;

pub use self::future::ResponseFuture;
pub use self::service::ServeDir;
