//! What a request path finds under the root: a file (or its precompressed
//! variant), a directory's index, redirect or listing, or nothing. Blocking I/O,
//! run on the blocking pool.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode, Uri};
use tokio::time::Instant;

use super::Encoding;
use super::cache::{Cache, Cached, OpenFileCache};
use super::listing::{self, Entry};
use super::open::{Opened, Wait, open_beneath};
use super::path::is_plain_name;
use crate::RangeBody;
use crate::protocol::accept::Candidates;
use crate::serve::{FileHeaders, FileResponse};
use crate::source::DEFAULT_CHUNK_SIZE;

/// The settings of a [`ServeDir`](crate::ServeDir).
#[derive(Debug, Clone)]
pub(super) struct Root {
    pub(super) path: PathBuf,
    pub(super) follow_symlinks: bool,
    /// Sidecar codings, in the server's order of preference.
    pub(super) precompressed: Vec<Encoding>,
    pub(super) index: Option<String>,
    pub(super) listing: bool,
    pub(super) show_hidden: bool,
    pub(super) cache_settings: OpenFileCache,
    /// Made anew whenever a setting changes (clones of one service share it).
    pub(super) cache: Option<Arc<Cache<Opened>>>,
}

/// A precompressed variant: its coding and its opened sidecar.
type Variant = (Encoding, Arc<Opened>);

/// What the lookup needs of the request.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) relative: PathBuf,
    /// The request's URI, for a redirect's `Location` and a listing's title.
    pub(super) uri: Uri,
    /// Whether the path ends with `/` (names a directory).
    pub(super) directory_form: bool,
    /// The precompressed codings (indices into `Root::precompressed`) the
    /// request could be sent, best first.
    pub(super) candidates: Candidates,
    pub(super) json: bool,
}

impl Target {
    /// The decoded request path, for a listing's title.
    fn display(&self) -> String {
        percent_encoding::percent_decode_str(self.uri.path())
            .decode_utf8_lossy()
            .into_owned()
    }

    /// Where a directory named without its slash redirects to: its last segment
    /// and a slash, relative (so it works under any prefix), query kept.
    fn location(&self) -> String {
        let segment = self.uri.path().rsplit('/').next().unwrap_or_default();
        match self.uri.query() {
            Some(query) => format!("{segment}/?{query}"),
            None => format!("{segment}/"),
        }
    }
}

impl Root {
    /// The answer for `target`, or `None` when it finds nothing (404, or the
    /// fallback's answer). Blocking: for the blocking pool.
    pub(super) fn lookup(&self, target: &Target) -> Option<Response<RangeBody>> {
        match self.find(target, Wait::Allowed) {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => None,
            Err(_) => Some(status(StatusCode::INTERNAL_SERVER_ERROR)),
        }
    }

    /// Like [`lookup`](Self::lookup), from cached data only, for the async
    /// thread: `Err(())` when it would have to wait for the disk (or list a
    /// directory), and the lookup must go to the blocking pool.
    pub(super) fn lookup_cached(&self, target: &Target) -> Result<Option<Response<RangeBody>>, ()> {
        match self.find(target, Wait::Never) {
            Ok(found) => Ok(found),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(()),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(_) => Ok(Some(status(StatusCode::INTERNAL_SERVER_ERROR))),
        }
    }

    fn find(&self, target: &Target, wait: Wait) -> io::Result<Option<Response<RangeBody>>> {
        let opened = self.open(&target.relative, wait)?;
        if opened.metadata.is_file() {
            return self.file(&target.relative, opened, target, wait).map(Some);
        }
        let index = match &self.index {
            Some(name) => {
                let relative = target.relative.join(name);
                found(self.open(&relative, wait))?
                    .filter(|index| index.metadata.is_file())
                    .map(|index| (relative, index))
            }
            None => None,
        };
        // A directory without its slash redirects only when the slash form
        // shows something: otherwise it is as missing as before.
        if !target.directory_form {
            return Ok((index.is_some() || self.listing).then(|| redirect(&target.location())));
        }
        if let Some((relative, index)) = index {
            return self.file(&relative, index, target, wait).map(Some);
        }
        if self.listing {
            if wait == Wait::Never {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return self.listing(&target.relative, &opened, target).map(Some);
        }
        Ok(None)
    }

    /// Opens what `relative` leads to (links followed): a regular file or a
    /// directory. The only place where paths are resolved: files, sidecars,
    /// indexes and listed entries all go through it. Unless links may lead
    /// anywhere, nothing outside the root is reached (see [`open_beneath`]);
    /// this assumes that clients cannot create links inside the root.
    ///
    /// Through the open-file cache when there is one: a path resolved less
    /// than its validity ago is not resolved again (see [`Cache`]).
    fn open(&self, relative: &Path, wait: Wait) -> io::Result<Arc<Opened>> {
        let (opened, _) = self.resolve(relative, wait)?;
        opened.ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// What `relative` leads to (`None`: nothing, or nothing a request may
    /// reach), and until when the open-file cache holds that answer (`None`
    /// without a cache). See [`open`](Self::open).
    fn resolve(
        &self,
        relative: &Path,
        wait: Wait,
    ) -> io::Result<(Option<Arc<Opened>>, Option<Instant>)> {
        let Some(cache) = &self.cache else {
            let opened = open_beneath(&self.path, relative, self.follow_symlinks, wait);
            return Ok((found(opened.map(Arc::new))?, None));
        };
        match cache.get(relative) {
            Cached::Found(opened, until) => return Ok((Some(opened), Some(until))),
            Cached::Missing(until) => return Ok((None, Some(until))),
            Cached::Unknown => {}
        }
        match open_beneath(&self.path, relative, self.follow_symlinks, wait) {
            Ok(mut opened) => {
                if let Some(budget) = cache.budget() {
                    opened.keep_within(budget);
                }
                let opened = Arc::new(opened);
                let until = cache.insert(relative, Some(opened.clone()));
                Ok((Some(opened), Some(until)))
            }
            Err(e) if is_not_found(&e) => Ok((None, Some(cache.insert(relative, None)))),
            Err(e) => Err(e),
        }
    }

    /// The file `opened` (found as `relative`), or the precompressed variant the
    /// request prefers.
    fn file(
        &self,
        relative: &Path,
        opened: Arc<Opened>,
        target: &Target,
        wait: Wait,
    ) -> io::Result<Response<RangeBody>> {
        let (Some(source), Some(headers)) = (opened.source(), opened.headers()) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let (chosen, varies) = self.variant(relative, &opened, target, wait)?;
        let mut response = match chosen {
            Some((encoding, sidecar)) => variant_response(encoding, &sidecar, headers)?,
            None => FileResponse::from_shared_file(source.clone(), headers)
                .shared_checksums(opened.checksums())
                .into_response(),
        };
        if varies {
            // RFC 9110 §12.5.5: the answer depends on Accept-Encoding, for
            // the identity response too.
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        Ok(response)
    }

    /// The precompressed variant of `relative` to send (opened), and whether
    /// the response varies with `Accept-Encoding`.
    ///
    /// Only what the request could get is looked for: the codings it accepts
    /// (at least as much as the identity), best first, up to the first that
    /// exists. A request that accepts none of them looks for nothing, and its
    /// identity response says it varies (without knowing whether this file
    /// has variants, as nginx's `gzip_vary` does). One that accepts some and
    /// finds none looks for the others too, so that a file without any
    /// variant does not vary.
    fn variant(
        &self,
        relative: &Path,
        original: &Opened,
        target: &Target,
        wait: Wait,
    ) -> io::Result<(Option<Variant>, bool)> {
        if self.precompressed.is_empty() {
            return Ok((None, false));
        }
        let candidates = target.candidates;
        if candidates.is_empty() {
            return Ok((None, true));
        }
        for i in candidates.iter() {
            let encoding = self.precompressed[i];
            if let Some(sidecar) = self.sidecar(relative, original, encoding, wait)? {
                return Ok((Some((encoding, sidecar)), true));
            }
        }
        for (i, &encoding) in self.precompressed.iter().enumerate() {
            if !candidates.contains(i)
                && self.sidecar(relative, original, encoding, wait)?.is_some()
            {
                return Ok((None, true));
            }
        }
        Ok((None, false))
    }

    /// The sidecar of `relative` (opened as `original`) in `encoding`, if it
    /// exists (a regular file, inside the root unless links may lead
    /// anywhere), opened. The cache's answer is remembered beside the original
    /// for as long as the cache holds it (see [`Sidecars`](super::cache::Sidecars)).
    fn sidecar(
        &self,
        relative: &Path,
        original: &Opened,
        encoding: Encoding,
        wait: Wait,
    ) -> io::Result<Option<Arc<Opened>>> {
        if self.cache.is_some() {
            if let Some(known) = original.sidecars.get(encoding, Instant::now()) {
                return Ok(known);
            }
        }
        if relative.file_name().is_none() {
            return Ok(None);
        }
        let extension = encoding.extension();
        let mut sidecar = OsString::with_capacity(relative.as_os_str().len() + 1 + extension.len());
        sidecar.push(relative);
        sidecar.push(".");
        sidecar.push(extension);
        let (opened, until) = self.resolve(Path::new(&sidecar), wait)?;
        let opened = opened.filter(|opened| opened.source().is_some());
        if let Some(until) = until {
            original.sidecars.remember(encoding, opened.as_ref(), until);
        }
        Ok(opened)
    }

    /// The listing of the directory `opened` (found as `relative`).
    fn listing(
        &self,
        relative: &Path,
        opened: &Opened,
        target: &Target,
    ) -> io::Result<Response<RangeBody>> {
        let follow = self.follow_symlinks;
        let mut entries = Vec::new();
        for entry in read_dir(opened)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: no request path can name it
            };
            if name.starts_with('.') && !self.show_hidden {
                continue;
            }
            // Only names a request can reach, and that resolve like a request
            // would (a link out of the root is left out, like a request for it
            // gets 404).
            if !is_plain_name(&name) {
                continue;
            }
            // Not through the cache: a listing would fill it with descriptors.
            let Ok(Opened { metadata, .. }) =
                open_beneath(&self.path, &relative.join(&name), follow, Wait::Allowed)
            else {
                continue;
            };
            if !metadata.is_file() && !metadata.is_dir() {
                continue;
            }
            entries.push(Entry {
                is_dir: metadata.is_dir(),
                is_symlink: entry.file_type().is_ok_and(|t| t.is_symlink()),
                size: if metadata.is_file() {
                    metadata.len()
                } else {
                    0
                },
                modified: metadata.modified().ok(),
                name,
            });
        }
        listing::sort(&mut entries);
        let (body, content_type) = if target.json {
            (listing::json(&entries), "application/json")
        } else {
            let parent = relative.components().next().is_some();
            (
                listing::html(&target.display(), parent, &entries),
                "text/html; charset=utf-8",
            )
        };
        let len = body.len();
        let mut response = Response::new(RangeBody::full(
            Arc::new(Bytes::from(body)),
            DEFAULT_CHUNK_SIZE,
        ));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        // A listing changes with the directory and has no validators: revalidate.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::VARY, HeaderValue::from_static("accept"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        Ok(response)
    }
}

/// The precompressed variant `sidecar` of the file whose headers are
/// `original`: typed after the original, with an `ETag`, a `Last-Modified` and
/// checksum files of its own (`NAME.br.sha256`: a digest is that of the bytes
/// sent).
fn variant_response(
    encoding: Encoding,
    sidecar: &Opened,
    original: &FileHeaders,
) -> io::Result<Response<RangeBody>> {
    let (Some(source), Some(headers)) = (
        sidecar.source(),
        sidecar.variant_headers(|own| variant_headers(encoding, own, original)),
    ) else {
        return Err(io::ErrorKind::NotFound.into());
    };
    Ok(FileResponse::from_shared_file(source.clone(), headers)
        .shared_checksums(sidecar.checksums())
        .content_encoding(HeaderValue::from_static(encoding.name()))
        .into_response())
}

/// The headers of a sidecar whose own are `own`, sent as the `encoding`
/// variant of the file whose headers are `original`.
fn variant_headers(encoding: Encoding, own: &FileHeaders, original: &FileHeaders) -> FileHeaders {
    // The sidecar's own length and time, and the coding's name: never the
    // identity file's tag, even for a sidecar with the same length and time.
    let etag = own.etag.as_ref().and_then(|etag| {
        let tag = etag.to_str().ok()?.strip_suffix('"')?;
        HeaderValue::try_from(format!("{tag}-{}\"", encoding.name())).ok()
    });
    FileHeaders {
        content_length: own.content_length.clone(),
        content_type: original.content_type.clone(),
        etag,
        last_modified: own.last_modified.clone(),
    }
}

/// A redirect to the directory's slash form (308: permanent, and the method
/// stays, so a `HEAD` stays a `HEAD`).
fn redirect(location: &str) -> Response<RangeBody> {
    let mut response = status(StatusCode::PERMANENT_REDIRECT);
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The entries of the directory `opened`: read through its descriptor on Linux
/// (the directory that was checked, not whatever its path names now).
fn read_dir(opened: &Opened) -> io::Result<std::fs::ReadDir> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;

        use super::open::Handle;
        let Handle::Dir(dir) = &opened.handle else {
            return Err(io::ErrorKind::NotADirectory.into());
        };
        let fd = dir.as_raw_fd();
        std::fs::read_dir(format!("/proc/self/fd/{fd}"))
            .or_else(|_| std::fs::read_dir(&opened.path))
    }
    #[cfg(not(target_os = "linux"))]
    std::fs::read_dir(&opened.path)
}

/// `Ok(None)` for what is missing (or may not be reached), the error otherwise
/// (a lookup that would wait must not conclude that a sidecar is missing).
fn found(opened: io::Result<Arc<Opened>>) -> io::Result<Option<Arc<Opened>>> {
    match opened {
        Ok(opened) => Ok(Some(opened)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn is_not_found(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::InvalidFilename
    )
}

/// An empty response with `status`.
pub(super) fn status(status: StatusCode) -> Response<RangeBody> {
    let mut response = Response::new(RangeBody::empty());
    *response.status_mut() = status;
    response
}
