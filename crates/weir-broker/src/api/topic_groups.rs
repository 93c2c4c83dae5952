//! Per-partition results regrouped by topic, as the responses of ElectLeaders and
//! the reassignment APIs nest them.

/// `items` grouped by topic name: topics in the order of their first item, each
/// topic's items in their given order.
pub(super) fn by_topic<T>(items: impl IntoIterator<Item = (String, T)>) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match groups.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, group)) => group.push(item),
            None => groups.push((topic, vec![item])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_keep_their_first_appearance_order() {
        let grouped = by_topic([("b".to_owned(), 1), ("a".into(), 2), ("b".into(), 3)]);
        assert_eq!(
            grouped,
            [("b".to_owned(), vec![1, 3]), ("a".to_owned(), vec![2])]
        );
    }
}
