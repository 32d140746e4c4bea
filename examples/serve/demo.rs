//! The demo folder served when no `--root` is given.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    let big = root.join("big.bin");
    if std::fs::metadata(&big).map(|m| m.len()).ok() != Some(BIG) {
        write_pseudo_random(&big, BIG)?;
    }
    Ok(root)
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
