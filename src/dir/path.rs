//! Mapping a request path to a relative file path, refusing anything that could
//! leave the root. No I/O.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// The relative path a URI path names under the root, or `None` if it is not a
/// safe one.
///
/// The path is percent-decoded and must be UTF-8 (so overlong encodings are
/// refused). Empty and `.` segments are skipped; a `..` segment, a backslash, a NUL,
/// a drive prefix or anything else that is not a plain name is refused. Decoding
/// happens before splitting, so `%2F` separates segments like `/` does, and
/// `..%2F..` is refused too.
pub(crate) fn relative_path(uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(uri_path).decode_utf8().ok()?;
    // The segments joined with `/`: one allocation, and byte for byte the same
    // relative path for every spelling of it (the open-file cache's key).
    let mut relative = String::with_capacity(decoded.len());
    for segment in plain_segments(&decoded) {
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str(segment?);
    }
    Some(PathBuf::from(relative))
}

/// The canonical form of the path [`relative_path`] resolves `uri_path` to, or
/// `None` exactly when it refuses it: `/` followed by the decoded plain
/// segments joined with `/` (`/` for the root, no trailing slash). Two URI
/// paths that name the same file under the root have the same canonical path,
/// so a signed link made for one never verifies for a path that resolves
/// elsewhere.
#[cfg_attr(not(feature = "signed-links"), allow(dead_code))]
pub(crate) fn canonical_path(uri_path: &str) -> Option<String> {
    let decoded = percent_decode_str(uri_path).decode_utf8().ok()?;
    let mut canonical = String::with_capacity(decoded.len() + 1);
    for segment in plain_segments(&decoded) {
        canonical.push('/');
        canonical.push_str(segment?);
    }
    if canonical.is_empty() {
        canonical.push('/');
    }
    Some(canonical)
}

/// The segments of a decoded path, empty and `.` ones skipped; `None` for one
/// that is not a plain name.
fn plain_segments(decoded: &str) -> impl Iterator<Item = Option<&str>> {
    decoded
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .map(|segment| is_plain_name(segment).then_some(segment))
}

/// Whether a decoded path segment (or a file's name) is a plain name that
/// [`relative_path`] lets through: no `..`, backslash, NUL, drive prefix or
/// anything else that is not a normal component.
pub(crate) fn is_plain_name(name: &str) -> bool {
    // What `Path::components` would take for one normal component, on Unix
    // and Windows alike once separators and `:` (drive prefixes, streams) are
    // refused.
    !matches!(name, "" | "." | "..") && !name.contains(['/', '\\', '\0', ':'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uri: &str) -> Option<String> {
        relative_path(uri).map(|p| p.to_str().unwrap().to_owned())
    }

    #[test]
    fn plain_paths_map_to_relative_paths() {
        assert_eq!(ok("/a/b.txt").as_deref(), Some("a/b.txt"));
        assert_eq!(ok("//a/./b.txt").as_deref(), Some("a/b.txt"));
        assert_eq!(ok("/").as_deref(), Some(""));
        assert_eq!(ok("/hello%20world.txt").as_deref(), Some("hello world.txt"));
        assert_eq!(ok("/caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(ok("/..a/b..").as_deref(), Some("..a/b.."));
    }

    #[test]
    fn traversal_is_refused_in_every_spelling() {
        for uri in [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/etc/passwd",
            "/..%2fetc/passwd",
            "/a/..%2F..%2Fetc",
            "/..\\etc\\passwd",
            "/a%5c..%5cb",
            "/a%00b",
            "/%c0%ae%c0%ae/etc/passwd",
            "/%ff",
            "/C:/Windows",
            "/c:%5cboot.ini",
        ] {
            assert_eq!(relative_path(uri), None, "{uri}");
        }
    }

    #[test]
    fn plain_names_are_what_a_segment_may_be() {
        for name in ["a.txt", "100%.txt", "..a", "<b>x&y.txt", ".hidden"] {
            assert!(is_plain_name(name), "{name}");
        }
        for name in ["", ".", "..", "a/b", "a\\b", "a\0b", "C:", "a:b"] {
            assert!(!is_plain_name(name), "{name}");
        }
    }

    #[test]
    fn plain_names_are_one_normal_component() {
        use std::path::{Component, Path};
        for name in [
            "", ".", "..", "...", "a", "a.b", ".a", "a.", " ", "a b", "a/b", "/", "a/", "a\\b",
            "\\", "a\0", "C:", "a:b", "//", "./a", "a/..", "é", "%2e",
        ] {
            let mut components = Path::new(name).components();
            let one_normal = matches!(
                (components.next(), components.next()),
                (Some(Component::Normal(_)), None)
            );
            let expected = one_normal && !name.contains(['/', '\\', '\0', ':']);
            assert_eq!(is_plain_name(name), expected, "{name:?}");
        }
    }

    #[test]
    fn canonical_paths_follow_relative_paths() {
        for (uri, canonical) in [
            ("/a/b.txt", Some("/a/b.txt")),
            ("//a/./b.txt/", Some("/a/b.txt")),
            ("/", Some("/")),
            ("", Some("/")),
            ("/%62", Some("/b")),
            ("/a%2Fb", Some("/a/b")),
            ("/hello%20world.txt", Some("/hello world.txt")),
            ("/a/../b", None),
            ("/%2e%2e/b", None),
        ] {
            assert_eq!(canonical_path(uri).as_deref(), canonical, "{uri}");
            assert_eq!(canonical_path(uri).is_some(), relative_path(uri).is_some());
        }
    }

    #[test]
    fn decoded_slashes_separate_segments() {
        assert_eq!(ok("/a%2Fb").as_deref(), Some("a/b"));
    }
}
