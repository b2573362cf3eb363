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
}
