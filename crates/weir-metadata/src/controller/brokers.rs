//! Broker registration, heartbeats, fencing and controlled shutdown: Kafka's
//! `ClusterControlManager` and `BrokerHeartbeatManager`.
//!
//! A broker registers with a fresh incarnation id per process start and gets a
//! broker epoch (the offset of its registration record). A new registration starts
//! fenced: the broker leads nothing and joins no ISR until a heartbeat shows it has
//! applied the metadata up to its own registration. Heartbeats are kept in memory on
//! the active controller only ([`Sessions`]): writing a record per heartbeat would
//! fill the metadata log with liveness noise. A broker that does not heartbeat for
//! `broker.session.timeout.ms` is fenced by the controller's periodic tick, which
//! moves leadership away from it and takes it out of ISRs where others remain. A
//! controller that becomes active knows nothing of earlier heartbeats, so it gives
//! every registered broker a fresh session.
//!
//! Controlled shutdown: a heartbeat with `want_shut_down` marks the broker as
//! shutting down (it may no longer lead or join ISRs), moves its leadership away,
//! and answers `should_shut_down` once the broker leads nothing and has applied the
//! metadata that says so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_protocol::messages::metadata_register_broker_record::{BrokerEndpoint, BrokerFeature};
use weir_protocol::messages::{BrokerRegistrationChangeRecord, RegisterBrokerRecord};
use weir_types::{ErrorCode, NodeId};

use super::cluster_types::{BrokerRegistration, Heartbeat, HeartbeatReply};
use super::partition_change::{elect_leaderless, move_away_from, Leaving};
use super::types::ApiError;
use crate::image::{BrokerImage, MetadataImage};
use crate::record::{MetadataRecord, METADATA_VERSION_FEATURE, METADATA_VERSION_LEVEL};

/// What the active controller knows of one broker's session (in memory only).
#[derive(Debug, Clone, Copy)]
struct Session {
    /// The last heartbeat (or registration, or activation of this controller).
    last_contact: Instant,
    /// The metadata offset the broker must have applied before its controlled
    /// shutdown may finish.
    shutdown_offset: Option<i64>,
}

/// Broker sessions on the active controller; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    sessions: BTreeMap<NodeId, Session>,
}

impl Sessions {
    /// Records contact with `node` at `now`.
    pub(crate) fn touch(&mut self, node: NodeId, now: Instant) {
        self.sessions
            .entry(node)
            .and_modify(|s| s.last_contact = now)
            .or_insert(Session {
                last_contact: now,
                shutdown_offset: None,
            });
    }

    /// Gives every broker of `image` a fresh session (this controller just became
    /// active and has no heartbeat history).
    pub(crate) fn reset(&mut self, image: &MetadataImage, now: Instant) {
        self.sessions.clear();
        for id in image.brokers().keys() {
            self.touch(*id, now);
        }
    }

    /// Whether `node` heartbeated within `timeout` of `now`.
    pub(crate) fn is_live(&self, node: NodeId, now: Instant, timeout: Duration) -> bool {
        self.sessions
            .get(&node)
            .is_some_and(|s| now.saturating_duration_since(s.last_contact) < timeout)
    }

    /// Unfenced brokers of `image` whose session has expired.
    pub(crate) fn expired(
        &self,
        image: &MetadataImage,
        now: Instant,
        timeout: Duration,
    ) -> Vec<NodeId> {
        image
            .brokers()
            .values()
            .filter(|b| !b.fenced && !self.is_live(b.id, now, timeout))
            .map(|b| b.id)
            .collect()
    }

    fn shutdown_offset(&mut self, node: NodeId, now: Instant, offset: i64) -> i64 {
        let s = self.sessions.entry(node).or_insert(Session {
            last_contact: now,
            shutdown_offset: None,
        });
        *s.shutdown_offset.get_or_insert(offset)
    }
}

/// The registration record of `broker_epoch` for `reg`.
pub(crate) fn registration_record(
    reg: &BrokerRegistration,
    broker_epoch: i64,
    fenced: bool,
) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: reg.node.get(),
        incarnation_id: reg.incarnation_id,
        broker_epoch,
        end_points: reg
            .listeners
            .iter()
            .map(|e| BrokerEndpoint {
                name: e.name.clone(),
                host: e.host.clone(),
                port: e.port,
                security_protocol: e.security_protocol,
            })
            .collect(),
        features: vec![BrokerFeature {
            name: METADATA_VERSION_FEATURE.into(),
            min_supported_version: METADATA_VERSION_LEVEL,
            max_supported_version: METADATA_VERSION_LEVEL,
        }],
        rack: reg.rack.clone(),
        fenced,
        ..RegisterBrokerRecord::default()
    })
}

/// The registration's timing and the rules it is checked against.
pub(crate) struct RegisterContext {
    /// Where the first record will land (a registration record's offset is the
    /// broker epoch).
    pub(crate) next_offset: i64,
    /// Now, for the session.
    pub(crate) now: Instant,
    /// `broker.session.timeout.ms`.
    pub(crate) timeout: Duration,
    /// The broker default of `min.insync.replicas`, for ELR changes.
    pub(crate) min_isr_default: i32,
}

/// BrokerRegistration: the records and the broker epoch.
///
/// A new incarnation whose `previous_broker_epoch` is not the epoch of the
/// registration it replaces did not shut down cleanly (KIP-966): its log may have
/// lost records it had acknowledged as a follower, so it leaves every ELR (and
/// ISR) in the same batch as its registration.
pub(crate) fn register(
    image: &MetadataImage,
    sessions: &mut Sessions,
    ctx: &RegisterContext,
    reg: &BrokerRegistration,
) -> Result<(Vec<MetadataRecord>, i64), ApiError> {
    let (next_offset, now, timeout) = (ctx.next_offset, ctx.now, ctx.timeout);
    if reg.node.get() < 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("invalid broker id {}", reg.node),
        ));
    }
    // The registration goes first in its batch: its offset is the broker epoch, and
    // the first record of a batch is at `next_offset` both in the local log (one
    // offset per record) and in Raft (one offset, the entry's index, per batch).
    let mut records = vec![registration_record(reg, next_offset, true)];
    if let Some(existing) = image.broker(reg.node) {
        if existing.incarnation_id == reg.incarnation_id {
            // A retry of the same process's registration: same epoch, unless what it
            // registers changed.
            if existing.endpoints == reg.listeners && existing.rack == reg.rack {
                sessions.touch(reg.node, now);
                return Ok((Vec::new(), existing.epoch));
            }
        } else if sessions.is_live(reg.node, now, timeout) && !existing.in_controlled_shutdown {
            // A live session of another process. Not so once the old incarnation
            // is in a controlled shutdown: it has exited or is about to, and its
            // restart must not wait out the session timeout (as in Kafka).
            return Err(ApiError::new(
                ErrorCode::DuplicateBrokerRegistration,
                format!(
                    "Another broker is registered with that broker id {} and is still alive.",
                    reg.node
                ),
            ));
        }
    }
    // A retry of the same process (with changed listeners) lost nothing; a new
    // process proves a clean shutdown with the epoch it shut down at.
    let clean = image.broker(reg.node).is_some_and(|b| {
        b.incarnation_id == reg.incarnation_id || b.epoch == reg.previous_broker_epoch
    });
    let unfenced = image.broker(reg.node).is_some_and(|b| !b.fenced);
    // The previous incarnation is gone: it leads nothing from now on, and after an
    // unclean shutdown it is no eligible leader either.
    if unfenced || !clean {
        let leaving = if clean {
            Leaving::Isr
        } else {
            Leaving::IsrAndElr
        };
        records.extend(leave(image, reg.node, ctx.min_isr_default, leaving));
    }
    sessions.touch(reg.node, now);
    Ok((records, next_offset))
}

/// The registered broker `node` at `epoch`, or the error Kafka answers.
pub(crate) fn check_epoch(
    image: &MetadataImage,
    node: NodeId,
    epoch: i64,
) -> Result<&BrokerImage, ApiError> {
    let broker = image.broker(node).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BrokerIdNotRegistered,
            format!("Broker {node} is not registered."),
        )
    })?;
    if broker.epoch != epoch {
        return Err(ApiError::new(
            ErrorCode::StaleBrokerEpoch,
            format!(
                "Expected broker epoch {}, but got broker epoch {epoch}.",
                broker.epoch
            ),
        ));
    }
    Ok(broker)
}

fn change(broker: &BrokerImage, fenced: i8, shutdown: i8) -> MetadataRecord {
    MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id: broker.id.get(),
        broker_epoch: broker.epoch,
        fenced,
        in_controlled_shutdown: shutdown,
        log_dirs: Vec::new(),
    })
}

/// Fences `broker`: its leadership moves away, it leaves ISRs (joining ELRs where
/// the ISR drops below `min.insync.replicas`).
pub(crate) fn fence(
    image: &MetadataImage,
    broker: &BrokerImage,
    min_isr_default: i32,
) -> Vec<MetadataRecord> {
    let mut records = leave(image, broker.id, min_isr_default, Leaving::Isr);
    records.push(change(broker, 1, 0));
    records
}

/// The partition changes of [`move_away_from`] as metadata records.
fn leave(
    image: &MetadataImage,
    id: NodeId,
    min_isr_default: i32,
    leaving: Leaving,
) -> Vec<MetadataRecord> {
    let eligible = |n: NodeId| n != id && image.is_usable(n);
    move_away_from(image, id, &eligible, min_isr_default, leaving)
        .into_iter()
        .map(MetadataRecord::PartitionChange)
        .collect()
}

/// The records a heartbeat causes (before the reply, which [`heartbeat_reply`]
/// computes from the image after them).
pub(crate) fn heartbeat(
    image: &MetadataImage,
    sessions: &mut Sessions,
    now: Instant,
    min_isr_default: i32,
    hb: &Heartbeat,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let broker = check_epoch(image, hb.node, hb.broker_epoch)?;
    sessions.touch(hb.node, now);
    let caught_up = hb.current_metadata_offset >= broker.epoch;
    let id = broker.id;
    if broker.fenced {
        if !hb.want_fence && !hb.want_shut_down && caught_up && !broker.in_controlled_shutdown {
            // Unfence, and let it lead the leaderless partitions it can.
            let eligible = |n: NodeId| n == id || image.is_usable(n);
            let mut records = vec![change(broker, -1, 0)];
            records.extend(
                elect_leaderless(image, id, &eligible, min_isr_default)
                    .into_iter()
                    .map(MetadataRecord::PartitionChange),
            );
            return Ok(records);
        }
        return Ok(Vec::new());
    }
    if hb.want_shut_down {
        let mut records = Vec::new();
        if !broker.in_controlled_shutdown {
            records.push(change(broker, 0, 1));
        }
        records.extend(leave(image, id, min_isr_default, Leaving::Isr));
        return Ok(records);
    }
    if hb.want_fence {
        return Ok(fence(image, broker, min_isr_default));
    }
    Ok(Vec::new())
}

/// The reply to `hb`, from the image after its records.
pub(crate) fn heartbeat_reply(
    image: &MetadataImage,
    sessions: &mut Sessions,
    now: Instant,
    hb: &Heartbeat,
) -> HeartbeatReply {
    let Some(broker) = image.broker(hb.node) else {
        return HeartbeatReply::default();
    };
    let is_caught_up = hb.current_metadata_offset >= broker.epoch;
    let should_shut_down = hb.want_shut_down
        && (broker.fenced
            || (broker.in_controlled_shutdown && !leads_any(image, hb.node) && {
                let needed = sessions.shutdown_offset(hb.node, now, image.offset().get());
                hb.current_metadata_offset >= needed
            }));
    HeartbeatReply {
        is_caught_up,
        is_fenced: broker.fenced,
        should_shut_down,
    }
}

/// Whether `node` leads any partition of `image`.
pub(crate) fn leads_any(image: &MetadataImage, node: NodeId) -> bool {
    image
        .topics()
        .any(|t| t.partitions.iter().any(|p| p.leader == Some(node)))
}

/// UnregisterBroker: the registration goes, after its leadership, ISR and ELR
/// places (a broker that comes back registers anew, with nothing to prove its log
/// intact).
pub(crate) fn unregister(
    image: &MetadataImage,
    node: NodeId,
    min_isr_default: i32,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let broker = image.broker(node).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BrokerIdNotRegistered,
            format!("Broker {node} is not registered."),
        )
    })?;
    let mut records = leave(image, node, min_isr_default, Leaving::IsrAndElr);
    records.push(MetadataRecord::UnregisterBroker(
        weir_protocol::messages::UnregisterBrokerRecord {
            broker_id: node.get(),
            broker_epoch: broker.epoch,
        },
    ));
    Ok(records)
}
