//! The datagrams of the sessions, told apart by their first byte (a plain datagram starts
//! with the protocol version, 2; one sealed with the room key with [`super::SEALED`]):
//!
//! ```text
//! INIT      | sender index (4, LE) | Noise IK message 1 (e, s, payload: who, whom, when)
//! RESPONSE  | sender index (4, LE) | receiver index (4, LE) | Noise IK message 2 (e, payload: who)
//! TRANSPORT | receiver index (4, LE) | counter (8, LE) | ciphertext of the plain datagram + tag
//! ```
//!
//! As in WireGuard, each side names a session by an index it picked at random, and a
//! transport datagram carries the receiver's index (which session's keys open it) and the
//! counter that is its nonce (which the receiver's replay window checks once it opened). The
//! header is not associated data: a changed index selects keys that do not open it, and a
//! changed counter is a changed nonce.

/// First byte of a handshake initiation.
pub const INIT: u8 = 0xB1;
/// First byte of a handshake response.
pub const RESPONSE: u8 = 0xB2;
/// First byte of a transport datagram.
pub const TRANSPORT: u8 = 0xB3;
/// Bytes of a transport datagram's header.
pub const TRANSPORT_HEADER: usize = 1 + 4 + 8;
/// Bytes a transport datagram adds to the plain one: the header and the 16-byte tag.
pub const TRANSPORT_OVERHEAD: usize = TRANSPORT_HEADER + 16;
/// Bytes of the initiation's payload: initiator id, responder id, initiator's timestamp.
pub const INIT_PAYLOAD: usize = 8 + 8 + 8;
/// Bytes of the response's payload: the responder's id.
pub const RESPONSE_PAYLOAD: usize = 8;
/// Length of an initiation: header, ephemeral key, encrypted static key, encrypted payload.
pub const INIT_LEN: usize = 1 + 4 + 32 + (32 + 16) + (INIT_PAYLOAD + 16);
/// Length of a response: header, ephemeral key, encrypted payload.
pub const RESPONSE_LEN: usize = 1 + 4 + 4 + 32 + (RESPONSE_PAYLOAD + 16);

/// Little-endian `u32` at `at` (the caller checked the length).
pub fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Little-endian `u64` at `at` (the caller checked the length).
pub fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// A transport datagram's receiver index and counter, if it is long enough to be one.
pub fn transport_header(datagram: &[u8]) -> Option<(u32, u64)> {
    if datagram.len() < TRANSPORT_OVERHEAD || datagram[0] != TRANSPORT {
        return None;
    }
    Some((u32_at(datagram, 1), u64_at(datagram, 5)))
}
