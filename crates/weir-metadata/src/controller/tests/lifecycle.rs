use weir_types::Offset;

use super::*;
use crate::changes::LocalChanges;
use crate::store::MetadataStore;

#[tokio::test]
async fn restart_gives_the_same_image_and_topic_ids() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let created = create_ok(&c, vec![topic("a", 2, 1), topic("b", 1, 1)]).await;
    c.delete_topics(vec![TopicRef::Name("b".into())])
        .await
        .unwrap();
    create_ok(&c, vec![topic("b", 4, 1)]).await;
    let before = c.image();
    c.shutdown().await;

    let c = open(dir.path());
    let after = c.image();
    assert_eq!(
        *after, *before,
        "same image, and no re-registration of an unchanged broker"
    );
    assert_eq!(after.topic("a").unwrap().id, created[0].topic_id);
    assert_eq!(after.topic("b").unwrap().partitions.len(), 4);
    assert_eq!(after.features().get("metadata.version"), Some(&7));
    // The store alone replays to the same image.
    c.shutdown().await;
    let store = MetadataStore::open(dir.path(), NodeId(1)).unwrap();
    assert_eq!(**store.image(), *before);
}

#[tokio::test]
async fn the_local_broker_is_registered_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let image = c.image();
    let b = image.broker(NodeId(1)).unwrap();
    assert_eq!(b.endpoints, listener(9092));
    assert!(!b.fenced);
    assert_eq!(
        b.epoch, 1,
        "the broker epoch is the offset of its registration"
    );
    let offset = image.offset();

    c.register_local_broker(listener(9092), None).await.unwrap();
    assert_eq!(c.image().offset(), offset, "unchanged: nothing written");
    c.register_local_broker(listener(19092), Some("r1".into()))
        .await
        .unwrap();
    let image = c.image();
    let b = image.broker(NodeId(1)).unwrap();
    assert_eq!(
        (b.endpoints[0].port, b.rack.as_deref()),
        (19092, Some("r1"))
    );
    assert_eq!(b.epoch, offset.get() + 1);
    c.shutdown().await;

    // A controller without listeners registers nothing; topics then have no broker.
    let dir = tempfile::tempdir().unwrap();
    let bare = ControllerConfig {
        listeners: vec![],
        ..config()
    };
    let c = Controller::open(dir.path(), bare).unwrap();
    assert!(c.image().brokers().is_empty());
    assert_eq!(c.image().offset(), Offset(0), "only metadata.version");
    let (code, _) = create_code(&c, topic("t", 1, 1)).await;
    assert_eq!(code, ErrorCode::InvalidReplicationFactor);
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_requests_are_serialized() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            // Half of them race for the same name: exactly one may win it.
            let name = if i % 2 == 0 {
                format!("t{i}")
            } else {
                "shared".to_string()
            };
            c.create_topics(vec![topic(&name, 1, 1)], false)
                .await
                .unwrap()
        }));
    }
    let mut won_shared = 0;
    for t in tasks {
        let r = t.await.unwrap().remove(0);
        if r.name == "shared" && r.error.is_success() {
            won_shared += 1;
        } else if r.name == "shared" {
            assert_eq!(r.error.code, ErrorCode::TopicAlreadyExists);
        } else {
            assert!(r.error.is_success());
        }
    }
    assert_eq!(won_shared, 1);
    let image = c.image();
    assert_eq!(image.topic_count(), 21);
    image.check_invariants().unwrap();
    // Two records per topic after the two bootstrap records, without gaps.
    assert_eq!(image.offset(), Offset(1 + 2 * 21));
}

#[tokio::test]
async fn subscribers_see_every_change_as_local_changes() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut rx = c.subscribe();
    let mut seen = Arc::clone(&rx.borrow_and_update());
    create_ok(&c, vec![topic("t", 2, 1)]).await;
    rx.changed().await.unwrap();
    let now = Arc::clone(&rx.borrow_and_update());
    let changes = LocalChanges::between(&seen, &now, NodeId(1));
    assert_eq!(changes.leaders.len(), 2);
    seen = now;
    c.delete_topics(vec![TopicRef::Name("t".into())])
        .await
        .unwrap();
    rx.changed().await.unwrap();
    let changes = LocalChanges::between(&seen, &rx.borrow_and_update(), NodeId(1));
    assert_eq!(changes.removed.len(), 2);
    assert!(changes.removed.iter().all(|r| r.topic_deleted));
}

#[tokio::test]
async fn a_stopped_controller_refuses_requests() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let other = c.clone();
    c.shutdown().await;
    let err = other
        .create_topics(vec![topic("t", 1, 1)], false)
        .await
        .unwrap_err();
    assert!(matches!(err, MetadataError::ControllerStopped));
    other.shutdown().await; // a second shutdown is harmless
                            // The last image stays readable.
    assert_eq!(other.image().offset(), Offset(1));
}

#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        ControllerConfig {
            num_partitions: 0,
            ..config()
        },
        ControllerConfig {
            default_replication_factor: 0,
            ..config()
        },
        ControllerConfig {
            node_id: NodeId(-1),
            ..config()
        },
        ControllerConfig {
            queue_capacity: 0,
            ..config()
        },
    ] {
        let store = MetadataStore::open(dir.path(), NodeId(1)).unwrap();
        assert!(matches!(
            Controller::start(Box::new(store), None, bad),
            Err(MetadataError::Config(_))
        ));
    }
}
