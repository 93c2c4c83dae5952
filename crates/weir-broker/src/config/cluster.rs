//! The cluster settings: `process.roles`, `controller.quorum.voters`, the controller
//! listener, and the checks that make them a coherent whole.
//!
//! A node runs in one of two modes. With `controller.quorum.voters` empty it is the
//! single-node cluster of the interface contract (broker and controller in one
//! process, the metadata log committed locally), which is what `weir server` with no
//! arguments starts. With voters it is one node of a Raft controller quorum: the
//! voters are the nodes with the controller role, reached on the listener named by
//! `controller.listener.names`, which is never served to Kafka clients.

use std::collections::BTreeMap;
use std::fmt;

use weir_types::NodeId;

use super::{BrokerConfig, ConfigError, ListenerConfig};

/// The listener name controllers talk on unless `controller.listener.names` says
/// otherwise, as in Kafka's example configs.
pub const DEFAULT_CONTROLLER_LISTENER_NAME: &str = "CONTROLLER";

/// `process.roles`: what this node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Hosts partitions and serves Kafka clients.
    pub broker: bool,
    /// Votes in the controller quorum and may become the active controller.
    pub controller: bool,
}

impl ProcessRoles {
    /// Both roles: every node of `weir dev-cluster`, and the single-node default.
    pub const BOTH: ProcessRoles = ProcessRoles {
        broker: true,
        controller: true,
    };

    /// Parses Kafka's comma-separated list (`broker`, `controller`, or both, in any
    /// case); blank means unset (`None`).
    pub fn parse(text: &str) -> Result<Option<ProcessRoles>, String> {
        let mut roles = ProcessRoles {
            broker: false,
            controller: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "broker" => roles.broker = true,
                "controller" => roles.controller = true,
                _ => {
                    return Err(format!(
                        "unknown role {part:?}: expected broker, controller, or broker,controller"
                    ))
                }
            }
        }
        Ok((roles.broker || roles.controller).then_some(roles))
    }
}

impl fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.broker, self.controller) {
            (true, true) => f.write_str("broker,controller"),
            (true, false) => f.write_str("broker"),
            (false, true) => f.write_str("controller"),
            (false, false) => f.write_str(""),
        }
    }
}

/// Where one voter of `controller.quorum.voters` takes controller connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterAddress {
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    /// TCP port, never 0: every other node must know it in advance.
    pub port: u16,
}

impl fmt::Display for VoterAddress {
    /// `host:port`, with brackets around an IPv6 host: ready for a connect call.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `cluster.id`: Kafka's text form of a UUID (22 characters of URL-safe
/// base64, what `kafka-storage random-uuid` prints), not all zeros. As Java's
/// decoder, which Kafka's format tool uses, the unused low bits of the last
/// character are not checked: ids such as `MkU3OEVBNTcwNTJENDM2Qk`, common in
/// Kafka examples, are accepted.
pub(crate) fn parse_cluster_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if text.len() != 22 || !text.chars().all(base64url) {
        return Err(
            "expected 22 characters of URL-safe base64 (a UUID), e.g. from `weir cluster new-id`"
                .into(),
        );
    }
    if text.chars().all(|c| c == 'A') {
        return Err("the all-zero id is reserved; use `weir cluster new-id`".into());
    }
    Ok(text.to_owned())
}

/// The voters by node id, as `controller.quorum.voters` lists them.
pub type QuorumVoters = BTreeMap<NodeId, VoterAddress>;

/// Parses `controller.quorum.voters`: `id@host:port` entries separated by commas
/// (`1@127.0.0.1:9093,2@[::1]:9093`); blank means no voters (single node). A node id
/// given twice is refused: the voters would disagree on where that node is.
pub fn parse_voters(text: &str) -> Result<QuorumVoters, String> {
    let mut voters = QuorumVoters::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((id, address)) = entry.split_once('@') else {
            return Err(format!(
                "{entry:?} has no '@': write id@host:port, e.g. 1@127.0.0.1:9093"
            ));
        };
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("{entry:?}: the node id {id:?} is not a number of 0 or more"))?;
        let listener = ListenerConfig::parse(address).map_err(|e| format!("{entry:?}: {e}"))?;
        if address.contains("://") {
            return Err(format!(
                "{entry:?}: write id@host:port without a listener name"
            ));
        }
        if listener.is_wildcard() || listener.port == 0 {
            return Err(format!(
                "{entry:?} is not an address other nodes can connect to: name a host and a \
                 port other than 0"
            ));
        }
        let address = VoterAddress {
            host: listener.host,
            port: listener.port,
        };
        if voters.insert(NodeId(id), address).is_some() {
            return Err(format!(
                "node id {id} appears twice; give each voter one address"
            ));
        }
    }
    Ok(voters)
}

/// The text form of voters, as [`parse_voters`] reads it.
pub fn voters_to_string(voters: &QuorumVoters) -> String {
    voters
        .iter()
        .map(|(id, address)| format!("{id}@{address}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Shorthand for a validation error.
fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl BrokerConfig {
    /// True without `controller.quorum.voters`: the single-node cluster, whose
    /// controller commits the metadata log locally and is always active.
    pub fn is_single_node(&self) -> bool {
        self.controller_quorum_voters.is_empty()
    }

    /// The roles this node runs: `process.roles`, or both when it is unset.
    pub fn roles(&self) -> ProcessRoles {
        self.process_roles.unwrap_or(ProcessRoles::BOTH)
    }

    /// True when `name` is one of `controller.listener.names`: such a listener
    /// carries controller traffic only and is never served to Kafka clients.
    pub fn is_controller_listener(&self, name: &str) -> bool {
        self.controller_listener_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The listener the controller quorum binds: the first entry of `listeners`
    /// named by the first of `controller.listener.names` that has one (Kafka uses the
    /// first). `None` on a single node or a broker-only node.
    pub fn controller_listener(&self) -> Option<&ListenerConfig> {
        self.controller_listener_names.iter().find_map(|name| {
            self.listeners
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case(name))
        })
    }

    /// The listeners that serve Kafka clients: every entry of `listeners` except the
    /// controller listeners, in order.
    pub fn client_listeners(&self) -> impl Iterator<Item = &ListenerConfig> + '_ {
        self.listeners
            .iter()
            .filter(|l| !self.is_controller_listener(&l.name))
    }

    /// The addresses to advertise to Kafka clients: `advertised.listeners` when set,
    /// else `None` (advertise what the client listeners bound), never a controller
    /// listener.
    pub fn client_advertised_listeners(&self) -> Option<Vec<&ListenerConfig>> {
        self.advertised_listeners.as_ref().map(|advertised| {
            advertised
                .iter()
                .filter(|l| !self.is_controller_listener(&l.name))
                .collect()
        })
    }

    /// The listener name this node's followers look up in a leader's registered
    /// endpoints: `inter.broker.listener.name`, else the first client listener's.
    pub fn inter_broker_listener_name(&self) -> &str {
        match &self.inter_broker_listener_name {
            Some(name) => name,
            None => self
                .client_listeners()
                .next()
                .map_or(super::DEFAULT_LISTENER_NAME, |l| l.name.as_str()),
        }
    }

    /// Replaces the client listeners (`--listen`), keeping the controller listeners.
    pub fn set_client_listeners(&mut self, listeners: Vec<ListenerConfig>) {
        let names = self.controller_listener_names.clone();
        let is_controller =
            |l: &ListenerConfig| names.iter().any(|n| n.eq_ignore_ascii_case(&l.name));
        self.listeners.retain(is_controller);
        let mut clients: Vec<ListenerConfig> = listeners;
        clients.append(&mut self.listeners);
        self.listeners = clients;
    }

    /// Sets the controller listener (`--controller-listen`): `listener` under the
    /// first of `controller.listener.names`, replacing any controller listener.
    pub fn set_controller_listener(&mut self, mut listener: ListenerConfig) {
        let name = self
            .controller_listener_names
            .first()
            .cloned()
            .unwrap_or_else(|| DEFAULT_CONTROLLER_LISTENER_NAME.to_owned());
        listener.name = name;
        let names = self.controller_listener_names.clone();
        self.listeners
            .retain(|l| !names.iter().any(|n| n.eq_ignore_ascii_case(&l.name)));
        self.listeners.push(listener);
    }

    /// The cluster checks of [`validate`](Self::validate): roles, voters and the
    /// controller listener agree with each other.
    pub(super) fn validate_cluster(&self) -> Result<(), ConfigError> {
        if self.controller_listener_names.is_empty() {
            return Err(invalid(
                "controller.listener.names",
                format!("name at least one listener, e.g. {DEFAULT_CONTROLLER_LISTENER_NAME}"),
            ));
        }
        if let Some(name) = &self.inter_broker_listener_name {
            if self.is_controller_listener(name)
                || !self.client_listeners().any(|l| l.name == *name)
            {
                return Err(invalid(
                    "inter.broker.listener.name",
                    format!(
                        "{name} must name one of this node's listeners other than the \
                         controller listeners"
                    ),
                ));
            }
        }
        let controller = self.controller_listener();
        if self.is_single_node() {
            if let Some(roles) = self.process_roles.filter(|r| *r != ProcessRoles::BOTH) {
                return Err(invalid(
                    "controller.quorum.voters",
                    format!(
                        "process.roles={roles} needs the controller quorum: list its voters, \
                         e.g. 1@127.0.0.1:9093,2@127.0.0.1:9094 (--voters), or unset \
                         process.roles for a single-node cluster"
                    ),
                ));
            }
            if let Some(listener) = controller {
                return Err(invalid(
                    "controller.quorum.voters",
                    format!(
                        "{listener} is a controller listener, but no voters are set: a single \
                         node needs none; list the voters (--voters 1@HOST:PORT,...) to form a \
                         cluster, or remove the controller listener"
                    ),
                ));
            }
            return Ok(());
        }
        let roles = self.roles();
        let voters = || voters_to_string(&self.controller_quorum_voters);
        let in_voters = self.controller_quorum_voters.contains_key(&self.node_id);
        if roles.controller {
            if !in_voters {
                return Err(invalid(
                    "controller.quorum.voters",
                    format!(
                        "node.id {} has the controller role, so it must be one of the voters \
                         ({}); add {}@HOST:PORT or change node.id",
                        self.node_id,
                        voters(),
                        self.node_id
                    ),
                ));
            }
            let Some(listener) = controller else {
                return Err(invalid(
                    "listeners",
                    format!(
                        "the controller role needs a listener named {} \
                         (controller.listener.names), e.g. {}://127.0.0.1:9093 \
                         (--controller-listen HOST:PORT)",
                        self.controller_listener_names.join(" or "),
                        self.controller_listener_names[0]
                    ),
                ));
            };
            if listener.port == 0 {
                return Err(invalid(
                    "listeners",
                    format!(
                        "controller listener {listener}: other voters must know its port in \
                         advance; choose a port other than 0"
                    ),
                ));
            }
        } else if in_voters {
            return Err(invalid(
                "controller.quorum.voters",
                format!(
                    "node.id {} is a voter ({}), but process.roles=broker: add the controller \
                     role or remove it from the voters",
                    self.node_id,
                    voters()
                ),
            ));
        }
        if roles.broker {
            if self.client_listeners().next().is_none() {
                return Err(invalid(
                    "listeners",
                    "the broker role needs a listener for clients, e.g. \
                     PLAINTEXT://127.0.0.1:9092 (--listen); every listener is a controller \
                     listener (controller.listener.names)",
                ));
            }
            if !roles.controller {
                if let Some(listener) = controller {
                    return Err(invalid(
                        "listeners",
                        format!(
                            "{listener} is a controller listener, but process.roles=broker: \
                             remove it (a broker reaches the controllers through \
                             controller.quorum.voters)"
                        ),
                    ));
                }
            }
        } else if let Some(listener) = self.client_listeners().next() {
            return Err(invalid(
                "listeners",
                format!(
                    "{listener} would serve clients, but process.roles=controller: list only \
                     controller listeners ({})",
                    self.controller_listener_names.join(",")
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(host: &str, port: u16) -> VoterAddress {
        VoterAddress {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn roles_parse_in_any_order_and_case() {
        assert_eq!(ProcessRoles::parse(""), Ok(None));
        assert_eq!(
            ProcessRoles::parse("Controller, broker"),
            Ok(Some(ProcessRoles::BOTH))
        );
        let broker = ProcessRoles::parse("broker").ok().flatten();
        assert_eq!(
            broker.map(|r| (r.broker, r.controller)),
            Some((true, false))
        );
        let error = ProcessRoles::parse("broker,zookeeper").unwrap_err();
        assert!(error.contains("\"zookeeper\""), "{error}");
        assert_eq!(ProcessRoles::BOTH.to_string(), "broker,controller");
    }

    #[test]
    fn voters_parse_into_a_map_by_id() {
        let voters = parse_voters("2@127.0.0.1:9094, 1@localhost:9093,3@[::1]:9095,");
        let voters = voters.unwrap_or_default();
        assert_eq!(voters.len(), 3);
        assert_eq!(voters.get(&NodeId(1)), Some(&voter("localhost", 9093)));
        assert_eq!(voters.get(&NodeId(3)), Some(&voter("::1", 9095)));
        assert_eq!(
            voters_to_string(&voters),
            "1@localhost:9093,2@127.0.0.1:9094,3@[::1]:9095"
        );
        assert_eq!(parse_voters(" "), Ok(QuorumVoters::new()));
    }

    #[test]
    fn bad_voters_say_what_to_write() {
        let cases = [
            ("1@h:1,1@h:2", "appears twice"),
            ("h:1", "no '@'"),
            ("x@h:1", "not a number"),
            ("-1@h:1", "not a number"),
            ("1@h", "host:port"),
            ("1@0.0.0.0:9093", "not an address"),
            ("1@h:0", "not an address"),
            ("1@CONTROLLER://h:1", "without a listener name"),
        ];
        for (text, expected) in cases {
            let error = parse_voters(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
