//! Topic name rules, as Kafka's `Topic.validate`.

/// The longest legal topic name. (Kafka's limit: a partition directory is
/// `<name>-<partition>` and must fit a 255-byte file name, with room for a suffix.)
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Topics that belong to the broker's own machinery.
pub const INTERNAL_TOPICS: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Why `name` is not a legal topic name, in Kafka's words; `None` if it is legal.
pub fn invalid_topic_name(name: &str) -> Option<String> {
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_string()
    } else if name == "." {
        "'.' is not allowed".to_string()
    } else if name == ".." {
        "'..' is not allowed".to_string()
    } else if name.len() > MAX_TOPIC_NAME_LEN {
        format!("the length of '{name}' is longer than the max allowed length {MAX_TOPIC_NAME_LEN}")
    } else if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        format!("'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        return None;
    };
    Some(format!("Topic name is invalid: {reason}"))
}

/// Whether the name contains a character that collides with another in metric names
/// ('.' and '_' both become '_').
pub(super) fn has_collision_chars(name: &str) -> bool {
    name.contains(['.', '_'])
}

/// The name with '.' replaced by '_': two topics with equal unified names collide.
pub(super) fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

/// Whether `name` is one of the broker's internal topics.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topic_name_rules() {
        for ok in ["a", "A-b_c.9", &"x".repeat(249), "..."] {
            assert_eq!(invalid_topic_name(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            &"x".repeat(250),
            "a b",
            "a/b",
            "tópico",
            "a\0",
        ] {
            let why = invalid_topic_name(bad).unwrap();
            assert!(why.starts_with("Topic name is invalid: "), "{why}");
        }
        assert!(has_collision_chars("a.b") && has_collision_chars("a_b"));
        assert!(!has_collision_chars("ab-c"));
        assert_eq!(unify_collision_chars("a.b_c"), "a_b_c");
        assert!(is_internal("__consumer_offsets") && !is_internal("orders"));
    }
}
