//! The spool of PST outputs: how much room it needs, and how much there is.

use std::path::Path;

use legacyflo_core::request::FileFormat;

/// Bytes the spool must have free before a fresh start: `floor`, or more when the
/// source's size is known. A ZIP of `.eml` holds every message once (stored or deflated)
/// plus about 200 bytes of headers per entry, so it needs the source's size plus 5 %;
/// a PST needs twice that (the PST sink's spool of raw messages plus the PST it writes
/// at the end, which carries its own B-tree overhead).
pub fn spool_need(format: FileFormat, source_size: Option<u64>, floor: u64) -> u64 {
    let Some(size) = source_size else {
        return floor;
    };
    let zip = size.saturating_add(size / 20);
    let estimate = match format {
        FileFormat::Pst => zip.saturating_mul(2),
        _ => zip,
    };
    estimate.max(floor)
}

/// Total size of the regular files at `path` (a file, or a tree walked without following
/// links); `None` when it cannot be read.
pub(super) fn local_size(path: &Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.is_file() {
        return Some(meta.len());
    }
    if !meta.is_dir() {
        return None;
    }
    let mut total = 0u64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let Ok(m) = entry.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(entry.path());
            } else if m.is_file() {
                total = total.saturating_add(m.len());
            }
        }
    }
    Some(total)
}

/// Free bytes for an unprivileged writer on the file system holding `dir`.
pub(super) fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_need_follows_the_source_size() {
        let gib = 1u64 << 30;
        assert_eq!(spool_need(FileFormat::EmlZip, None, gib), gib);
        assert_eq!(spool_need(FileFormat::EmlZip, Some(10), gib), gib);
        assert_eq!(
            spool_need(FileFormat::EmlZip, Some(20 * gib), gib),
            21 * gib
        );
        assert_eq!(spool_need(FileFormat::Pst, Some(20 * gib), gib), 42 * gib);
        assert_eq!(spool_need(FileFormat::Pst, Some(u64::MAX), gib), u64::MAX);
    }

    #[test]
    fn local_size_sums_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("a/b/y"), [0u8; 23]).unwrap();
        assert_eq!(local_size(dir.path()), Some(123));
        assert_eq!(local_size(&dir.path().join("a/x")), Some(100));
        assert_eq!(local_size(&dir.path().join("missing")), None);
    }
}
