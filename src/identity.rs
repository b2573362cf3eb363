//! A user's identity: an ed25519 secret kept in a file readable by its owner only,
//! created on first use. The name a user registers in a room is bound to it.

use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// An identity file could not be read or created.
#[derive(Debug, Error)]
pub enum IdentityError {
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not 64 hex digits.
    #[error("an identity file holds 64 hex digits")]
    Format,
}

/// Where the identity lives unless `--identity` says otherwise:
/// `$XDG_DATA_HOME/ringchat/identity`, else `~/.local/share/ringchat/identity`.
pub fn default_path() -> PathBuf {
    data_home().join("identity")
}

/// ringchat's folder in the user's data directory: `$XDG_DATA_HOME/ringchat`, else
/// `~/.local/share/ringchat`.
pub fn data_home() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ringchat")
}

fn parse(text: &str) -> Result<[u8; 32], IdentityError> {
    let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if hex.len() != 64 {
        return Err(IdentityError::Format);
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| IdentityError::Format)?;
    }
    Ok(out)
}

/// Reads the identity at `path`, creating a new one (mode 0600) if there is none. Safe
/// when several processes start at once: the file appears whole or not at all.
pub fn load_or_create(path: &Path) -> Result<[u8; 32], IdentityError> {
    match std::fs::read_to_string(path) {
        Ok(text) => return parse(&text),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let secret: [u8; 32] = rand::random();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        writeln!(f, "{hex}")?;
        f.sync_all()?;
    }
    // A hard link never replaces an existing file: if another process won, use its key.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(secret),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            parse(&std::fs::read_to_string(path)?)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_read_back_private() {
        let dir = std::env::temp_dir().join(format!("ringchat-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("identity");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "nonsense").unwrap();
        assert!(matches!(load_or_create(&path), Err(IdentityError::Format)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
