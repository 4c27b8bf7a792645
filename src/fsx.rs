//! File-system foundations every stage shares: the one atomic write ([`AtomicFile`],
//! [`write_atomic`]), the atomic exchange of two paths ([`exchange`]), the dir sync that makes
//! a rename durable ([`sync_dir`]), the hashing reader ([`HashReader`]), the file hasher
//! ([`sha256_file`]) and the hex encoder ([`hex`]).
//!
//! One copy of each: a stage that writes a file so that a reader (or a crash) sees the old one
//! or the new one, or that hashes bytes, calls this module. It depends on nothing of the crate.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A file being written in a temp file beside its final path; [`AtomicFile::commit`] moves it
/// there with one rename, so a reader (or a crash) sees the old file or the new one, never half
/// of one. Dropped without a commit, the temp file is removed and the final path is untouched.
pub(crate) struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts writing `path`: a temp file in its dir (the current dir for a bare name).
    pub(crate) fn new(path: &Path) -> io::Result<AtomicFile> {
        let dir = parent(path);
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
            named(
                e,
                format!("failed to create a temp file in `{}`", dir.display()),
            )
        })?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Sets the mode the file will have once in place (a temp file is made `0600`).
    pub(crate) fn set_mode(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        self.tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
    }

    /// Syncs the content to disk, then renames it into place.
    pub(crate) fn commit(self) -> io::Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| named(e, format!("failed to sync `{}`", self.tmp.path().display())))?;
        self.commit_unsynced()
    }

    /// Renames the content into place without `fsync`: after a crash the file may be the old
    /// one or missing, never torn. For caches, which a lost entry does not harm.
    pub(crate) fn commit_unsynced(self) -> io::Result<()> {
        let AtomicFile { tmp, path } = self;
        let from = tmp.path().to_path_buf();
        tmp.persist(&path).map_err(|e| {
            named(
                e.error,
                format!(
                    "failed to rename `{}` to `{}`",
                    from.display(),
                    path.display()
                ),
            )
        })?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.tmp.as_file_mut().write(buf);
        result.map_err(|e| self.write_error(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.tmp.as_file_mut().flush();
        result.map_err(|e| self.write_error(e))
    }
}

impl AtomicFile {
    fn write_error(&self, e: io::Error) -> io::Error {
        named(
            e,
            format!("failed to write to file `{}`", self.tmp.path().display()),
        )
    }
}

/// `e` with `what` (which names the path) in front, as `fs_err` words it; the kind is kept.
fn named(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` through an [`AtomicFile`], synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::new(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Swaps `a` and `b` in one step (`renameat2` with `RENAME_EXCHANGE`): both must exist, and a
/// reader sees either both old names or both new ones. Fails on a file system without it.
pub(crate) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| {
        named(
            io::Error::from(e),
            format!(
                "failed to exchange `{}` with `{}`",
                a.display(),
                b.display()
            ),
        )
    })
}

/// Syncs a dir so that a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs_err::File::open(dir)?.sync_all()
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Hex sha256 of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex sha256 of a file's content, read in a stream.
pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    Ok(hex(&digest_file(path)?.1))
}

/// The size and the sha256 of a file's content, read in a stream (a file may weigh gigabytes).
pub(crate) fn digest_file(path: &Path) -> io::Result<(u64, [u8; 32])> {
    let mut reader = HashReader::new(fs_err::File::open(path)?);
    let size = io::copy(&mut reader, &mut io::sink())?;
    Ok((size, reader.digest()))
}

/// A reader that hashes what passes through it (as uv's `HashReader`), and remembers whether
/// the inner reader failed (a network error) rather than the writer (a disk error).
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    pub(crate) failed: bool,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> HashReader<R> {
        HashReader {
            inner,
            hasher: Sha256::new(),
            failed: false,
        }
    }

    /// The sha256 of everything read.
    pub(crate) fn digest(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }

    /// The hex sha256 of everything read.
    pub(crate) fn finish(self) -> String {
        hex(&self.digest())
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(buf.get(..n).unwrap_or_default());
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

/// Writes a cache file atomically (temp file and rename, so a reader never sees half of
/// one), without `fsync`: after a crash the entry may be missing, never torn, and the cache
/// is an optimisation, so a failure is ignored.
pub(crate) fn store_cache_file(path: &Path, bytes: &[u8]) {
    let Some(parent) = path.parent() else { return };
    let _ = fs_err::create_dir_all(parent);
    let Ok(mut tmp) = AtomicFile::new(path) else {
        return;
    };
    if std::io::Write::write_all(&mut tmp, bytes).is_ok() {
        let _ = tmp.commit_unsynced();
    }
}

/// Standard base64 with padding (RFC 4648 §4), as HTTP basic credentials want.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// URL-safe base64 without padding (RFC 4648 §5), as a wheel's RECORD wants its hashes.
pub(crate) fn base64_urlsafe(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_standard_and_urlsafe() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64_urlsafe(b""), "");
        assert_eq!(base64_urlsafe(b"f"), "Zg");
        assert_eq!(base64_urlsafe(b"fo"), "Zm8");
        assert_eq!(base64_urlsafe(b"foo"), "Zm9v");
        assert_eq!(base64_urlsafe(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn hex_of_bytes() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn sha256_of_empty_input() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_hex(b""), empty);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        fs_err::write(&path, b"").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), empty);
    }

    #[test]
    fn hash_reader_hashes_what_passes() {
        let mut reader = HashReader::new(&b"abc"[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert!(!reader.failed);
        assert_eq!(reader.finish(), sha256_hex(b"abc"));
    }

    #[test]
    fn file_digest_gives_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs_err::write(&path, vec![7u8; 100_000]).unwrap();
        let (size, digest) = digest_file(&path).unwrap();
        assert_eq!(size, 100_000);
        assert_eq!(hex(&digest), sha256_hex(&[7u8; 100_000]));
    }

    #[test]
    fn atomic_write_replaces_and_an_uncommitted_file_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"two");
        let mut pending = AtomicFile::new(&path).unwrap();
        pending.write_all(b"three").unwrap();
        drop(pending);
        assert_eq!(fs_err::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs_err::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temp file is left: {names:?}");
    }

    /// The `clippy.toml` ban, checked in `cargo test` too: `src/` calls `fs_err`, whose errors
    /// name their path, never the `std::fs` functions it wraps (one reviewed exception).
    #[test]
    fn src_calls_fs_err_not_std_fs() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let banned = [
            "std::fs::read(",
            "std::fs::read_to_string(",
            "std::fs::write(",
            "std::fs::read_dir(",
            "std::fs::create_dir(",
            "std::fs::create_dir_all(",
            "std::fs::remove_file(",
            "std::fs::remove_dir(",
            "std::fs::remove_dir_all(",
            "std::fs::rename(",
            "std::fs::copy(",
            "std::fs::hard_link(",
            "std::fs::metadata(",
            "std::fs::symlink_metadata(",
            "std::fs::read_link(",
            "std::fs::canonicalize(",
            "std::fs::set_permissions(",
            "std::fs::File::open(",
            "std::fs::File::create(",
            "std::fs::File::options(",
            "std::os::unix::fs::symlink(",
        ];
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(&src) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs")
                || entry.path().ends_with("fsx.rs")
            {
                continue;
            }
            let text = fs_err::read_to_string(entry.path()).unwrap();
            for (n, line) in text.lines().enumerate() {
                for call in banned.iter().filter(|c| line.contains(*c)) {
                    found.push(format!("{}:{}: {call}", entry.path().display(), n + 1));
                }
            }
        }
        // `plugin::read_own_file` tells a symlink by its errno, which `fs_err` hides.
        let text = fs_err::read_to_string(src.join("plugin.rs")).unwrap();
        assert_eq!(text.matches("std::fs::OpenOptions::new()").count(), 1);
        assert!(
            found.is_empty(),
            "use `fs_err` instead:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn exchange_swaps_two_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs_err::write(&a, b"a").unwrap();
        fs_err::create_dir(&b).unwrap();
        exchange(&a, &b).unwrap();
        assert!(a.is_dir());
        assert_eq!(fs_err::read(&b).unwrap(), b"a");
        let missing = dir.path().join("missing");
        let err = exchange(&a, &missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
        sync_dir(dir.path()).unwrap();
        let err = sync_dir(&missing).unwrap_err();
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
    }

    #[test]
    fn atomic_write_errors_name_the_path_and_keep_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir/f.txt");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        // A dir in the way of the rename.
        let blocked = dir.path().join("blocked");
        fs_err::create_dir_all(blocked.join("inside")).unwrap();
        let err = write_atomic(&blocked, b"x").unwrap_err();
        assert!(
            err.to_string().contains(&*blocked.to_string_lossy()),
            "{err}"
        );
        let left: Vec<_> = fs_err::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "a temp file is left: {left:?}");
    }
}
