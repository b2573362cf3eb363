//! Per-source rate limits, applied before any decryption: strangers get the per-source
//! budget and a per-IP cap; a member's address a budget of its own (see the module doc
//! of `guard`).

use super::{Guard, Refused};
use dashmap::DashMap;
use std::net::SocketAddr;

/// How many sources' worth one IP address may send over all its ports.
pub(super) const IP_SHARE: u32 = 20;
/// Datagrams a second a member's address may send, at least (see [`member_rate`]). One
/// node sends far fewer: a sender on loopback, where a bare socket moves about 280 000 small
/// datagrams a second, packs its room traffic into datagrams of up to 1200 bytes.
pub const MEMBER_RATE: u32 = 200_000;

/// Datagrams counted from one source (or IP) in one second of the guard's life.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    second: u64,
    count: u32,
}

/// Datagrams a second let through from one member's address when strangers get
/// `per_source_per_second`: [`MEMBER_RATE`], or the per-IP cap where that is higher.
pub fn member_rate(per_source_per_second: u32) -> u32 {
    per_source_per_second
        .saturating_mul(IP_SHARE)
        .max(MEMBER_RATE)
}

impl Guard {
    /// Whether a datagram from `from` is within its source's rate now.
    pub(super) fn within_rate(&self, from: SocketAddr) -> Result<(), Refused> {
        self.within_rate_at(from, self.started.elapsed().as_secs())
    }

    /// The rate check in second `second` of the guard's life.
    pub(super) fn within_rate_at(&self, from: SocketAddr, second: u64) -> Result<(), Refused> {
        let source_count = Self::count(&self.buckets, from, second);
        // Old sources are forgotten now and then, so spoofed sources cannot grow the tables.
        if self.buckets.len() > 4096 {
            self.buckets.retain(|_, b| b.second == second);
        }
        if self.members.contains(&from) {
            // A member's own budget, and no share of its IP's cap: strangers on its host
            // cannot use that up for it.
            if source_count > member_rate(self.per_source_per_second) {
                return Err(Refused::RateLimited);
            }
            return Ok(());
        }
        let per_ip = self.per_source_per_second.saturating_mul(IP_SHARE);
        let ip_count = Self::count(&self.ip_buckets, from.ip(), second);
        if self.ip_buckets.len() > 4096 {
            self.ip_buckets.retain(|_, b| b.second == second);
        }
        if source_count > self.per_source_per_second || ip_count > per_ip {
            return Err(Refused::RateLimited);
        }
        Ok(())
    }

    /// Counts one datagram for `key` in second `second`; the count so far.
    fn count<K: std::hash::Hash + Eq>(table: &DashMap<K, Bucket>, key: K, second: u64) -> u32 {
        let mut b = table.entry(key).or_insert(Bucket { second, count: 0 });
        if b.second != second {
            *b = Bucket { second, count: 0 };
        }
        b.count = b.count.saturating_add(1);
        b.count
    }
}
