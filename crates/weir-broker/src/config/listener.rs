//! Listener addresses in Kafka's form: `NAME://host:port`.

use std::fmt;

/// One entry of `listeners` or `advertised.listeners`.
///
/// Kafka writes these as `NAME://host:port` (`PLAINTEXT://127.0.0.1:9092`, with
/// `[...]` around an IPv6 host and an empty host meaning every interface). Weir also
/// takes a bare `host:port`, named `PLAINTEXT`, because that is what `--listen`
/// users type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Upper-case listener name; connections carry it to the api layer, which
    /// answers Metadata with the advertised address of the same name.
    pub name: String,
    /// Host name or IP address, without IPv6 brackets; empty means all interfaces.
    pub host: String,
    /// TCP port; 0 asks the OS for a free one (tests), which only a bind can resolve.
    pub port: u16,
}

/// The listener name for entries written without one.
pub const DEFAULT_LISTENER_NAME: &str = "PLAINTEXT";

impl ListenerConfig {
    /// Parses one `NAME://host:port` or `host:port`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, address) = match text.split_once("://") {
            Some((name, address)) => (name.to_ascii_uppercase(), address),
            None => (DEFAULT_LISTENER_NAME.to_owned(), text),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "listener name {name:?} in {text:?} must be letters, digits and '_'"
            ));
        }
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err(format!(
                "{text:?} has no port: write host:port, e.g. 127.0.0.1:9092"
            ));
        };
        let host = match host.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .ok_or_else(|| format!("{text:?} opens '[' around the host without closing it"))?,
            None if host.contains(':') => {
                return Err(format!(
                    "{text:?}: put an IPv6 host in brackets, e.g. [::1]:9092"
                ))
            }
            None => host,
        };
        let port = port.parse::<u16>().map_err(|_| {
            format!("{text:?} has port {port:?}; a port is a number from 0 to 65535")
        })?;
        Ok(Self {
            name,
            host: host.to_owned(),
            port,
        })
    }

    /// Parses a comma-separated list; blank entries are skipped.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(Self::parse)
            .collect()
    }

    /// The host to bind: an empty host means every IPv4 interface, as in Kafka.
    pub fn bind_host(&self) -> &str {
        if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        }
    }

    /// True when the host names no particular interface, so it cannot be handed to
    /// clients as an address to connect to.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.as_str(), "" | "0.0.0.0" | "::")
    }
}

impl fmt::Display for ListenerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str, host: &str, port: u16) -> ListenerConfig {
        ListenerConfig {
            name: name.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_kafka_and_bare_forms() {
        assert_eq!(
            ListenerConfig::parse("PLAINTEXT://127.0.0.1:9092"),
            Ok(listener("PLAINTEXT", "127.0.0.1", 9092))
        );
        assert_eq!(
            ListenerConfig::parse("localhost:0"),
            Ok(listener("PLAINTEXT", "localhost", 0))
        );
        assert_eq!(
            ListenerConfig::parse("controller://:9093"),
            Ok(listener("CONTROLLER", "", 9093))
        );
        assert_eq!(
            ListenerConfig::parse("PLAINTEXT://[::1]:9092"),
            Ok(listener("PLAINTEXT", "::1", 9092))
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "PLAINTEXT://127.0.0.1:9092",
            "EXTERNAL://[::1]:1",
            "CONTROLLER://:9093",
        ] {
            let parsed = ListenerConfig::parse(text);
            assert_eq!(parsed.map(|l| l.to_string()), Ok(text.to_owned()));
        }
    }

    #[test]
    fn errors_say_what_to_write() {
        let no_port = ListenerConfig::parse("localhost").unwrap_err();
        assert!(no_port.contains("host:port"), "{no_port}");
        let bad_port = ListenerConfig::parse("localhost:99999").unwrap_err();
        assert!(bad_port.contains("0 to 65535"), "{bad_port}");
        let v6 = ListenerConfig::parse("::1:9092").unwrap_err();
        assert!(v6.contains("brackets"), "{v6}");
        assert!(ListenerConfig::parse("BAD NAME://h:1").is_err());
    }

    #[test]
    fn lists_and_wildcards() {
        let list = ListenerConfig::parse_list("PLAINTEXT://:9092, CONTROLLER://0.0.0.0:9093,");
        let list = list.unwrap_or_default();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(ListenerConfig::is_wildcard));
        assert_eq!(list[0].bind_host(), "0.0.0.0");
        assert!(!listener("X", "127.0.0.1", 1).is_wildcard());
    }
}
