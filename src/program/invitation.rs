//! Invitations: one line that holds what a newcomer needs to join a keyed room, a
//! member's address and the room key.
//!
//! ```text
//! ringchat1:<host>:<port>/<key: 64 hex digits><check: 8 hex digits>
//! ```
//!
//! `ringchat1` names the format's version. The address is any member's (an IPv6 one in
//! brackets, `[::1]:5001`; a host name works too); the key is the room key as a
//! `--room-key-file` holds it; the check is the first 4 bytes of SHA-256 over
//! [`CHECK_DOMAIN`] and the key, so that a key changed in copying is caught before
//! anything is sent (the address is left out of it: it may be edited by hand, say to a
//! member's address on another network). Anyone holding an invitation can join the room
//! and read it, as anyone holding the key file can.

use crate::guard::KEY_BYTES;
use sha2::{Digest, Sha256};
use std::fmt;
use thiserror::Error;

/// The version of the format this ringchat writes and reads.
pub const VERSION: u32 = 1;
/// What the check digits are computed over, before the key.
pub const CHECK_DOMAIN: &[u8] = b"ringchat invitation 1";
/// Bytes of the check.
const CHECK_BYTES: usize = 4;
/// Hex digits after the `/`: the key, then the check.
const SECRET_DIGITS: usize = 2 * (KEY_BYTES + CHECK_BYTES);

/// An invitation: where to join, and the room key.
#[derive(Clone, PartialEq, Eq)]
pub struct Invitation {
    /// A member's address, `host:port`.
    pub contact: String,
    /// The room key.
    pub key: [u8; KEY_BYTES],
}

impl fmt::Debug for Invitation {
    /// Leaves the key out, so that it cannot end up in a log by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitation")
            .field("contact", &self.contact)
            .finish_non_exhaustive()
    }
}

/// Why a text is not a usable invitation. Nothing was sent or changed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InvitationError {
    /// Not `ringchat<version>:` at the start.
    #[error("an invitation starts with ringchat{VERSION}:")]
    Prefix,
    /// Another version of the format.
    #[error(
        "this is a version {0} invitation and this ringchat reads version {VERSION} (was it made by a newer ringchat?)"
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

fn check(key: &[u8; KEY_BYTES]) -> [u8; CHECK_BYTES] {
    let digest = Sha256::new()
        .chain_update(CHECK_DOMAIN)
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
        if version != VERSION.to_string() {
            return Err(InvitationError::Version(
                version.parse().unwrap_or(u64::MAX),
            ));
        }
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
        if check(&key) != check_part {
            return Err(InvitationError::Check);
        }
        Ok(Invitation {
            contact: contact.to_string(),
            key,
        })
    }
}

impl fmt::Display for Invitation {
    /// The invitation as one line (it holds the key: show it only to its owner).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ringchat{VERSION}:{}/{}{}",
            self.contact,
            hex(&self.key),
            hex(&check(&self.key))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invitation {
        Invitation {
            contact: "127.0.0.1:5001".into(),
            key: core::array::from_fn(|i| i as u8 * 7),
        }
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
                good.replace("ringchat1:", "ringchat2:"),
                InvitationError::Version(2),
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
