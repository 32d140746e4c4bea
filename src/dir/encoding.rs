//! [`Encoding`]: the content codings of precompressed sidecar files.

use std::fmt;
use std::str::FromStr;

/// A content coding (RFC 9110 §8.4.1) that [`ServeDir`](crate::ServeDir) finds
/// precompressed beside a file: `NAME.br`, `NAME.zst`, `NAME.gz` or `NAME.zz`
/// (the extensions tower-http, nginx and Caddy look for).
///
/// ```
/// use tower_range_serve::dir::Encoding;
///
/// let encoding: Encoding = "zstd".parse().unwrap();
/// assert_eq!(encoding, Encoding::Zstd);
/// assert_eq!(encoding.name(), "zstd");
/// assert_eq!(encoding.extension(), "zst");
/// assert!("lzma".parse::<Encoding>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// Brotli (`br`, RFC 7932), in `NAME.br`.
    Brotli,
    /// Zstandard (`zstd`, RFC 8878), in `NAME.zst`.
    Zstd,
    /// Gzip (`gzip`, RFC 1952), in `NAME.gz`.
    Gzip,
    /// Zlib (`deflate`, RFC 1950), in `NAME.zz`.
    Deflate,
}

impl Encoding {
    /// Every coding, in the order [`ServeDir::precompressed`](crate::ServeDir::precompressed)
    /// prefers them when given all: smallest output first.
    ///
    /// ```
    /// use tower_range_serve::dir::Encoding;
    ///
    /// assert_eq!(Encoding::ALL[0], Encoding::Brotli);
    /// ```
    pub const ALL: [Encoding; 4] = [Self::Brotli, Self::Zstd, Self::Gzip, Self::Deflate];

    /// The coding's name in `Accept-Encoding` and `Content-Encoding`.
    ///
    /// ```
    /// use tower_range_serve::dir::Encoding;
    ///
    /// assert_eq!(Encoding::Brotli.name(), "br");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }

    /// Its place in [`ALL`](Self::ALL) (declared in that order).
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The extension of its sidecar files, without the dot.
    ///
    /// ```
    /// use tower_range_serve::dir::Encoding;
    ///
    /// assert_eq!(Encoding::Gzip.extension(), "gz");
    /// ```
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Zstd => "zst",
            Self::Gzip => "gz",
            Self::Deflate => "zz",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an [`Encoding`] from a name that is none of them.
///
/// ```
/// use tower_range_serve::dir::Encoding;
///
/// let error = "lzma".parse::<Encoding>().unwrap_err();
/// assert_eq!(error.to_string(), "unknown content coding (expected br, zstd, gzip or deflate)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseEncodingError;

impl fmt::Display for ParseEncodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown content coding (expected br, zstd, gzip or deflate)")
    }
}

impl std::error::Error for ParseEncodingError {}

impl FromStr for Encoding {
    type Err = ParseEncodingError;

    /// Parses a coding name (`br`, `zstd`, `gzip`, `deflate`), ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|encoding| encoding.name().eq_ignore_ascii_case(s.trim()))
            .ok_or(ParseEncodingError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_coding_is_at_its_index_in_all() {
        for (i, encoding) in Encoding::ALL.into_iter().enumerate() {
            assert_eq!(encoding.index(), i, "{encoding}");
        }
    }
}
