//! The wire side of admission: a grant sealed to an identity and opened by it, addresses
//! as the join keys handed on carry them, and the clock an ask is stamped with.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use curve25519_dalek::MontgomeryPoint;
use sha2::Sha256;
use std::net::SocketAddr;

use super::{GRANT, GRANT_LEN};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(super) fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An address as 19 bytes: the IPv6 (or IPv4-mapped) address, the port, the family.
pub(super) fn addr_bytes(addr: SocketAddr) -> [u8; 19] {
    let mut b = [0u8; 19];
    let (ip, v4) = match addr {
        SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), 1),
        SocketAddr::V6(a) => (*a.ip(), 0),
    };
    b[..16].copy_from_slice(&ip.octets());
    b[16..18].copy_from_slice(&addr.port().to_le_bytes());
    b[18] = v4;
    b
}

pub(super) fn addr_from(b: &[u8]) -> Option<SocketAddr> {
    let octets: [u8; 16] = b.get(..16)?.try_into().ok()?;
    let ip = std::net::Ipv6Addr::from(octets);
    let port = u16::from_le_bytes([*b.get(16)?, *b.get(17)?]);
    match b.get(18)? {
        1 => Some(SocketAddr::new(ip.to_ipv4_mapped()?.into(), port)),
        0 => Some(SocketAddr::new(ip.into(), port)),
        _ => None,
    }
}

/// The AEAD key of a grant: HKDF-SHA256 over the agreed secret, salted with both public
/// keys, and bound to `asked_with`, the key the ask was sealed with: only a node that
/// opened the ask can make a grant that opens (one that saw the ask on the wire, its
/// nonce and perhaps whom it is from, cannot).
pub(super) fn grant_key(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    to: &MontgomeryPoint,
    asked_with: &[u8; 32],
) -> [u8; 32] {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral.as_bytes());
    salt[32..].copy_from_slice(to.as_bytes());
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
    let mut key = [0u8; 32];
    let _ = hk.expand_multi_info(&[b"ringchat join grant v2", asked_with], &mut key);
    key
}

/// Seals join key `key` to the identity `identity` (ed25519 public key), answering the ask
/// with nonce `ask` sealed with `asked_with`; `None` if it is no valid key.
pub(super) fn seal_grant(
    identity: &[u8; 32],
    key: &[u8; 32],
    ask: &[u8; 24],
    asked_with: &[u8; 32],
) -> Option<Vec<u8>> {
    let to = MontgomeryPoint(crate::guard::statics::peer_static(identity)?);
    let secret: [u8; 32] = rand::random();
    let ephemeral = MontgomeryPoint::mul_base_clamped(secret);
    let shared = to.mul_clamped(secret);
    if shared.as_bytes() == &[0u8; 32] {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(&grant_key(&shared, &ephemeral, &to, asked_with).into());
    let mut out = Vec::with_capacity(GRANT_LEN);
    out.push(GRANT);
    out.extend_from_slice(ephemeral.as_bytes());
    // Each ephemeral key seals one grant: the zero nonce is never used twice with a key.
    let mut aad = out.clone();
    aad.extend_from_slice(ask);
    let ct = cipher
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: key,
                aad: &aad,
            },
        )
        .ok()?;
    out.extend_from_slice(&ct);
    Some(out)
}

/// Opens a grant with the X25519 form of our secret `private` (our identity `identity`),
/// as the answer to the ask with nonce `ask` that we sealed with `asked_with`.
pub(super) fn open_grant(
    private: &[u8; 32],
    identity: &[u8; 32],
    grant: &[u8],
    ask: &[u8; 24],
    asked_with: &[u8; 32],
) -> Option<[u8; 32]> {
    if grant.len() != GRANT_LEN || grant[0] != GRANT {
        return None;
    }
    let mine = MontgomeryPoint(crate::guard::statics::peer_static(identity)?);
    let ephemeral = MontgomeryPoint(grant[1..33].try_into().ok()?);
    let shared = ephemeral.mul_clamped(*private);
    if shared.as_bytes() == &[0u8; 32] {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(&grant_key(&shared, &ephemeral, &mine, asked_with).into());
    let mut aad = grant[..33].to_vec();
    aad.extend_from_slice(ask);
    let key = cipher
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: &grant[33..],
                aad: &aad,
            },
        )
        .ok()?;
    key.try_into().ok()
}
