//! Room key files: 64 hex digits, readable by their owner only.

use super::KEY_BYTES;
use std::path::Path;
use thiserror::Error;

/// A room key could not be read or written.
#[derive(Debug, Error)]
pub enum KeyError {
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not 64 hex digits.
    #[error("a room key file holds 64 hex digits")]
    Format,
}

/// Reads a room key file (64 hex digits, whitespace ignored).
pub fn read_key(path: &Path) -> Result<[u8; KEY_BYTES], KeyError> {
    let text = std::fs::read_to_string(path)?;
    let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if hex.len() != KEY_BYTES * 2 {
        return Err(KeyError::Format);
    }
    let mut key = [0u8; KEY_BYTES];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| KeyError::Format)?;
    }
    Ok(key)
}

/// Writes a fresh random room key to `path`, readable by its owner only. Refuses to
/// overwrite an existing file.
pub fn write_new_key(path: &Path) -> Result<(), KeyError> {
    use std::io::Write;
    let key: [u8; KEY_BYTES] = rand::random();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    writeln!(f, "{hex}")?;
    Ok(())
}

/// Writes `bytes` to a new file beside `path` (mode 0600, a name of its own), synced, and
/// returns that file's name: the caller renames or links it into place, so that `path`
/// is made whole or not at all. Makes `path`'s directory if need be.
pub fn write_private_beside(path: &Path, bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".tmp{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let tmp = std::path::PathBuf::from(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}
