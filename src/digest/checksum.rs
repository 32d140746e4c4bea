//! Published checksum files beside a file: `NAME.sha256`, `NAME.sha512`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::{DigestAlgorithm, Known};
use crate::protocol::digest::parse_checksum;
use crate::source::FileSource;

/// Checksum files larger than this are not read (one line is under 200 bytes;
/// a `SHA256SUMS`-style file of many names is still welcome).
const MAX_LEN: u64 = 64 * 1024;

/// The checksum files beside one opened file (`PATH.sha256`, `PATH.sha512`),
/// read when a request asks for a digest, and kept once one gave a digest: the
/// responses of one open-file cache entry share them (a new version of the
/// file is a new entry, so they follow the version). None found is not kept: a
/// checksum file is used as soon as it is published.
#[derive(Debug)]
pub(crate) struct Checksums {
    path: Arc<Path>,
    known: OnceLock<Known>,
}

impl Checksums {
    pub(crate) fn new(path: Arc<Path>) -> Self {
        Self {
            path,
            known: OnceLock::new(),
        }
    }

    /// The digests the checksum files give `source`.
    pub(crate) fn read(&self, source: &FileSource) -> Known {
        if let Some(known) = self.known.get() {
            return known.clone();
        }
        let known = read_checksum_files(&self.path, source);
        if !known.is_empty() {
            let _ = self.known.set(known.clone());
        }
        known
    }
}

/// Reads the checksum files of the file opened at `path` as `source` (blocking;
/// a failed open each when there are none). One that is missing, too large,
/// does not parse, names another file, or is older than the file is ignored.
pub(crate) fn read_checksum_files(path: &Path, source: &FileSource) -> Known {
    let mut known = Known::default();
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return known;
    };
    for algorithm in DigestAlgorithm::ALL {
        let mut checksum = PathBuf::from(path);
        checksum.set_file_name(format!("{name}.{}", algorithm.checksum_extension()));
        if let Some(digest) = read_one(&checksum, algorithm, name, source) {
            known.set(algorithm, Bytes::from(digest));
        }
    }
    known
}

fn read_one(
    checksum: &Path,
    algorithm: DigestAlgorithm,
    name: &str,
    source: &FileSource,
) -> Option<Vec<u8>> {
    let file = File::open(checksum).ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() > MAX_LEN {
        return None;
    }
    // Published before the file last changed: it describes an older version.
    if metadata.modified().ok()? < source.modified()? {
        return None;
    }
    let mut text = Vec::new();
    file.take(MAX_LEN).read_to_end(&mut text).ok()?;
    parse_checksum(&text, algorithm, name)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn a_checksum_file_beside_the_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello.txt");
        std::fs::write(&path, "hello").unwrap();
        std::fs::write(
            dir.path().join("hello.txt.sha256"),
            format!("{HELLO_SHA256}  hello.txt\n"),
        )
        .unwrap();
        let source = FileSource::open_blocking(&path).unwrap();
        let known = read_checksum_files(&path, &source);
        assert_eq!(
            known.get(DigestAlgorithm::Sha256).unwrap()[..4],
            [0x2c, 0xf2, 0x4d, 0xba]
        );
        assert!(known.get(DigestAlgorithm::Sha512).is_none());
    }

    #[test]
    fn a_checksum_file_older_than_the_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello.txt");
        std::fs::write(&path, "hello").unwrap();
        let checksum = dir.path().join("hello.txt.sha256");
        std::fs::write(&checksum, format!("{HELLO_SHA256}  hello.txt\n")).unwrap();
        let file = File::options().write(true).open(&checksum).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        let source = FileSource::open_blocking(&path).unwrap();
        assert!(
            read_checksum_files(&path, &source)
                .get(DigestAlgorithm::Sha256)
                .is_none()
        );
    }
}
