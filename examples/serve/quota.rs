//! `--quota BYTES/DURATION` and `--quota-exhausted end|RATE`: how many bytes
//! each client (peer IP) may download per period, and what it gets after.

use std::time::Duration;

use tower_range_serve::{Bandwidth, Quota, QuotaExhausted, RangeServeLayer};

/// The quota flags, flattened into the server's arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct QuotaArgs {
    /// Bytes each client (peer IP) may download per period, e.g. 1GiB/1d or
    /// 4MiB/60s (durations in s, m, h or d; windows aligned to the epoch, so
    /// 1d starts at 00:00 UTC). Over it: 429 with Retry-After and RateLimit
    /// fields. Shared by every server with --redis.
    #[arg(long, value_name = "BYTES/DURATION", value_parser = quota)]
    quota: Option<Quota>,

    /// What a client that spent its --quota gets: `end` (running downloads end
    /// so it can resume later, new requests get 429) or a rate its downloads
    /// go on at, e.g. 64KiB.
    #[arg(long, value_name = "end|RATE", default_value = "end", value_parser = exhausted)]
    quota_exhausted: QuotaExhausted,
}

impl QuotaArgs {
    /// Sets the quota on `layer`, if one was given.
    pub(crate) fn apply(&self, layer: RangeServeLayer) -> RangeServeLayer {
        match self.quota {
            Some(quota) => layer.quota(quota).quota_exhausted(self.quota_exhausted),
            None => layer,
        }
    }

    /// A line for the startup banner.
    pub(crate) fn describe(&self) -> Option<String> {
        let quota = self.quota?;
        let after = match self.quota_exhausted {
            QuotaExhausted::Reduce(rate) => format!("then {rate}"),
            _ => "then 429".to_owned(),
        };
        Some(format!(
            "quota: {} bytes per {:?} per client, {after}",
            quota.bytes(),
            quota.period()
        ))
    }
}

/// `BYTES/DURATION`: a size as `Bandwidth` parses it (`1GiB`, `4MiB`, plain
/// bytes) and a duration (`60s`, `15m`, `2h`, `1d`, plain seconds).
fn quota(value: &str) -> Result<Quota, String> {
    let (size, period) = value
        .split_once('/')
        .ok_or_else(|| format!("{value:?}: expected BYTES/DURATION, e.g. 1GiB/1d"))?;
    let bytes = size
        .trim()
        .parse::<Bandwidth>()
        .map_err(|e| format!("{size:?}: {e}"))?
        .bytes_per_second();
    let period = duration(period.trim())?;
    Ok(Quota::new(bytes, period))
}

/// `60s`, `15m`, `2h`, `1d` or plain seconds; at least a second.
fn duration(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{value:?}: expected a duration like 60s, 15m, 2h or 1d"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{value:?}: the unit is s, m, h or d")),
    };
    match number.checked_mul(unit) {
        Some(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(format!("{value:?}: at least one second")),
    }
}

/// `end`, or the rate downloads go on at.
fn exhausted(value: &str) -> Result<QuotaExhausted, String> {
    if value.eq_ignore_ascii_case("end") {
        return Ok(QuotaExhausted::End);
    }
    let rate = value
        .parse::<Bandwidth>()
        .map_err(|e| format!("{e}, or end"))?;
    match rate.is_unlimited() {
        true => Err("a reduced rate above zero, or end".to_owned()),
        false => Ok(QuotaExhausted::Reduce(rate)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_and_durations_parse() {
        let day = quota("1GiB/1d").unwrap();
        assert_eq!(
            (day.bytes(), day.period()),
            (1 << 30, Duration::from_secs(86_400))
        );
        let minute = quota("4MiB/60s").unwrap();
        assert_eq!(
            (minute.bytes(), minute.period()),
            (4 << 20, Duration::from_secs(60))
        );
        assert_eq!(
            quota("1000/2h").unwrap().period(),
            Duration::from_secs(7200)
        );
        assert_eq!(
            quota("1000/15m").unwrap().period(),
            Duration::from_secs(900)
        );
        assert_eq!(quota("1000/90").unwrap().period(), Duration::from_secs(90));
        for bad in [
            "1GiB",
            "1GiB/",
            "x/1d",
            "1GiB/0s",
            "1GiB/1w",
            "1GiB/99999999999999999999d",
        ] {
            assert!(quota(bad).is_err(), "{bad}");
        }
        assert_eq!(exhausted("end").unwrap(), QuotaExhausted::End);
        assert_eq!(
            exhausted("64KiB").unwrap(),
            QuotaExhausted::Reduce(Bandwidth::kib(64))
        );
        assert!(exhausted("0").is_err());
        assert!(exhausted("slow").is_err());
    }
}
