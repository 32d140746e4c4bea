//! Directory listings as HTML or JSON, from entries already read. No I/O.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What stays unencoded in a link to an entry: RFC 3986 `unreserved`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One entry of a listing, as its link resolves (a symbolic link is described by
/// what it points to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) is_dir: bool,
    pub(super) is_symlink: bool,
    /// Bytes of a file; 0 for a directory.
    pub(super) size: u64,
    pub(super) modified: Option<SystemTime>,
}

impl Entry {
    /// The relative link to the entry: its name percent-encoded, a slash after a
    /// directory's.
    fn href(&self) -> String {
        let mut href = utf8_percent_encode(&self.name, SEGMENT).to_string();
        if self.is_dir {
            href.push('/');
        }
        href
    }
}

/// Directories first, then files, each by name.
pub(super) fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
}

/// An HTML page listing `entries` of the directory at `path` (the decoded
/// request path, shown as the title), with a link to the parent unless it is
/// the root.
pub(super) fn html(path: &str, parent: bool, entries: &[Entry]) -> String {
    let title = escape_html(path);
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Index of {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em}}\
         td,th{{padding:.2em 1em;text-align:left}}td.size{{text-align:right}}</style>\
         </head>\n<body><h1>Index of {title}</h1>\n<table>\
         <thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n<tbody>\n"
    );
    if parent {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        let size = if entry.is_dir {
            String::new()
        } else {
            entry.size.to_string()
        };
        let modified = entry.modified.map(|t| date(t, ' ')).unwrap_or_default();
        let slash = if entry.is_dir { "/" } else { "" };
        let _ = writeln!(
            page,
            "<tr><td><a href=\"{}\">{}{slash}</a></td><td class=\"size\">{size}</td><td>{modified}</td></tr>",
            escape_html(&entry.href()),
            escape_html(&entry.name),
        );
    }
    page.push_str("</tbody></table>\n</body></html>\n");
    page
}

/// A JSON array of `entries`: for each, `name`, `is_dir`, `is_symlink`, `size`,
/// `mod_time` (RFC 3339, UTC, or `null`) and `url` (relative, percent-encoded),
/// the fields of Caddy's `browse` JSON.
pub(super) fn json(entries: &[Entry]) -> String {
    let mut out = String::from("[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let modified = entry
            .modified
            .map_or_else(|| "null".to_owned(), |t| format!("\"{}Z\"", date(t, 'T')));
        let _ = write!(
            out,
            "{{\"name\":\"{}\",\"is_dir\":{},\"is_symlink\":{},\"size\":{},\"mod_time\":{modified},\"url\":\"{}\"}}",
            escape_json(&entry.name),
            entry.is_dir,
            entry.is_symlink,
            entry.size,
            escape_json(&entry.href()),
        );
    }
    out.push_str("]\n");
    out
}

/// Escapes text for HTML content and quoted attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a JSON string (RFC 8259 §7).
fn escape_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD<sep>hh:mm:ss` in UTC (times before 1970 show as 1970).
fn date(time: SystemTime, separator: char) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's `civil_from_days`, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}{separator}{:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn file(name: &str) -> Entry {
        Entry {
            name: name.to_owned(),
            is_dir: false,
            is_symlink: false,
            size: 12,
            modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(date(UNIX_EPOCH, 'T'), "1970-01-01T00:00:00");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(date(t, ' '), "2023-11-14 22:13:20");
        let leap = UNIX_EPOCH + Duration::from_secs(951_825_600); // 2000-02-29 12:00
        assert_eq!(date(leap, 'T'), "2000-02-29T12:00:00");
        assert_eq!(
            date(UNIX_EPOCH - Duration::from_secs(5), 'T'),
            "1970-01-01T00:00:00"
        );
    }

    #[test]
    fn names_are_escaped_and_links_percent_encoded() {
        let page = html("/<x>/", true, &[file("<b>x&y\".txt")]);
        assert!(page.contains("Index of /&lt;x&gt;/"));
        assert!(page.contains("<a href=\"%3Cb%3Ex%26y%22.txt\">&lt;b&gt;x&amp;y&quot;.txt</a>"));
        assert!(!page.contains("<b>"));
        assert!(page.contains("<a href=\"../\">"));
        assert!(!html("/", false, &[]).contains("../"));
    }

    #[test]
    fn directories_come_first_with_a_slash() {
        let mut entries = vec![file("b"), file("a")];
        entries.push(Entry {
            is_dir: true,
            size: 0,
            ..file("z dir")
        });
        sort(&mut entries);
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["z dir", "a", "b"]);
        assert!(html("/", false, &entries).contains("<a href=\"z%20dir/\">z dir/</a>"));
    }

    #[test]
    fn json_escapes_strings() {
        let out = json(&[file("q\"\\\n.txt")]);
        assert_eq!(
            out,
            "[{\"name\":\"q\\\"\\\\\\u000a.txt\",\"is_dir\":false,\"is_symlink\":false,\
             \"size\":12,\"mod_time\":\"2023-11-14T22:13:20Z\",\"url\":\"q%22%5C%0A.txt\"}]\n"
        );
        assert_eq!(json(&[]), "[]\n");
    }
}
