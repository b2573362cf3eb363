//! One-time invitations: secrets a member mints for a newcomer (`invite`), which let one
//! identity ask that member, and that member alone, for a join key.
//!
//! An invitation's secret never seals anything but its holder's asks, and only the member
//! that minted it can open them: no other member holds it. The first identity whose ask
//! opens with a secret has it for good ([`Invitations::claim`]); another identity's ask
//! under the same secret is refused, so an invitation copied after use lets nobody else
//! in, and a member that left cannot come back under a new name with an old one. The one
//! who used it may use it again until it expires (a newcomer that crashed before it was in
//! asks again), [`INVITATION_LIFE`] after it was minted.
//!
//! The table is shared by the program (which mints, for `invite`) and the guard (which
//! opens asks), and kept in a file in the node's data directory (readable by its owner
//! only, replaced whole on every change) so that a restart honours what it handed out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long an invitation can be used after it was minted.
pub const INVITATION_LIFE: Duration = Duration::from_secs(24 * 3600);
/// Invitations a member keeps at most; minting one more forgets the oldest.
pub const MAX_INVITATIONS: usize = 64;
/// The file in a node's data directory that keeps its invitations.
pub const INVITATIONS_FILE: &str = "invitations";

/// One invitation this member minted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Minted {
    secret: [u8; 32],
    /// Milliseconds since the Unix epoch after which it is no longer answered.
    expires: u64,
    /// The identity (ed25519 public key) that used it, once one did.
    bound: Option<[u8; 32]>,
}

/// Why an ask under an invitation is not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Another identity used it first.
    UsedByAnother,
    /// Older than [`INVITATION_LIFE`].
    Expired,
    /// Its first use could not be written to the file (it would be lost on a restart).
    NotKept,
}

/// What an ask under invitation `secret` carries in the clear, for the member that made it
/// to find it (one hash, not one try per invitation kept).
pub fn locator(secret: &[u8; 32]) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"ringchat invitation locator v1")
        .chain_update(secret)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The invitations a member minted and has not forgotten.
#[derive(Default)]
pub struct Invitations {
    /// Where they are kept (`None`: in memory only, `--ephemeral`).
    path: Option<PathBuf>,
    table: Mutex<Vec<Minted>>,
}

impl std::fmt::Debug for Invitations {
    /// Counts only: the secrets must not end up in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kept, used) = self.counts();
        write!(f, "Invitations {{ kept: {kept}, used: {used} }}")
    }
}

/// The wall clock in milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Invitations {
    /// A table kept in memory only.
    pub fn in_memory() -> Self {
        Invitations::default()
    }

    /// The table kept in `path`, read from it if it exists (expired invitations and lines
    /// that cannot be read are left out).
    pub fn kept_in(path: &Path) -> std::io::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let now = unix_millis();
        let table = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let secret = unhex32(parts.next()?)?;
                let expires = parts.next()?.parse().ok()?;
                let bound = match parts.next()? {
                    "-" => None,
                    id => Some(unhex32(id)?),
                };
                Some(Minted {
                    secret,
                    expires,
                    bound,
                })
            })
            .filter(|m| m.expires > now)
            .collect::<Vec<_>>();
        // The newest are kept, as minting would.
        let table = table[table.len().saturating_sub(MAX_INVITATIONS)..].to_vec();
        Ok(Invitations {
            path: Some(path.to_path_buf()),
            table: Mutex::new(table),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Minted>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new invitation's secret, kept (and written to the file) before it is returned;
    /// the oldest is forgotten past [`MAX_INVITATIONS`].
    pub fn mint(&self) -> std::io::Result<[u8; 32]> {
        let secret: [u8; 32] = rand::random();
        let mut table = self.lock();
        let now = unix_millis();
        table.retain(|m| m.expires > now);
        if table.len() >= MAX_INVITATIONS {
            table.remove(0);
        }
        table.push(Minted {
            secret,
            expires: now + INVITATION_LIFE.as_millis() as u64,
            bound: None,
        });
        self.save(&table)?;
        Ok(secret)
    }

    /// Test only: the secrets that may still open an ask, the newest first.
    #[cfg(test)]
    pub(crate) fn live(&self) -> Vec<[u8; 32]> {
        let now = unix_millis();
        let table = self.lock();
        table
            .iter()
            .rev()
            .filter(|m| m.expires > now)
            .map(|m| m.secret)
            .collect()
    }

    /// The secret of the live invitation whose [`locator`] is `locator`, if any.
    pub fn find(&self, locator_of: &[u8; 16]) -> Option<[u8; 32]> {
        let now = unix_millis();
        let table = self.lock();
        table
            .iter()
            .find(|m| m.expires > now && &locator(&m.secret) == locator_of)
            .map(|m| m.secret)
    }

    /// Whether `identity` may use the invitation `secret`: yes if it is the first to (the
    /// invitation is then its alone, and kept so) or used it before.
    pub fn claim(&self, secret: &[u8; 32], identity: &[u8; 32]) -> Result<(), Unusable> {
        let mut table = self.lock();
        let Some(m) = table.iter_mut().find(|m| &m.secret == secret) else {
            return Err(Unusable::Expired);
        };
        if m.expires <= unix_millis() {
            return Err(Unusable::Expired);
        }
        match m.bound {
            Some(id) if &id == identity => Ok(()),
            Some(_) => Err(Unusable::UsedByAnother),
            None => {
                m.bound = Some(*identity);
                if let Err(e) = self.save(&table) {
                    // Not answered: a use that a restart forgets would let a copy in.
                    tracing::warn!("cannot keep an invitation's first use: {e}");
                    if let Some(m) = table.iter_mut().find(|m| &m.secret == secret) {
                        m.bound = None;
                    }
                    return Err(Unusable::NotKept);
                }
                Ok(())
            }
        }
    }

    /// How many invitations are kept, and how many of them were used.
    pub fn counts(&self) -> (usize, usize) {
        let table = self.lock();
        let used = table.iter().filter(|m| m.bound.is_some()).count();
        (table.len(), used)
    }

    /// Writes the table to its file (mode 0600, replaced whole by a rename).
    fn save(&self, table: &[Minted]) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut text = String::new();
        for m in table {
            let bound = m.bound.map_or_else(|| "-".to_string(), |b| hex(&b));
            text.push_str(&format!("{} {} {bound}\n", hex(&m.secret), m.expires));
        }
        let tmp = super::write_private_beside(path, text.as_bytes())?;
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // The rename itself is durable once the directory is.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Test only: makes the invitation `secret` expire now.
    #[cfg(test)]
    pub(crate) fn expire(&self, secret: &[u8; 32]) {
        let mut table = self.lock();
        if let Some(m) = table.iter_mut().find(|m| &m.secret == secret) {
            m.expires = unix_millis().saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_is_for_the_first_identity_that_uses_it() {
        let inv = Invitations::in_memory();
        let s = inv.mint().unwrap();
        assert_eq!(inv.live(), vec![s]);
        let (bob, eve) = ([1u8; 32], [2u8; 32]);
        assert_eq!(inv.claim(&s, &bob), Ok(()));
        assert_eq!(inv.claim(&s, &bob), Ok(()), "bob may ask again");
        assert_eq!(inv.claim(&s, &eve), Err(Unusable::UsedByAnother));
        assert_eq!(inv.claim(&[9u8; 32], &eve), Err(Unusable::Expired));
        assert_eq!(inv.counts(), (1, 1));
        inv.expire(&s);
        assert_eq!(inv.claim(&s, &bob), Err(Unusable::Expired));
        assert!(inv.live().is_empty());
    }

    #[test]
    fn minting_past_the_cap_forgets_the_oldest() {
        let inv = Invitations::in_memory();
        let first = inv.mint().unwrap();
        for _ in 1..MAX_INVITATIONS {
            inv.mint().unwrap();
        }
        assert!(inv.live().contains(&first));
        let newest = inv.mint().unwrap();
        let live = inv.live();
        assert_eq!(live.len(), MAX_INVITATIONS);
        assert_eq!(live[0], newest, "the newest first");
        assert!(!live.contains(&first));
        assert_eq!(inv.claim(&first, &[1; 32]), Err(Unusable::Expired));
    }

    #[test]
    fn the_file_keeps_invitations_and_their_use_across_a_restart() {
        let dir = std::env::temp_dir().join(format!("ringchat-inv-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(INVITATIONS_FILE);
        let inv = Invitations::kept_in(&path).unwrap();
        let (used, unused, gone) = (
            inv.mint().unwrap(),
            inv.mint().unwrap(),
            inv.mint().unwrap(),
        );
        inv.claim(&used, &[1; 32]).unwrap();
        inv.expire(&gone);
        inv.save(&inv.lock()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
        // A line damaged by hand is left out, not fatal.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not an invitation\n");
        std::fs::write(&path, text).unwrap();
        let again = Invitations::kept_in(&path).unwrap();
        assert_eq!(again.live(), vec![unused, used], "the expired one is gone");
        assert_eq!(again.claim(&used, &[2; 32]), Err(Unusable::UsedByAnother));
        assert_eq!(again.claim(&used, &[1; 32]), Ok(()));
        assert_eq!(again.claim(&unused, &[2; 32]), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
