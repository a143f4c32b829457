//! Small file-system helpers with the durability rules the engine and sinks rely on, and
//! the opening rules of the file sources: files below a source root are opened without
//! following symbolic links ([`open_beneath`]), and only regular files are read
//! ([`open_regular`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// The name a file has while it is being written: `<path>.partial`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".partial");
    PathBuf::from(s)
}

/// Syncs the directory holding `path`, so a rename or a new file in it survives a crash.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let f = File::open(dir).map_err(|e| Error::io(format!("open {}", dir.display()), e))?;
    f.sync_all()
        .map_err(|e| Error::io(format!("sync {}", dir.display()), e))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// synced and renamed over `path`, then the directory is synced. After a crash `path` holds
/// either the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    }
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        f.sync_all()
            .map_err(|e| Error::io(format!("sync {}", tmp.display()), e))?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("rename to {}", path.display()), e))?;
    sync_parent(path)
}

/// Renames `from` to `to` and syncs the directory.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to)
        .map_err(|e| Error::io(format!("rename {} to {}", from.display(), to.display()), e))?;
    sync_parent(to)
}

/// Flags of every read-only open here: no controlling terminal, closed on exec, and
/// non-blocking so that a FIFO or a device put where a file was expected cannot block the
/// open (regular files read the same with it).
fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
}

/// Why an open refused a path: a symbolic link, or not a regular file.
fn refused(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

fn check_regular(file: File) -> io::Result<File> {
    let meta = file.metadata()?;
    if meta.is_file() {
        Ok(file)
    } else {
        Err(refused(
            "not a regular file (a directory, device, FIFO or socket)",
        ))
    }
}

/// Opens `path` for reading, following symbolic links (the path a user gave), and checks
/// with `fstat` that what was opened is a regular file. The open does not block on a FIFO.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(path, read_flags(), Mode::empty())?;
    check_regular(File::from(fd))
}

/// Opens the regular file `rel` below the directory `root` for reading without following
/// any symbolic link below `root`: every directory of `rel` is opened with `O_NOFOLLOW`
/// relative to the one before (so a directory swapped for a link after it was listed is
/// refused too), the file itself with `O_NOFOLLOW`, and `fstat` checks that it is a
/// regular file. `root` itself may be a link (the path a user gave is followed). `rel` must
/// be relative and hold only plain names (no `..`); a link anywhere below `root` gives an
/// error saying so.
pub fn open_beneath(root: &Path, rel: &Path) -> io::Result<File> {
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(refused("not a plain relative path")),
        })
        .collect::<io::Result<_>>()?;
    let Some((file, dirs)) = names.split_last() else {
        return Err(refused("an empty path"));
    };
    let link = |e: rustix::io::Errno| -> io::Error {
        if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
            refused("a symbolic link (links below the source root are not followed)")
        } else {
            e.into()
        }
    };
    let dir_flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY;
    let mut dir = rustix::fs::open(root, dir_flags, Mode::empty())?;
    for d in dirs {
        dir = rustix::fs::openat(&dir, *d, dir_flags | OFlags::NOFOLLOW, Mode::empty())
            .map_err(link)?;
    }
    let fd = rustix::fs::openat(&dir, *file, read_flags() | OFlags::NOFOLLOW, Mode::empty())
        .map_err(link)?;
    check_regular(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_beneath_refuses_links_anywhere_below_the_root() -> Result<()> {
        use std::io::Read;
        use std::os::unix::fs::symlink;
        let io = |e| Error::io("test", e);
        let dir = tempfile::tempdir().map_err(io)?;
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a/cur")).map_err(io)?;
        fs::write(root.join("a/cur/m"), b"mail").map_err(io)?;
        fs::write(dir.path().join("secret"), b"outside").map_err(io)?;
        symlink(dir.path().join("secret"), root.join("a/cur/link")).map_err(io)?;
        symlink(root.join("a/cur"), root.join("a/new")).map_err(io)?;
        fs::create_dir(root.join("a/fifo-dir")).map_err(io)?;
        let mut s = String::new();
        open_beneath(&root, Path::new("a/cur/m"))
            .map_err(io)?
            .read_to_string(&mut s)
            .map_err(io)?;
        assert_eq!(s, "mail");
        for rel in ["a/cur/link", "a/new/m"] {
            let e = open_beneath(&root, Path::new(rel)).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.to_string().contains("symbolic link")),
                "{rel}: {e:?}"
            );
        }
        assert!(open_beneath(&root, Path::new("a/fifo-dir")).is_err());
        // A FIFO neither blocks the open nor is read.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("a/cur/fifo"),
            rustix::fs::FileType::Fifo,
            Mode::RUSR | Mode::WUSR,
            0,
        )
        .map_err(|e| io(e.into()))?;
        let e = open_beneath(&root, Path::new("a/cur/fifo")).err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.to_string().contains("not a regular file")),
            "{e:?}"
        );
        assert!(open_beneath(&root, Path::new("a/../secret")).is_err());
        // The root may itself be a link.
        symlink(&root, dir.path().join("root-link")).map_err(io)?;
        assert!(open_beneath(&dir.path().join("root-link"), Path::new("a/cur/m")).is_ok());
        assert!(open_regular(&dir.path().join("root-link")).is_err());
        assert!(open_regular(&root.join("a/cur/link")).is_ok());
        Ok(())
    }

    #[test]
    fn atomic_write_replaces() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let p = dir.path().join("a/b/state.json");
        write_atomic(&p, b"one")?;
        write_atomic(&p, b"two")?;
        assert_eq!(fs::read(&p).map_err(|e| Error::io("read", e))?, b"two");
        assert_eq!(
            partial_path(&p).file_name().map(|n| n.to_os_string()),
            Some("state.json.partial".into())
        );
        Ok(())
    }
}
