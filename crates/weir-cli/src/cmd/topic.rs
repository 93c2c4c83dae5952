//! `weir topic`: create, list, describe, delete, alter the configs of, and add
//! partitions to topics, through the admin client.
//!
//! Every subcommand makes one admin call (describe makes three:
//! DescribeTopicPartitions, or Metadata on brokers without it, then ListOffsets and
//! DescribeConfigs) and prints the outcome; a per-topic error from the broker
//! becomes the command's error, so the exit code says whether it worked. Describe
//! shows the eligible leader replicas (KIP-966) when a partition has some.

use anyhow::{anyhow, Context};
use weir_client::admin::{AlterConfigOp, ConfigResource, NewTopic, TopicDescription};
use weir_client::consumer::IsolationLevel;
use weir_client::{Admin, ClientConfig, OffsetSpec, TopicPartition};
use weir_metadata::uuid::to_base64;

use super::common::{
    json_array, outln, parse_key_value, print_table, tidy_error, ClusterArgs, JsonObject,
};

const EXAMPLES: &str = "\
Examples:
  weir topic create orders --partitions 6 --config retention.ms=86400000
  weir topic list
  weir topic describe orders --json
  weir topic alter-config orders --set cleanup.policy=compact --delete retention.ms
  weir topic add-partitions orders --partitions 12
  weir topic delete orders
  weir topic list -b broker1:9092,broker2:9092";

/// Arguments of `weir topic`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct TopicArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicCommand {
    /// Create a topic
    Create {
        /// Topic name
        name: String,
        /// Number of partitions [default: the broker's num.partitions]
        #[arg(short, long, value_name = "N")]
        partitions: Option<i32>,
        /// Copies of each partition [default: the broker's default.replication.factor]
        #[arg(short, long, value_name = "R")]
        replication_factor: Option<i16>,
        /// A topic config, e.g. retention.ms=86400000; repeatable
        #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Only check that the topic could be created
        #[arg(long)]
        validate_only: bool,
    },
    /// List topics as a table
    List {
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
        /// Include internal topics (__consumer_offsets, ...)
        #[arg(long)]
        internal: bool,
    },
    /// Show a topic's partitions, leaders, replicas, ISR, offsets and configs
    Describe {
        /// Topic name
        name: String,
        /// Print one JSON object instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Delete topics and all their data
    Delete {
        /// Topic name(s)
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or remove topic configs
    AlterConfig {
        /// Topic name
        name: String,
        /// Set a config, e.g. retention.ms=3600000; repeatable
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Remove a config override (back to the broker default); repeatable
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Raise a topic's partition count (it can never shrink)
    AddPartitions {
        /// Topic name
        name: String,
        /// The new total number of partitions
        #[arg(short, long, value_name = "N")]
        partitions: i32,
    },
}

/// Runs `weir topic ...`.
pub(crate) async fn run(args: TopicArgs) -> anyhow::Result<()> {
    run_inner(args).await.map_err(tidy_error)
}

async fn run_inner(args: TopicArgs) -> anyhow::Result<()> {
    let admin = Admin::new(ClientConfig::new(&args.cluster.bootstrap_server)).await?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
        } => {
            let mut topic = NewTopic::new(
                name.as_str(),
                partitions.unwrap_or(-1),
                replication_factor.unwrap_or(-1),
            );
            topic.configs = configs;
            let result = first(admin.create_topics(vec![topic], validate_only).await?)?;
            let verb = if validate_only {
                "could create"
            } else {
                "created"
            };
            let mut line = format!("{verb} topic {name}");
            if result.num_partitions > 0 {
                line.push_str(&format!(
                    " ({} partitions, replication factor {})",
                    result.num_partitions, result.replication_factor
                ));
            }
            outln!("{line}");
        }
        TopicCommand::List { json, internal } => list(&admin, json, internal).await?,
        TopicCommand::Describe { name, json } => describe(&admin, &name, json).await?,
        TopicCommand::Delete { names } => {
            let mut failed = Vec::new();
            for (name, result) in admin.delete_topics(&names).await? {
                match result {
                    Ok(()) => outln!("deleted topic {name}"),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            if !failed.is_empty() {
                return Err(anyhow!(failed.join("; ")));
            }
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                return Err(anyhow!(
                    "nothing to change: give --set KEY=VALUE and/or --delete KEY"
                ));
            }
            let ops: Vec<AlterConfigOp> = set
                .into_iter()
                .map(|(k, v)| AlterConfigOp::Set(k, v))
                .chain(delete.into_iter().map(AlterConfigOp::Delete))
                .collect();
            let resource = ConfigResource::topic(name.as_str());
            first(
                admin
                    .incremental_alter_configs(vec![(resource, ops)], false)
                    .await?,
            )?;
            outln!("updated the configs of topic {name}");
        }
        TopicCommand::AddPartitions { name, partitions } => {
            first(
                admin
                    .create_partitions(vec![(name.clone(), partitions)], false)
                    .await?,
            )?;
            outln!("topic {name} now has {partitions} partitions");
        }
    }
    Ok(())
}

/// The result of a one-item admin call.
fn first<K, T>(results: Vec<(K, weir_client::Result<T>)>) -> anyhow::Result<T> {
    match results.into_iter().next() {
        Some((_, result)) => Ok(result?),
        None => Err(anyhow!(
            "the broker answered without a result for the topic"
        )),
    }
}

/// The replication factor as the partitions show it (that of partition 0).
fn replication_factor(t: &TopicDescription) -> usize {
    t.partitions.first().map_or(0, |p| p.replicas.len())
}

async fn list(admin: &Admin, json: bool, internal: bool) -> anyhow::Result<()> {
    let topics = admin.list_topics(internal).await?;
    if json {
        let items = topics.iter().map(|t| {
            JsonObject::new()
                .str("name", &t.name)
                .str("topic_id", &to_base64(t.topic_id))
                .int("partitions", count(t.partitions.len()))
                .int("replication_factor", count(replication_factor(t)))
                .bool("internal", t.is_internal)
                .finish()
        });
        outln!("{}", json_array(items));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                replication_factor(t).to_string(),
                to_base64(t.topic_id),
            ]
        })
        .collect();
    print_table(&["TOPIC", "PARTITIONS", "REPLICATION", "TOPIC-ID"], &rows);
    Ok(())
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

/// As [`nodes`], with "-" for none.
fn nodes_or_dash<T: std::fmt::Display>(list: &[T]) -> String {
    if list.is_empty() {
        "-".to_owned()
    } else {
        nodes(list)
    }
}

async fn describe(admin: &Admin, name: &str, json: bool) -> anyhow::Result<()> {
    let topic = first(admin.describe_topics(&[name.to_owned()]).await?)?;
    // Log start and end of every partition, in one ListOffsets round per kind.
    let mut query = Vec::new();
    for p in &topic.partitions {
        let tp = TopicPartition::new(name, p.partition);
        query.push((tp.clone(), OffsetSpec::Earliest));
        query.push((tp, OffsetSpec::Latest));
    }
    let offsets = admin
        .list_offsets(&query, IsolationLevel::ReadUncommitted)
        .await
        .context("cannot read the partitions' offsets")?;
    let offset_of = |partition: i32, spec: OffsetSpec| -> Option<i64> {
        query
            .iter()
            .zip(&offsets)
            .find(|((tp, s), _)| tp.partition == partition && *s == spec)
            .and_then(|(_, (_, r))| r.as_ref().ok().map(|l| l.offset))
    };
    let configs = first(
        admin
            .describe_configs(vec![ConfigResource::topic(name)])
            .await?,
    )
    .unwrap_or_default();
    let overrides: Vec<(String, String)> = configs
        .into_iter()
        .filter(|c| !c.is_default)
        .map(|c| (c.name, c.value.unwrap_or_else(|| "(hidden)".to_owned())))
        .collect();

    if json {
        let partitions = topic.partitions.iter().map(|p| {
            let o = JsonObject::new()
                .int("partition", p.partition.into())
                .raw(
                    "leader",
                    &p.leader.map_or("null".to_owned(), |l| l.to_string()),
                )
                .int("leader_epoch", p.leader_epoch.into())
                .raw("replicas", &ids_json(&p.replicas))
                .raw("isr", &ids_json(&p.isr))
                .raw("offline_replicas", &ids_json(&p.offline_replicas));
            // KIP-966 state, only where there is some (brokers with
            // DescribeTopicPartitions report it).
            let o = if p.eligible_leader_replicas.is_empty() {
                o
            } else {
                o.raw(
                    "eligible_leader_replicas",
                    &ids_json(&p.eligible_leader_replicas),
                )
            };
            let o = if p.last_known_elr.is_empty() {
                o
            } else {
                o.raw("last_known_elr", &ids_json(&p.last_known_elr))
            };
            o.raw(
                "log_start_offset",
                &opt(offset_of(p.partition, OffsetSpec::Earliest)),
            )
            .raw(
                "log_end_offset",
                &opt(offset_of(p.partition, OffsetSpec::Latest)),
            )
            .finish()
        });
        let mut configs = JsonObject::new();
        for (k, v) in &overrides {
            configs = configs.str(k, v);
        }
        let out = JsonObject::new()
            .str("name", &topic.name)
            .str("topic_id", &to_base64(topic.topic_id))
            .bool("internal", topic.is_internal)
            .raw("partitions", &json_array(partitions))
            .raw("configs", &configs.finish())
            .finish();
        outln!("{out}");
        return Ok(());
    }

    outln!(
        "Topic: {}  Id: {}  Partitions: {}  Replication: {}",
        topic.name,
        to_base64(topic.topic_id),
        topic.partitions.len(),
        replication_factor(&topic)
    );
    if !overrides.is_empty() {
        let list: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!("Configs: {}", list.join(", "));
    }
    let text = |o: Option<i64>| o.map_or("-".to_owned(), |o| o.to_string());
    // The KIP-966 columns appear only when some partition has an ELR or a last
    // known ELR: most of the time there is none, and the table stays as narrow.
    let show_elr = topic
        .partitions
        .iter()
        .any(|p| !p.eligible_leader_replicas.is_empty() || !p.last_known_elr.is_empty());
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|p| {
            let mut row = vec![
                p.partition.to_string(),
                p.leader.map_or("none".to_owned(), |l| l.to_string()),
                nodes(&p.replicas),
                nodes(&p.isr),
            ];
            if show_elr {
                row.push(nodes_or_dash(&p.eligible_leader_replicas));
                row.push(nodes_or_dash(&p.last_known_elr));
            }
            row.push(text(offset_of(p.partition, OffsetSpec::Earliest)));
            row.push(text(offset_of(p.partition, OffsetSpec::Latest)));
            row
        })
        .collect();
    let mut headers = vec!["PARTITION", "LEADER", "REPLICAS", "ISR"];
    if show_elr {
        headers.extend(["ELR", "LAST-KNOWN-ELR"]);
    }
    headers.extend(["LOG-START", "LOG-END"]);
    print_table(&headers, &rows);
    Ok(())
}

/// A node list as a JSON array of ids.
fn ids_json<T: std::fmt::Display>(list: &[T]) -> String {
    json_array(list.iter().map(|n| n.to_string()))
}

/// An optional integer as JSON.
fn opt(value: Option<i64>) -> String {
    value.map_or("null".to_owned(), |v| v.to_string())
}
