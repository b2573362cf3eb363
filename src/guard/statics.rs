//! Static keys for the sessions: the X25519 form of a user's ed25519 identity, so that a
//! member's Noise static key follows from the ed25519 key its member-table entry holds and
//! nobody needs a second key pair.
//!
//! An ed25519 secret expands (SHA-512) to a scalar whose multiple of the base point is the
//! public key; the same scalar used by X25519 gives the Montgomery form of that public key
//! (RFC 7748's birational map). `ed25519-dalek` provides both halves
//! (`SigningKey::to_scalar_bytes`, `VerifyingKey::to_montgomery`), which is what this module
//! calls: no curve arithmetic here.

use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::HashMap;

/// This node's static key pair for the sessions, from its ed25519 identity.
#[derive(Clone)]
pub struct StaticKeys {
    /// The X25519 private key (the ed25519 secret's expanded scalar; X25519 clamps it).
    pub(super) private: [u8; 32],
    /// The X25519 public key, as peers derive it from our ed25519 public key.
    pub public: [u8; 32],
}

impl StaticKeys {
    /// The static key pair of the identity whose ed25519 secret is `identity`.
    pub fn from_identity(identity: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(identity);
        StaticKeys {
            private: signing.to_scalar_bytes(),
            public: signing.verifying_key().to_montgomery().to_bytes(),
        }
    }
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticKeys({:02x?}..)", &self.public[..4])
    }
}

/// The X25519 static public key of the member whose ed25519 public key is `ed25519`, or
/// `None` if those bytes are no valid ed25519 key (such a member gets no session).
pub fn peer_static(ed25519: &[u8; 32]) -> Option<[u8; 32]> {
    let key = VerifyingKey::from_bytes(ed25519).ok()?;
    if key.is_weak() {
        return None;
    }
    Some(key.to_montgomery().to_bytes())
}

/// [`peer_static`] of the members of the last two tables given, by ed25519 key: the member
/// table changes often (a member goes offline, the leader changes) while its members' keys
/// seldom do, and each derivation costs two field inversions (with 100 members, several
/// milliseconds at every node for every change). A key no table of the last two named is
/// forgotten, so it holds at most two tables' worth.
#[derive(Default)]
pub struct PeerStatics {
    last: HashMap<[u8; 32], Option<[u8; 32]>>,
    this: HashMap<[u8; 32], Option<[u8; 32]>>,
}

impl PeerStatics {
    /// Starts a new table: what the table before it did not name is forgotten.
    pub fn next_table(&mut self) {
        self.last = std::mem::take(&mut self.this);
    }

    /// [`peer_static`] of `ed25519`, derived again only if neither this table nor the one
    /// before named it.
    pub fn of(&mut self, ed25519: &[u8; 32]) -> Option<[u8; 32]> {
        if let Some(known) = self.this.get(ed25519) {
            return *known;
        }
        let derived = match self.last.get(ed25519) {
            Some(known) => *known,
            None => peer_static(ed25519),
        };
        self.this.insert(*ed25519, derived);
        derived
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two halves agree: the public key a peer derives from our ed25519 key is the one
    /// X25519 makes of our private key (checked through snow's own key agreement: a
    /// handshake to that public key completes).
    #[test]
    fn peers_derive_our_static_key_from_our_identity() {
        let mine = StaticKeys::from_identity(&[3u8; 32]);
        let ed = SigningKey::from_bytes(&[3u8; 32])
            .verifying_key()
            .to_bytes();
        assert_eq!(peer_static(&ed), Some(mine.public));
        let theirs = StaticKeys::from_identity(&[4u8; 32]);
        let params: snow::params::NoiseParams = super::super::session::NOISE.parse().unwrap();
        let mut i = snow::Builder::new(params.clone())
            .local_private_key(&theirs.private)
            .unwrap()
            .remote_public_key(&mine.public)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(params)
            .local_private_key(&mine.private)
            .unwrap()
            .build_responder()
            .unwrap();
        let mut m1 = [0u8; 200];
        let mut m2 = [0u8; 200];
        let mut p = [0u8; 200];
        let n = i.write_message(b"", &mut m1).unwrap();
        r.read_message(&m1[..n], &mut p).unwrap();
        assert_eq!(r.get_remote_static(), Some(&theirs.public[..]));
        let n = r.write_message(b"", &mut m2).unwrap();
        i.read_message(&m2[..n], &mut p).unwrap();
        assert!(i.is_handshake_finished() && r.is_handshake_finished());
        assert_eq!(peer_static(&[0u8; 32]), None, "a weak key gets no session");
    }

    /// The memo gives what `peer_static` gives, for valid and invalid keys alike, and keeps
    /// no key that two tables in a row did not name.
    #[test]
    fn remembered_statics_are_the_derived_ones_and_forgotten_after_two_tables() {
        let key = |b: u8| SigningKey::from_bytes(&[b; 32]).verifying_key().to_bytes();
        let bad = [0xffu8; 32];
        let mut memo = PeerStatics::default();
        memo.next_table();
        for k in [key(1), key(2), bad] {
            assert_eq!(memo.of(&k), peer_static(&k));
            assert_eq!(memo.of(&k), peer_static(&k), "asked again in one table");
        }
        memo.next_table();
        assert_eq!(memo.of(&key(1)), peer_static(&key(1)));
        memo.next_table();
        assert!(memo.last.contains_key(&key(1)));
        assert!(!memo.last.contains_key(&key(2)) && !memo.this.contains_key(&key(2)));
        assert_eq!(memo.last.len() + memo.this.len(), 1);
    }
}
