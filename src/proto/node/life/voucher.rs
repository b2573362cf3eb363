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
//! ([`Voucher`]), and sends it to that member to keep: in every part of its welcome (so
//! that the member holds it before its addition to the voters can commit on its ack:
//! `sim_failover` seed 1620379), and again once the member says it holds the welcome. A
//! member that follows the same epoch and holds no entry for the voucher's member takes
//! the entry as that leader's word
//! once the signature checks against the leader's key in its own table. The member shows
//! its voucher to the voters it asks for a pre-vote, and to a voter that asks it for one
//! or a member that answers it with a heartbeat marked `unknown`, once its own leader is
//! gone too: if the leader still leads for it, it probes the leader first, and only if
//! no word comes within a suspicion bound shows the voucher and asks the voters itself.
//!
//! A voucher is taken only while its leader is gone here (online, it says so itself), and
//! never over a newer entry at its address or of its user. An address whose voucher did
//! not check gets none checked for a second (a check costs a signature verification), and
//! our own is shown to an address once a second at most (it travels outside sessions).

use super::*;

/// How often one address gets a voucher checked, or shown, at most.
const VOUCHER_EVERY: Duration = Duration::from_secs(1);
/// Addresses remembered for that, at most.
const VOUCHER_ADDRS: usize = 256;
/// Members dropped from the table remembered, at most (the oldest go first).
const FORGOTTEN_KEPT: usize = 1024;

/// A member's voucher, and the limits on checking and showing them.
#[derive(Debug)]
pub(in crate::proto::node) struct Vouchers {
    /// The voucher of the leader that let this node in last, for its own entry.
    own: Option<Voucher>,
    /// Addresses a voucher that did not check came from lately.
    checked: Quiet<SocketAddr>,
    /// Addresses our voucher was shown to lately.
    shown: Quiet<SocketAddr>,
    /// Processes dropped from our table, the newest last: a voucher does not bring one
    /// back.
    forgotten: VecDeque<NodeId>,
    /// A voter asked us for a pre-vote while our leader led here: when we probed the
    /// leader, and where the question came from.
    check: Option<(Instant, SocketAddr)>,
}

impl Vouchers {
    /// Process `id` was dropped from the table.
    pub(in crate::proto::node) fn forgot(&mut self, id: NodeId) {
        if self.forgotten.len() >= FORGOTTEN_KEPT {
            self.forgotten.pop_front();
        }
        self.forgotten.push_back(id);
    }

    /// Whether process `id` was dropped from the table lately.
    pub(in crate::proto::node) fn was_forgotten(&self, id: NodeId) -> bool {
        self.forgotten.contains(&id)
    }
}

impl Default for Vouchers {
    fn default() -> Self {
        Vouchers {
            own: None,
            checked: Quiet::new(VOUCHER_EVERY, VOUCHER_ADDRS),
            shown: Quiet::new(VOUCHER_EVERY, VOUCHER_ADDRS),
            forgotten: VecDeque::new(),
            check: None,
        }
    }
}

impl Node {
    /// The leader's voucher for `entry`, a member it just let in (see the module
    /// documentation); sent to that member.
    pub(in crate::proto::node) fn vouch_for_member(&mut self, now: Instant, entry: Member) {
        let addr = entry.addr;
        if let Some(voucher) = self.voucher_for(entry) {
            self.send_reliable(now, addr, Message::Vouched(voucher), Token::Control);
        }
    }

    /// This leader's voucher for `entry` (none if it does not lead).
    pub(in crate::proto::node) fn voucher_for(&self, entry: Member) -> Option<Voucher> {
        let epoch = self.ring.epoch().filter(|e| e.leader == self.ctx.id)?;
        let signature = self
            .life
            .identity
            .sign(&voucher_message(&entry, &epoch))
            .to_bytes()
            .to_vec();
        Some(Voucher {
            entry,
            epoch,
            signature,
        })
    }

    /// Keeps `v`, the voucher that came with our welcome from the leader of `epoch`, if
    /// it is for us and checks.
    pub(in crate::proto::node) fn keep_welcome_voucher(&mut self, epoch: Epoch, v: Voucher) {
        if v.entry.id == self.ctx.id && v.epoch == epoch && self.voucher_checks(&v) {
            log_at!(debug, self, "keeping the voucher of our welcome");
            self.life.vouchers.own = Some(v);
        } else {
            log_at!(debug, self, "the voucher of our welcome does not check");
        }
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
                log_at!(debug, self, "keeping {sender}'s voucher for us");
                self.life.vouchers.own = Some(v);
            } else {
                log_at!(
                    debug,
                    self,
                    "a voucher for us from {sender} that does not check"
                );
            }
            return;
        }
        if v.entry.id != sender || v.entry.addr != from || self.ring.members().get(sender).is_some()
        {
            return;
        }
        if let Some(why) = self.voucher_moot(&v) {
            return log_at!(debug, self, "not taking {}'s voucher: {why}", v.entry.name);
        }
        if self.life.vouchers.checked.is_quiet(from, now) {
            return self.drop_datagram(now, from, "a voucher within a second of a forged one");
        }
        if !self.voucher_checks(&v) {
            self.life.vouchers.checked.due(from, now);
            return self.drop_datagram(now, from, "a voucher whose signature does not check");
        }
        log_at!(
            info,
            self,
            "{} ({sender}) shows that {} let it in; taking the leader's word",
            v.entry.name,
            v.epoch.leader
        );
        // A stamp taken into the table is one this node may relay: its clock moves past
        // it (as for `Members`, see `transport.rs`).
        self.ctx.clock.restore(v.entry.stamp.lamport);
        let leader = v.epoch.leader;
        self.on_members(now, from, leader, vec![v.entry]);
    }

    /// Why a voucher from a member we hold no entry for is not taken, if it is not: only
    /// the leader's word adds a member, and a voucher stands in for it only once that
    /// leader is gone here (while it is online its own word reaches us, and a member it
    /// dropped since must not come back on its older word, nor one we dropped for any
    /// reason); and never over a newer entry
    /// at the voucher's address or of its user (a late copy of an earlier process's
    /// voucher must not put it back in place of the process that replaced it).
    fn voucher_moot(&self, v: &Voucher) -> Option<&'static str> {
        let members = self.ring.members();
        if self.is_leader() || members.is_online(v.epoch.leader) {
            return Some("its leader is here to say so itself");
        }
        if self.life.vouchers.forgotten.contains(&v.entry.id) {
            return Some("it was dropped from our table since");
        }
        let newer = members.entries().any(|m| {
            (m.addr == v.entry.addr || m.name == v.entry.name) && m.stamp >= v.entry.stamp
        });
        newer.then_some("we hold a newer entry at its address or of its user")
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

    /// The member at `from` may need our voucher: a voter asked us for a pre-vote (it lost
    /// the leader), or a member of our epoch answered us with a heartbeat marked `unknown`
    /// (it never heard of us). If we hold a voucher of the epoch we follow, the leader may
    /// be dead without our knowing (its watcher's word cannot reach us if the watcher
    /// does not know us either). While the leader leads here we probe it first
    /// (see [`Node::voucher_check_due`]); a member back from a cut that still holds a live
    /// leader dead must not take us in and then tell us its stale news.
    pub(in crate::proto::node) fn voucher_wanted(&mut self, now: Instant, from: SocketAddr) {
        let ours = self.life.vouchers.own.as_ref();
        if ours.is_none_or(|v| Some(v.epoch) != self.ring.epoch()) {
            return;
        }
        if !self.leader_leads() {
            return self.show_voucher(now, from);
        }
        if self.life.vouchers.check.is_none()
            && let Some(leader) = self.leader_addr()
        {
            log_at!(
                debug,
                self,
                "a voter lost the leader; probing it before showing our voucher"
            );
            self.life.vouchers.check = Some((now, from));
            self.send_heartbeat(leader, true);
        }
    }

    /// On the heartbeat tick: a probe of the leader sent for a voucher (see
    /// [`Node::voucher_wanted`]) got no word from it within a suspicion bound: the
    /// leader is gone for us too. We show our voucher to the voter that asked and ask the
    /// voters ourselves (a round starts only if a majority lost the leader as well).
    pub(in crate::proto::node) fn voucher_check_due(&mut self, now: Instant) {
        let Some((at, to)) = self.life.vouchers.check else {
            return;
        };
        if self.leader_spoke_since(at) {
            self.life.vouchers.check = None;
            return;
        }
        if now.saturating_duration_since(at) < self.ctx.cfg.suspect_after() {
            return;
        }
        self.life.vouchers.check = None;
        log_at!(
            info,
            self,
            "the leader did not answer our probe; asking the voters"
        );
        self.show_voucher(now, to);
        self.seek_election(now);
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
