//! The cryptography of what members say: room messages signed by their origin, direct
//! messages sealed to their recipient. Pure functions over well-kept crates
//! (`ed25519-dalek`, `curve25519-dalek`, `sha2`, `hkdf`, `chacha20poly1305`); nothing here
//! keeps state, reads a clock or draws randomness of its own.
//!
//! # Room messages: signed runs
//!
//! Each origin chains its room messages: message `i` carries the origin's chain value
//! before it (its *link*), and its own chain value is [`chain`] over the link and every
//! field the origin wrote (its node id, name, number, times and text). The origin signs
//! the chain value of the last message of each *run* (the messages it hands the leader
//! at once) with its ed25519 identity, the key its name is bound to: one signature vouches
//! for the whole run, as a change to any message of it changes the signed value. The
//! leader sequences a run as one block of consecutive numbers, so a member checks a run
//! from the first message it holds to the signed one, whatever it was sent first.
//!
//! # Direct messages: sealed to the recipient
//!
//! A direct message is sealed once per recipient: an ephemeral X25519 key agreed with the
//! recipient's identity (ed25519 keys used for X25519, as `crypto_box` and libsodium do;
//! see `SigningKey::to_scalar_bytes`), HKDF-SHA256, ChaCha20-Poly1305 with the header
//! (origin, id, sender, recipients, and which recipient, with its key) as associated
//! data. Inside, the text and the sender's ed25519 signature over the header, the
//! recipient's key and the text: the recipient shows who sent it only once that signature
//! checks against the key bound to the sender's name. Whoever keeps the copy for an offline
//! recipient, or holds the room key, reads nothing of it.

use crate::ids::{DmId, Lamport, NodeId, OriginSeq, WallMillis};
use crate::wire::{ChainLink, PublicKey, SignatureBytes};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};
use thiserror::Error;

/// Bytes a sealed direct message adds to its text: the ephemeral public key, the AEAD
/// tag, the signature and the encoded times and lengths inside (at most).
pub const DIRECT_OVERHEAD: usize = 32 + 16 + (1 + 64) + 10 + 10 + 2;

/// What one room message is, as its origin wrote it: the fields its chain value covers.
#[derive(Clone, Copy, Debug)]
pub struct Written<'a> {
    /// The origin's node id.
    pub origin: NodeId,
    /// The origin's name.
    pub name: &'a str,
    /// The origin's number for the message.
    pub origin_seq: OriginSeq,
    /// The origin's Lamport time at send.
    pub lamport: Lamport,
    /// The origin's wall-clock time at send.
    pub sent_at: WallMillis,
    /// The text.
    pub text: &'a str,
}

/// Appends `bytes` with its length in front (so two fields can never run into each other).
fn framed(h: &mut impl sha2::Digest, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The link of an origin's first room message.
pub fn chain_start(origin: NodeId) -> ChainLink {
    let mut h = Sha256::new();
    h.update(b"ringchat room chain start v1");
    h.update(origin.0.to_le_bytes());
    h.finalize().into()
}

/// The chain value of message `w` whose link is `link`.
pub fn chain(link: &ChainLink, w: &Written<'_>) -> ChainLink {
    let mut h = Sha256::new();
    h.update(b"ringchat room chain v1");
    h.update(link);
    h.update(w.origin.0.to_le_bytes());
    framed(&mut h, w.name.as_bytes());
    h.update(w.origin_seq.0.to_le_bytes());
    h.update(w.lamport.0.to_le_bytes());
    h.update(w.sent_at.0.to_le_bytes());
    framed(&mut h, w.text.as_bytes());
    h.finalize().into()
}

/// What the origin signs to close a run ending in chain value `value`.
fn run_message(value: &ChainLink) -> [u8; 52] {
    let mut m = [0u8; 52];
    m[..20].copy_from_slice(b"ringchat room run v1");
    m[20..].copy_from_slice(value);
    m
}

/// The origin's seal over the run ending in chain value `value`.
pub fn seal_run(identity: &SigningKey, value: &ChainLink) -> SignatureBytes {
    SignatureBytes(identity.sign(&run_message(value)).to_bytes())
}

/// Whether `seal` is `key`'s seal over the run ending in chain value `value`.
pub fn check_run(key: &PublicKey, value: &ChainLink, seal: &SignatureBytes) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|k| {
        k.verify(&run_message(value), &Signature::from_bytes(&seal.0))
            .is_ok()
    })
}

/// Checks several runs at once (ed25519 batch verification: about half the cost of one
/// check each); `true` only if every one checks.
pub fn check_runs(runs: &[(PublicKey, ChainLink, SignatureBytes)]) -> bool {
    if runs.len() == 1 {
        let (k, v, s) = &runs[0];
        return check_run(k, v, s);
    }
    let mut keys = Vec::with_capacity(runs.len());
    for (k, _, _) in runs {
        match VerifyingKey::from_bytes(k) {
            Ok(k) => keys.push(k),
            Err(_) => return false,
        }
    }
    let messages: Vec<[u8; 52]> = runs.iter().map(|(_, v, _)| run_message(v)).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
    let sigs: Vec<Signature> = runs
        .iter()
        .map(|(_, _, s)| Signature::from_bytes(&s.0))
        .collect();
    ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok()
}

/// A direct message's header: what the seal binds besides the text. The same on both
/// sides: the sender fills it in, the recipient rebuilds it from the copy it got.
#[derive(Clone, Copy, Debug)]
pub struct DirectHeader<'a> {
    /// The sending node.
    pub origin: NodeId,
    /// The sender's id for the message.
    pub id: DmId,
    /// The sender's name.
    pub from_name: &'a str,
    /// Every recipient's name.
    pub to: &'a [String],
    /// The recipient this copy is sealed for.
    pub recipient: &'a str,
    /// That recipient's identity.
    pub recipient_key: &'a PublicKey,
}

impl DirectHeader<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut out = b"ringchat direct v1".to_vec();
        out.extend_from_slice(&self.origin.0.to_le_bytes());
        out.extend_from_slice(&self.id.0.to_le_bytes());
        push_framed(&mut out, self.from_name.as_bytes());
        out.extend_from_slice(&(self.to.len() as u64).to_le_bytes());
        for name in self.to {
            push_framed(&mut out, name.as_bytes());
        }
        push_framed(&mut out, self.recipient.as_bytes());
        out.extend_from_slice(self.recipient_key);
        out
    }
}

fn push_framed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A direct message's content, as its recipient opens it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectContent {
    /// The sender's Lamport time at send.
    pub lamport: Lamport,
    /// The sender's wall-clock time at send.
    pub sent_at: WallMillis,
    /// The text.
    pub text: String,
}

/// What travels inside the seal.
#[derive(Serialize, Deserialize)]
struct Inner {
    content: DirectContent,
    signature: SignatureBytes,
}

/// What the sender signs: the header (recipient and its key included), the sender's own
/// key, and the content.
fn direct_signed(
    header: &DirectHeader<'_>,
    sender: &PublicKey,
    content: &DirectContent,
) -> Vec<u8> {
    let mut m = header.bytes();
    m.extend_from_slice(sender);
    m.extend_from_slice(&content.lamport.0.to_le_bytes());
    m.extend_from_slice(&content.sent_at.0.to_le_bytes());
    push_framed(&mut m, content.text.as_bytes());
    m
}

/// Why a direct message could not be sealed or opened. Nothing changes either way.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    /// A key is not a valid ed25519 public key, or agrees on no secret (a low-order point).
    #[error("not a usable identity key")]
    BadKey,
    /// Too short to hold an ephemeral key and a tag.
    #[error("sealed message too short")]
    Short,
    /// The seal does not open with this recipient's key and this header: not for us, or
    /// altered on the way.
    #[error("does not open for this recipient")]
    Unopened,
    /// Opened, but the content is not well formed.
    #[error("malformed content")]
    Malformed,
    /// Opened, but the sender's signature does not check against the key bound to its name.
    #[error("the sender's signature does not check")]
    Forged,
}

/// The AEAD key agreed between ephemeral `ephemeral` and recipient `recipient`.
fn direct_key(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    recipient: &MontgomeryPoint,
) -> [u8; 32] {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral.as_bytes());
    salt[32..].copy_from_slice(recipient.as_bytes());
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
    let mut key = [0u8; 32];
    // 32 bytes is always a valid length for HKDF-SHA256.
    let _ = hk.expand(b"ringchat direct key v1", &mut key);
    key
}

/// The X25519 form of an ed25519 identity key; `None` if it is not a valid key.
fn montgomery(key: &PublicKey) -> Option<MontgomeryPoint> {
    VerifyingKey::from_bytes(key)
        .ok()
        .map(|k| k.to_montgomery())
}

/// Seals `content` from `sender` for the recipient named in `header`. `entropy` (fresh
/// random bytes) is mixed with the sender's secret and the message into the ephemeral
/// key, so a weak random source alone can never repeat or reveal one.
pub fn seal_direct(
    sender: &SigningKey,
    header: &DirectHeader<'_>,
    content: &DirectContent,
    entropy: [u8; 32],
) -> Result<Vec<u8>, SealError> {
    let recipient = montgomery(header.recipient_key).ok_or(SealError::BadKey)?;
    let sender_key = sender.verifying_key().to_bytes();
    let signed = direct_signed(header, &sender_key, content);
    let signature = SignatureBytes(sender.sign(&signed).to_bytes());
    let mut h = Sha512::new();
    h.update(b"ringchat direct ephemeral v1");
    h.update(sender.to_scalar_bytes());
    h.update(entropy);
    h.update(&signed);
    let wide = h.finalize();
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&wide[..32]);
    let ephemeral = MontgomeryPoint::mul_base_clamped(secret);
    let shared = recipient.mul_clamped(secret);
    if shared.as_bytes() == &[0u8; 32] {
        return Err(SealError::BadKey);
    }
    let cipher = ChaCha20Poly1305::new(&direct_key(&shared, &ephemeral, &recipient).into());
    let inner = postcard::to_allocvec(&Inner {
        content: content.clone(),
        signature,
    })
    .map_err(|_| SealError::Malformed)?;
    let aad = header.bytes();
    // Each key seals one message: the zero nonce is never used twice with a key.
    let ct = cipher
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: &inner,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Malformed)?;
    let mut out = Vec::with_capacity(32 + ct.len());
    out.extend_from_slice(ephemeral.as_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a copy sealed for `me` (the recipient named in `header`) and checks that the
/// sender whose identity is `sender` signed it.
pub fn open_direct(
    me: &SigningKey,
    header: &DirectHeader<'_>,
    sender: &PublicKey,
    sealed: &[u8],
) -> Result<DirectContent, SealError> {
    if sealed.len() < 32 + 16 {
        return Err(SealError::Short);
    }
    let (eph, ct) = sealed.split_at(32);
    let mut eph_bytes = [0u8; 32];
    eph_bytes.copy_from_slice(eph);
    let ephemeral = MontgomeryPoint(eph_bytes);
    let mine = me.verifying_key().to_montgomery();
    let shared = ephemeral.mul_clamped(me.to_scalar_bytes());
    if shared.as_bytes() == &[0u8; 32] {
        return Err(SealError::Unopened);
    }
    let cipher = ChaCha20Poly1305::new(&direct_key(&shared, &ephemeral, &mine).into());
    let aad = header.bytes();
    let inner = cipher
        .decrypt(&Nonce::default(), Payload { msg: ct, aad: &aad })
        .map_err(|_| SealError::Unopened)?;
    let (inner, rest) =
        postcard::take_from_bytes::<Inner>(&inner).map_err(|_| SealError::Malformed)?;
    if !rest.is_empty() {
        return Err(SealError::Malformed);
    }
    let key = VerifyingKey::from_bytes(sender).map_err(|_| SealError::BadKey)?;
    let signed = direct_signed(header, sender, &inner.content);
    key.verify_strict(&signed, &Signature::from_bytes(&inner.signature.0))
        .map_err(|_| SealError::Forged)?;
    Ok(inner.content)
}

#[cfg(test)]
mod tests;
