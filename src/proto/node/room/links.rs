//! Chain links a member works out from its own copies (see `proof.rs`): a message the
//! leader sends without its link follows, in the log, the one before it in its origin's
//! chain; and a message a member showed without proving it (from a take-over's answers,
//! or before a restart) places or closes the run of its neighbours.

use super::*;
use crate::proto::seal;
use crate::wire::ChainLink;

/// How many shown copies, at most, a member walks to find the seal that proves the
/// message after a staged one (a run sent again after a take-over may be longer than
/// `RUN_MAX`).
const SHOWN_STRETCH_MAX: usize = 4096;

impl Node {
    /// Vouches for `origin`'s message number `k` from the copy this node showed, if it
    /// does not vouch for it already (its process restarted since, too many origins came
    /// between, or it showed that copy from a take-over's answers). Two neighbours of a
    /// message need it:
    /// - the one before, for a message sent without its link (it follows that one in the
    ///   leader's log, see [`Node::follows_in_log`]): after a restart a member never
    ///   acked the re-proposal of one, and the room waited for its ack (`sim_chaos`
    ///   majority seed 4004);
    /// - the one after, which closes the message's run in its stead (see
    ///   [`Vouched::confirms`]): a run sent again after a take-over, whose last message
    ///   the log already held at an earlier number (the leader takes a repeat as the copy
    ///   it sequenced), was never proven at a member that had shown that last message
    ///   from a take-over's answers, and was never shown (`sim_failover` two-leaders
    ///   seeds 1522 and 2591).
    ///
    /// Only a copy this node showed: one it holds may be a survivor's answer to its
    /// take-over, taken on that member's word (the members check what it proposes). A
    /// take-over shows such answers too, so the one after, which would prove the run
    /// before it outright, counts only with a seal, checked (`sealed`): its own, or that
    /// of the first copy shown after it, each placed by the one before (all of them are
    /// then vouched for).
    pub(super) fn vouch_from_shown(&mut self, origin: NodeId, k: OriginSeq, sealed: bool) {
        if k.0 == 0 || self.room.vouched.get(origin, k).is_some() {
            return;
        }
        // The copies shown from `k` on, each placed by the one before, up to the first
        // that carries a seal (only `k`'s without `sealed`).
        let mut stretch: Vec<(OriginSeq, ChainLink, ChainLink)> = Vec::new();
        let mut closing = None;
        let mut at = k;
        while stretch.len() < SHOWN_STRETCH_MAX {
            let Some(p) = self
                .room
                .history
                .find_submission(origin, at)
                .filter(|p| p.origin == origin && p.origin_seq == at)
            else {
                return;
            };
            let before = stretch.last().map(|(_, _, v)| *v);
            let Some(link) = p.proof.link.or(before) else {
                return;
            };
            if before.is_some_and(|b| b != link) {
                return; // not the continuation of the copies before it
            }
            let value = seal::chain(&link, &p.written(origin));
            stretch.push((at, link, value));
            if !sealed {
                break;
            }
            if let Some(s) = &p.proof.seal {
                closing = Some((s.clone(), p.name.clone()));
                break;
            }
            at = at.next();
        }
        if sealed {
            let Some((seal, name)) = closing else {
                return;
            };
            let Binding::Key(key) = self.bound_key(origin, &name) else {
                return;
            };
            let key = self.run_key(&key);
            let Some((_, _, value)) = stretch.last() else {
                return;
            };
            if !seal::check_run_by(&key, value, &seal) {
                return;
            }
        }
        for (n, link, value) in stretch {
            self.room.vouched.insert(origin, n, link, value);
        }
    }

    /// Whether the message before `e` in the log is the one before it in its origin's
    /// chain: a member then works `e`'s link out from that one, and `e` is proposed
    /// without it.
    pub(in crate::proto::node) fn follows_in_log(&self, e: &ChatEntry) -> bool {
        if e.seq.0 < 2 {
            return false;
        }
        let before = Seq(e.seq.0 - 1);
        let prev = self.room.holdback.get(before).or_else(|| {
            self.room
                .history
                .iter()
                .next_back()
                .filter(|p| p.seq == before)
        });
        prev.is_some_and(|p| p.origin == e.origin && p.origin_seq.next() == e.origin_seq)
    }
}
