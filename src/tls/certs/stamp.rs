//! What a certificate or key file looked like when it was read, for
//! [`CertStore::changed_on_disk`](super::CertStore::changed_on_disk).
//!
//! A [`FileStamp`] keeps the file's metadata (size, mtime and, on Unix, device and inode — so
//! Kubernetes' symlink swap of a Secret volume is seen), recorded before the read, and a hash
//! of the content. Equal metadata proves equal content only once the mtime is older than the
//! filesystem's timestamp granularity ([`RACY_WINDOW`]); until then (the "racily clean" case
//! git knows) the content hash is compared as well.

use super::TlsError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use xxhash_rust::xxh3::xxh3_64;

/// Below this age, equal metadata does not prove equal content: a rewrite within the same
/// timestamp tick keeps the mtime. 2 s covers the coarsest common granularity (FAT).
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// What a file looked like when it was read.
pub(super) struct FileStamp {
    path: PathBuf,
    meta: MetaStamp,
    digest: u64,
    /// Set once the content was confirmed unchanged while the mtime was older than
    /// [`RACY_WINDOW`]: from then on any rewrite changes the metadata.
    pub(super) settled: AtomicBool,
}

impl FileStamp {
    pub(super) fn changed(&self) -> bool {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return true;
        };
        if MetaStamp::of(&meta) != self.meta {
            return true;
        }
        if self.settled.load(Ordering::Relaxed) {
            return false;
        }
        let Ok(bytes) = std::fs::read(&self.path) else {
            return true;
        };
        if xxh3_64(&bytes) != self.digest {
            return true;
        }
        if self.meta.settled_at(SystemTime::now()) {
            self.settled.store(true, Ordering::Relaxed);
        }
        false
    }
}

/// The metadata that changes when a file is rewritten or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MetaStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// (device, inode) on Unix; a replaced file (rename, symlink swap) gets a new inode.
    id: (u64, u64),
}

impl MetaStamp {
    fn of(meta: &std::fs::Metadata) -> MetaStamp {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        MetaStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            id,
        }
    }

    /// True when the mtime is old enough at `now` that a later write must change it.
    fn settled_at(&self, now: SystemTime) -> bool {
        self.modified
            .and_then(|mtime| now.duration_since(mtime).ok())
            .is_some_and(|age| age > RACY_WINDOW)
    }
}

/// Reads a file, recording its metadata *before* the read: if it changes in between, the
/// next [`FileStamp::changed`] sees different metadata and reports it.
pub(super) fn read_file(path: &Path) -> Result<(Vec<u8>, FileStamp), TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = MetaStamp::of(&std::fs::metadata(path).map_err(read_error)?);
    let bytes = std::fs::read(path).map_err(read_error)?;
    let stamp = FileStamp {
        path: path.to_owned(),
        meta,
        digest: xxh3_64(&bytes),
        settled: AtomicBool::new(meta.settled_at(SystemTime::now())),
    };
    Ok((bytes, stamp))
}
