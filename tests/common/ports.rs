//! Fixed ports for members that are started again on the address the room knows them by.
//!
//! A port taken with `bind(0)` and released comes from the kernel's ephemeral range, where
//! any other process binding port 0 (every other node of the tests) may take it before the
//! member does. These ports come from below that range (Linux's default is 32768-60999),
//! spread by the process id so test binaries running side by side do not meet, and each is
//! checked free when handed out.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicU32, Ordering};

/// The first port handed out; the range ends below the ephemeral ports.
const FIRST: u32 = 20_000;
/// How many ports the range holds.
const SPAN: u32 = 12_000;

/// A UDP port on 127.0.0.1, free now and outside the ephemeral range, never handed out
/// twice by this process.
pub fn fixed_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(613) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + (start + n) % SPAN).expect("below 32000");
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP port in {FIRST}..{}", FIRST + SPAN);
}
