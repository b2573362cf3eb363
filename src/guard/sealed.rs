//! Datagrams sealed with a symmetric key outside sessions (the room key without
//! sessions; a join key or a pair key with them), and their replay windows: see the
//! layout in the [`guard`](super) module doc.

use super::{Guard, HEADER, KEY_BYTES, MAX_WINDOWS, Refused, SEAL_OVERHEAD, SEALED};
use crate::ids::NodeId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

impl Guard {
    /// Seals a plain datagram with the room key (or returns it as is in a room without a
    /// key): how every datagram travels without sessions. `None` for a keyed room whose
    /// node holds no room key (only an invitation): without sessions it has nothing to
    /// seal with, and sends nothing.
    pub fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let Some(cipher) = &self.cipher else {
            if self.keyed {
                tracing::warn!("no room key to seal with outside sessions: not sent");
                return None;
            }
            return Some(plain.to_vec());
        };
        Some(self.seal_with(SEALED, cipher, plain))
    }

    /// Seals `plain` with `key`, the datagram's first byte `first` (see [`admission`]).
    pub(super) fn seal_under(&self, first: u8, key: &[u8; KEY_BYTES], plain: &[u8]) -> Vec<u8> {
        self.seal_with(first, &XChaCha20Poly1305::new(key.into()), plain)
    }

    fn seal_with(&self, first: u8, cipher: &XChaCha20Poly1305, plain: &[u8]) -> Vec<u8> {
        let pn = self.next_pn.fetch_add(1, Ordering::Relaxed);
        let nonce: [u8; 24] = rand::random();
        let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
        out.push(first);
        out.extend_from_slice(&self.me.0.to_le_bytes());
        out.extend_from_slice(&pn.to_le_bytes());
        out.extend_from_slice(&nonce);
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &out[..HEADER],
                },
            )
            .unwrap_or_default(); // cannot fail for datagram-sized input
        out.extend_from_slice(&sealed);
        out
    }

    /// Checks the source's rate, then opens a datagram sealed with the room key (as every
    /// datagram is in a keyed room without sessions): the plain datagram for the node
    /// (borrowed when the room has no key: nothing to open), or why it was refused.
    pub fn open<'a>(&self, from: SocketAddr, datagram: &'a [u8]) -> Result<Cow<'a, [u8]>, Refused> {
        self.within_rate(from)?;
        let sealed = datagram.first() == Some(&SEALED);
        if !self.is_keyed() {
            return if sealed {
                Err(Refused::NoKey)
            } else {
                Ok(Cow::Borrowed(datagram))
            };
        }
        if !sealed {
            return Err(Refused::NotSealed);
        }
        let (sender, pn, plain) = self.open_sealed(datagram)?;
        self.check_window(sender, pn)?;
        Ok(Cow::Owned(plain))
    }

    /// Opens a datagram sealed with the room key: the sender id and packet number its
    /// header claims, and what it carries (not yet checked against the replay window).
    pub(super) fn open_sealed(&self, datagram: &[u8]) -> Result<(NodeId, u64, Vec<u8>), Refused> {
        let Some(cipher) = &self.cipher else {
            return Err(Refused::NoKey);
        };
        Self::open_with(cipher, datagram)
    }

    /// Opens a datagram sealed with `key` (a join key or a pair key), as
    /// [`Guard::open_sealed`].
    pub(super) fn open_under(
        key: &[u8; KEY_BYTES],
        datagram: &[u8],
    ) -> Result<(NodeId, u64, Vec<u8>), Refused> {
        Self::open_with(&XChaCha20Poly1305::new(key.into()), datagram)
    }

    fn open_with(
        cipher: &XChaCha20Poly1305,
        datagram: &[u8],
    ) -> Result<(NodeId, u64, Vec<u8>), Refused> {
        if datagram.len() < SEAL_OVERHEAD {
            return Err(Refused::Unauthentic);
        }
        let (header, body) = datagram.split_at(HEADER);
        let sender = NodeId(u64::from_le_bytes(
            header[1..9].try_into().unwrap_or_default(),
        ));
        let pn = u64::from_le_bytes(header[9..17].try_into().unwrap_or_default());
        let nonce: [u8; 24] = header[17..41].try_into().unwrap_or_default();
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: header,
                },
            )
            .map_err(|_| Refused::Unauthentic)?;
        Ok((sender, pn, plain))
    }

    /// Records packet number `pn` of `sender` in its room-key replay window.
    pub(super) fn check_window(&self, sender: NodeId, pn: u64) -> Result<(), Refused> {
        let tick = self.window_checks.fetch_add(1, Ordering::Relaxed);
        if self.windows.len() >= MAX_WINDOWS && !self.windows.contains_key(&sender) {
            // Claimed ids cost a window each: the table of them stays bounded. The least
            // recently used quarter goes, so a flood of invented ids pushes out old
            // windows a quarter at a time and never empties the table at once.
            let mut ticks: Vec<u64> = self.windows.iter().map(|w| w.value().1).collect();
            ticks.sort_unstable();
            let keep_from = ticks[ticks.len() / 4];
            self.windows.retain(|_, w| w.1 >= keep_from);
        }
        let mut window = self.windows.entry(sender).or_default();
        window.1 = tick;
        if !window.0.accept(pn) {
            return Err(Refused::Replayed(pn, sender));
        }
        Ok(())
    }
}

/// The replay window's name for what `sender` sends sealed with join key `key`.
pub(super) fn window_of(key: &[u8; KEY_BYTES], sender: NodeId) -> NodeId {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"ringchat join window v1");
    h.update(key);
    h.update(sender.0.to_le_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    NodeId(u64::from_le_bytes(b))
}
