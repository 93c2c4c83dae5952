//! [`BrokerConfig::validate`]: checks of the settings as a whole.
//!
//! Each check names the key to change and what to write instead, because the
//! message is all a user sees before the broker refuses to start.

use super::{BrokerConfig, ConfigError, LOG_SEGMENT_BYTES_MIN};

/// Shorthand for a validation error.
fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl BrokerConfig {
    /// Checks the settings as a whole; the error names the key and what to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.get() < 0 {
            return Err(invalid(
                "node.id",
                format!("must be 0 or more (got {})", self.node_id),
            ));
        }
        self.validate_listeners()?;
        self.validate_cluster()?;
        self.validate_replication()?;
        if self.log_dirs.is_empty() || self.log_dirs.iter().any(|d| d.as_os_str().is_empty()) {
            return Err(invalid("log.dirs", "name at least one data directory"));
        }
        let at_least = |key: &'static str, value: i64, min: i64| {
            if value < min {
                Err(invalid(
                    key,
                    format!("must be at least {min} (got {value})"),
                ))
            } else {
                Ok(())
            }
        };
        at_least("num.partitions", self.num_partitions.into(), 1)?;
        at_least(
            "default.replication.factor",
            self.default_replication_factor.into(),
            1,
        )?;
        at_least("min.insync.replicas", self.min_insync_replicas.into(), 1)?;
        at_least(
            "offsets.topic.num.partitions",
            self.offsets_topic_num_partitions.into(),
            1,
        )?;
        at_least(
            "offsets.topic.replication.factor",
            self.offsets_topic_replication_factor.into(),
            1,
        )?;
        let frame_max = usize::try_from(i32::MAX).unwrap_or(usize::MAX);
        if self.socket_request_max_bytes == 0 || self.socket_request_max_bytes > frame_max {
            return Err(invalid(
                "socket.request.max.bytes",
                format!("must be from 1 to {frame_max}, the largest size a frame can carry"),
            ));
        }
        if self.message_max_bytes > self.socket_request_max_bytes {
            return Err(invalid(
                "message.max.bytes",
                format!(
                    "{} exceeds socket.request.max.bytes ({}), so such a batch could never \
                     arrive; raise socket.request.max.bytes or lower message.max.bytes",
                    self.message_max_bytes, self.socket_request_max_bytes
                ),
            ));
        }
        let positive = |key: &'static str, value: u64| {
            if value == 0 {
                Err(invalid(key, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("max.connections", self.max_connections as u64)?;
        positive(
            "queued.max.requests.per.connection",
            self.queued_max_requests_per_connection as u64,
        )?;
        positive("connections.max.idle.ms", self.connections_max_idle_ms)?;
        positive("log.roll.ms", self.log_roll_ms)?;
        positive(
            "log.retention.check.interval.ms",
            self.log_retention_check_interval_ms,
        )?;
        positive(
            "log.flush.interval.messages",
            self.log_flush_interval_messages,
        )?;
        if let Some(ms) = self.log_flush_interval_ms {
            positive("log.flush.interval.ms", ms)?;
        }
        if self.log_segment_bytes < LOG_SEGMENT_BYTES_MIN
            || self.log_segment_bytes > i32::MAX as u64
        {
            return Err(invalid(
                "log.segment.bytes",
                format!(
                    "must be from {LOG_SEGMENT_BYTES_MIN} to {} (got {})",
                    i32::MAX,
                    self.log_segment_bytes
                ),
            ));
        }
        if self.log_index_size_max_bytes < 4 {
            return Err(invalid("log.index.size.max.bytes", "must be at least 4"));
        }
        if !self.log_cleanup_policy.delete && !self.log_cleanup_policy.compact {
            return Err(invalid(
                "log.cleanup.policy",
                "name delete, compact, or both",
            ));
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(invalid(
                "group.min.session.timeout.ms",
                format!(
                    "{} is above group.max.session.timeout.ms ({}); no session timeout \
                     could satisfy both",
                    self.group_min_session_timeout_ms, self.group_max_session_timeout_ms
                ),
            ));
        }
        Ok(())
    }

    /// The timing and size checks of the cluster settings, for
    /// [`validate`](Self::validate).
    fn validate_replication(&self) -> Result<(), ConfigError> {
        if self
            .broker_rack
            .as_deref()
            .is_some_and(|r| r.trim().is_empty())
        {
            return Err(invalid("broker.rack", "name a rack, or leave it unset"));
        }
        let positive = |key: &'static str, value: u64| {
            if value == 0 {
                Err(invalid(key, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("broker.session.timeout.ms", self.broker_session_timeout_ms)?;
        positive(
            "broker.heartbeat.interval.ms",
            self.broker_heartbeat_interval_ms,
        )?;
        positive(
            "controller.quorum.election.timeout.ms",
            self.controller_quorum_election_timeout_ms,
        )?;
        positive(
            "controller.quorum.fetch.timeout.ms",
            self.controller_quorum_fetch_timeout_ms,
        )?;
        positive(
            "metadata.log.max.snapshot.interval.ms",
            self.metadata_log_max_snapshot_interval_ms,
        )?;
        positive(
            "metadata.log.max.record.bytes.between.snapshots",
            self.metadata_log_max_record_bytes_between_snapshots,
        )?;
        positive("replica.lag.time.max.ms", self.replica_lag_time_max_ms)?;
        positive("replica.fetch.backoff.ms", self.replica_fetch_backoff_ms)?;
        positive("replica.socket.timeout.ms", self.replica_socket_timeout_ms)?;
        positive("num.replica.fetchers", self.num_replica_fetchers as u64)?;
        positive(
            "leader.imbalance.check.interval.seconds",
            self.leader_imbalance_check_interval_seconds,
        )?;
        if self.leader_imbalance_per_broker_percentage > 100 {
            return Err(invalid(
                "leader.imbalance.per.broker.percentage",
                format!(
                    "is a percentage from 0 to 100 (got {})",
                    self.leader_imbalance_per_broker_percentage
                ),
            ));
        }
        if self.broker_heartbeat_interval_ms >= self.broker_session_timeout_ms {
            return Err(invalid(
                "broker.heartbeat.interval.ms",
                format!(
                    "{} is not below broker.session.timeout.ms ({}), so a live broker would                      be fenced between heartbeats; lower it or raise the session timeout",
                    self.broker_heartbeat_interval_ms, self.broker_session_timeout_ms
                ),
            ));
        }
        if self.replica_fetch_wait_max_ms > self.replica_lag_time_max_ms {
            return Err(invalid(
                "replica.fetch.wait.max.ms",
                format!(
                    "{} exceeds replica.lag.time.max.ms ({}), so an idle follower would drop                      out of the ISR while its fetch waits; lower it",
                    self.replica_fetch_wait_max_ms, self.replica_lag_time_max_ms
                ),
            ));
        }
        if self.replica_fetch_wait_max_ms > self.replica_socket_timeout_ms {
            return Err(invalid(
                "replica.socket.timeout.ms",
                format!(
                    "{} is below replica.fetch.wait.max.ms ({}), so a waiting fetch would                      time out; raise it",
                    self.replica_socket_timeout_ms, self.replica_fetch_wait_max_ms
                ),
            ));
        }
        let max = usize::try_from(i32::MAX).unwrap_or(usize::MAX);
        for (key, value) in [
            ("replica.fetch.max.bytes", self.replica_fetch_max_bytes),
            (
                "replica.fetch.response.max.bytes",
                self.replica_fetch_response_max_bytes,
            ),
        ] {
            if value == 0 || value > max {
                return Err(invalid(
                    key,
                    format!("must be from 1 to {max}, what a fetch request can carry"),
                ));
            }
        }
        if self.replica_fetch_min_bytes > max {
            return Err(invalid(
                "replica.fetch.min.bytes",
                format!("must be from 0 to {max}"),
            ));
        }
        Ok(())
    }

    /// The listener checks of [`validate`](Self::validate).
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(invalid(
                "listeners",
                "name at least one, e.g. PLAINTEXT://127.0.0.1:9092",
            ));
        }
        for (i, listener) in self.listeners.iter().enumerate() {
            if matches!(
                listener.name.as_str(),
                "SSL" | "SASL_SSL" | "SASL_PLAINTEXT"
            ) {
                return Err(invalid(
                    "listeners",
                    format!("{listener}: Weir serves plaintext only so far; use PLAINTEXT"),
                ));
            }
            if self.listeners[..i].iter().any(|l| l.name == listener.name) {
                return Err(invalid(
                    "listeners",
                    format!(
                        "the name {} is used twice; give each listener its own",
                        listener.name
                    ),
                ));
            }
        }
        match &self.advertised_listeners {
            Some(advertised) => {
                for entry in advertised {
                    if !self.listeners.iter().any(|l| l.name == entry.name) {
                        return Err(invalid(
                            "advertised.listeners",
                            format!("{entry} names no listener in listeners"),
                        ));
                    }
                    if entry.is_wildcard() || entry.port == 0 {
                        return Err(invalid(
                            "advertised.listeners",
                            format!("{entry} is not an address a client can connect to"),
                        ));
                    }
                }
            }
            None => {
                if let Some(wild) = self.listeners.iter().find(|l| l.is_wildcard()) {
                    return Err(invalid(
                        "advertised.listeners",
                        format!(
                            "listener {wild} binds every interface, so clients need to be told \
                             a reachable address: set advertised.listeners (or --advertise \
                             HOST:PORT)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ListenerConfig, DEFAULT_LISTENER_NAME};

    #[test]
    fn defaults_are_valid() {
        assert!(BrokerConfig::default().validate().is_ok());
    }

    fn error_of(change: impl FnOnce(&mut BrokerConfig)) -> String {
        let mut config = BrokerConfig::default();
        change(&mut config);
        match config.validate() {
            Ok(()) => String::from("valid"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let e = error_of(|c| c.num_partitions = 0);
        assert!(e.starts_with("num.partitions: must be at least 1"), "{e}");
        let e = error_of(|c| c.message_max_bytes = c.socket_request_max_bytes + 1);
        assert!(e.contains("raise socket.request.max.bytes"), "{e}");
        let e = error_of(|c| c.group_min_session_timeout_ms = c.group_max_session_timeout_ms + 1);
        assert!(e.starts_with("group.min.session.timeout.ms"), "{e}");
        let e = error_of(|c| c.log_segment_bytes = 10);
        assert!(e.starts_with("log.segment.bytes"), "{e}");
        let e = error_of(|c| c.max_connections = 0);
        assert!(e.starts_with("max.connections"), "{e}");
    }

    #[test]
    fn wildcard_listener_needs_an_advertised_address() {
        let e = error_of(|c| c.listeners[0].host = "0.0.0.0".into());
        assert!(e.contains("--advertise"), "{e}");
        let ok = error_of(|c| {
            c.listeners[0].host = "0.0.0.0".into();
            c.advertised_listeners = Some(vec![ListenerConfig {
                name: DEFAULT_LISTENER_NAME.into(),
                host: "broker1.example".into(),
                port: 9092,
            }]);
        });
        assert_eq!(ok, "valid");
    }

    #[test]
    fn advertised_names_must_match_listeners() {
        let e = error_of(|c| {
            c.advertised_listeners = Some(vec![ListenerConfig {
                name: "OTHER".into(),
                host: "h".into(),
                port: 1,
            }]);
        });
        assert!(e.contains("names no listener"), "{e}");
    }

    #[test]
    fn tls_listeners_are_refused_for_now() {
        let e = error_of(|c| c.listeners[0].name = "SSL".into());
        assert!(e.contains("plaintext only"), "{e}");
    }
}
