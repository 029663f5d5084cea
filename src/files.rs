//! Files read from a path a user gives (certificates, specs, stored plans), each with a size bound: a wrong path
//! (`/dev/zero`, a multi-gigabyte file given by mistake) is a typed error naming the file and the bound, never a
//! read until memory runs out.
//!
//! It imports nothing of the crate: it is the lowest floor (`tests/architecture.rs` checks the floors).

use std::io::Read as _;
use std::path::Path;

/// The most a certificate file is read: a signed plug-in assembly or package (Dataverse takes assemblies of up to
/// 16 MB; packages hold their assemblies), or a `.cer`, `.pem` or `.pfx`.
pub const MAX_CERTIFICATE_FILE: u64 = 64 * 1024 * 1024;

/// The most a provisioning spec file is read.
pub const MAX_SPEC_FILE: u64 = 4 * 1024 * 1024;

/// The most a stored plan file is read (a plan of thousands of environments stays far below).
pub const MAX_PLAN_FILE: u64 = 256 * 1024 * 1024;

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file is larger than what is read for its kind.
    #[error("{what} {path} is larger than {limit} bytes: is it the right file?")]
    TooLarge {
        /// What the file was to be (`certificate file`, `spec`, `plan`).
        what: &'static str,
        /// The path given.
        path: String,
        /// The bound, in bytes.
        limit: u64,
    },
    /// The operating system's error.
    #[error("cannot read {what} {path}: {source}")]
    Io {
        /// What the file was to be.
        what: &'static str,
        /// The path given.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system refused a write.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path given.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Writes `bytes` to `path` whole or not at all: into a new file beside it (same directory, so the rename cannot
/// cross file systems), flushed, then renamed over `path`. A reader never sees half a file, and a write that fails
/// or is interrupted leaves what was at `path` as it was (the partial file beside it is removed).
pub fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    use std::io::Write as _;
    let fail = |source| FileError::Write { path: path.display().to_string(), source };
    let name = path
        .file_name()
        .ok_or_else(|| fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")))?;
    let mut partial = name.to_os_string();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = path.with_file_name(partial);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        // A file replaced keeps its permissions.
        if let Ok(existing) = std::fs::metadata(path) {
            std::fs::set_permissions(&partial, existing.permissions())?;
        }
        std::fs::rename(&partial, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(fail)
}

/// Reads a whole file of at most `limit` bytes. A regular file is measured before it is read; anything else (a
/// device, a pipe) is read up to the bound and refused past it.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io { what, path: path.display().to_string(), source };
    let too_large = || FileError::TooLarge { what, path: path.display().to_string(), limit };
    let file = std::fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if metadata.is_file() && metadata.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(if metadata.is_file() { metadata.len() as usize } else { 8192 });
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_bounded`] for text.
pub fn read_bounded_text(path: &Path, limit: u64, what: &'static str) -> Result<String, FileError> {
    let bytes = read_bounded(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| FileError::Io {
        what,
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacing_write_is_whole_or_leaves_the_file_as_it_was() {
        let dir = std::env::temp_dir().join(format!("dvmi-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.bin");
        write_replacing(&path, b"first").unwrap();
        write_replacing(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A directory where the file should go: refused, nothing left beside it.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(&blocked).unwrap();
        std::fs::write(blocked.join("keep"), b"x").unwrap();
        assert!(matches!(write_replacing(&blocked, b"y"), Err(FileError::Write { .. })));
        assert_eq!(std::fs::read(blocked.join("keep")).unwrap(), b"x");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 2, "no partial file left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_device_that_never_ends_is_refused_at_the_bound() {
        let path = Path::new("/dev/zero");
        if !path.exists() {
            return;
        }
        let err = read_bounded(path, 1024, "spec").unwrap_err();
        assert!(matches!(err, FileError::TooLarge { limit: 1024, .. }), "{err:?}");
        assert!(err.to_string().contains("/dev/zero"), "{err}");
    }

    #[test]
    fn files_within_and_beyond_the_bound() {
        let dir = std::env::temp_dir().join(format!("dataverse-mi-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, vec![7u8; 100]).unwrap();
        assert_eq!(read_bounded(&path, 100, "plan").unwrap().len(), 100);
        let err = read_bounded(&path, 99, "plan").unwrap_err();
        assert!(err.to_string().contains("larger than 99 bytes"), "{err}");
        assert!(matches!(read_bounded(&dir.join("missing"), 9, "plan"), Err(FileError::Io { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
