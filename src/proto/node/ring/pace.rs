//! Timers that follow the measured paths. The configured bounds assume a LAN; on links of
//! hundreds of milliseconds each way a timer that must cover messages going round the
//! ring, or back and forth through another member, is stretched to what those messages
//! need there, and never shortened below its configured value.

use super::*;

/// An election round's timeout never grows past this many election timeouts (20 s by
/// default), however slow the paths measured: a round given up is asked about again
/// (see `prevote.rs`), while a round waited on too long holds a room without a leader.
pub(in crate::proto::node) const MAX_ROUND_FACTOR: u32 = 10;

/// [`Node::slowest_path`] as last worked out, and from what.
#[derive(Debug, Clone, Copy)]
pub(in crate::proto::node) struct SlowestPath {
    /// [`Membership::version`] then.
    table: u64,
    /// The reliability layer's paths version then.
    paths: u64,
    /// The longest smoothed round trip and the longest retransmission timeout.
    value: (Duration, Duration),
}

impl Node {
    /// The longest smoothed round trip and the longest retransmission timeout measured to
    /// an online member; zero while nothing is measured. Worked out again only when the
    /// member table or a measured path changed since the last time: it is asked for on
    /// every heartbeat, and a walk over every member each time was the largest cost of
    /// an idle room of 100.
    pub(in crate::proto::node) fn slowest_path(&mut self) -> (Duration, Duration) {
        let (table, paths) = (self.ring.members.version(), self.transport.paths_version());
        if let Some(c) = self.ring.slowest
            && c.table == table
            && c.paths == paths
        {
            return c.value;
        }
        let value = self.walk_slowest_path();
        self.ring.slowest = Some(SlowestPath {
            table,
            paths,
            value,
        });
        value
    }

    /// [`Node::slowest_path`], worked out from every online member.
    pub(in crate::proto::node) fn walk_slowest_path(&self) -> (Duration, Duration) {
        self.ring
            .members
            .online_peers()
            .filter_map(|m| self.transport.measured_rtt(m.addr))
            .fold((Duration::ZERO, Duration::ZERO), |(s, r), (s2, r2)| {
                (s.max(s2), r.max(r2))
            })
    }

    /// How long an election round may take before it is given up: see
    /// [`round_timeout_for`], from the smoothed round trips measured to the online
    /// members (one not measured yet counted as their mean).
    pub(in crate::proto::node) fn round_timeout(&self) -> Duration {
        let (mut online, mut measured, mut sum, mut rto) =
            (0u32, 0u32, Duration::ZERO, Duration::ZERO);
        for m in self.ring.members.online_peers() {
            online += 1;
            if let Some((s, r)) = self.transport.measured_rtt(m.addr) {
                measured += 1;
                sum += s;
                rto = rto.max(r);
            }
        }
        if measured > 0 {
            sum += (sum / measured) * (online - measured);
        }
        round_timeout_for(self.ctx.cfg.election_timeout, sum, rto)
    }
}

/// A round's timeout: the election timeout, or, if longer, what a Chang-Roberts round
/// needs on the measured paths, at most [`MAX_ROUND_FACTOR`] election timeouts. The
/// winner's token goes once round the ring and its announcement once more: one hop per
/// member each time, so about the sum of the one-way times to every member twice over,
/// which is the sum of the round trips (`sum_srtt`, measured from here: the ring's own
/// hops are not measured here, and taken to be like ours). Twice that, for the
/// variation of the paths, and one retransmission timeout (`rto`, the longest) for a
/// lost token. Before rounds followed the paths, a room of 14 on links of 100 to 400 ms
/// each way gave every round up before its token came back, and never elected a leader.
pub(in crate::proto::node) fn round_timeout_for(
    election_timeout: Duration,
    sum_srtt: Duration,
    rto: Duration,
) -> Duration {
    (sum_srtt * 2 + rto).clamp(election_timeout, election_timeout * MAX_ROUND_FACTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const CFG: Duration = Duration::from_secs(2);

    #[test]
    fn a_lan_room_keeps_the_configured_timeout() {
        // 49 members at 1 ms.
        assert_eq!(round_timeout_for(CFG, 49 * MS, 20 * MS), CFG);
    }

    #[test]
    fn far_links_stretch_the_round_to_two_laps_with_margin() {
        // 13 members at 500 ms round trips, a 1.5 s timeout: 2 x 6.5 s + 1.5 s.
        assert_eq!(
            round_timeout_for(CFG, 13 * 500 * MS, 1500 * MS),
            14_500 * MS
        );
    }

    #[test]
    fn one_far_member_among_many_near_ones_adds_its_own_hops_only() {
        // 48 members at 1 ms, one at 800 ms (timeout 2 s): 2 x 848 ms + 2 s, not
        // 50 x 2 x 800 ms as the slowest path alone would say.
        let t = round_timeout_for(CFG, 848 * MS, 2000 * MS);
        assert_eq!(t, 3696 * MS);
    }

    #[test]
    fn the_round_timeout_is_capped() {
        assert_eq!(
            round_timeout_for(CFG, 99 * 800 * MS, 2000 * MS),
            CFG * MAX_ROUND_FACTOR
        );
    }
}
