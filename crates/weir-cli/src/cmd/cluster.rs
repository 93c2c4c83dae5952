//! `weir cluster status`: the brokers, the active controller, and the partitions
//! that need attention, from any Kafka-compatible cluster. `weir cluster new-id`:
//! a fresh cluster id for `cluster.id` (Kafka's `kafka-storage random-uuid`).
//!
//! Two admin calls: DescribeCluster (brokers, controller) and Metadata for every
//! topic, internal ones included (a `__consumer_offsets` partition without a leader
//! stops every group it coordinates). A partition is under-replicated when its ISR
//! is smaller than its replica set, and offline when it has no leader, Kafka's
//! definitions.

use weir_client::admin::{PartitionDescription, TopicDescription};
use weir_client::{Admin, ClientConfig};

use super::common::{json_array, outln, print_table, tidy_error, ClusterArgs, JsonObject};

const EXAMPLES: &str = "\
Examples:
  weir cluster status
  weir cluster status -b 127.0.0.1:9092,127.0.0.1:9093 --json
  weir server --cluster-id \"$(weir cluster new-id)\" ...";

/// Arguments of `weir cluster`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ClusterCmdArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Show brokers, the active controller, and under-replicated and offline
    /// partitions
    Status {
        /// Print one JSON object instead of tables
        #[arg(long)]
        json: bool,
    },
    /// Print a new random cluster id, for `weir server --cluster-id` (cluster.id)
    /// on every node of a new cluster
    NewId,
}

/// Runs `weir cluster ...`.
pub(crate) async fn run(args: ClusterCmdArgs) -> anyhow::Result<()> {
    run_inner(args).await.map_err(tidy_error)
}

async fn run_inner(args: ClusterCmdArgs) -> anyhow::Result<()> {
    if let ClusterCommand::NewId = args.command {
        let id = weir_metadata::uuid::UuidGenerator::from_entropy().next_uuid();
        outln!("{}", weir_metadata::uuid::to_base64(id));
        return Ok(());
    }
    let admin = Admin::new(ClientConfig::new(&args.cluster.bootstrap_server)).await?;
    match args.command {
        ClusterCommand::Status { json } => status(&admin, json).await,
        ClusterCommand::NewId => Ok(()),
    }
}

/// A partition that needs attention, with its topic.
struct Flagged<'a> {
    topic: &'a str,
    partition: &'a PartitionDescription,
}

/// Partitions whose ISR is smaller than their replica set.
fn under_replicated(topics: &[TopicDescription]) -> Vec<Flagged<'_>> {
    flagged(topics, |p| p.isr.len() < p.replicas.len())
}

/// Partitions without a leader.
fn offline(topics: &[TopicDescription]) -> Vec<Flagged<'_>> {
    flagged(topics, |p| p.leader.is_none())
}

fn flagged(
    topics: &[TopicDescription],
    test: impl Fn(&PartitionDescription) -> bool,
) -> Vec<Flagged<'_>> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| test(p))
                .map(|partition| Flagged {
                    topic: &t.name,
                    partition,
                })
        })
        .collect()
}

async fn status(admin: &Admin, json: bool) -> anyhow::Result<()> {
    let cluster = admin.describe_cluster().await?;
    let topics = admin.list_topics(true).await?;
    let mut brokers = cluster.brokers.clone();
    brokers.sort_by_key(|b| b.node_id);
    let under = under_replicated(&topics);
    let offline = offline(&topics);
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();

    if json {
        let brokers = brokers.iter().map(|b| {
            JsonObject::new()
                .int("id", b.node_id.get().into())
                .str("host", &b.host)
                .int("port", b.port.into())
                .raw(
                    "rack",
                    &b.rack.as_deref().map_or("null".to_owned(), json_str),
                )
                .finish()
        });
        let out = JsonObject::new()
            .raw(
                "cluster_id",
                &cluster
                    .cluster_id
                    .as_deref()
                    .map_or("null".to_owned(), json_str),
            )
            .raw(
                "controller_id",
                &cluster
                    .controller_id
                    .map_or("null".to_owned(), |c| c.to_string()),
            )
            .raw("brokers", &json_array(brokers))
            .int("topics", count(topics.len()))
            .int("partitions", count(partitions))
            .int("under_replicated_count", count(under.len()))
            .raw("under_replicated", &partitions_json(&under))
            .int("offline_count", count(offline.len()))
            .raw("offline", &partitions_json(&offline))
            .finish();
        outln!("{out}");
        return Ok(());
    }

    outln!(
        "Cluster: {}  Controller: {}  Brokers: {}  Topics: {}  Partitions: {}",
        cluster.cluster_id.as_deref().unwrap_or("-"),
        cluster
            .controller_id
            .map_or("none".to_owned(), |c| c.to_string()),
        brokers.len(),
        topics.len(),
        partitions
    );
    let rows: Vec<Vec<String>> = brokers
        .iter()
        .map(|b| {
            vec![
                b.node_id.to_string(),
                b.addr(),
                b.rack.clone().unwrap_or_else(|| "-".to_owned()),
                if Some(b.node_id) == cluster.controller_id {
                    "yes".to_owned()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    print_table(&["BROKER", "ADDRESS", "RACK", "CONTROLLER"], &rows);
    for (title, list) in [
        ("Under-replicated partitions", &under),
        ("Offline partitions", &offline),
    ] {
        outln!("{title}: {}", list.len());
        if !list.is_empty() {
            print_table(
                &["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"],
                &partition_rows(list),
            );
        }
    }
    Ok(())
}

fn partition_rows(list: &[Flagged<'_>]) -> Vec<Vec<String>> {
    list.iter()
        .map(|f| {
            let p = f.partition;
            vec![
                f.topic.to_owned(),
                p.partition.to_string(),
                p.leader.map_or("none".to_owned(), |l| l.to_string()),
                nodes(&p.replicas),
                nodes(&p.isr),
            ]
        })
        .collect()
}

fn partitions_json(list: &[Flagged<'_>]) -> String {
    json_array(list.iter().map(|f| {
        let p = f.partition;
        JsonObject::new()
            .str("topic", f.topic)
            .int("partition", p.partition.into())
            .raw(
                "leader",
                &p.leader.map_or("null".to_owned(), |l| l.to_string()),
            )
            .raw("replicas", &ids_json(&p.replicas))
            .raw("isr", &ids_json(&p.isr))
            .finish()
    }))
}

/// A string as a JSON literal.
fn json_str(text: &str) -> String {
    let mut out = String::new();
    super::common::push_json_str(&mut out, text);
    out
}

/// A count as a JSON integer.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The text form of a node list: `1,2,3`.
fn nodes<T: std::fmt::Display>(list: &[T]) -> String {
    list.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A node list as a JSON array of ids.
fn ids_json<T: std::fmt::Display>(list: &[T]) -> String {
    json_array(list.iter().map(|n| n.to_string()))
}

#[cfg(test)]
mod tests {
    use weir_types::NodeId;

    use super::*;

    fn partition(
        partition: i32,
        leader: Option<i32>,
        replicas: &[i32],
        isr: &[i32],
    ) -> PartitionDescription {
        PartitionDescription {
            partition,
            leader: leader.map(NodeId),
            leader_epoch: 0,
            replicas: replicas.iter().copied().map(NodeId).collect(),
            isr: isr.iter().copied().map(NodeId).collect(),
            offline_replicas: Vec::new(),
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        }
    }

    #[test]
    fn under_replicated_is_isr_below_replicas_and_offline_is_no_leader() {
        let topics = vec![TopicDescription {
            name: "t".into(),
            topic_id: Default::default(),
            is_internal: false,
            partitions: vec![
                partition(0, Some(1), &[1, 2, 3], &[1, 2, 3]),
                partition(1, Some(2), &[1, 2, 3], &[2, 3]),
                partition(2, None, &[1, 2, 3], &[1]),
            ],
        }];
        let under: Vec<i32> = under_replicated(&topics)
            .iter()
            .map(|f| f.partition.partition)
            .collect();
        assert_eq!(under, [1, 2]);
        let off = offline(&topics);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].topic, "t");
        assert_eq!(
            partitions_json(&off),
            r#"[{"topic":"t","partition":2,"leader":null,"replicas":[1,2,3],"isr":[1]}]"#
        );
    }
}
