//! The demo folder served when no `--root` is given.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A small text asset served with precompressed sidecars.
const NOTES: &str = include_str!("notes.txt");
/// `notes.txt` compressed with brotli (quality 11), made once with
/// `python3 -c "import brotli, sys; sys.stdout.buffer.write(brotli.compress(open('notes.txt', 'rb').read(), quality=11))"`
/// (or `brotli -q 11 notes.txt`) and shipped: a brotli encoder as a
/// dev-dependency would add a large crate to every test build for 571 bytes.
/// Remake it whenever `notes.txt` changes.
const NOTES_BR: &[u8] = include_bytes!("notes.txt.br");

/// Creates (or reuses) the demo folder and returns its path.
pub(crate) fn folder() -> std::io::Result<PathBuf> {
    const BIG: u64 = 64 * 1024 * 1024;
    let root = std::env::temp_dir().join("tower-range-serve-demo");
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(
        root.join("hello.txt"),
        "Hello from tower-range-serve!\nAsk for a part of me with a Range header.\n",
    )?;
    std::fs::write(
        root.join("docs/readme.md"),
        "# Demo\n\nFiles in sub-folders are served too.\n",
    )?;
    std::fs::write(root.join("naïve café.txt"), "A file name beyond ASCII.\n")?;
    std::fs::write(root.join("notes.txt"), NOTES)?;
    std::fs::write(root.join("notes.txt.gz"), gzip(NOTES.as_bytes())?)?;
    std::fs::write(root.join("notes.txt.br"), NOTES_BR)?;
    let big = root.join("big.bin");
    if std::fs::metadata(&big).map(|m| m.len()).ok() != Some(BIG) {
        write_pseudo_random(&big, BIG)?;
    }
    Ok(root)
}

/// `data` compressed with gzip.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Writes `len` bytes of deterministic pseudo-random data (so corruption shows).
fn write_pseudo_random(path: &Path, len: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..len / block.len() as u64 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        out.write_all(&block)?;
    }
    out.flush()
}
