//! Signed links in the demo server: `--signing-key [ID=]FILE` (every file path
//! then needs a valid link), and the `sign` subcommand that mints one.
//!
//! A key file holds the secret as hex text, at least 64 hex digits (32 bytes),
//! surrounding whitespace ignored: `openssl rand -hex 32 > 2026-12.key`. The
//! key id is `ID` when given as `ID=FILE`, else the file's name without its
//! extension (`2026-12`). The first `--signing-key` signs; all of them verify
//! (key rotation).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;
use tower_range_serve::Bandwidth;
use tower_range_serve::signed::{Claims, IpPrefix, KeySet, SigningKey};

/// `serve sign`: print a signed link for a path, ready to append to the
/// server's URL.
#[derive(Debug, ClapArgs)]
pub(crate) struct Sign {
    /// Key file to sign with: `[ID=]FILE`, the secret as hex text (at least
    /// 64 hex digits, e.g. from `openssl rand -hex 32`). Given several times,
    /// the first signs.
    #[arg(long = "signing-key", value_name = "[ID=]FILE", required = true)]
    keys: Vec<String>,

    /// How long the link is valid: 90s, 15m, 2h, 7d (plain numbers are seconds).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
    expires_in: Duration,

    /// Client key (the user) whose limits the downloads share.
    #[arg(long, value_name = "ID")]
    client: Option<String>,

    /// Rate shared by all downloads of the client, e.g. 2MiB (never above the
    /// server's --client-rate).
    #[arg(long, value_name = "RATE", default_value = "0")]
    client_rate: Bandwidth,

    /// Rate of each download, e.g. 512KiB (never above the server's --rate).
    #[arg(long, value_name = "RATE", default_value = "0")]
    rate: Bandwidth,

    /// Most downloads the client may run at once (never above the server's).
    #[arg(long, value_name = "N")]
    max_streams_per_client: Option<usize>,

    /// Client address or prefix the link is valid for, e.g. 203.0.113.0/24.
    #[arg(long, value_name = "ADDR[/PREFIX]")]
    ip: Option<IpPrefix>,

    /// Sign a folder: the query is valid for every path under PATH.
    #[arg(long)]
    folder: bool,

    /// The path to sign, as in the URL (e.g. /videos/a.mp4).
    #[arg(value_name = "PATH")]
    path: String,
}

/// Runs `serve sign`: prints `PATH?QUERY`.
pub(crate) fn sign(args: &Sign) -> Result<(), String> {
    let keys = key_set(&args.keys)?.expect("clap requires a key");
    let mut claims = Claims::expiring_in(args.expires_in)
        .client_rate(args.client_rate)
        .rate(args.rate);
    if let Some(client) = &args.client {
        claims = claims.client(client.as_str());
    }
    if let Some(max) = args.max_streams_per_client {
        claims = claims.max_streams(max);
    }
    if let Some(ip) = args.ip {
        claims = claims.ip(ip);
    }
    let key = keys.signing_key();
    let link = if args.folder {
        key.sign_folder(&args.path, &claims)
    } else {
        key.sign(&args.path, &claims)
    }
    .map_err(|e| format!("{}: {e}", args.path))?;
    println!("{link}");
    Ok(())
}

/// The keys of the `--signing-key` flags; `None` without any.
pub(crate) fn key_set(flags: &[String]) -> Result<Option<KeySet>, String> {
    let mut keys: Option<KeySet> = None;
    for flag in flags {
        let key = read_key(flag)?;
        if keys.as_ref().is_some_and(|set| set.get(key.id()).is_some()) {
            return Err(format!(
                "--signing-key {flag}: the key id {:?} is given twice",
                key.id()
            ));
        }
        keys = Some(match keys {
            None => KeySet::new(key),
            Some(set) => set.verify_also(key),
        });
    }
    Ok(keys)
}

/// One `[ID=]FILE`.
fn read_key(flag: &str) -> Result<SigningKey, String> {
    let (id, file) = match flag.split_once('=') {
        Some((id, file)) => (id.to_owned(), PathBuf::from(file)),
        None => {
            let file = PathBuf::from(flag);
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_owned();
            (stem, file)
        }
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("--signing-key {flag}: cannot read {}: {e}", file.display()))?;
    let secret = hex(text.trim()).ok_or_else(|| {
        format!(
            "--signing-key {flag}: {} must hold the key as hex text (at least 64 hex \
             digits, 32 bytes), e.g. made with `openssl rand -hex 32 > {}`",
            file.display(),
            file.display()
        )
    })?;
    SigningKey::new(id, secret).map_err(|e| {
        format!("--signing-key {flag}: {e} (make one with `openssl rand -hex 32`; name the id with ID=FILE)")
    })
}

/// Hex text to bytes.
fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// `90s`, `15m`, `2h`, `7d`, or plain seconds.
pub(crate) fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let (number, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let count: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {value:?}: use 90s, 15m, 2h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration {value:?}: the unit is s, m, h or d"
            ));
        }
    };
    count
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {value:?} is too long"))
}

/// A path signed for an hour with the signing key, for the banner's examples;
/// the plain encoded path without keys.
pub(crate) fn banner_link(keys: Option<&KeySet>, encoded_path: &str) -> String {
    keys.and_then(|keys| {
        let claims = Claims::expiring_in(Duration::from_secs(3600));
        keys.signing_key().sign(encoded_path, &claims).ok()
    })
    .map_or_else(|| encoded_path.to_owned(), |link| link.to_string())
}
