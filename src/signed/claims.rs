//! [`Claims`]: what a link allows, and [`IpPrefix`], the addresses it is for.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Bandwidth;

/// What a signed link allows: until when, from when, from where, and the
/// policy its downloads get.
///
/// Rates and the stream cap can only lower what the route allows; the client
/// sets whose client limits the downloads share (see
/// [`Restriction`](crate::throttle::Restriction)). Times are whole seconds
/// (sub-second parts are dropped).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_range_serve::Bandwidth;
/// use tower_range_serve::signed::Claims;
///
/// let claims = Claims::expiring_in(Duration::from_secs(3600))
///     .client("user-42")
///     .client_rate(Bandwidth::mib(2))
///     .ip("203.0.113.0/24".parse().unwrap());
/// assert_eq!(claims.client_rate, Bandwidth::mib(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// The last moment the link is valid (`exp`).
    pub expires: SystemTime,
    /// The first moment the link is valid (`nbf`); `None`: at once.
    pub not_before: Option<SystemTime>,
    /// The client addresses it is valid for (`ip`); `None`: any.
    pub ip: Option<IpPrefix>,
    /// The client key its downloads count under (`sub`); `None`: the route's.
    pub client: Option<String>,
    /// The rate all downloads of the client share (`crate`).
    pub client_rate: Bandwidth,
    /// The rate of each download (`rate`).
    pub rate: Bandwidth,
    /// The most downloads the client may run at once (`streams`).
    pub max_streams: Option<usize>,
}

impl Claims {
    /// A link valid until `expires`, with no other claim.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_range_serve::signed::Claims;
    ///
    /// let claims = Claims::expiring_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    /// assert_eq!(claims.not_before, None);
    /// ```
    #[must_use]
    pub fn expiring_at(expires: SystemTime) -> Self {
        Self {
            expires,
            not_before: None,
            ip: None,
            client: None,
            client_rate: Bandwidth::UNLIMITED,
            rate: Bandwidth::UNLIMITED,
            max_streams: None,
        }
    }

    /// A link valid for `duration` from now.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_range_serve::signed::Claims;
    ///
    /// let claims = Claims::expiring_in(Duration::from_secs(60));
    /// assert!(claims.expires > SystemTime::now());
    /// ```
    #[must_use]
    pub fn expiring_in(duration: Duration) -> Self {
        Self::expiring_at(SystemTime::now() + duration)
    }

    /// Not valid before `time`.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_range_serve::signed::Claims;
    ///
    /// let start = SystemTime::now() + Duration::from_secs(60);
    /// let claims = Claims::expiring_in(Duration::from_secs(120)).not_before(start);
    /// assert_eq!(claims.not_before, Some(start));
    /// ```
    #[must_use]
    pub fn not_before(mut self, time: SystemTime) -> Self {
        self.not_before = Some(time);
        self
    }

    /// Valid only for clients whose address is in `prefix`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::signed::Claims;
    ///
    /// let claims = Claims::expiring_in(Duration::from_secs(60)).ip("192.0.2.7".parse().unwrap());
    /// assert_eq!(claims.ip.unwrap().to_string(), "192.0.2.7");
    /// ```
    #[must_use]
    pub fn ip(mut self, prefix: IpPrefix) -> Self {
        self.ip = Some(prefix);
        self
    }

    /// The downloads count under this client key (the user).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::signed::Claims;
    ///
    /// let claims = Claims::expiring_in(Duration::from_secs(60)).client("user-42");
    /// assert_eq!(claims.client.as_deref(), Some("user-42"));
    /// ```
    #[must_use]
    pub fn client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }

    /// The rate all downloads of the client share, at most.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::{signed::Claims, Bandwidth};
    ///
    /// let claims = Claims::expiring_in(Duration::from_secs(60)).client_rate(Bandwidth::mib(2));
    /// assert_eq!(claims.client_rate, Bandwidth::mib(2));
    /// ```
    #[must_use]
    pub fn client_rate(mut self, rate: Bandwidth) -> Self {
        self.client_rate = rate;
        self
    }

    /// The rate of each download, at most.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::{signed::Claims, Bandwidth};
    ///
    /// let claims = Claims::expiring_in(Duration::from_secs(60)).rate(Bandwidth::kib(512));
    /// assert_eq!(claims.rate, Bandwidth::kib(512));
    /// ```
    #[must_use]
    pub fn rate(mut self, rate: Bandwidth) -> Self {
        self.rate = rate;
        self
    }

    /// The most downloads the client may run at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_range_serve::signed::Claims;
    ///
    /// let claims = Claims::expiring_in(Duration::from_secs(60)).max_streams(2);
    /// assert_eq!(claims.max_streams, Some(2));
    /// ```
    #[must_use]
    pub fn max_streams(mut self, max: usize) -> Self {
        self.max_streams = Some(max);
        self
    }
}

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An IP address or a prefix of addresses (`192.0.2.7`, `203.0.113.0/24`,
/// `2001:db8::/32`). Bits beyond the prefix are ignored when matching; an
/// IPv4-mapped IPv6 client address (`::ffff:192.0.2.7`) matches as its IPv4
/// address.
///
/// ```
/// use tower_range_serve::signed::IpPrefix;
///
/// let prefix: IpPrefix = "203.0.113.0/24".parse().unwrap();
/// assert!(prefix.contains("203.0.113.99".parse().unwrap()));
/// assert!(prefix.contains("::ffff:203.0.113.1".parse().unwrap()));
/// assert!(!prefix.contains("203.0.114.1".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<IpPrefix>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// Whether `ip` is in the prefix.
    ///
    /// ```
    /// use tower_range_serve::signed::IpPrefix;
    ///
    /// let one: IpPrefix = "2001:db8::1".parse().unwrap();
    /// assert!(one.contains("2001:db8::1".parse().unwrap()));
    /// assert!(!one.contains("2001:db8::2".parse().unwrap()));
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(a.to_bits().into(), b.to_bits().into(), 32, self.len)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => masked(a.to_bits(), b.to_bits(), 128, self.len),
            _ => false,
        }
    }
}

/// Whether the first `len` of `width` bits of `a` and `b` agree.
fn masked(a: u128, b: u128, width: u8, len: u8) -> bool {
    let shift = u32::from(width - len);
    len == 0 || (a ^ b).checked_shr(shift).unwrap_or(0) == 0
}

impl From<IpAddr> for IpPrefix {
    fn from(addr: IpAddr) -> Self {
        let addr = addr.to_canonical();
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }
}

impl FromStr for IpPrefix {
    type Err = ParseIpPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
        let addr: IpAddr = addr.parse().map_err(|_| ParseIpPrefixError(()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse().map_err(|_| ParseIpPrefixError(()))?
            }
            Some(_) => return Err(ParseIpPrefixError(())),
        };
        if len > max {
            return Err(ParseIpPrefixError(()));
        }
        Ok(Self { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// The error of parsing an [`IpPrefix`].
///
/// ```
/// use tower_range_serve::signed::IpPrefix;
///
/// let err = "example.org".parse::<IpPrefix>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid IP address or prefix");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIpPrefixError(());

impl fmt::Display for ParseIpPrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid IP address or prefix")
    }
}

impl std::error::Error for ParseIpPrefixError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(prefix: &str, ip: &str) -> bool {
        prefix
            .parse::<IpPrefix>()
            .unwrap()
            .contains(ip.parse().unwrap())
    }

    #[test]
    fn prefixes_match_their_addresses_only() {
        assert!(contains("0.0.0.0/0", "198.51.100.1"));
        assert!(!contains("0.0.0.0/0", "2001:db8::1"));
        assert!(contains("10.1.0.0/16", "10.1.255.255"));
        assert!(!contains("10.1.0.0/16", "10.2.0.0"));
        assert!(contains("10.1.2.3/8", "10.200.0.0"));
        assert!(contains("2001:db8::/32", "2001:db8:ffff::1"));
        assert!(!contains("2001:db8::/32", "2001:db9::1"));
        assert!(contains("::/0", "::1"));
        assert!(!contains("127.0.0.1", "::1"));
    }

    #[test]
    fn prefixes_display_as_parsed() {
        for text in ["192.0.2.7", "203.0.113.0/24", "2001:db8::/32", "::1"] {
            assert_eq!(text.parse::<IpPrefix>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
            "::/129",
            "a",
        ] {
            assert!(bad.parse::<IpPrefix>().is_err(), "{bad}");
        }
    }
}
