//! What travels outside sessions, on its way out: the join exchange sealed under the
//! right key (and the asks that get a node one), and what admission hands on.

use super::admission::{self, Admission, AskWith, JOIN_SEALED};
use super::sessions::{Out, Seal, Sessions};
use super::{Guard, SEALED};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

impl Guard {
    /// Seals handshake message `bytes` for `to` (try `try_no` of an initiation, 0 for an
    /// answer; `member`, the static key of the member our table holds there): with the
    /// join key of a node joining there (or ours, while we join), else with our pair key
    /// with the member there. Where both may be (a member that joined through us lately:
    /// it drops that key if it leaves, and comes back with another), every other try goes
    /// under the pair key. `None`: no key to seal it with (it is dropped).
    pub(super) fn seal_handshake(
        &self,
        to: SocketAddr,
        bytes: &[u8],
        try_no: u32,
        member: Option<[u8; 32]>,
        admission: &mut Admission,
    ) -> Option<Vec<u8>> {
        let now = Instant::now();
        let joining = admission.is_outside()
            || (admission.joins_at(now, to) && (member.is_none() || try_no.is_multiple_of(2)));
        let sealed = match (joining, member) {
            (false, Some(theirs)) => {
                let key = admission.pair_key(&theirs);
                Some(self.seal_under(SEALED, &key, bytes))
            }
            _ => admission
                .handshake_key_for(now, to)
                .map(|key| self.seal_under(JOIN_SEALED, &key, bytes)),
        };
        if sealed.is_none() {
            tracing::debug!("a handshake for {to} and no key to seal it: dropped");
        }
        sealed
    }

    /// Seals the join exchange `plain` for `to`: with the join key of the node joining
    /// there, once one opened something from it; else, from a member to a member (the
    /// one at `to` in our table, a partition healing, say), with their pair key
    /// (and a copy under each join key held for `to`); else with the join keys held for
    /// `to`, or outside the room our own (asking the node there for one now and then, and
    /// keeping `plain` until one comes if we have none).
    pub(super) fn seal_join(
        &self,
        now: Instant,
        to: SocketAddr,
        plain: Vec<u8>,
        admission: &mut Admission,
        out: &mut VecDeque<Out>,
    ) {
        let member = admission.static_at(to);
        if admission.should_ask(now, to) {
            // A member coming back asks under its pair key with the member there; with a
            // room key, under it; with an invitation, under its secret: in turn, as the
            // node there may hold any one of them.
            let mut with = Vec::new();
            if let Some(theirs) = member {
                with.push(AskWith::Pair(admission.pair_key(&theirs)));
            }
            with.extend(self.room_key.map(AskWith::Room));
            with.extend(self.invitation.map(AskWith::Invitation));
            if let Some(bytes) = admission.ask(now, &with, to) {
                out.push_back(Out {
                    to,
                    bytes,
                    seal: Seal::Ready,
                });
            }
        }
        if !admission.is_outside()
            && admission.confirmed_for(now, to).is_none()
            && let Some(theirs) = member
        {
            let key = admission.pair_key(&theirs);
            out.push_back(Out {
                to,
                bytes: self.seal_under(SEALED, &key, &plain),
                seal: Seal::Ready,
            });
            // And under each join key held for a node asking from there: a new process
            // at a member's address (a restart, perhaps with another identity) that has
            // not yet sent anything that opened here.
            for key in admission.held_for(now, to) {
                out.push_back(Out {
                    to,
                    bytes: self.seal_under(JOIN_SEALED, &key, &plain),
                    seal: Seal::Ready,
                });
            }
            return;
        }
        let keys = admission.join_keys_for(now, to);
        if keys.is_empty() {
            if admission.is_outside() {
                admission.wait(to, plain);
            } else {
                tracing::debug!("no join key for {to}: its join exchange is not sent");
            }
            return;
        }
        for key in keys {
            out.push_back(Out {
                to,
                bytes: self.seal_under(JOIN_SEALED, &key, &plain),
                seal: Seal::Ready,
            });
        }
    }

    /// Puts what admission wants sent where it goes: in sessions, or as it is.
    pub(super) fn put(
        now: Instant,
        sessions: &mut Sessions,
        sends: Vec<admission::Send>,
        out: &mut VecDeque<Out>,
    ) {
        for send in sends {
            match send {
                admission::Send::Session(to, frame) => {
                    if !sessions.send(now, to, &frame, out) {
                        tracing::debug!("no session with {to} for the guard's message");
                    }
                }
                admission::Send::Wire(to, bytes) => out.push_back(Out {
                    to,
                    bytes,
                    seal: Seal::Ready,
                }),
            }
        }
    }
}
