//! Settling Produce outcomes: completing acknowledged batches, retrying refused
//! ones (in sequence order, after a backoff, with an epoch bump when idempotence
//! needs one), failing the rest, and expiring batches past `delivery.timeout.ms`.

use std::collections::HashMap;

use tokio::time::Instant;
use weir_protocol::messages::produce::ProduceResponse;
use weir_types::{ErrorCode, NodeId};

use super::Sender;
use crate::error::{code_needs_metadata_refresh, Error, Result};
use crate::producer::batch::ProducerBatch;
use crate::producer::idempotence::Decision;
use crate::util::backoff;

impl Sender {
    /// Fails queued batches that have waited past `delivery.timeout.ms`.
    pub(super) fn expire(&mut self, now: Instant) {
        let timeout = self.shared.config.delivery_timeout;
        let expired = self.shared.state().acc.expire(now, timeout);
        for b in expired {
            let err = Error::DeliveryTimeout {
                topic: b.tp.topic.clone(),
                partition: b.tp.partition,
                timeout,
                last_error: b.last_error.clone().map(Box::new),
            };
            if b.attempts > 0 {
                if let Some(idem) = self.idem.as_mut() {
                    idem.on_abandoned(b.stamp.as_ref());
                }
            }
            self.finish(b, Err(err));
        }
    }

    pub(super) fn on_produced(
        &mut self,
        node: NodeId,
        batches: Vec<ProducerBatch>,
        result: Result<Option<ProduceResponse>>,
    ) {
        if let Some(n) = self.in_flight_nodes.get_mut(&node) {
            *n = n.saturating_sub(1);
        }
        self.in_flight_total = self.in_flight_total.saturating_sub(1);
        for b in &batches {
            if let Some(n) = self.in_flight_partitions.get_mut(&b.tp) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.in_flight_partitions.remove(&b.tp);
                }
            }
        }
        self.settle(batches, result);
    }

    /// Completes, retries or fails each batch of a request by its partition's result.
    pub(super) fn settle(
        &mut self,
        batches: Vec<ProducerBatch>,
        result: Result<Option<ProduceResponse>>,
    ) {
        let resp = match result {
            Ok(Some(r)) => r,
            Ok(None) => {
                for b in batches {
                    self.finish(b, Ok((-1, -1)));
                }
                return;
            }
            Err(e) => {
                if e.needs_metadata_refresh() {
                    self.cluster.request_refresh();
                }
                let decision = if e.is_retriable() {
                    Decision::Retry
                } else {
                    Decision::Fail
                };
                for b in batches {
                    self.retry_or_fail(b, e.clone(), decision);
                }
                return;
            }
        };
        let mut results = HashMap::new();
        for t in &resp.responses {
            for p in &t.partition_responses {
                results.insert((t.name.as_str(), p.index), p);
            }
        }
        for b in batches {
            let Some(p) = results.get(&(b.tp.topic.as_str(), b.tp.partition)).copied() else {
                let e = Error::Protocol {
                    addr: String::new(),
                    reason: format!("the Produce response has no result for {}", b.tp),
                };
                self.retry_or_fail(b, e, Decision::Retry);
                continue;
            };
            match ErrorCode::from_code(p.error_code) {
                ErrorCode::None => {
                    self.acked(&b);
                    self.finish(b, Ok((p.base_offset, p.log_append_time_ms)));
                }
                // An older broker's answer to a retry of a batch it already has.
                ErrorCode::DuplicateSequenceNumber => {
                    self.acked(&b);
                    self.finish(b, Ok((-1, -1)));
                }
                code => {
                    if code_needs_metadata_refresh(code) {
                        self.cluster.request_refresh();
                    }
                    let decision = match self.idem.as_mut() {
                        Some(idem) => {
                            idem.on_error(&b.tp, b.stamp.as_ref(), code, p.log_start_offset)
                        }
                        None if code.is_retriable() => Decision::Retry,
                        None => Decision::Fail,
                    };
                    let e = Error::kafka(b.tp.to_string(), code, p.error_message.clone());
                    self.retry_or_fail(b, e, decision);
                }
            }
        }
    }

    pub(super) fn acked(&mut self, b: &ProducerBatch) {
        if let (Some(idem), Some(stamp)) = (self.idem.as_mut(), b.stamp.as_ref()) {
            idem.acked(&b.tp, stamp, b.record_count);
        }
    }

    pub(super) fn retry_or_fail(&mut self, mut b: ProducerBatch, e: Error, decision: Decision) {
        let config = &self.shared.config;
        let now = Instant::now();
        let expired = now.saturating_duration_since(b.created) >= config.delivery_timeout;
        let retries_left = b.attempts <= config.retries;
        let fatal = self.shared.state().fatal.is_some();
        if decision != Decision::Fail && !expired && retries_left && !fatal {
            tracing::debug!(tp = %b.tp, attempt = b.attempts, error = %e, "retrying batch");
            let c = self.cluster.config();
            b.retry_at = Some(
                now + backoff(
                    c.retry_backoff,
                    c.retry_backoff_max,
                    b.attempts.saturating_sub(1),
                ),
            );
            b.last_error = Some(e);
            self.shared.state().acc.reenqueue(b);
            return;
        }
        let e = if expired {
            Error::DeliveryTimeout {
                topic: b.tp.topic.clone(),
                partition: b.tp.partition,
                timeout: config.delivery_timeout,
                last_error: Some(Box::new(e)),
            }
        } else {
            e
        };
        if let Some(idem) = self.idem.as_mut() {
            idem.on_abandoned(b.stamp.as_ref());
        }
        self.finish(b, Err(e));
    }

    /// Resolves a batch's records and releases its place in the accumulator.
    pub(super) fn finish(&mut self, b: ProducerBatch, outcome: Result<(i64, i64)>) {
        let id = b.id;
        match outcome {
            Ok((base_offset, append_time)) => b.complete(base_offset, append_time),
            Err(e) => b.fail(e),
        }
        self.shared.state().acc.done(id);
        self.shared.progress.notify_waiters();
    }
}
