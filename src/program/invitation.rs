//! Invitations: one line that holds what a newcomer needs to join a keyed room, a
//! member's address and a secret.
//!
//! ```text
//! ringchat2:<host>:<port>/<secret: 64 hex digits><check: 8 hex digits>
//! ringchat1:<host>:<port>/<room key: 64 hex digits><check: 8 hex digits>
//! ```
//!
//! `ringchat<n>` names the kind:
//!
//! - **`ringchat2`, one-time** (what `invite` prints): the secret is one the member at the
//!   address minted ([`crate::guard::invitations`]); it lets the first identity that uses
//!   it ask that member, and no other, for a way in, within a day. It is no room key: a
//!   newcomer that used it, or a member that left, cannot let anyone else in with it.
//! - **`ringchat1`, standing** (`ringchat invite --room FILE`): the secret is the room key
//!   itself, as a `--room-key-file` holds it; anyone holding it can join, as anyone
//!   holding the key file can, for as long as the room uses that key.
//!
//! The address is the member's (an IPv6 one in brackets, `[::1]:5001`; a host name works
//! too). The check is the first 4 bytes of SHA-256 over the kind's [`check_domain`] and
//! the secret, so that a secret changed in copying is caught before anything is sent (the
//! address is left out of it: it may be edited by hand, say to the member's address on
//! another network).

use crate::guard::{Invitations, KEY_BYTES};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;

/// The newest version of the format this ringchat writes and reads (one-time).
pub const VERSION: u32 = 2;
/// The version of a standing invitation, which carries the room key.
pub const STANDING: u32 = 1;

/// What the check digits are computed over, before the secret, for version `version`.
pub fn check_domain(version: u32) -> &'static [u8] {
    if version == STANDING {
        b"ringchat invitation 1"
    } else {
        b"ringchat invitation 2"
    }
}
/// Bytes of the check.
const CHECK_BYTES: usize = 4;
/// Hex digits after the `/`: the key, then the check.
const SECRET_DIGITS: usize = 2 * (KEY_BYTES + CHECK_BYTES);

/// An invitation: where to join, and the secret that lets a newcomer in.
#[derive(Clone, PartialEq, Eq)]
pub struct Invitation {
    /// A member's address, `host:port`.
    pub contact: String,
    /// The secret: a one-time invitation's, or the room key.
    pub key: [u8; KEY_BYTES],
    /// Whether it is a one-time invitation (`ringchat2`) rather than the room key.
    pub once: bool,
}

impl fmt::Debug for Invitation {
    /// Leaves the key out, so that it cannot end up in a log by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitation")
            .field("contact", &self.contact)
            .field("once", &self.once)
            .finish_non_exhaustive()
    }
}

/// Why a text is not a usable invitation. Nothing was sent or changed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InvitationError {
    /// Not `ringchat<version>:` at the start.
    #[error("an invitation starts with ringchat{VERSION}: (or ringchat{STANDING}:)")]
    Prefix,
    /// Another version of the format.
    #[error(
        "this is a version {0} invitation and this ringchat reads versions {STANDING} and {VERSION} (was it made by a newer ringchat?)"
    )]
    Version(u64),
    /// No `/` with the key after the address.
    #[error(
        "it has no key: an invitation is ringchat{VERSION}:HOST:PORT/KEY (cut short when copied?)"
    )]
    NoKey,
    /// The address part is not `host:port`.
    #[error("its address {0:?} is not HOST:PORT")]
    Address(String),
    /// The key part is too short or too long.
    #[error(
        "its key part has {0} characters where an invitation has {SECRET_DIGITS} hex digits (cut short or run into other text when copied?)"
    )]
    KeyLength(usize),
    /// The key part has a character that is not a hex digit.
    #[error("its key part has {0:?}, which is not a hex digit")]
    NotHex(char),
    /// The check digits do not match the key.
    #[error("its check digits do not match its key (a character changed when copied?)")]
    Check,
}

/// Whether `text` is meant as an invitation (`ringchat<digits>:` at its start) rather than
/// an address; whether it is a good one is for [`Invitation::parse`] to say.
pub fn looks_like_one(text: &str) -> bool {
    version_and_rest(text.trim()).is_some()
}

/// `ringchat<digits>:<rest>` as the version digits and the rest.
fn version_and_rest(text: &str) -> Option<(&str, &str)> {
    let after = text.strip_prefix("ringchat")?;
    let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (version, rest) = after.split_at(digits);
    let rest = rest.strip_prefix(':')?;
    (!version.is_empty()).then_some((version, rest))
}

fn check(version: u32, key: &[u8; KEY_BYTES]) -> [u8; CHECK_BYTES] {
    let digest = Sha256::new()
        .chain_update(check_domain(version))
        .chain_update(key)
        .finalize();
    let mut out = [0u8; CHECK_BYTES];
    out.copy_from_slice(&digest[..CHECK_BYTES]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `contact` has the shape `host:port` (a name or an address; IPv6 in brackets).
fn is_host_port(contact: &str) -> bool {
    let Some((host, port)) = contact.rsplit_once(':') else {
        return false;
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        }
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

impl Invitation {
    /// Reads an invitation (surrounding whitespace ignored, hex digits in either case).
    pub fn parse(text: &str) -> Result<Invitation, InvitationError> {
        let text = text.trim();
        let (version, rest) = version_and_rest(text).ok_or(InvitationError::Prefix)?;
        let version: u32 = match version.parse::<u64>() {
            Ok(v) if v == u64::from(VERSION) || v == u64::from(STANDING) => v as u32,
            Ok(v) => return Err(InvitationError::Version(v)),
            Err(_) => return Err(InvitationError::Version(u64::MAX)),
        };
        let (contact, secret) = rest.rsplit_once('/').ok_or(InvitationError::NoKey)?;
        if !is_host_port(contact) {
            return Err(InvitationError::Address(contact.to_string()));
        }
        if let Some(bad) = secret.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(InvitationError::NotHex(bad));
        }
        if secret.len() != SECRET_DIGITS {
            return Err(InvitationError::KeyLength(secret.chars().count()));
        }
        let mut bytes = [0u8; KEY_BYTES + CHECK_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            // Every character is an ASCII hex digit: this cannot fail.
            *b = u8::from_str_radix(&secret[2 * i..2 * i + 2], 16)
                .map_err(|_| InvitationError::NotHex('?'))?;
        }
        let (key_part, check_part) = bytes.split_at(KEY_BYTES);
        let mut key = [0u8; KEY_BYTES];
        key.copy_from_slice(key_part);
        if check(version, &key) != check_part {
            return Err(InvitationError::Check);
        }
        Ok(Invitation {
            contact: contact.to_string(),
            key,
            once: version != STANDING,
        })
    }

    /// Its version: [`VERSION`] for a one-time invitation, [`STANDING`] for the room key.
    pub fn version(&self) -> u32 {
        if self.once { VERSION } else { STANDING }
    }
}

impl fmt::Display for Invitation {
    /// The invitation as one line (it holds the secret: show it only to its owner).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.version();
        write!(
            f,
            "ringchat{version}:{}/{}{}",
            self.contact,
            hex(&self.key),
            hex(&check(version, &self.key))
        )
    }
}

/// What mints the one-time invitations `invite` prints: the node's table of invitations
/// (shared with its guard, which answers them) and its address.
#[derive(Clone, Debug)]
pub struct Inviter {
    minted: Arc<Invitations>,
    addr: SocketAddr,
}

impl PartialEq for Inviter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.minted, &other.minted) && self.addr == other.addr
    }
}

impl Eq for Inviter {}

impl Inviter {
    /// Mints into `minted` for the node at `addr`.
    pub fn new(minted: Arc<Invitations>, addr: SocketAddr) -> Inviter {
        Inviter { minted, addr }
    }

    /// A new one-time invitation to this node, as one line; `Err` with why when it cannot
    /// be kept (its file cannot be written).
    pub fn mint(&self) -> Result<String, String> {
        let key = self
            .minted
            .mint()
            .map_err(|e| format!("cannot keep a new invitation: {e}"))?;
        let contact = self.addr.to_string();
        Ok(Invitation {
            contact,
            key,
            once: true,
        }
        .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invitation {
        Invitation {
            contact: "127.0.0.1:5001".into(),
            key: core::array::from_fn(|i| i as u8 * 7),
            once: false,
        }
    }

    #[test]
    fn a_one_time_invitation_is_version_2_and_its_check_tells_the_kinds_apart() {
        let once = Invitation {
            once: true,
            ..sample()
        };
        let text = once.to_string();
        assert!(
            text.starts_with("ringchat2:127.0.0.1:5001/00070e15"),
            "{text}"
        );
        assert_eq!(Invitation::parse(&text), Ok(once));
        // The same secret under the other version's name: the check says it is damaged.
        let renamed = text.replace("ringchat2:", "ringchat1:");
        assert_eq!(Invitation::parse(&renamed), Err(InvitationError::Check));
    }

    #[test]
    fn round_trips_and_reads_the_documented_shape() {
        let inv = sample();
        let text = inv.to_string();
        assert!(
            text.starts_with("ringchat1:127.0.0.1:5001/00070e15"),
            "{text}"
        );
        assert_eq!(text.len(), "ringchat1:127.0.0.1:5001/".len() + 72);
        assert_eq!(Invitation::parse(&text), Ok(inv.clone()));
        assert_eq!(
            Invitation::parse(&format!(
                "  {}\n",
                text.to_uppercase().replace("RINGCHAT1", "ringchat1")
            )),
            Ok(inv),
            "whitespace around it and upper-case digits are fine"
        );
        for contact in ["[::1]:5001", "chat.example.org:7000", "10.0.0.2:1"] {
            let inv = Invitation {
                contact: contact.into(),
                ..sample()
            };
            assert_eq!(Invitation::parse(&inv.to_string()), Ok(inv));
        }
    }

    #[test]
    fn the_address_is_outside_the_check() {
        let text = sample().to_string().replace("127.0.0.1", "192.168.1.20");
        let inv = Invitation::parse(&text).unwrap();
        assert_eq!(inv.contact, "192.168.1.20:5001");
    }

    #[test]
    fn every_damage_has_its_own_reason() {
        let good = sample().to_string();
        let cases: Vec<(String, InvitationError)> = vec![
            (
                good.replace("ringchat1:", "ringchat3:"),
                InvitationError::Version(3),
            ),
            (
                good.replace("ringchat1:", "ringchat:"),
                InvitationError::Prefix,
            ),
            (
                good[..good.find('/').unwrap()].to_string(),
                InvitationError::NoKey,
            ),
            (
                good.replace("127.0.0.1:5001", "127.0.0.1"),
                InvitationError::Address("127.0.0.1".into()),
            ),
            (
                good.replace("127.0.0.1:5001", "127.0.0.1:0"),
                InvitationError::Address("127.0.0.1:0".into()),
            ),
            (
                good.replace("127.0.0.1:5001", "[nope]:5001"),
                InvitationError::Address("[nope]:5001".into()),
            ),
            (
                good[..good.len() - 1].to_string(),
                InvitationError::KeyLength(71),
            ),
            (format!("{good}00"), InvitationError::KeyLength(74)),
            (
                format!("{}g", &good[..good.len() - 1]),
                InvitationError::NotHex('g'),
            ),
            (format!("{good} hello"), InvitationError::NotHex(' ')),
        ];
        for (text, why) in cases {
            assert_eq!(Invitation::parse(&text), Err(why), "{text}");
        }
        // One digit of the key changed: the check catches it.
        let at = good.find('/').unwrap() + 1;
        let mut changed = good.clone().into_bytes();
        changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
        let changed = String::from_utf8(changed).unwrap();
        assert_eq!(Invitation::parse(&changed), Err(InvitationError::Check));
    }

    #[test]
    fn tells_invitations_from_addresses() {
        assert!(looks_like_one(&sample().to_string()));
        assert!(looks_like_one("ringchat7:whatever"));
        assert!(looks_like_one(" ringchat1:"));
        for address in [
            "127.0.0.1:5001",
            "ringchat:5001",
            "ringchat.example.org:5001",
            "[::1]:5001",
        ] {
            assert!(!looks_like_one(address), "{address}");
        }
    }

    #[test]
    fn debug_leaves_the_key_out() {
        let shown = format!("{:?}", sample());
        assert!(shown.contains("127.0.0.1:5001"));
        assert!(!shown.contains("00070e15"), "{shown}");
    }
}
