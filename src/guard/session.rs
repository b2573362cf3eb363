//! One session with one peer: the keys a completed Noise IK handshake gave both sides,
//! used with an explicit counter as the nonce (snow's `StatelessTransportState`, as
//! datagrams may arrive in any order), and a sliding replay window over the counters
//! received. The counters are range-checked: a datagram whose counter is at or past
//! [`REJECT_AFTER_MESSAGES`] is refused before any work, and the window moves only for a
//! datagram that opened, so a forged counter changes nothing.

use super::frame::{TRANSPORT, TRANSPORT_HEADER, TRANSPORT_OVERHEAD};
use super::replay::ReplayWindow;
use super::statics::StaticKeys;
use snow::{HandshakeState, StatelessTransportState};
use std::time::{Duration, Instant};

/// The Noise protocol: IK (the initiator knows the responder's static key, here from the
/// member table, and sends its own encrypted in the first message), X25519, ChaCha20-
/// Poly1305, BLAKE2s; the choice of WireGuard.
pub const NOISE: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Bound into every handshake: a ringchat session is no other protocol's.
const PROLOGUE: &[u8] = b"ringchat sessions v1";
/// A session this old is renewed by a new handshake when we next send on it (WireGuard's
/// REKEY_AFTER_TIME).
pub const REKEY_AFTER: Duration = Duration::from_secs(120);
/// A session this old is neither sent on nor opens anything (WireGuard's
/// REJECT_AFTER_TIME).
pub const REJECT_AFTER: Duration = Duration::from_secs(180);
/// The first counter never used nor accepted (WireGuard's REJECT_AFTER_MESSAGES); a
/// session that reaches it is renewed.
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);

/// Why a transport datagram did not open in its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Its counter is past what a session ever uses.
    OutOfRange,
    /// Its counter was seen, or is older than the window.
    Replayed,
    /// The session's keys do not open it.
    Unauthentic,
}

fn builder(keys: &StaticKeys) -> Result<snow::Builder<'_>, snow::Error> {
    let params = NOISE.parse()?;
    snow::Builder::new(params)
        .local_private_key(&keys.private)?
        .prologue(PROLOGUE)
}

/// A handshake to the peer whose static public key is `remote`, as its initiator.
pub fn initiator(keys: &StaticKeys, remote: &[u8; 32]) -> Result<HandshakeState, snow::Error> {
    builder(keys)?.remote_public_key(remote)?.build_initiator()
}

/// A handshake as its responder (the initiator's static key arrives in its first message).
pub fn responder(keys: &StaticKeys) -> Result<HandshakeState, snow::Error> {
    builder(keys)?.build_responder()
}

/// One session's keys, indices, counters and window.
pub struct Session {
    /// Our index for it: transport datagrams to us carry it.
    pub local: u32,
    /// The peer's index for it: our transport datagrams carry it.
    pub remote: u32,
    transport: StatelessTransportState,
    next_counter: u64,
    window: ReplayWindow,
    /// When the handshake completed.
    pub created: Instant,
    /// Whether we may send on it: at once for the initiator; for the responder, once a
    /// transport datagram opened in it (a replayed initiation makes a session the real
    /// initiator knows nothing of, which must never be sent on).
    pub confirmed: bool,
}

impl Session {
    /// A session from a finished handshake.
    pub fn new(
        handshake: HandshakeState,
        local: u32,
        remote: u32,
        now: Instant,
    ) -> Result<Self, snow::Error> {
        let confirmed = handshake.is_initiator();
        Ok(Session {
            local,
            remote,
            transport: handshake.into_stateless_transport_mode()?,
            next_counter: 0,
            window: ReplayWindow::default(),
            created: now,
            confirmed,
        })
    }

    /// Whether the session is too old to use at all.
    pub fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) >= REJECT_AFTER
    }

    /// Whether it is time to renew it.
    pub fn stale(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) >= REKEY_AFTER
            || self.next_counter >= REJECT_AFTER_MESSAGES / 2
    }

    /// Seals `plain` as a transport datagram for the peer, or `None` once the counters
    /// are used up.
    pub fn seal(&mut self, plain: &[u8]) -> Option<Vec<u8>> {
        let counter = self.next_counter;
        if counter >= REJECT_AFTER_MESSAGES {
            return None;
        }
        self.next_counter += 1;
        let mut out = vec![0u8; plain.len() + TRANSPORT_OVERHEAD];
        out[0] = TRANSPORT;
        out[1..5].copy_from_slice(&self.remote.to_le_bytes());
        out[5..13].copy_from_slice(&counter.to_le_bytes());
        let n = self
            .transport
            .write_message(counter, plain, &mut out[TRANSPORT_HEADER..])
            .ok()?;
        out.truncate(TRANSPORT_HEADER + n);
        Some(out)
    }

    /// Opens transport datagram `datagram` (whose header names this session and
    /// `counter`): the plain datagram, checked against the replay window and recorded in it.
    pub fn open(&mut self, counter: u64, datagram: &[u8]) -> Result<Vec<u8>, OpenError> {
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(OpenError::OutOfRange);
        }
        // The window counts from 1.
        let pn = counter + 1;
        if !self.window.fresh(pn) {
            return Err(OpenError::Replayed);
        }
        let body = &datagram[TRANSPORT_HEADER..];
        let mut plain = vec![0u8; body.len()];
        let n = self
            .transport
            .read_message(counter, body, &mut plain)
            .map_err(|_| OpenError::Unauthentic)?;
        plain.truncate(n);
        self.window.accept(pn);
        self.confirmed = true;
        Ok(plain)
    }
}
