//! Room key files: 64 hex digits and a newline, readable by their owner only, made whole
//! or not at all.

use super::KeyProblem;
use crate::guard::{self, KEY_BYTES, KeyError};
use std::path::{Path, PathBuf};

/// The key in a key file.
pub(super) fn read(path: &Path) -> Result<[u8; KEY_BYTES], KeyProblem> {
    guard::read_key(path).map_err(|source| KeyProblem::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn hex(key: &[u8; KEY_BYTES]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `key` to a new file beside `path` (mode 0600), synced; returns its name.
fn write_beside(path: &Path, key: &[u8; KEY_BYTES]) -> Result<PathBuf, KeyError> {
    Ok(guard::write_private_beside(
        path,
        format!("{}\n", hex(key)).as_bytes(),
    )?)
}

/// The key in `path`, or a new one written there (mode 0600) when there is no file; the
/// flag says whether this call made it. Safe when several processes start at once (as
/// `./s1` and `./s2` may): the file appears whole or not at all, and the first one made
/// is the one everybody uses.
pub fn read_or_make(path: &Path) -> Result<([u8; KEY_BYTES], bool), KeyProblem> {
    if path.exists() {
        return Ok((read(path)?, false));
    }
    let fresh: [u8; KEY_BYTES] = rand::random();
    let wrote = |source| KeyProblem::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = write_beside(path, &fresh).map_err(wrote)?;
    // A hard link never replaces an existing file: if another process won, use its key.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((fresh, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((read(path)?, false)),
        Err(e) => Err(wrote(e.into())),
    }
}

/// Keeps `key` in `path` (mode 0600), replacing another key there at once (a rename).
pub(super) fn keep(path: &Path, key: &[u8; KEY_BYTES]) -> Result<(), KeyError> {
    if guard::read_key(path).is_ok_and(|k| k == *key) {
        return Ok(());
    }
    let tmp = write_beside(path, key)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}
