//! `weir group`: list, describe and delete consumer groups, and reset their
//! committed offsets, through `weir_client::group::admin`.
//!
//! `describe` joins three sources per partition: the member that owns it
//! (DescribeGroups), the group's committed offset (OffsetFetch) and the log end
//! offset (ListOffsets); lag is log end − committed. `reset-offsets` commits new
//! offsets from outside the group, which the coordinator (like Kafka's) accepts
//! only while the group has no members, so it is refused up front when it has.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use weir_client::consumer::IsolationLevel;
use weir_client::group::admin::{GroupAdmin, GroupDescription};
use weir_client::{Admin, ClientConfig, Cluster, OffsetSpec, TopicPartition};

use super::common::{outln, parse_rfc3339_ms, print_table, tidy_error, ClusterArgs};

const EXAMPLES: &str = "\
Examples:
  weir group list
  weir group describe orders-app
  weir group reset-offsets orders-app --topic orders --to-earliest --dry-run
  weir group reset-offsets orders-app --topic orders --partition 0 --to-offset 42
  weir group reset-offsets orders-app --to-datetime 2026-01-01T00:00:00Z
  weir group delete orders-app";

/// How long a topic may take to show up in the metadata.
const TOPIC_WAIT: Duration = Duration::from_secs(5);

/// Arguments of `weir group`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct GroupArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// List groups with their state
    List,
    /// Show a group's members, assignments, committed offsets and lag
    Describe {
        /// Group id
        group: String,
    },
    /// Delete groups (only groups without members) and their committed offsets
    Delete {
        /// Group ids
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Set a group's committed offsets (refused while the group has members)
    ResetOffsets(ResetArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime"])))]
struct ResetArgs {
    /// Group id
    group: String,
    /// Topic to reset [default: every topic the group has offsets for]
    #[arg(short, long)]
    topic: Option<String>,
    /// Only this partition (needs --topic)
    #[arg(short, long, value_name = "N", requires = "topic")]
    partition: Option<i32>,
    /// To the log start
    #[arg(long)]
    to_earliest: bool,
    /// To the log end
    #[arg(long)]
    to_latest: bool,
    /// To this offset
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// To the first record at or after this time: RFC 3339, or @ms since the epoch
    #[arg(long, value_name = "TIME")]
    to_datetime: Option<String>,
    /// Print the new offsets without committing them
    #[arg(long)]
    dry_run: bool,
}

/// Runs `weir group ...`.
pub(crate) async fn run(args: GroupArgs) -> anyhow::Result<()> {
    run_inner(args).await.map_err(tidy_error)
}

async fn run_inner(args: GroupArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(ClientConfig::new(&args.cluster.bootstrap_server)).await?;
    let groups = GroupAdmin::new(cluster.clone());
    match args.command {
        GroupCommand::List => {
            let rows: Vec<Vec<String>> = groups
                .list_groups()
                .await?
                .into_iter()
                .map(|g| {
                    vec![
                        g.group_id,
                        g.state.unwrap_or_else(|| "-".into()),
                        g.protocol_type,
                    ]
                })
                .collect();
            print_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows);
        }
        GroupCommand::Describe { group } => describe(&cluster, &groups, &group).await?,
        GroupCommand::Delete { groups: names } => {
            let mut failed = Vec::new();
            for (name, result) in groups.delete_groups(&names).await? {
                match result {
                    Ok(()) => outln!("deleted group {name}"),
                    Err(e) => failed.push(format!("{name}: {e}")),
                }
            }
            if !failed.is_empty() {
                bail!("{}", failed.join("; "));
            }
        }
        GroupCommand::ResetOffsets(reset) => reset_offsets(&cluster, &groups, reset).await?,
    }
    Ok(())
}

/// Log end offsets of `partitions` (what lag is measured against).
async fn log_end_offsets(
    cluster: &Cluster,
    partitions: &[TopicPartition],
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let admin = Admin::with_cluster(cluster.clone());
    let query: Vec<(TopicPartition, OffsetSpec)> = partitions
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    Ok(admin
        .list_offsets(&query, IsolationLevel::ReadUncommitted)
        .await?
        .into_iter()
        .filter_map(|(tp, r)| Some((tp, r.ok()?.offset)))
        .collect())
}

async fn describe(cluster: &Cluster, groups: &GroupAdmin, group: &str) -> anyhow::Result<()> {
    let d = groups.describe_group(group).await?;
    let committed = groups.committed_offsets(group, None).await?;
    if d.state == "Dead" && committed.is_empty() {
        bail!("group {group} does not exist");
    }
    outln!(
        "group {}  state {}  protocol {}  members {}",
        d.group_id,
        d.state,
        if d.protocol.is_empty() {
            "-"
        } else {
            &d.protocol
        },
        d.members.len()
    );
    if !d.members.is_empty() {
        outln!("");
        let rows: Vec<Vec<String>> = d
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    m.instance_id.clone().unwrap_or_else(|| "-".into()),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    partitions_text(&m.assignment),
                ]
            })
            .collect();
        print_table(
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "ASSIGNMENT",
            ],
            &rows,
        );
    }
    // Every partition that is assigned or has a committed offset.
    let owner: BTreeMap<&TopicPartition, &str> = d
        .members
        .iter()
        .flat_map(|m| m.assignment.iter().map(|tp| (tp, m.member_id.as_str())))
        .collect();
    let all: BTreeSet<TopicPartition> = owner
        .keys()
        .map(|tp| (*tp).clone())
        .chain(committed.keys().cloned())
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    let all: Vec<TopicPartition> = all.into_iter().collect();
    let ends = log_end_offsets(cluster, &all).await?;
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|tp| {
            let c = committed.get(tp);
            let end = ends.get(tp);
            let lag = match (c, end) {
                (Some(c), Some(e)) => (e - c.offset).max(0).to_string(),
                (None, Some(_)) => "-".into(),
                _ => "?".into(),
            };
            vec![
                tp.topic.clone(),
                tp.partition.to_string(),
                c.map_or("-".into(), |c| c.offset.to_string()),
                end.map_or("?".into(), i64::to_string),
                lag,
                owner.get(tp).map_or("-".into(), |m| (*m).to_owned()),
                c.and_then(|c| c.metadata.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    outln!("");
    print_table(
        &[
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "LOG-END",
            "LAG",
            "MEMBER-ID",
            "METADATA",
        ],
        &rows,
    );
    Ok(())
}

/// `t-0,1,2 u-3`: partitions grouped by topic.
fn partitions_text(parts: &[TopicPartition]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in parts {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let text: Vec<String> = by_topic
        .into_iter()
        .map(|(t, ps)| {
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}-{}", ps.join(","))
        })
        .collect();
    if text.is_empty() {
        "-".into()
    } else {
        text.join(" ")
    }
}

fn active(d: &GroupDescription) -> bool {
    !d.members.is_empty()
}

async fn reset_offsets(
    cluster: &Cluster,
    groups: &GroupAdmin,
    args: ResetArgs,
) -> anyhow::Result<()> {
    let d = groups.describe_group(&args.group).await?;
    if active(&d) {
        bail!(
            "group {} has {} active member(s) (state {}); stop its consumers before resetting offsets",
            args.group,
            d.members.len(),
            d.state
        );
    }
    let committed = groups.committed_offsets(&args.group, None).await?;
    let partitions: Vec<TopicPartition> = match (&args.topic, args.partition) {
        (Some(t), Some(p)) => vec![TopicPartition::new(t.as_str(), p)],
        (Some(t), None) => {
            let info = cluster
                .wait_for_topic(t, TOPIC_WAIT)
                .await
                .with_context(|| format!("topic {t}"))?;
            (0..info.partitions.len())
                .map(|p| TopicPartition::new(t.as_str(), p as i32))
                .collect()
        }
        (None, _) => committed.keys().cloned().collect(),
    };
    if partitions.is_empty() {
        bail!(
            "group {} has no committed offsets; name a --topic to reset",
            args.group
        );
    }
    let spec = if args.to_earliest {
        Some(OffsetSpec::Earliest)
    } else if args.to_latest {
        Some(OffsetSpec::Latest)
    } else if let Some(text) = &args.to_datetime {
        let ms = match text.strip_prefix('@') {
            Some(n) => n.parse().ok(),
            None => parse_rfc3339_ms(text),
        }
        .ok_or_else(|| anyhow!("--to-datetime {text:?} is not RFC 3339 or @ms"))?;
        Some(OffsetSpec::Timestamp(ms))
    } else {
        None
    };
    let mut new: Vec<(TopicPartition, i64, Option<String>)> = Vec::new();
    if let Some(spec) = spec {
        let admin = Admin::with_cluster(cluster.clone());
        let query: Vec<(TopicPartition, OffsetSpec)> =
            partitions.iter().map(|tp| (tp.clone(), spec)).collect();
        let found = admin
            .list_offsets(&query, IsolationLevel::ReadUncommitted)
            .await?;
        let mut past_end = Vec::new();
        for (tp, r) in found {
            let offset = r.with_context(|| format!("offsets of {tp}"))?.offset;
            if offset < 0 {
                past_end.push(tp);
            } else {
                new.push((tp, offset, None));
            }
        }
        // A time after the last record: the log end.
        let ends = log_end_offsets(cluster, &past_end).await?;
        for tp in past_end {
            let end = ends
                .get(&tp)
                .copied()
                .ok_or_else(|| anyhow!("no log end offset for {tp}"))?;
            new.push((tp, end, None));
        }
    } else if let Some(offset) = args.to_offset {
        if offset < 0 {
            bail!("--to-offset must not be negative");
        }
        // Kept inside the log, as Kafka's tool does.
        let admin = Admin::with_cluster(cluster.clone());
        let query: Vec<(TopicPartition, OffsetSpec)> = partitions
            .iter()
            .map(|tp| (tp.clone(), OffsetSpec::Earliest))
            .collect();
        let starts = admin
            .list_offsets(&query, IsolationLevel::ReadUncommitted)
            .await?;
        let ends = log_end_offsets(cluster, &partitions).await?;
        for (tp, start) in starts {
            let start = start.with_context(|| format!("offsets of {tp}"))?.offset;
            let end = ends.get(&tp).copied().unwrap_or(i64::MAX);
            new.push((tp, offset.clamp(start, end.max(start)), None));
        }
    }
    new.sort_by(|a, b| a.0.cmp(&b.0));
    let rows: Vec<Vec<String>> = new
        .iter()
        .map(|(tp, offset, _)| {
            vec![
                tp.topic.clone(),
                tp.partition.to_string(),
                committed
                    .get(tp)
                    .map_or("-".into(), |c| c.offset.to_string()),
                offset.to_string(),
            ]
        })
        .collect();
    print_table(&["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"], &rows);
    if args.dry_run {
        outln!("dry run: nothing committed");
        return Ok(());
    }
    groups.commit_offsets(&args.group, &new).await?;
    outln!("reset {} partition(s) of group {}", new.len(), args.group);
    Ok(())
}
