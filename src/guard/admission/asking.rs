//! Asks and grants: an ask sealed with one of the keys a node outside the room holds (its
//! kind and tag in the clear, so the node asked tries one key), its answer, and taking the
//! grant that answers it (see the [`admission`](super) module doc).

use super::grant::{open_grant, seal_grant, unix_millis};
use super::{
    ASK, ASK_BODY, ASK_FRESH, ASK_KIND, ASK_LEN, Admission, GRANTS_PER_IP, GRANTS_PER_SECOND,
    JOIN_KEY, JOIN_KEYS_PER_ADDR, JoinKey, KIND_INVITATION, KIND_PAIR, KIND_ROOM, MAX_ASKS_SEEN,
    MAX_JOINING, NONCES_KEPT, Send, TAG_LEN, addr_bytes,
};
use crate::guard::frame::u64_at;
use crate::guard::invitations::{self, Invitations, Unusable};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::Sha256;
use std::net::SocketAddr;
use std::time::Instant;

/// What an ask is sealed with, in the order a node outside the room turns to them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AskWith {
    /// The pair key with the member at the address (this node is a member coming back).
    Pair([u8; 32]),
    /// A room key every member that holds it answers to.
    Room([u8; 32]),
    /// A one-time invitation's secret: only the member that minted it answers.
    Invitation([u8; 32]),
}

impl std::fmt::Debug for AskWith {
    /// The kind only: keys must not end up in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AskWith::Pair(_) => "Pair",
            AskWith::Room(_) => "Room",
            AskWith::Invitation(_) => "Invitation",
        })
    }
}

impl AskWith {
    /// The key, and what goes in the clear: the kind and the tag.
    fn parts(&self) -> ([u8; 32], u8, [u8; TAG_LEN]) {
        match self {
            AskWith::Pair(k) => (*k, KIND_PAIR, pair_tag(k)),
            AskWith::Room(k) => (*k, KIND_ROOM, [0; TAG_LEN]),
            AskWith::Invitation(k) => (*k, KIND_INVITATION, invitations::locator(k)),
        }
    }
}

/// The tag of an ask under pair key `pair`: what the answering member looks the pair up
/// by (the same from either side; it names neither identity).
pub(super) fn pair_tag(pair: &[u8; 32]) -> [u8; TAG_LEN] {
    use sha2::Digest;
    let digest = Sha256::new()
        .chain_update(b"ringchat ask tag v1")
        .chain_update(pair)
        .finalize();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&digest[..TAG_LEN]);
    tag
}

/// The keys an ask may open with here.
#[derive(Clone, Copy, Default)]
pub struct AskKeys<'a> {
    /// The room key, if this node holds one to answer with.
    pub room: Option<&'a [u8; 32]>,
    /// The invitations this node minted.
    pub invitations: Option<&'a Invitations>,
}

impl Admission {
    /// An ask for the node at `to`, sealed with one of `with` (each ask there turns to
    /// the next, so that every kind of key this node holds is tried): this node's
    /// identity and the time (milliseconds since the Unix epoch), so that a captured ask
    /// is not answered again (see [`ASK_FRESH`]). `None` if `with` is empty.
    pub fn ask(&mut self, now: Instant, with: &[AskWith], to: SocketAddr) -> Option<Vec<u8>> {
        if with.is_empty() {
            return None;
        }
        let nonce: [u8; 24] = rand::random();
        if self.asked.len() >= MAX_JOINING && !self.asked.contains_key(&to) {
            self.asked.clear();
        }
        let asked = self.asked.entry(to).or_default();
        let pick = with[asked.sent as usize % with.len()];
        asked.sent = asked.sent.wrapping_add(1);
        asked.at = Some(now);
        asked.nonces.push_front((nonce, pick.parts().0));
        asked.nonces.truncate(NONCES_KEPT);
        Some(self.ask_at(pick, unix_millis(), nonce))
    }

    /// An ask as [`Admission::ask`] makes it, at time `millis`, with `nonce`.
    pub(super) fn ask_at(&self, with: AskWith, millis: u64, nonce: [u8; 24]) -> Vec<u8> {
        let (key, kind, tag) = with.parts();
        let mut out = Vec::with_capacity(ASK_LEN);
        out.push(ASK);
        out.extend_from_slice(&nonce);
        let mut body = self.identity.to_vec();
        body.extend_from_slice(&millis.to_le_bytes());
        let mut aad = vec![ASK, kind];
        aad.extend_from_slice(&tag);
        let cipher = XChaCha20Poly1305::new(&key.into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &body,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        out.extend_from_slice(&sealed);
        out.extend_from_slice(&aad[1..]);
        out.resize(ASK_LEN, 0);
        out
    }

    /// Answers an ask that came from `from`, if it opens here with the key its kind and
    /// tag name: the pair key with a member in our table, an invitation this node minted
    /// (for the identity that first used it only), or the room key. The answer is the
    /// grant for the asker (bound to the key the ask was sealed with), and the join key for
    /// every online member (in the room; a node outside it answers too, for the join
    /// exchange with itself: nodes restarting at once tell each other so). `Err` with why
    /// an ask is not answered.
    pub fn answer(
        &mut self,
        now: Instant,
        from: SocketAddr,
        keys: AskKeys<'_>,
        ask: &[u8],
        send: &mut Vec<Send>,
    ) -> Result<(), &'static str> {
        if ask.len() != ASK_LEN || ask[0] != ASK {
            return Err("a malformed ask");
        }
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&ask[1..25]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&ask[ASK_KIND + 1..ASK_KIND + 1 + TAG_LEN]);
        let (key, member, invitation) = match ask[ASK_KIND] {
            KIND_PAIR => {
                let theirs = *self
                    .known
                    .get(&tag)
                    .ok_or("an ask under a pair key with no member of our table")?;
                (self.pair_key(&theirs), Some(theirs), None)
            }
            KIND_INVITATION => {
                let secret = keys
                    .invitations
                    .and_then(|i| i.find(&tag))
                    .ok_or("an ask under an invitation not made here, or expired")?;
                (secret, None, Some(secret))
            }
            KIND_ROOM => (
                *keys
                    .room
                    .ok_or("an ask under a room key, and none is held here")?,
                None,
                None,
            ),
            _ => return Err("a malformed ask"),
        };
        let mut aad = vec![ASK];
        aad.extend_from_slice(&ask[ASK_KIND..ASK_KIND + 1 + TAG_LEN]);
        let body = XChaCha20Poly1305::new(&key.into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ask[25..ASK_KIND],
                    aad: &aad,
                },
            )
            .map_err(|_| "an ask that does not open with the key it names")?;
        if body.len() != ASK_BODY {
            return Err("a malformed ask");
        }
        let mut identity = [0u8; 32];
        identity.copy_from_slice(&body[..32]);
        if member.is_some() && crate::guard::statics::peer_static(&identity) != member {
            return Err("an ask under a member's pair key for another identity");
        }
        let at = u64_at(&body, 32);
        if unix_millis().abs_diff(at) > ASK_FRESH.as_millis() as u64 {
            return Err("an ask that is not fresh (a replay, or a clock far off)");
        }
        if self.asks_seen.contains_key(&nonce) {
            return Err("an ask answered before (a replay)");
        }
        let second = now.saturating_duration_since(self.started).as_secs();
        if self.grant_second.0 != second {
            self.grant_second = (second, 0);
            self.grants_by_ip.clear();
        }
        let by_ip = self.grants_by_ip.get(&from.ip()).copied().unwrap_or(0);
        if self.grant_second.1 >= GRANTS_PER_SECOND || by_ip >= GRANTS_PER_IP {
            return Err("an ask over the grants' rate");
        }
        if self.asks_seen.len() >= MAX_ASKS_SEEN {
            // Those no longer fresh go; if all are, the oldest quarter (never all at
            // once, and a flood of asks never stops admission).
            self.asks_seen
                .retain(|_, seen| now.saturating_duration_since(*seen) < 2 * ASK_FRESH);
            if self.asks_seen.len() >= MAX_ASKS_SEEN {
                let mut seen: Vec<(Instant, [u8; 24])> =
                    self.asks_seen.iter().map(|(n, at)| (*at, *n)).collect();
                seen.sort_unstable();
                for (_, n) in &seen[..seen.len() / 4] {
                    self.asks_seen.remove(n);
                }
            }
        }
        let join_key: [u8; 32] = rand::random();
        let grant = seal_grant(&identity, &join_key, &nonce, &key)
            .ok_or("an ask from no valid identity")?;
        if let (Some(secret), Some(invitations)) = (invitation, keys.invitations) {
            invitations
                .claim(&secret, &identity)
                .map_err(|why| match why {
                    Unusable::UsedByAnother => "an ask under an invitation another identity used",
                    Unusable::Expired => "an ask under an invitation that expired",
                    Unusable::NotKept => "an ask under an invitation whose use cannot be kept",
                })?;
        }
        self.asks_seen.insert(nonce, now);
        self.grant_second.1 += 1;
        *self.grants_by_ip.entry(from.ip()).or_default() += 1;
        self.counts.granted += 1;
        self.remember(now, from, join_key);
        send.push(Send::Wire(from, grant));
        let mut hand = vec![JOIN_KEY];
        hand.extend_from_slice(&addr_bytes(from));
        hand.extend_from_slice(&join_key);
        for addr in &self.online {
            send.push(Send::Session(*addr, hand.clone()));
        }
        Ok(())
    }

    /// Takes a grant that came from `from`: `true` if it opened and answers one of the
    /// last few asks this node (outside the room) sent there (then no other grant for them
    /// opens).
    pub fn take_grant(&mut self, now: Instant, from: SocketAddr, grant: &[u8]) -> bool {
        if !self.outside {
            return false;
        }
        // One grant per ask, bound to it: an old grant replayed does not open.
        let Some(asked) = self.asked.get_mut(&from) else {
            return false;
        };
        let Some(key) = asked.nonces.iter().find_map(|(nonce, with)| {
            open_grant(&self.private, &self.identity, grant, nonce, with)
        }) else {
            return false;
        };
        asked.nonces.clear();
        self.own.retain(|k| k.key != key);
        self.own.push_front(JoinKey {
            key,
            used: now,
            confirmed: true,
            by: Some(from),
        });
        self.own.truncate(JOIN_KEYS_PER_ADDR);
        self.counts.taken += 1;
        true
    }
}
