//! A leader's voucher for a member it let in: the one way a member can be known to another
//! without the word of the leader that other follows.
//!
//! Only a leader adds a member to the table, and it tells the others itself. If it dies
//! before its word goes round, a member can be left that the others never heard of, and
//! whose datagrams they drop. That alone can stop a room: a newcomer whose addition to the
//! voters committed with the dead leader's ack and its own (the configuration counts once
//! held) and a survivor that holds neither the addition nor the newcomer's entry each count
//! a majority of a different configuration, and neither reaches one (`sim_failover` seed
//! 551341: ann let in again, cat dead before ben heard of it).
//!
//! So a leader signs the entry of each member it lets in, with its epoch
//! ([`Voucher`]), and sends it to that member to keep. A member that follows the same
//! epoch and holds no entry for the voucher's member takes the entry as that leader's word
//! once the signature checks against the leader's key in its own table. The member shows
//! its voucher to the voters it asks for a pre-vote, and to a member that tells it,
//! in a heartbeat marked `unknown`, that it does not know it.
//!
//! Each address gets one voucher checked and one shown per second at most: a check costs
//! a signature verification, and a voucher travels outside sessions.

use super::*;

/// How often one address gets a voucher checked, or shown, at most.
const VOUCHER_EVERY: Duration = Duration::from_secs(1);
/// Addresses remembered for that, at most.
const VOUCHER_ADDRS: usize = 256;

/// A member's voucher, and the limits on checking and showing them.
#[derive(Debug)]
pub(in crate::proto::node) struct Vouchers {
    /// The voucher of the leader that let this node in last, for its own entry.
    own: Option<Voucher>,
    /// Addresses a voucher was checked from lately.
    checked: Quiet<SocketAddr>,
    /// Addresses our voucher was shown to lately.
    shown: Quiet<SocketAddr>,
}

impl Default for Vouchers {
    fn default() -> Self {
        Vouchers {
            own: None,
            checked: Quiet::new(VOUCHER_EVERY, VOUCHER_ADDRS),
            shown: Quiet::new(VOUCHER_EVERY, VOUCHER_ADDRS),
        }
    }
}

impl Node {
    /// The leader's voucher for `entry`, a member it just let in (see the module
    /// documentation); sent to that member.
    pub(in crate::proto::node) fn vouch_for_member(&mut self, now: Instant, entry: Member) {
        let Some(epoch) = self.ring.epoch().filter(|e| e.leader == self.ctx.id) else {
            return;
        };
        let signature = self
            .life
            .identity
            .sign(&voucher_message(&entry, &epoch))
            .to_bytes()
            .to_vec();
        let addr = entry.addr;
        let voucher = Voucher {
            entry,
            epoch,
            signature,
        };
        self.send_reliable(now, addr, Message::Vouched(voucher), Token::Control);
    }

    /// A voucher from `sender` at `from`: our own, from the leader that let us in (kept),
    /// or `sender`'s, from a member we hold no entry for (taken as its leader's word if
    /// it checks).
    pub(in crate::proto::node) fn on_vouched(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        v: Voucher,
    ) {
        if !self.life.is_member() || Some(v.epoch) != self.ring.epoch() {
            return log_at!(
                debug,
                self,
                "a voucher for {} of an epoch we do not follow; ignored",
                v.entry.name
            );
        }
        if v.entry.id == self.ctx.id {
            if sender == v.epoch.leader && self.voucher_checks(&v) {
                self.life.vouchers.own = Some(v);
            }
            return;
        }
        if v.entry.id != sender || v.entry.addr != from || self.ring.members().get(sender).is_some()
        {
            return;
        }
        if !self.life.vouchers.checked.due(from, now) {
            return self.drop_datagram(now, from, "a voucher within a second of the last");
        }
        if !self.voucher_checks(&v) {
            return self.drop_datagram(now, from, "a voucher whose signature does not check");
        }
        log_at!(
            info,
            self,
            "{} ({sender}) shows that {} let it in; taking the leader's word",
            v.entry.name,
            v.epoch.leader
        );
        let leader = v.epoch.leader;
        self.on_members(now, from, leader, vec![v.entry]);
    }

    /// Whether `v` carries the signature of its epoch's leader, by the key our table holds
    /// for it.
    fn voucher_checks(&self, v: &Voucher) -> bool {
        let Some(leader) = self.ring.members().get(v.epoch.leader) else {
            return false;
        };
        let message = voucher_message(&v.entry, &v.epoch);
        <[u8; 64]>::try_from(v.signature.as_slice())
            .ok()
            .is_some_and(|sig| {
                VerifyingKey::from_bytes(&leader.key).is_ok_and(|key| {
                    key.verify_strict(&message, &Signature::from_bytes(&sig))
                        .is_ok()
                })
            })
    }

    /// Shows our voucher to the member at `to`, if we hold one of the epoch we follow:
    /// that member may never have heard of us.
    pub(in crate::proto::node) fn show_voucher(&mut self, now: Instant, to: SocketAddr) {
        let Some(v) = self
            .life
            .vouchers
            .own
            .clone()
            .filter(|v| Some(v.epoch) == self.ring.epoch())
        else {
            return;
        };
        if self.life.vouchers.shown.due(to, now) {
            log_at!(
                debug,
                self,
                "showing our voucher from {} to {to}",
                v.epoch.leader
            );
            self.send_reliable(now, to, Message::Vouched(v), Token::Control);
        }
    }
}
