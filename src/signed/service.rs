use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Request, Response};
use tower_service::Service;

use super::claims::unix_seconds;
use super::verify::{self, verify};
use super::{ResponseFuture, SignedLinksLayer};
use crate::dir::path::canonical_path;
use crate::throttle::Restriction;

/// Middleware that lets through only requests with a valid signed link, with
/// the link's claims as their [`Restriction`].
///
/// Made by [`SignedLinksLayer`]; see the [module documentation](super).
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_range_serve::signed::{Claims, SignedLinksLayer, SigningKey};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let key = SigningKey::new("k1", [7u8; 32]).unwrap();
/// let inner = service_fn(|_req: Request<()>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("file"))))
/// });
/// let service = SignedLinksLayer::new(key.clone()).layer(inner);
///
/// let link = key.sign("/a.txt", &Claims::expiring_in(Duration::from_secs(60))).unwrap();
/// let ok = service.clone().oneshot(Request::get(link.to_string()).body(()).unwrap()).await.unwrap();
/// assert_eq!(ok.status(), StatusCode::OK);
/// let other = format!("/b.txt?{}", link.query());
/// let refused = service.oneshot(Request::get(other).body(()).unwrap()).await.unwrap();
/// assert_eq!(refused.status(), StatusCode::FORBIDDEN);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct SignedLinks<S> {
    inner: S,
    layer: SignedLinksLayer,
}

impl<S> SignedLinks<S> {
    pub(crate) fn from_layer(inner: S, layer: SignedLinksLayer) -> Self {
        Self { inner, layer }
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SignedLinks<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<super::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let path = canonical_path(parts.uri.path());
        let verdict = verify(
            &self.layer.keys,
            verify::Request {
                path: path.as_deref(),
                query: parts.uri.query(),
                now: unix_seconds(SystemTime::now()),
                skew: self.layer.clock_skew.as_secs(),
                peer: (self.layer.client_ip)(&parts),
            },
        );
        match verdict {
            Ok(restriction) => {
                let restriction = match parts.extensions.remove::<Restriction>() {
                    Some(outer) => outer.and(restriction),
                    None => restriction,
                };
                parts.extensions.insert(restriction);
                ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
            }
            Err(refusal) => ResponseFuture::refused(refusal),
        }
    }
}
