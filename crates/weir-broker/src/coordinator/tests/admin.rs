//! ListGroups, DescribeGroups, DeleteGroups.

use std::collections::BTreeSet;

use super::offsets::{commit, commit_request, fetch_one};
use super::*;

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn list_filters_by_state_and_type() {
    let h = Harness::new().await;
    commit(&h, commit_request("solo", -1, "", &[("t", 0, 1, None)]), 8).await;
    let (mut a, a_id) = h.join_new("busy").await;
    h.advance(3_000).await;
    answered(&mut a);
    let mut s = h.sync("busy", &a_id, 1, &[]).await;
    answered(&mut s);
    let all = h.groups.list_groups(&set(&[]), &set(&[])).expect("list");
    let summary: Vec<_> = all
        .iter()
        .map(|g| {
            (
                g.group_id.as_str(),
                g.group_state.as_str(),
                g.protocol_type.as_str(),
                g.group_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("busy", "Stable", "consumer", "classic"),
            ("solo", "Empty", "", "classic")
        ]
    );
    let stable = h
        .groups
        .list_groups(&set(&["stable"]), &set(&[]))
        .expect("list");
    assert_eq!(stable.len(), 1);
    assert_eq!(
        h.groups
            .list_groups(&set(&["empty", "stable"]), &set(&["classic"]))
            .expect("list")
            .len(),
        2
    );
    assert!(h
        .groups
        .list_groups(&set(&[]), &set(&["consumer"]))
        .expect("list")
        .is_empty());
    assert!(h
        .groups
        .list_groups(&set(&["dead"]), &set(&[]))
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn describe_shows_members_and_metadata_only_when_stable() {
    let h = Harness::new().await;
    let missing = h.groups.describe_groups(&["nowhere".into()]).await;
    assert_eq!(
        (missing[0].error_code, missing[0].group_state.as_str()),
        (0, "Dead")
    );
    let (mut a, a_id) = h.join_new("g").await;
    h.advance(3_000).await;
    answered(&mut a);
    let d = &h.groups.describe_groups(&["g".into()]).await[0];
    assert_eq!(
        (d.group_state.as_str(), d.protocol_data.as_str()),
        ("CompletingRebalance", "")
    );
    assert!(d.members[0].member_metadata.is_empty());
    let mut s = h.sync("g", &a_id, 1, &[(&a_id, b"A")]).await;
    answered(&mut s);
    let d = &h.groups.describe_groups(&["g".into()]).await[0];
    assert_eq!(
        (
            d.group_state.as_str(),
            d.protocol_type.as_str(),
            d.protocol_data.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    let m = &d.members[0];
    assert_eq!(m.member_id, a_id);
    assert_eq!(
        (m.client_id.as_str(), m.client_host.as_str()),
        ("c", "/127.0.0.1")
    );
    assert_eq!(
        (m.member_metadata.as_ref(), m.member_assignment.as_ref()),
        (&b"m"[..], &b"A"[..])
    );
}

#[tokio::test]
async fn delete_removes_empty_groups_with_their_offsets_only() {
    let h = Harness::new().await;
    commit(
        &h,
        commit_request("solo", -1, "", &[("t", 0, 1, None), ("t", 1, 2, None)]),
        8,
    )
    .await;
    let (mut a, _) = h.join_new("busy").await;
    h.advance(3_000).await;
    answered(&mut a);
    let ids = vec!["solo".to_owned(), "busy".to_owned(), "nowhere".to_owned()];
    let results = h.groups.delete_groups(ids).await.await;
    assert_eq!(
        results,
        [
            ("solo".to_owned(), ErrorCode::None),
            ("busy".to_owned(), ErrorCode::NonEmptyGroup),
            ("nowhere".to_owned(), ErrorCode::GroupIdNotFound)
        ]
    );
    assert_eq!(h.state("solo").await, "Dead");
    assert_eq!(fetch_one(&h, "solo", "t", 0).await.0, -1);
    // Tombstones for both offsets and the group.
    let tombstones = h
        .written("solo")
        .into_iter()
        .filter(|r| match r {
            Record::OffsetCommit { value, .. } => value.is_none(),
            Record::GroupMetadata { value, .. } => value.is_none(),
            Record::Consumer(_) => false,
        })
        .count();
    assert_eq!(tombstones, 3);
}
