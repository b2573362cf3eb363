//! A host's simulated disk: a model of the driver's database, fed by the node's writes.

use ringchat::proto::{Restored, Write};

/// Applies one write to a disk, as the driver's database does.
pub(super) fn write_to(disk: &mut Restored, log: &mut Vec<(u64, String, String)>, w: Write) {
    match w {
        Write::Delivered(e) => {
            if !e.is_filler() {
                log.push((e.seq.0, e.name.clone(), e.text.clone()));
            }
            disk.held.retain(|h| h.seq != e.seq);
            disk.history.push(e);
            disk.delivery_point = None;
        }
        Write::Held(e) => {
            disk.held.retain(|h| h.seq != e.seq);
            disk.held.push(e);
        }
        Write::Kept(item) => {
            let same = |k: &ringchat::wire::QueuedDm| {
                k.recipient() == item.recipient()
                    && k.origin == item.origin
                    && k.dm.id == item.dm.id
            };
            if !disk.kept.iter().any(same) {
                disk.kept.push(item);
            }
        }
        Write::HandedOver { to, origin, id } => {
            disk.kept
                .retain(|k| !(k.recipient() == to && k.origin == origin && k.dm.id == id));
            disk.handed_over.push((to, origin, id));
        }
        Write::DeliveryPoint(seq) => disk.delivery_point = Some(seq),
        Write::DirectShown { origin, id, .. } => disk.directs_shown.push((origin, id)),
        Write::Clock(lamport) => disk.lamport = lamport,
        Write::Voters { voters, at } => disk.voters = Some((at, voters)),
        Write::Room {
            members,
            epoch,
            lamport,
        } => {
            disk.members = members;
            if epoch.is_some() {
                disk.epoch = epoch;
            }
            disk.lamport = lamport;
        }
    }
}
