//! Handshakes (Noise IK): starting ours to a member, taking a member's initiation or
//! response, and sending what waited for the session once it is up.

use super::*;

impl Sessions {
    /// An initiation timestamp above every earlier one of this process (wall-clock
    /// nanoseconds where the clock allows, as WireGuard's TAI64N).
    pub(super) fn stamp(&mut self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.last_stamp = wall.max(self.last_stamp + 1);
        self.last_stamp
    }

    /// Starts (or tries again) our handshake to `id`.
    pub(super) fn start_handshake(&mut self, now: Instant, id: NodeId, out: &mut VecDeque<Out>) {
        self.deadline = None;
        let local = self.new_index();
        let stamp = self.stamp();
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Ok(mut hs) = initiator(&self.keys, &peer.remote_static) else {
            return;
        };
        let mut payload = [0u8; INIT_PAYLOAD];
        payload[..8].copy_from_slice(&self.me.0.to_le_bytes());
        payload[8..16].copy_from_slice(&id.0.to_le_bytes());
        payload[16..].copy_from_slice(&stamp.to_le_bytes());
        let mut frame = vec![0u8; INIT_LEN];
        frame[0] = INIT;
        frame[1..5].copy_from_slice(&local.to_le_bytes());
        let Ok(n) = hs.write_message(&payload, &mut frame[5..]) else {
            return;
        };
        frame.truncate(5 + n);
        let (since, tries) = match &peer.pending {
            Some(p) => (p.since, p.tries + 1),
            None => (now, 0),
        };
        let wait = first_retry()
            .saturating_mul(1 << tries.min(8))
            .min(MAX_RETRY);
        if let Some(old) = peer.pending.replace(Pending {
            handshake: hs,
            local,
            since,
            next_try: now + wait,
            tries,
        }) {
            self.by_index.remove(&old.local);
        }
        self.by_index.insert(local, id);
        out.push_back(Out {
            to: peer.addr,
            bytes: frame,
            seal: Seal::Initiation(tries),
        });
    }

    /// Takes a handshake message (an initiation or a response) from `from`.
    pub fn on_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        frame: &[u8],
        out: &mut VecDeque<Out>,
    ) -> Result<(), Refused> {
        match frame.first() {
            Some(&INIT) => self.on_init(now, from, frame, out),
            Some(&RESPONSE) => self.on_response(now, frame, out),
            _ => Err(Refused::Unauthentic),
        }
    }

    pub(super) fn on_init(
        &mut self,
        now: Instant,
        from: SocketAddr,
        frame: &[u8],
        out: &mut VecDeque<Out>,
    ) -> Result<(), Refused> {
        if frame.len() != INIT_LEN {
            return Err(Refused::Unauthentic);
        }
        let theirs = u32_at(frame, 1);
        let mut hs = responder(&self.keys).map_err(|_| Refused::Unauthentic)?;
        let mut payload = [0u8; INIT_LEN];
        let n = hs
            .read_message(&frame[5..], &mut payload)
            .map_err(|_| Refused::Unauthentic)?;
        if n != INIT_PAYLOAD {
            return Err(Refused::Unauthentic);
        }
        let (init_id, resp_id, stamp) = (
            NodeId(u64_at(&payload, 0)),
            NodeId(u64_at(&payload, 8)),
            u64_at(&payload, 16),
        );
        if resp_id != self.me {
            return Err(Refused::NotForUs(resp_id));
        }
        let remote: [u8; 32] = hs
            .get_remote_static()
            .and_then(|s| s.try_into().ok())
            .ok_or(Refused::Unauthentic)?;
        match self.peers.get(&init_id) {
            Some(p) if p.remote_static == remote => {}
            Some(_) => return Err(Refused::NotAMember(init_id)),
            None if self.outside => self.take_on_trust(init_id, from, remote),
            None => return Err(Refused::NotAMember(init_id)),
        }
        let local = self.new_index();
        let peer = self.peers.get_mut(&init_id).ok_or(Refused::Unauthentic)?;
        if stamp <= peer.last_stamp {
            return Err(Refused::Replayed(stamp, init_id));
        }
        let mut frame = vec![0u8; RESPONSE_LEN];
        frame[0] = RESPONSE;
        frame[1..5].copy_from_slice(&local.to_le_bytes());
        frame[5..9].copy_from_slice(&theirs.to_le_bytes());
        let n = hs
            .write_message(&self.me.0.to_le_bytes(), &mut frame[9..])
            .map_err(|_| Refused::Unauthentic)?;
        frame.truncate(9 + n);
        let session = Session::new(hs, local, theirs, now).map_err(|_| Refused::Unauthentic)?;
        peer.last_stamp = stamp;
        let dropped = add_session(peer, session);
        for i in dropped {
            self.by_index.remove(&i);
        }
        self.by_index.insert(local, init_id);
        self.counts.handshakes += 1;
        self.sweep_later(now);
        out.push_back(Out {
            to: from,
            bytes: frame,
            seal: Seal::Response,
        });
        Ok(())
    }

    /// Outside the room: a peer we cannot check yet (the leader welcoming us), kept until
    /// the member table confirms or ends it.
    pub(super) fn take_on_trust(&mut self, id: NodeId, from: SocketAddr, remote: [u8; 32]) {
        let provisional: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| p.provisional)
            .map(|p| p.id)
            .collect();
        if provisional.len() >= MAX_PROVISIONAL
            && let Some(&oldest) = provisional
                .iter()
                .min_by_key(|id| self.peers[id].sessions.last().map(|s| s.created))
        {
            self.drop_peer(oldest);
        }
        self.peers.insert(id, Peer::new(id, from, remote, true));
    }

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        frame: &[u8],
        out: &mut VecDeque<Out>,
    ) -> Result<(), Refused> {
        if frame.len() != RESPONSE_LEN {
            return Err(Refused::Unauthentic);
        }
        let theirs = u32_at(frame, 1);
        let ours = u32_at(frame, 5);
        let id = *self.by_index.get(&ours).ok_or(Refused::NoSession)?;
        let peer = self.peers.get_mut(&id).ok_or(Refused::NoSession)?;
        self.deadline = None;
        let Some(mut pending) = peer.pending.take_if(|p| p.local == ours) else {
            return Err(Refused::NoSession);
        };
        let mut payload = [0u8; RESPONSE_LEN];
        let read = pending.handshake.read_message(&frame[9..], &mut payload);
        if read != Ok(RESPONSE_PAYLOAD) || u64_at(&payload, 0) != id.0 {
            // Whatever this was, the handshake state has taken it in: try again at once.
            self.by_index.remove(&ours);
            pending.next_try = now;
            peer.pending = Some(pending);
            return Err(Refused::Unauthentic);
        }
        let session =
            Session::new(pending.handshake, ours, theirs, now).map_err(|_| Refused::Unauthentic)?;
        let dropped = add_session(peer, session);
        peer.unanswered_since = None;
        self.counts.handshakes += 1;
        for i in dropped {
            self.by_index.remove(&i);
        }
        self.flush(now, id, true, out);
        self.sweep_later(now);
        Ok(())
    }

    /// Sends what waited for `id` in the session we may now send on; with `confirm`, an
    /// empty datagram if nothing waited, so that the responder may send too.
    pub(super) fn flush(
        &mut self,
        now: Instant,
        id: NodeId,
        confirm: bool,
        out: &mut VecDeque<Out>,
    ) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let addr = peer.addr;
        let queue = std::mem::take(&mut peer.queue);
        if peer.sending(now).is_none() {
            peer.queue = queue;
            return;
        }
        peer.sent(now);
        let Some(session) = peer.sending(now) else {
            return;
        };
        for plain in queue
            .iter()
            .map(Vec::as_slice)
            .chain((queue.is_empty() && confirm).then_some(&[][..]))
        {
            if let Some(bytes) = session.seal(plain) {
                out.push_back(Out {
                    to: addr,
                    bytes,
                    seal: Seal::Ready,
                });
            }
        }
    }
}
