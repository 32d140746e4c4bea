//! [`Bandwidth`]: a rate in bytes per second, parsed from human strings.

use std::fmt;
use std::str::FromStr;

/// A rate in bytes per second; zero means unlimited.
///
/// Parsed from plain integers (bytes per second) or a number with a unit: decimal
/// `KB`/`MB`/`GB` (powers of 1000) or binary `KiB`/`MiB`/`GiB` (powers of 1024),
/// case-insensitive, with an optional `/s`; `K`, `M` and `G` alone are binary, as in
/// nginx and curl. `0` and `unlimited` mean no limit.
///
/// # Example
///
/// ```
/// use tower_range_serve::Bandwidth;
///
/// assert_eq!("256KiB".parse::<Bandwidth>().unwrap(), Bandwidth::kib(256));
/// assert_eq!("10MB/s".parse::<Bandwidth>().unwrap().bytes_per_second(), 10_000_000);
/// assert_eq!("1.5 MiB".parse::<Bandwidth>().unwrap().bytes_per_second(), 1_572_864);
/// assert_eq!("65536".parse::<Bandwidth>().unwrap(), Bandwidth::kib(64));
/// assert!("0".parse::<Bandwidth>().unwrap().is_unlimited());
/// assert!("fast".parse::<Bandwidth>().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth(u64);

impl Bandwidth {
    /// No limit.
    pub const UNLIMITED: Self = Self(0);

    /// A rate of `bytes` per second (zero is unlimited).
    ///
    /// ```
    /// use tower_range_serve::Bandwidth;
    ///
    /// assert_eq!(Bandwidth::new(1024), Bandwidth::kib(1));
    /// ```
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// A rate of `n` KiB per second.
    ///
    /// ```
    /// use tower_range_serve::Bandwidth;
    ///
    /// assert_eq!(Bandwidth::kib(256).bytes_per_second(), 262_144);
    /// ```
    pub const fn kib(n: u64) -> Self {
        Self(n.saturating_mul(1024))
    }

    /// A rate of `n` MiB per second.
    ///
    /// ```
    /// use tower_range_serve::Bandwidth;
    ///
    /// assert_eq!(Bandwidth::mib(1).bytes_per_second(), 1_048_576);
    /// ```
    pub const fn mib(n: u64) -> Self {
        Self(n.saturating_mul(1024 * 1024))
    }

    /// The rate in bytes per second; zero when unlimited.
    ///
    /// ```
    /// use tower_range_serve::Bandwidth;
    ///
    /// assert_eq!(Bandwidth::UNLIMITED.bytes_per_second(), 0);
    /// ```
    pub const fn bytes_per_second(self) -> u64 {
        self.0
    }

    /// Whether this is no limit at all.
    ///
    /// ```
    /// use tower_range_serve::Bandwidth;
    ///
    /// assert!(Bandwidth::UNLIMITED.is_unlimited());
    /// assert!(!Bandwidth::kib(1).is_unlimited());
    /// ```
    pub const fn is_unlimited(self) -> bool {
        self.0 == 0
    }

    /// The lower of two limits, unlimited being the highest.
    pub(crate) fn at_most(self, other: Self) -> Self {
        match (self.limit(), other.limit()) {
            (Some(a), Some(b)) => Self(a.min(b)),
            _ => Self(self.0.max(other.0)),
        }
    }

    /// The rate as a limit: `None` when unlimited.
    pub(crate) fn limit(self) -> Option<u64> {
        (self.0 > 0).then_some(self.0)
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        if self.0 == 0 {
            return f.write_str("unlimited");
        }
        for (size, unit) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{} {unit}/s", self.0 / size);
            }
        }
        write!(f, "{} B/s", self.0)
    }
}

/// The error of parsing a [`Bandwidth`].
///
/// ```
/// use tower_range_serve::Bandwidth;
///
/// let err = "12 parsecs".parse::<Bandwidth>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid bandwidth \"12 parsecs\": unknown unit \"parsecs\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBandwidthError {
    input: String,
    reason: &'static str,
    detail: Option<String>,
}

impl fmt::Display for ParseBandwidthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid bandwidth {:?}: {}", self.input, self.reason)?;
        if let Some(detail) = &self.detail {
            write!(f, " {detail:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseBandwidthError {}

impl FromStr for Bandwidth {
    type Err = ParseBandwidthError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason, detail: Option<&str>| ParseBandwidthError {
            input: input.to_owned(),
            reason,
            detail: detail.map(str::to_owned),
        };
        let text = input.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Self::UNLIMITED);
        }
        let text = text.strip_suffix("/s").unwrap_or(text).trim_end();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        if number.is_empty() {
            return Err(error("expected a number", None));
        }
        let multiplier: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            _ => return Err(error("unknown unit", Some(unit.trim()))),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
            return Err(error("expected a number", None));
        }
        let too_large = || error("too large", None);
        let whole: u64 = match whole {
            "" => 0,
            digits => digits.parse().map_err(|_| too_large())?,
        };
        let bytes = whole.checked_mul(multiplier).ok_or_else(too_large)?;
        // The decimal fraction of the unit, exactly, rounded down.
        let (mut numerator, mut denominator) = (0u128, 1u128);
        for digit in fraction.bytes().take(18) {
            numerator = numerator * 10 + u128::from(digit - b'0');
            denominator *= 10;
        }
        let fraction = (u128::from(multiplier) * numerator / denominator) as u64;
        let bytes = bytes.checked_add(fraction).ok_or_else(too_large)?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> u64 {
        s.parse::<Bandwidth>().unwrap().bytes_per_second()
    }

    #[test]
    fn plain_integers_are_bytes_per_second() {
        assert_eq!(parse("262144"), 262_144);
        assert_eq!(parse(" 17 "), 17);
        assert_eq!(parse("100B"), 100);
    }

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse("256KiB"), 256 * 1024);
        assert_eq!(parse("256 kib"), 256 * 1024);
        assert_eq!(parse("256K"), 256 * 1024);
        assert_eq!(parse("1MiB"), 1 << 20);
        assert_eq!(parse("1m"), 1 << 20);
        assert_eq!(parse("2GiB/s"), 2 << 30);
        assert_eq!(parse("10MB"), 10_000_000);
        assert_eq!(parse("10 MB/s"), 10_000_000);
        assert_eq!(parse("3kb"), 3_000);
        assert_eq!(parse("1GB"), 1_000_000_000);
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse("1.5MiB"), 1_572_864);
        assert_eq!(parse("0.5KiB"), 512);
        assert_eq!(parse(".25K"), 256);
        assert_eq!(parse("1.0"), 1);
    }

    #[test]
    fn zero_and_unlimited_mean_no_limit() {
        assert!("0".parse::<Bandwidth>().unwrap().is_unlimited());
        assert!("0KiB".parse::<Bandwidth>().unwrap().is_unlimited());
        assert!("Unlimited".parse::<Bandwidth>().unwrap().is_unlimited());
    }

    #[test]
    fn bad_strings_are_clear_errors() {
        for (input, message) in [
            ("", "expected a number"),
            ("KiB", "expected a number"),
            ("-5", "expected a number"),
            ("1.2.3", "expected a number"),
            (".", "expected a number"),
            ("5 parsecs", "unknown unit \"parsecs\""),
            ("5 KiB extra", "unknown unit \"KiB extra\""),
            ("99999999999999999999", "too large"),
            ("99999999999GiB", "too large"),
        ] {
            let err = input.parse::<Bandwidth>().unwrap_err();
            assert!(err.to_string().ends_with(message), "{input:?}: {err}");
        }
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(Bandwidth::kib(256).to_string(), "256 KiB/s");
        assert_eq!(Bandwidth::mib(8).to_string(), "8 MiB/s");
        assert_eq!(Bandwidth::new(1500).to_string(), "1500 B/s");
        assert_eq!(Bandwidth::UNLIMITED.to_string(), "unlimited");
    }
}
