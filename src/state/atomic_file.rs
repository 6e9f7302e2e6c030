//! How this daemon touches the state directory: durable file replacement (tmp → fsync →
//! rename → fsync dir) and durable appends, every file opened without following a symlink
//! (`O_NOFOLLOW`) and kept at mode 0600, every directory checked (not a symlink, not
//! world-writable) and tightened to 0700. Someone who can plant a link in the state directory
//! must not make the daemon write through it.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file the daemon writes under the state directory.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory it creates or uses there.
pub const DIR_MODE: u32 = 0o700;

/// `open(2)` flags for every state file: never through a symlink, never a controlling tty.
const NOFOLLOW: i32 = libc::O_NOFOLLOW | libc::O_NOCTTY;

/// A path in the state directory that is not safe to use (a planted link, a directory
/// anyone may write to): carried inside an `io::Error` so callers can tell it apart.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnsafePath(pub String);

/// Whether `err` is an [`UnsafePath`].
pub fn is_unsafe(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<UnsafePath>())
}

fn unsafe_dir(dir: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        UnsafePath(format!("{} {why}", dir.display())),
    )
}

/// Creates `dir` (and parents) with mode 0700, or checks an existing one: it must be a
/// directory, not a symlink (unless `follow`: the operator's `state.dir` itself may be one),
/// not writable by everyone (anyone could plant files in it); a looser mode is tightened to
/// 0700.
pub fn ensure_private_dir(dir: &Path, follow: bool) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    let meta = if follow {
        fs::metadata(dir)?
    } else {
        fs::symlink_metadata(dir)?
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(
            dir,
            "is a symlink; the daemon does not follow links inside its state directory",
        ));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir(dir, "is not a directory"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(unsafe_dir(
            dir,
            &format!(
                "is writable by every user (mode {mode:04o}), so anyone could plant files or links in it; \
                 make it private (chmod 700) or choose another state.dir"
            ),
        ));
    }
    if mode & 0o777 != DIR_MODE {
        fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Explains an `ELOOP` from `O_NOFOLLOW`: the path is a symlink someone planted.
fn explain(path: &Path, err: io::Error) -> io::Error {
    if err.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            UnsafePath(format!(
                "{} is a symlink; the daemon does not follow links in its state directory (remove it)",
                path.display()
            )),
        )
    } else {
        err
    }
}

/// Options that create files 0600 and never follow a symlink at the last path component.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE).custom_flags(NOFOLLOW);
    options
}

/// Opens `path` with `options` (built on [`private_options`]) and makes sure it is 0600
/// even if it existed with a looser mode.
pub fn open_private(path: &Path, options: &OpenOptions) -> io::Result<File> {
    let file = options.open(path).map_err(|e| explain(path, e))?;
    if file.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// Reads `path` without following a symlink.
pub fn read_private(path: &Path) -> io::Result<Vec<u8>> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(NOFOLLOW);
    let mut file = options.open(path).map_err(|e| explain(path, e))?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(bytes)
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content,
/// never a mix. The file is created with mode 0600 and `O_EXCL`; whatever sits at the
/// temporary path (a leftover, or a planted symlink) is removed and the temporary file
/// created anew, so nothing outside the directory is ever written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` into the temporary file.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let mut tmp_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = create_fresh(&tmp)?;
    write(&mut file)?;
    // Made durable through the handle that wrote it (a checkpoint is saved per acknowledged
    // batch; opening the file again to sync it was a tenth of each save's cost).
    file.sync_all()?;
    drop(file);
    name_durably(&tmp, path)
}

/// Writes a new file at `path` (mode 0600) with `write`, as [`create_fresh`] makes it. Not
/// yet durable: [`put_in_place`] makes it so.
pub fn write_new(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    write(&mut create_fresh(path)?)
}

/// Creates `path` (mode 0600) with `O_EXCL`, which never follows a symlink; only when
/// something already sits there (a leftover, or a planted link) is it removed and the file
/// created again, so the usual save costs no `unlink` of a name that is not there.
fn create_fresh(path: &Path) -> io::Result<File> {
    let mut options = private_options();
    options.write(true).create_new(true);
    match open_private(path, &options) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open_private(path, &options)
        }
        created => created,
    }
}

/// Replaces `path` with the file at `from` (beside it, written by [`write_new`]), durably:
/// a crash leaves either the old or the new content, never a mix.
pub fn put_in_place(from: &Path, path: &Path) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(NOFOLLOW);
    options.open(from).map_err(|e| explain(from, e))?.sync_all()?;
    name_durably(from, path)
}

/// Renames the durable file `from` to `path` and makes the new name durable.
fn name_durably(from: &Path, path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    // rename(2) replaces a symlink at `path` itself, never its target.
    fs::rename(from, path)?;
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()
}

/// Opens (creating, mode 0600) the lock file at `path` without truncating it.
pub fn open_lock(path: &Path) -> io::Result<File> {
    open_private(path, private_options().create(true).truncate(false).write(true))
}

/// Appends `bytes` to `path` (created 0600, never through a symlink) and waits until they
/// are on disk.
pub fn append_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = open_private(path, private_options().append(true).create(true))?;
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn an_atomic_write_replaces_the_file_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(mode(&path), 0o600);
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn a_temporary_file_a_killed_process_left_is_replaced_not_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let leftover = dir.path().join("state.json.tmp");
        fs::write(&leftover, b"a longer half-written checkpoint").expect("leftover");
        fs::set_permissions(&leftover, Permissions::from_mode(0o644)).expect("loose mode");
        write_atomic(&path, b"new").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        assert_eq!(mode(&path), 0o600);
        assert!(!leftover.exists());
    }

    #[test]
    fn appends_accumulate_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dead-letter.ndjson");
        append_durable(&path, b"a\n").expect("append");
        append_durable(&path, b"b\n").expect("append");
        assert_eq!(fs::read(&path).expect("read"), b"a\nb\n");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_symlink_planted_at_the_temporary_path_is_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        let path = dir.path().join("audit_logs.json");
        symlink(&victim, dir.path().join("audit_logs.json.tmp")).expect("planted link");
        write_atomic(&path, b"checkpoint").expect("written beside the link");
        assert_eq!(
            fs::read(&victim).expect("victim"),
            b"precious",
            "the link's target is untouched"
        );
        assert_eq!(fs::read(&path).expect("checkpoint"), b"checkpoint");
        assert!(!fs::symlink_metadata(&path).expect("meta").file_type().is_symlink());
    }

    #[test]
    fn a_symlink_planted_at_an_appended_file_or_the_lock_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        let dead = dir.path().join("dead-letter.ndjson");
        symlink(&victim, &dead).expect("planted link");
        let err = append_durable(&dead, b"line\n").expect_err("refused");
        assert!(err.to_string().contains("symlink"), "{err}");
        let lock = dir.path().join("lock");
        symlink(&victim, &lock).expect("planted link");
        assert!(open_lock(&lock).is_err());
        assert!(read_private(&dead).is_err());
        assert_eq!(fs::read(&victim).expect("victim"), b"precious");
    }

    #[test]
    fn an_existing_file_with_a_loose_mode_is_tightened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = dir.path().join("lock");
        fs::write(&lock, b"").expect("lock");
        fs::set_permissions(&lock, Permissions::from_mode(0o644)).expect("chmod");
        open_lock(&lock).expect("opened");
        assert_eq!(mode(&lock), 0o600);
    }

    #[test]
    fn directories_are_tightened_and_world_writable_or_linked_ones_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loose = dir.path().join("loose");
        fs::create_dir(&loose).expect("dir");
        fs::set_permissions(&loose, Permissions::from_mode(0o755)).expect("chmod");
        ensure_private_dir(&loose, true).expect("tightened");
        assert_eq!(mode(&loose), 0o700);

        let open = dir.path().join("open");
        fs::create_dir(&open).expect("dir");
        fs::set_permissions(&open, Permissions::from_mode(0o777)).expect("chmod");
        let err = ensure_private_dir(&open, true).expect_err("world-writable");
        assert!(err.to_string().contains("writable by every user"), "{err}");

        let link = dir.path().join("link");
        symlink(&loose, &link).expect("link");
        assert!(ensure_private_dir(&link, false).is_err(), "a linked subdirectory");
        ensure_private_dir(&link, true).expect("the operator's own state.dir may be a link");
    }
}
