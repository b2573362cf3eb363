//! Timers that follow the measured paths. The configured bounds assume a LAN; on links of
//! hundreds of milliseconds each way a timer that must cover messages going round the
//! ring, or back and forth through another member, is stretched to what those messages
//! need there, and never shortened below its configured value.

use super::*;

impl Node {
    /// The longest smoothed round trip and the longest retransmission timeout measured to
    /// an online member; zero while nothing is measured.
    pub(in crate::proto::node) fn slowest_path(&self) -> (Duration, Duration) {
        self.ring
            .members
            .online_peers()
            .filter_map(|m| self.transport.measured_rtt(m.addr))
            .fold((Duration::ZERO, Duration::ZERO), |(s, r), (s2, r2)| {
                (s.max(s2), r.max(r2))
            })
    }

    /// How long an election round may take before it is given up: the configured
    /// election timeout, or, if longer, what a Chang-Roberts round needs on the measured
    /// paths: the winner's token goes once round the ring and its announcement once more,
    /// one hop each per online member, and a hop is allowed the longest smoothed round
    /// trip (its one-way time twice over, for the variation of the path and a resend).
    /// Before this bound a room of 14 on links of 100 to 400 ms each way gave every round
    /// up before its token came back, and never elected a leader.
    pub(in crate::proto::node) fn round_timeout(&self) -> Duration {
        let (srtt, _) = self.slowest_path();
        let hops = 2 * (self.ring.members.online_peers().count() as u32 + 1);
        self.ctx.cfg.election_timeout.max(srtt * hops)
    }
}
