//! The retransmission timeout of one destination, estimated from round-trip samples as
//! RFC 6298 describes (section 2), with the bounds and backoff the layer above chooses.

use std::time::Duration;

/// The lowest retransmission timeout, whatever the samples say.
///
/// On loopback or a LAN the smoothed round trip is well under a millisecond, so the
/// timeout sits on this floor. It has to cover what a sample does not see: the receiver's
/// task not being scheduled for a while. On a loaded machine (two cores shared with
/// compilers, as in CI) a runnable task can wait one or two scheduler slices of a few
/// milliseconds each; 20 ms covers that with margin, so acks that are merely late do not
/// cause a burst of spurious resends, while a datagram really lost on a fast link is
/// resent after tens of milliseconds rather than half a second. (TCP's 200 ms minimum
/// dates from coarse timers and delayed acks; we have neither: the receiver acks as soon
/// as it has handled its input.)
pub const MIN_RTO: Duration = Duration::from_millis(20);

/// Clock granularity `G` of RFC 6298: the driver's timer resolution.
pub const GRANULARITY: Duration = Duration::from_millis(1);

/// Smoothed round trip and its variation for one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    /// SRTT; `None` before the first sample.
    srtt: Option<Duration>,
    /// RTTVAR.
    rttvar: Duration,
    /// The current timeout, before backoff.
    rto: Duration,
    /// The first timeout, before any sample.
    initial: Duration,
    /// How many times the timeout doubled while nothing was measured.
    backoffs: u32,
}

impl RttEstimator {
    /// A destination not measured yet: its timeout is `initial` (rule 2.1).
    pub fn new(initial: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial,
            initial,
            backoffs: 0,
        }
    }

    /// Takes one round-trip sample `r` (never one that may be a resend's: Karn's rule)
    /// and recomputes the timeout, kept within `floor..=cap`.
    ///
    /// First sample (rule 2.2): SRTT = R, RTTVAR = R/2. Later ones (rule 2.3), with
    /// alpha = 1/8 and beta = 1/4: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, then
    /// SRTT = 7/8 SRTT + 1/8 R. In both cases RTO = SRTT + max(G, 4 RTTVAR).
    pub fn sample(&mut self, r: Duration, floor: Duration, cap: Duration) {
        let (srtt, rttvar) = match self.srtt {
            None => (r, r / 2),
            Some(srtt) => {
                let err = srtt.abs_diff(r);
                (srtt * 7 / 8 + r / 8, self.rttvar * 3 / 4 + err / 4)
            }
        };
        self.srtt = Some(srtt);
        self.rttvar = rttvar;
        self.rto = (srtt + GRANULARITY.max(rttvar * 4)).clamp(floor, cap.max(floor));
    }

    /// A message timed out while nothing is measured: the timeout doubles, up to `cap`,
    /// and stays so for later messages until a sample comes (RFC 6298 rule 5.5 kept
    /// across messages, as rule 5.7 does for a lost handshake). On a path whose round
    /// trip is longer than the first timeout, every first copy would otherwise be resent
    /// before its ack came, and no sample would ever be taken.
    pub fn back_off_unmeasured(&mut self, cap: Duration) {
        if self.srtt.is_none() {
            let doubled = self.rto.saturating_mul(2).min(cap.max(self.rto));
            if doubled > self.rto {
                self.rto = doubled;
                self.backoffs += 1;
            }
        }
    }

    /// While nothing is measured, how many waits of the first timeout a first send's
    /// backed-off wait stands for, beyond its own (`2^doublings - 1`); zero once measured.
    pub fn unmeasured_extra_waits(&self) -> u32 {
        if self.srtt.is_none() {
            (1u32 << self.backoffs.min(16)) - 1
        } else {
            0
        }
    }

    /// The smoothed round trip, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The current timeout for a first send.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// The timeout after `resends` retransmissions of one message: doubled each time
    /// (rule 5.5), never over `cap` or the timeout itself if longer. While nothing is
    /// measured, from the first timeout
    /// (a timeout backed off for later messages, see [`RttEstimator::back_off_unmeasured`],
    /// does not stretch the resends of a message to a peer that may be gone).
    pub fn backed_off(&self, resends: u32, cap: Duration) -> Duration {
        let factor = 1u32 << resends.min(16);
        let base = if self.srtt.is_some() {
            self.rto
        } else {
            self.initial
        };
        base.saturating_mul(factor).min(cap.max(base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_sample_sets_srtt_and_half_variation() {
        let mut e = RttEstimator::new(500 * MS);
        assert_eq!(
            e.rto(),
            500 * MS,
            "rule 2.1: the initial timeout until measured"
        );
        e.sample(100 * MS, MS, 10_000 * MS);
        assert_eq!(e.srtt(), Some(100 * MS));
        // RTO = 100 + 4 * 50.
        assert_eq!(e.rto(), 300 * MS);
    }

    #[test]
    fn later_samples_smooth_with_one_eighth_and_one_quarter() {
        let mut e = RttEstimator::new(500 * MS);
        e.sample(100 * MS, MS, 10_000 * MS);
        e.sample(200 * MS, MS, 10_000 * MS);
        // RTTVAR = 3/4 * 50 + 1/4 * 100 = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(112_500 + 250_000));
    }

    #[test]
    fn steady_samples_converge_and_granularity_bounds_the_variation_term() {
        let mut e = RttEstimator::new(500 * MS);
        for _ in 0..200 {
            e.sample(10 * MS, Duration::ZERO, 10_000 * MS);
        }
        // RTTVAR decays towards 0; the variation term never drops below G.
        assert_eq!(e.srtt(), Some(10 * MS));
        assert_eq!(e.rto(), 10 * MS + GRANULARITY);
    }

    #[test]
    fn floor_and_cap_bound_the_timeout() {
        let mut fast = RttEstimator::new(500 * MS);
        fast.sample(Duration::from_micros(50), MIN_RTO, 500 * MS);
        assert_eq!(fast.rto(), MIN_RTO, "loopback round trips sit on the floor");
        let mut slow = RttEstimator::new(500 * MS);
        slow.sample(2_000 * MS, MIN_RTO, 500 * MS);
        assert_eq!(slow.rto(), 500 * MS, "never above the cap");
    }

    #[test]
    fn backoff_doubles_per_resend_up_to_the_cap() {
        let mut e = RttEstimator::new(500 * MS);
        e.sample(Duration::from_micros(50), MIN_RTO, 500 * MS);
        let waits: Vec<Duration> = (0..8).map(|k| e.backed_off(k, 500 * MS)).collect();
        assert_eq!(
            waits,
            [20, 40, 80, 160, 320, 500, 500, 500].map(|m| m * MS),
            "rule 5.5: double on each retransmission"
        );
        assert_eq!(e.backed_off(u32::MAX, 500 * MS), 500 * MS, "no overflow");
    }
}
