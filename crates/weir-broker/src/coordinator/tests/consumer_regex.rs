//! KIP-848 regex subscriptions: resolution against the topic catalog (internal
//! topics excluded), re-resolution when topics come and go, invalid expressions,
//! and the expression surviving a reload.

use weir_protocol::messages::consumer_group_heartbeat::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use weir_protocol::Uuid;

use super::consumer::{beat, consumer_harness, err, join, ok, parts, request, topics, T, U};
use super::*;

const T2: Uuid = Uuid([9; 16]);
const OFFSETS: Uuid = Uuid([10; 16]);

/// A first heartbeat subscribing with `regex` only.
fn regex_join(regex: &str) -> ConsumerGroupHeartbeatRequest {
    let mut r = request("", 0, None, Some(&[]));
    r.subscribed_topic_regex = Some(regex.into());
    r
}

/// The topics (by id) and partition counts of an answer's assignment.
fn topics_of(r: &ConsumerGroupHeartbeatResponse) -> Vec<(Uuid, usize)> {
    let mut out: Vec<(Uuid, usize)> = r
        .assignment
        .as_ref()
        .expect("an assignment")
        .topic_partitions
        .iter()
        .filter(|tp| !tp.partitions.is_empty())
        .map(|tp| (tp.topic_id, tp.partitions.len()))
        .collect();
    out.sort();
    out
}

/// t (4), u (2), t2 (3) and the internal `__consumer_offsets`.
fn with_t2() -> TopicCatalog {
    TopicCatalog::new([
        ("t".to_owned(), T, 4),
        ("u".to_owned(), U, 2),
        ("t2".to_owned(), T2, 3),
        ("__consumer_offsets".to_owned(), OFFSETS, 50),
    ])
}

#[tokio::test]
async fn a_regex_subscribes_to_every_matching_topic_but_internal_ones() {
    let h = consumer_harness().await;
    h.groups.set_topics(with_t2());
    let r = ok(&h, regex_join("t.*")).await;
    assert_eq!(topics_of(&r), [(T, 4), (T2, 3)], "t and t2, not u");
    let everything = {
        let mut r = regex_join(".*");
        r.group_id = "all".into();
        ok(&h, r).await
    };
    assert_eq!(
        topics_of(&everything),
        [(T, 4), (U, 2), (T2, 3)],
        "never __consumer_offsets"
    );
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    let m = &d[0].members[0];
    assert_eq!(m.subscribed_topic_regex.as_deref(), Some("t.*"));
    assert!(m.subscribed_topic_names.is_empty());
}

#[tokio::test]
async fn names_and_a_regex_are_one_subscription_shared_with_other_members() {
    let h = consumer_harness().await;
    // a: names t; b: u by name and t by regex (the whole name must match: not t2).
    let (a, _, _) = join(&h).await;
    h.groups.set_topics(with_t2());
    let mut b = request("", 0, Some(&["u"]), Some(&[]));
    b.subscribed_topic_regex = Some("t".into());
    let b = ok(&h, b).await;
    let b_id = b.member_id.clone().expect("id");
    // a gives up half of t; then b gets its half of t and all of u.
    let r = ok(&h, request(&a, 1, None, Some(&[0, 1, 2, 3]))).await;
    let kept = parts(&r).expect("a revocation");
    assert_eq!(kept.len(), 2);
    ok(&h, request(&a, 1, None, Some(&kept))).await;
    let mut again = request(&b_id, b.member_epoch, None, Some(&[]));
    again.topic_partitions = Some(Vec::new());
    let r = ok(&h, again).await;
    assert_eq!(topics_of(&r), [(T, 2), (U, 2)]);
}

#[tokio::test]
async fn a_topic_created_or_deleted_later_moves_the_target_assignment() {
    let h = consumer_harness().await;
    let r = ok(&h, regex_join("t.*")).await;
    let id = r.member_id.clone().expect("id");
    assert_eq!((r.member_epoch, topics_of(&r)), (1, vec![(T, 4)]));
    // t2 is created: the next heartbeat resolves the regex again.
    h.groups.set_topics(with_t2());
    let mut hb = request(&id, 1, None, None);
    hb.topic_partitions = None;
    let r = ok(&h, hb).await;
    assert_eq!((r.member_epoch, topics_of(&r)), (2, vec![(T, 4), (T2, 3)]));
    // t is deleted: it leaves the subscription too.
    h.groups.set_topics(TopicCatalog::new([
        ("u".to_owned(), U, 2),
        ("t2".to_owned(), T2, 3),
    ]));
    // The member must release t's partitions first (it still holds them at epoch 2).
    let r = ok(&h, request(&id, 2, None, None)).await;
    assert_eq!((r.member_epoch, topics_of(&r)), (2, vec![(T2, 3)]));
    let mut released = request(&id, 2, None, None);
    released.topic_partitions = Some(vec![TopicPartitions {
        topic_id: T2,
        partitions: vec![0, 1, 2],
    }]);
    let r = ok(&h, released).await;
    assert_eq!(r.member_epoch, 3);
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(d[0].group_epoch, 3);
}

#[tokio::test]
async fn an_invalid_regex_is_invalid_regular_expression() {
    let h = consumer_harness().await;
    let (code, message) = beat(&h, regex_join("t(")).await.unwrap_err();
    assert_eq!(code, ErrorCode::InvalidRegularExpression);
    assert_eq!(code.code(), 128);
    assert!(message.contains("`t(`"), "{message}");
    // Nothing was created.
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(d[0].error_code, ErrorCode::GroupIdNotFound.code());
    // Neither names nor a regex on the first heartbeat.
    assert_eq!(err(&h, regex_join("")).await, ErrorCode::InvalidRequest);
    // A member changing to an invalid regex keeps its old subscription.
    let r = ok(&h, regex_join("t")).await;
    let id = r.member_id.expect("id");
    let mut bad = request(&id, 1, None, None);
    bad.subscribed_topic_regex = Some("[".into());
    assert_eq!(err(&h, bad).await, ErrorCode::InvalidRegularExpression);
    let d = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(d[0].members[0].subscribed_topic_regex.as_deref(), Some("t"));
}

#[tokio::test]
async fn the_regex_survives_a_reload_and_still_resolves() {
    let h = consumer_harness().await;
    let r = ok(&h, regex_join("t.*")).await;
    let id = r.member_id.clone().expect("id");
    let before = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    let (log, clock) = (h.log.clone(), h.clock.clone());
    drop(h);
    let h = Harness::with(test_config(), log, clock).await;
    h.groups.set_topics(topics(4));
    let after = h.groups.consumer_group_describe(&["cg".to_owned()]).await;
    assert_eq!(before, after);
    assert_eq!(
        after[0].members[0].subscribed_topic_regex.as_deref(),
        Some("t.*")
    );
    // Replayed, the expression is compiled again: t2 appearing joins it.
    h.groups.set_topics(with_t2());
    let r = ok(&h, request(&id, 1, None, None)).await;
    assert_eq!((r.member_epoch, topics_of(&r)), (2, vec![(T, 4), (T2, 3)]));
}
