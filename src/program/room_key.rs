//! Which room key a node uses, and where it is kept: a room is keyed unless `--insecure`
//! opens it.
//!
//! The key comes from the first of these that applies:
//!
//! 1. `--insecure`: none (an open room); giving a key as well is a contradiction.
//! 2. an invitation: a standing one (`--join ringchat1:...`) holds the room key, kept in
//!    the data directory so that a restart needs no invitation (an `--ephemeral` node keeps
//!    it in memory only); a one-time one (`ringchat2:...`, what `invite` prints) holds no
//!    room key but a secret its inviter answers for this node's identity alone: the node
//!    holds no room key ([`Access::Invited`]), keeps the secret beside it
//!    ([`DATA_DIR_INVITATION`]), and once in, comes back as a member (under its pair keys
//!    with the others, see [`crate::guard::admission`]);
//! 3. `--room-key-file FILE`: the key in FILE (a node that creates a room makes FILE
//!    when there is none);
//! 4. `--local-key`: the key every node of this user on this machine shares
//!    ([`local_key_path`], made on first use): how `./s1`, `./s2` and `./s3` share one;
//! 5. the key kept in the node's data directory ([`DATA_DIR_KEY`]);
//! 6. a node that creates a room makes a new key, kept in its data directory (readable by
//!    its owner only), or in memory with `--ephemeral`. A node that joins with an address
//!    only and no key anywhere is refused before it starts, with how to get an
//!    invitation.
//!
//! [`choose`] runs before anything is bound or opened (so a node that cannot have a key
//! fails at once); [`settle`] once the data directory is open, and writes what is kept.

use super::invitation::Invitation;
use crate::guard::{KEY_BYTES, KeyError};
use files::{keep, read};
use std::path::{Path, PathBuf};
use thiserror::Error;

mod files;
pub use files::read_or_make;

/// The room key's file in a node's data directory.
pub const DATA_DIR_KEY: &str = "room.key";
/// The file in a node's data directory that keeps the one-time invitation's secret it
/// joined with (it holds no room key).
pub const DATA_DIR_INVITATION: &str = "invitation.key";
/// The local room key's file in ringchat's data folder (see [`local_key_path`]).
pub const LOCAL_KEY: &str = "local-room.key";

/// The key `--local-key` uses: `$XDG_DATA_HOME/ringchat/local-room.key`, else
/// `~/.local/share/ringchat/local-room.key`.
pub fn local_key_path() -> PathBuf {
    crate::identity::data_home().join(LOCAL_KEY)
}

/// Where a room key may come from, as the command line gives them.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeySources<'a> {
    /// `--insecure`.
    pub insecure: bool,
    /// `--join` with an invitation.
    pub invitation: Option<&'a Invitation>,
    /// `--room-key-file` (or `RINGCHAT_ROOM_KEY_FILE`).
    pub room_key_file: Option<&'a Path>,
    /// `--local-key`: use (and make, if need be) the key at [`local_key_path`].
    pub local_key: Option<&'a Path>,
    /// The address `--join` gives (no invitation); `None` when the node creates a room.
    pub contact: Option<&'a str>,
}

impl KeySources<'_> {
    fn creates(&self) -> bool {
        self.contact.is_none() && self.invitation.is_none()
    }
}

/// Where a node's room key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `--room-key-file`; `made` when this run created the file.
    File {
        /// The file.
        path: PathBuf,
        /// Whether this run made it.
        made: bool,
    },
    /// An invitation; `kept` is the file in the data directory it was written to.
    Invitation {
        /// Where the key is kept for a restart (`None` with `--ephemeral`).
        kept: Option<PathBuf>,
    },
    /// `--local-key`.
    Local {
        /// The file.
        path: PathBuf,
        /// Whether this run made it.
        made: bool,
    },
    /// The key kept in the data directory by an earlier run.
    Kept(PathBuf),
    /// Made by this run for the room it creates: kept in the data directory, or in memory
    /// only (`None`, with `--ephemeral`).
    Made(Option<PathBuf>),
}

/// How a node's room is protected.
#[derive(Clone, PartialEq, Eq)]
pub enum Access {
    /// `--insecure`: no key; anyone who can reach the room can join, read and post.
    Open,
    /// Every datagram is sealed; `key` is the room key.
    Keyed {
        /// The room key.
        key: [u8; KEY_BYTES],
        /// Where it came from.
        origin: KeyOrigin,
    },
    /// Every datagram is sealed; the node holds no room key but a one-time invitation's
    /// `secret`, for asking its inviter (and its pair keys, once a member).
    Invited {
        /// The invitation's secret.
        secret: [u8; KEY_BYTES],
        /// Where it is kept for a restart (`None` with `--ephemeral`).
        kept: Option<PathBuf>,
    },
}

impl std::fmt::Debug for Access {
    /// Leaves the key out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Open => write!(f, "Open"),
            Access::Keyed { origin, .. } => write!(f, "Keyed({origin:?})"),
            Access::Invited { kept, .. } => write!(f, "Invited({kept:?})"),
        }
    }
}

impl Access {
    /// The room key, if any.
    pub fn key(&self) -> Option<[u8; KEY_BYTES]> {
        match self {
            Access::Keyed { key, .. } => Some(*key),
            Access::Open | Access::Invited { .. } => None,
        }
    }

    /// The one-time invitation's secret, for a node that holds no room key.
    pub fn invitation(&self) -> Option<[u8; KEY_BYTES]> {
        match self {
            Access::Invited { secret, .. } => Some(*secret),
            _ => None,
        }
    }

    /// Whether every datagram is sealed.
    pub fn is_keyed(&self) -> bool {
        !matches!(self, Access::Open)
    }

    /// What to tell the user at start about the key, if anything: where a key this run
    /// made or kept is.
    pub fn note(&self) -> Option<String> {
        let origin = match self {
            Access::Keyed { origin, .. } => origin,
            Access::Invited {
                kept: Some(path), ..
            } => {
                return Some(format!(
                    "the invitation is kept in {} for a restart; once in, this node comes back as a member without it",
                    path.display()
                ));
            }
            _ => return None,
        };
        match origin {
            KeyOrigin::File { path, made: true } => Some(format!(
                "made a new room key in {} (readable by you only)",
                path.display()
            )),
            KeyOrigin::Local { path, made: true } => Some(format!(
                "made the local room key {} (readable by you only), which ./s1, ./s2 and ./s3 share",
                path.display()
            )),
            KeyOrigin::Made(Some(path)) => Some(format!(
                "made a room key for this room, kept in {} (readable by you only)",
                path.display()
            )),
            KeyOrigin::Made(None) => Some(
                "made a room key for this run only (--ephemeral); to keep one, give --room-key-file FILE"
                    .into(),
            ),
            KeyOrigin::Invitation { kept: Some(path) } => Some(format!(
                "the invitation's room key is kept in {} for a restart",
                path.display()
            )),
            _ => None,
        }
    }
}

/// What [`choose`] decided before the data directory is open.
#[derive(Clone, PartialEq, Eq)]
pub enum Choice {
    /// No key (`--insecure`).
    Open,
    /// A key from the command line (an invitation, a file, the local key).
    Given {
        /// The key.
        key: [u8; KEY_BYTES],
        /// Where it came from.
        origin: KeyOrigin,
    },
    /// A one-time invitation's secret (no room key).
    Invited([u8; KEY_BYTES]),
    /// The data directory's key (or invitation): read, or made for a room this node
    /// creates.
    DataDir,
}

impl std::fmt::Debug for Choice {
    /// Leaves the key out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Open => write!(f, "Open"),
            Choice::Given { origin, .. } => write!(f, "Given({origin:?})"),
            Choice::Invited(_) => write!(f, "Invited"),
            Choice::DataDir => write!(f, "DataDir"),
        }
    }
}

/// Why a node cannot start with the key it was given (or without one).
#[derive(Debug, Error)]
pub enum KeyProblem {
    /// `--insecure` with a key.
    #[error(
        "--insecure opens the room, and {0} gives it a key: give one or the other (rooms are keyed without --insecure)"
    )]
    Contradiction(&'static str),
    /// An invitation and `--room-key-file` with different keys.
    #[error("the invitation and the room key file {0} hold different keys: give one of them")]
    TwoKeys(PathBuf),
    /// A one-time invitation and `--room-key-file`.
    #[error(
        "the invitation is a one-time one (no room key) and {0} is a room key: give one of them"
    )]
    InvitationAndKey(PathBuf),
    /// A joiner with neither a key nor `--insecure`.
    #[error(
        "--join {0} gives an address but no room key, and rooms are keyed: ask a member for an invitation (they type invite) and start with --join <invitation>; or give the key with --room-key-file FILE; to join an open room, add --insecure"
    )]
    NoKey(String),
    /// A key file that cannot be read (missing, unreadable, not a key).
    #[error("cannot read the room key {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyError,
    },
    /// A key that cannot be written where it is to be kept.
    #[error("cannot keep the room key in {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyError,
    },
}

impl KeyProblem {
    /// The process's exit code: 2 for flags that cannot work together or lack a key (as
    /// for any bad flag), 1 for a file that cannot be used.
    pub fn exit_code(&self) -> u8 {
        match self {
            KeyProblem::Contradiction(_)
            | KeyProblem::TwoKeys(_)
            | KeyProblem::InvitationAndKey(_)
            | KeyProblem::NoKey(_) => 2,
            KeyProblem::Read { .. } | KeyProblem::Write { .. } => 1,
        }
    }
}

/// Decides the key from the command line, before anything is bound or opened.
/// `data_dir` is the node's data directory when it is known already (`None` when
/// `--ephemeral`, or when it depends on a port not picked yet: then it is a new one).
/// Reads key files, and makes the file `--local-key` or a creator's `--room-key-file`
/// names when there is none; writes nothing else.
pub fn choose(src: &KeySources<'_>, data_dir: Option<&Path>) -> Result<Choice, KeyProblem> {
    if src.insecure {
        if src.invitation.is_some() {
            return Err(KeyProblem::Contradiction("the invitation"));
        }
        if src.room_key_file.is_some() {
            return Err(KeyProblem::Contradiction(
                "--room-key-file (or RINGCHAT_ROOM_KEY_FILE)",
            ));
        }
        return Ok(Choice::Open);
    }
    if let Some(invitation) = src.invitation.filter(|i| i.once) {
        if let Some(path) = src.room_key_file {
            return Err(KeyProblem::InvitationAndKey(path.to_path_buf()));
        }
        return Ok(Choice::Invited(invitation.key));
    }
    if let Some(invitation) = src.invitation {
        if let Some(path) = src.room_key_file
            && read(path)? != invitation.key
        {
            return Err(KeyProblem::TwoKeys(path.to_path_buf()));
        }
        let origin = KeyOrigin::Invitation { kept: None };
        return Ok(Choice::Given {
            key: invitation.key,
            origin,
        });
    }
    if let Some(path) = src.room_key_file {
        let (key, made) = if src.creates() {
            read_or_make(path)?
        } else {
            (read(path)?, false)
        };
        let origin = KeyOrigin::File {
            path: path.to_path_buf(),
            made,
        };
        return Ok(Choice::Given { key, origin });
    }
    if let Some(path) = src.local_key {
        let (key, made) = read_or_make(path)?;
        let origin = KeyOrigin::Local {
            path: path.to_path_buf(),
            made,
        };
        return Ok(Choice::Given { key, origin });
    }
    if let Some(contact) = src.contact {
        let kept = data_dir
            .is_some_and(|d| d.join(DATA_DIR_KEY).exists() || d.join(DATA_DIR_INVITATION).exists());
        if !kept {
            return Err(KeyProblem::NoKey(contact.to_string()));
        }
    }
    Ok(Choice::DataDir)
}

/// Settles the key once the node's data directory (`None` with `--ephemeral`) is open:
/// keeps an invitation's key there, reads the key kept there, or makes one for a room
/// this node creates.
pub fn settle(
    choice: Choice,
    src: &KeySources<'_>,
    data_dir: Option<&Path>,
) -> Result<Access, KeyProblem> {
    match choice {
        Choice::Open => Ok(Access::Open),
        Choice::Given {
            key,
            origin: KeyOrigin::Invitation { .. },
        } => {
            let kept = match data_dir {
                None => None,
                Some(dir) => {
                    let path = dir.join(DATA_DIR_KEY);
                    keep(&path, &key).map_err(|source| KeyProblem::Write {
                        path: path.clone(),
                        source,
                    })?;
                    Some(path)
                }
            };
            let origin = KeyOrigin::Invitation { kept };
            Ok(Access::Keyed { key, origin })
        }
        Choice::Given { key, origin } => Ok(Access::Keyed { key, origin }),
        Choice::Invited(secret) => {
            let kept = match data_dir {
                None => None,
                Some(dir) => {
                    let path = dir.join(DATA_DIR_INVITATION);
                    keep(&path, &secret).map_err(|source| KeyProblem::Write {
                        path: path.clone(),
                        source,
                    })?;
                    // A room key an earlier run kept here is another room's: a restart
                    // would take it before the invitation.
                    let old = dir.join(DATA_DIR_KEY);
                    if old.exists() {
                        std::fs::remove_file(&old).map_err(|e| KeyProblem::Write {
                            path: old,
                            source: e.into(),
                        })?;
                    }
                    Some(path)
                }
            };
            Ok(Access::Invited { secret, kept })
        }
        Choice::DataDir => {
            let Some(dir) = data_dir else {
                if let Some(contact) = src.contact {
                    return Err(KeyProblem::NoKey(contact.to_string()));
                }
                let origin = KeyOrigin::Made(None);
                return Ok(Access::Keyed {
                    key: rand::random(),
                    origin,
                });
            };
            let path = dir.join(DATA_DIR_KEY);
            if path.exists() {
                let key = read(&path)?;
                let origin = KeyOrigin::Kept(path);
                return Ok(Access::Keyed { key, origin });
            }
            let invited = dir.join(DATA_DIR_INVITATION);
            if invited.exists() {
                let secret = read(&invited)?;
                return Ok(Access::Invited {
                    secret,
                    kept: Some(invited),
                });
            }
            if let Some(contact) = src.contact {
                return Err(KeyProblem::NoKey(contact.to_string()));
            }
            let (key, made) = read_or_make(&path)?;
            let origin = if made {
                KeyOrigin::Made(Some(path))
            } else {
                KeyOrigin::Kept(path)
            };
            Ok(Access::Keyed { key, origin })
        }
    }
}

#[cfg(test)]
mod tests;
