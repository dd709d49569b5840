//! A local Maildir as a mail source (local delivery, and the demo): messages
//! in `new/` and `cur/` are read oldest first, and moved into the Maildir++
//! subfolders `.Processed` or `.Quarantine` once their outcome is committed.
//!
//! A move is a `rename(2)` within one file system: atomic, so a crash leaves
//! the message either in the inbox (read again, recognised by its key) or done.

use std::io;
use std::path::{Path, PathBuf};

use crate::pipeline::Disposition;

/// One message file.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    /// `maildir:{maildir}/{unique name}` (without the `:2,` flags suffix).
    pub key: String,
    pub raw: Vec<u8>,
    /// The full size, when the file was too large and `raw` is only its header.
    pub oversized: Option<u64>,
}

/// A Maildir and its two destination folders.
#[derive(Debug, Clone)]
pub struct MaildirSource {
    root: PathBuf,
    processed: PathBuf,
    quarantine: PathBuf,
}

/// Reads a message file whole, or only its header when it is larger than `max`.
fn read_bounded(path: &Path, max: u64) -> io::Result<(Vec<u8>, Option<u64>)> {
    use std::io::Read;
    let size = std::fs::metadata(path)?.len();
    if size <= max {
        return Ok((std::fs::read(path)?, None));
    }
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(HEADER_READ_BYTES)
        .read_to_end(&mut head)?;
    let header = crate::mail::header_part(&head).to_vec();
    Ok((header, Some(size)))
}

/// How much of an oversized file is read to find its header.
const HEADER_READ_BYTES: u64 = 1024 * 1024;

fn make_maildir(dir: &Path) -> io::Result<()> {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    Ok(())
}

impl MaildirSource {
    /// Opens the Maildir at `root`, creating missing `new/cur/tmp` and the
    /// destination folders.
    ///
    /// # Errors
    ///
    /// When the folders cannot be created.
    pub fn open(root: &Path, processed: &str, quarantine: &str) -> io::Result<MaildirSource> {
        make_maildir(root)?;
        let processed = root.join(format!(".{processed}"));
        let quarantine = root.join(format!(".{quarantine}"));
        make_maildir(&processed)?;
        make_maildir(&quarantine)?;
        Ok(MaildirSource {
            root: root.to_path_buf(),
            processed,
            quarantine,
        })
    }

    /// Up to `limit` messages, oldest (by file name, which starts with the
    /// delivery time) first.
    ///
    /// # Errors
    ///
    /// When a folder cannot be listed; an unreadable single file is skipped
    /// with a warning.
    pub fn fetch_batch(&self, limit: usize, max_message_bytes: u64) -> io::Result<Vec<Fetched>> {
        let mut paths = Vec::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.root.join(sub))? {
                let entry = entry?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') || !entry.file_type()?.is_file() {
                    continue;
                }
                paths.push(entry.path());
            }
        }
        paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        let mut out = Vec::new();
        for path in paths.into_iter().take(limit) {
            match read_bounded(&path, max_message_bytes) {
                Ok((raw, oversized)) => out.push(Fetched {
                    key: self.key(&path),
                    path,
                    raw,
                    oversized,
                }),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read message file")
                }
            }
        }
        Ok(out)
    }

    fn key(&self, path: &Path) -> String {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let unique = name.split(':').next().unwrap_or(&name);
        format!("maildir:{}/{unique}", self.root.display())
    }

    /// Moves one finished message into its destination folder.
    ///
    /// # Errors
    ///
    /// When the rename fails; the message stays and is recognised later.
    pub fn finish(&self, path: &Path, disposition: Disposition) -> io::Result<()> {
        let dest = match disposition {
            Disposition::Processed => &self.processed,
            Disposition::Quarantine => &self.quarantine,
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let unique = name.split(':').next().unwrap_or(&name);
        std::fs::rename(path, dest.join("cur").join(format!("{unique}:2,S")))
    }

    /// How many messages wait in the inbox.
    ///
    /// # Errors
    ///
    /// When a folder cannot be listed.
    pub fn pending(&self) -> io::Result<usize> {
        let mut n = 0;
        for sub in ["new", "cur"] {
            n += std::fs::read_dir(self.root.join(sub))?.count();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_moves() {
        let dir = tempfile::tempdir().unwrap();
        let md = MaildirSource::open(dir.path(), "Processed", "Quarantine").unwrap();
        std::fs::write(dir.path().join("new/2.b"), b"From: b@x.example\r\n\r\nb").unwrap();
        std::fs::write(dir.path().join("new/1.a"), b"From: a@x.example\r\n\r\na").unwrap();
        let batch = md.fetch_batch(10, 1024).unwrap();
        assert_eq!(batch.len(), 2);
        assert!(batch[0].key.ends_with("/1.a"));
        md.finish(&batch[0].path, Disposition::Processed).unwrap();
        md.finish(&batch[1].path, Disposition::Quarantine).unwrap();
        assert_eq!(md.pending().unwrap(), 0);
        assert!(dir.path().join(".Processed/cur/1.a:2,S").exists());
        assert!(dir.path().join(".Quarantine/cur/2.b:2,S").exists());
    }
}
