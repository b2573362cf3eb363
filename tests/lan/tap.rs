//! TAP devices and sockets that belong to a host's network namespace while the test
//! process stays in its own.
//!
//! A file descriptor of `/dev/net/tun` makes its device in the namespace of the thread
//! that opened it, and a socket belongs to the namespace of the thread that made it; both
//! stay usable from any thread afterwards. So a short-lived thread enters the namespace
//! (`setns`), opens what is needed and hands it back. The TAP is born as the host's
//! `eth0`: nothing is made in the root namespace, no name there can clash with another
//! test's, and no `ip link set … netns` move is needed. A TAP made this way is not
//! persistent: it goes away when its descriptor closes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Where `ip netns add` keeps a handle on each named namespace.
const NETNS_DIR: &str = "/run/netns";

/// The clone device through which TAPs are made.
pub const TUN_DEVICE: &str = "/dev/net/tun";

/// Runs `f` on a thread that has entered the named network namespace, and returns what it
/// returned: sockets and TAPs `f` opens belong to that namespace.
pub fn in_namespace<T: Send>(ns: &str, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let handle = File::open(Path::new(NETNS_DIR).join(ns))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: `handle` is an open namespace file; setns only changes this
                // thread's network namespace, and the thread ends with `f`.
                if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// Opens the TUN clone device, read-write and non-blocking (no device is made yet).
pub fn open_clone_device() -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(TUN_DEVICE)
}

/// Makes TAP device `name` (Ethernet frames, no packet-information header) in the calling
/// thread's namespace; the returned file reads the frames the host sends on it and writes
/// frames the host receives.
pub fn make_tap(name: &str) -> io::Result<File> {
    let file = open_clone_device()?;
    // SAFETY: an all-zero ifreq is a valid value (empty name, no flags).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} is too long"),
        ));
    }
    for (slot, byte) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}
