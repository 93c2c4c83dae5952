//! Regular-expression subscriptions (KIP-848, ConsumerGroupHeartbeat v1).
//!
//! A member may subscribe with a regular expression (`SubscribedTopicRegex`); its
//! subscription is then the union of the topic names it sent and every topic of the
//! cluster, internal topics excepted, whose whole name the expression matches (as
//! Kafka 4, which compiles it with RE2/J and uses `matcher(name).matches()`). The
//! `regex` crate speaks the same RE2 family (no back-references, no look-around),
//! so an expression one accepts the other does too, with the same meaning for the
//! constructs topic names use.
//!
//! Matches are not stored: they are a function of the expression and the topics of
//! the metadata image, resolved again on every heartbeat against the coordinator's
//! current topic catalog. A created or deleted topic thus changes the group's
//! subscribed topics at the next heartbeat of any member, which bumps the group
//! epoch and recomputes the target assignment (the same path as a partition count
//! change). The expression itself is persisted in the member metadata record and
//! compiled again when the record is replayed.

use std::fmt;

use regex::{Regex, RegexBuilder};

/// The most memory one compiled expression may take; a bigger one is refused as
/// invalid rather than allowed to cost the coordinator.
const COMPILED_BYTES_MAX: usize = 1 << 20;

/// A member's subscription expression: its source and, when valid, its compiled
/// form, anchored at both ends.
#[derive(Clone)]
pub(crate) struct TopicRegex {
    /// The expression as the member sent it (what is stored and described).
    source: String,
    /// `^(?:source)$`; `None` only for an invalid expression read back from a record
    /// (a heartbeat with one is refused), which matches nothing.
    compiled: Option<Regex>,
}

impl TopicRegex {
    /// Compiles a member's expression; the error is Kafka's message for
    /// INVALID_REGULAR_EXPRESSION.
    pub(crate) fn parse(source: &str) -> Result<TopicRegex, String> {
        compile(source)
            .map(|compiled| TopicRegex {
                source: source.to_owned(),
                compiled: Some(compiled),
            })
            .map_err(|e| {
                format!("SubscribedTopicRegex `{source}` is not a valid regular expression: {e}.")
            })
    }

    /// An expression read back from the log. One that does not compile (written by
    /// another version) is kept, so it is described and rewritten as it was, but
    /// matches nothing.
    pub(crate) fn restored(source: String) -> TopicRegex {
        let compiled = compile(&source)
            .map_err(|e| tracing::warn!(regex = %source, error = %e, "stored subscription regex does not compile"))
            .ok();
        TopicRegex { source, compiled }
    }

    /// The expression as sent.
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `topic` is subscribed by this expression: its whole name matches and
    /// it is not one of the broker's internal topics.
    pub(crate) fn matches(&self, topic: &str) -> bool {
        !weir_metadata::controller::is_internal(topic)
            && self.compiled.as_ref().is_some_and(|re| re.is_match(topic))
    }
}

fn compile(source: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!("^(?:{source})$"))
        .size_limit(COMPILED_BYTES_MAX)
        .build()
}

impl PartialEq for TopicRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for TopicRegex {}

impl fmt::Debug for TopicRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicRegex").field(&self.source).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_name_must_match_and_internal_topics_never_do() {
        let re = TopicRegex::parse("orders-.*").unwrap();
        assert!(re.matches("orders-eu"));
        assert!(!re.matches("old-orders-eu"), "anchored at the start");
        let re = TopicRegex::parse("orders|payments").unwrap();
        assert!(re.matches("payments"));
        assert!(
            !re.matches("payments-x"),
            "alternation is anchored as a whole"
        );
        let all = TopicRegex::parse(".*").unwrap();
        assert!(all.matches("x"));
        assert!(!all.matches("__consumer_offsets"));
        assert!(!all.matches("__transaction_state"));
        let classes = TopicRegex::parse(r"^t\d+\w*$").unwrap();
        assert!(classes.matches("t12_a"));
    }

    #[test]
    fn invalid_expressions_are_refused_with_a_message() {
        let e = TopicRegex::parse("orders-(").unwrap_err();
        assert!(e.contains("orders-("), "{e}");
        assert!(
            TopicRegex::parse("(?=x)").is_err(),
            "look-around is not RE2"
        );
        assert!(TopicRegex::parse("a{100000}{100000}").is_err(), "too big");
        let restored = TopicRegex::restored("orders-(".into());
        assert_eq!(restored.as_str(), "orders-(");
        assert!(!restored.matches("orders-("));
    }
}
