//! `weir consume --group` and `weir group ...` as a user runs them: the built
//! binary against a real `weir server` child on port 0.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{next_line, wait, weir, Server, PROCESS_TIMEOUT};

/// The lines of `text`, as a set (each must be new).
fn distinct_lines(text: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in text.lines() {
        assert!(set.insert(line.to_owned()), "{line:?} printed twice");
    }
    set
}

/// The `weir group describe` partition row of `topic` `partition`, as columns
/// (TOPIC PARTITION COMMITTED LOG-END LAG MEMBER-ID [METADATA]).
fn partition_row(describe: &str, topic: &str, partition: i32) -> Vec<String> {
    describe
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.len() >= 6 && cols[0] == topic && cols[1] == partition.to_string())
        .unwrap_or_else(|| panic!("no row for {topic}-{partition} in:\n{describe}"))
}

/// Runs `weir consume ARGS` in the background with its stdout lines on a channel.
fn consume_in_background(server: &Server, args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = weir()
        .arg("consume")
        .args(args)
        .args(["-b", server.addr.as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir consume");
    let lines = common::lines_of(child.stdout.take().expect("piped stdout"));
    (child, lines)
}

/// SIGINT, then the exit status (which must be a success).
fn interrupt(mut child: Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let status = wait(&mut child, PROCESS_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("weir consume did not stop on SIGINT")
    });
    assert!(status.success(), "Ctrl-C is a clean stop: {status}");
}

/// Polls `weir group describe` until `done` accepts its output.
fn describe_until(server: &Server, group: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    loop {
        let out = server.weir(&format!("group describe {group}"), "");
        if out.status.success() && done(&out.stdout) {
            return out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last describe:\n{}{}",
            out.stdout,
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn consume_with_a_group_resumes_where_the_last_run_stopped() {
    let server = Server::start();
    server.weir("topic create orders --partitions 2", "").ok();
    let input: String = (0..10).map(|i| format!("o{i}\n")).collect();
    // Five records on each partition.
    for (p, half) in input.lines().collect::<Vec<_>>().chunks(5).enumerate() {
        let text: String = half.iter().map(|l| format!("{l}\n")).collect();
        server
            .weir(&format!("produce orders --partition {p}"), &text)
            .ok();
    }

    let first = server
        .weir("consume orders --group billing --from beginning -n 4", "")
        .ok();
    let first = distinct_lines(&first.stdout);
    assert_eq!(first.len(), 4, "{first:?}");
    // --from applies only where the group has no committed offset: beginning is
    // ignored now, and the second run prints exactly the 6 others.
    let second = server
        .weir("consume orders --group billing --from beginning -n 6", "")
        .ok();
    let second = distinct_lines(&second.stdout);
    assert_eq!(second.len(), 6, "{second:?}");
    assert!(first.is_disjoint(&second), "{first:?} then {second:?}");
    let all: BTreeSet<String> = first.union(&second).cloned().collect();
    assert_eq!(all, distinct_lines(&input));

    // Everything was committed: no lag on either partition.
    let describe = server.weir("group describe billing", "").ok().stdout;
    assert!(describe.contains("state Empty"), "{describe}");
    let mut committed = 0;
    for p in 0..2 {
        let row = partition_row(&describe, "orders", p);
        assert_eq!(row[2], row[3], "committed = log end: {row:?}");
        assert_eq!(row[4], "0", "lag 0: {row:?}");
        committed += row[2].parse::<i64>().expect("an offset");
    }
    assert_eq!(committed, 10);

    // Without a committed offset, the default --from is the end: nothing old.
    server.weir("produce orders", "late\n").ok();
    let newcomer = server
        .weir("consume orders --group fresh --from beginning -n 11", "")
        .ok();
    assert_eq!(distinct_lines(&newcomer.stdout).len(), 11);
    let bad = server.weir("consume orders --group billing --from 3", "");
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("reset-offsets"), "{}", bad.stderr);
}

#[test]
fn group_list_describe_reset_offsets_and_delete() {
    let server = Server::start();
    server.weir("topic create audit --partitions 2", "").ok();
    // Four records on each partition.
    for p in 0..2 {
        let input: String = (0..4).map(|i| format!("a{p}-{i}\n")).collect();
        server
            .weir(&format!("produce audit --partition {p}"), &input)
            .ok();
    }
    server
        .weir("consume audit --group ops --from beginning -n 8", "")
        .ok();

    let list = server.weir("group list", "").ok().stdout;
    let row = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some("ops"))
        .unwrap_or_else(|| panic!("ops not listed:\n{list}"));
    assert!(row.contains("Empty") && row.contains("consumer"), "{row}");

    // A member shows in describe with its partitions; resets are refused meanwhile.
    let (child, lines) = consume_in_background(&server, &["audit", "--group", "ops"]);
    let describe = describe_until(&server, "ops", "a stable member", |d| {
        d.contains("members 1") && d.contains("state Stable")
    });
    assert!(describe.contains("MEMBER-ID"), "{describe}");
    assert!(describe.contains("audit-0,1"), "its assignment: {describe}");
    let refused = server.weir("group reset-offsets ops --to-earliest", "");
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("active member"),
        "{}",
        refused.stderr
    );
    server.weir("produce audit --partition 0", "live\n").ok();
    assert_eq!(next_line(&lines, PROCESS_TIMEOUT), "live");
    // Ctrl-C leaves the group at once (no wait for the session timeout).
    interrupt(child);
    let describe = server.weir("group describe ops", "").ok().stdout;
    assert!(describe.contains("members 0"), "{describe}");
    let before = partition_row(&describe, "audit", 0);
    assert_eq!(before[4], "0", "the live record was committed: {before:?}");

    // A dry run prints the new offsets and commits nothing.
    let dry = server
        .weir("group reset-offsets ops --to-earliest --dry-run", "")
        .ok()
        .stdout;
    assert!(
        dry.contains("NEW-OFFSET") && dry.contains("dry run"),
        "{dry}"
    );
    let row = dry
        .lines()
        .find(|l| l.starts_with("audit") && l.split_whitespace().nth(1) == Some("0"))
        .unwrap_or_else(|| panic!("{dry}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["audit", "0", before[2].as_str(), "0"]
    );
    let unchanged = server.weir("group describe ops", "").ok().stdout;
    assert_eq!(partition_row(&unchanged, "audit", 0)[2], before[2]);

    // To earliest: lag is everything.
    server
        .weir("group reset-offsets ops --to-earliest", "")
        .ok();
    let d = server.weir("group describe ops", "").ok().stdout;
    let row = partition_row(&d, "audit", 0);
    assert_eq!((row[2].as_str(), row[4].as_str()), ("0", row[3].as_str()));
    // To an offset, one partition only.
    server
        .weir(
            "group reset-offsets ops --topic audit --partition 1 --to-offset 2",
            "",
        )
        .ok();
    let d = server.weir("group describe ops", "").ok().stdout;
    assert_eq!(partition_row(&d, "audit", 1)[2], "2");
    assert_eq!(partition_row(&d, "audit", 0)[2], "0");
    // To the latest.
    server.weir("group reset-offsets ops --to-latest", "").ok();
    let d = server.weir("group describe ops", "").ok().stdout;
    for p in 0..2 {
        assert_eq!(partition_row(&d, "audit", p)[4], "0");
    }
    // To a time after every record: the log end; to one before them all: 0.
    server
        .weir(
            "group reset-offsets ops --to-datetime 2000-01-01T00:00:00Z",
            "",
        )
        .ok();
    let d = server.weir("group describe ops", "").ok().stdout;
    assert_eq!(partition_row(&d, "audit", 1)[2], "0");
    server
        .weir("group reset-offsets ops --to-datetime @9999999999999", "")
        .ok();
    let d = server.weir("group describe ops", "").ok().stdout;
    assert_eq!(partition_row(&d, "audit", 1)[4], "0");
    // The next consumer of the group starts from the reset offsets.
    server
        .weir("group reset-offsets ops --topic audit --to-earliest", "")
        .ok();
    let again = server.weir("consume audit --group ops -n 9", "").ok();
    assert_eq!(distinct_lines(&again.stdout).len(), 9);

    server.weir("group delete ops", "").ok();
    let list = server.weir("group list", "").ok().stdout;
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some("ops")),
        "{list}"
    );
    let gone = server.weir("group describe ops", "");
    assert!(!gone.status.success());
    assert!(gone.stderr.contains("does not exist"), "{}", gone.stderr);
    let missing = server.weir("group delete ops", "");
    assert!(!missing.status.success());
}

/// `--topic-pattern` with the consumer protocol (KIP-848): the broker resolves the
/// regex, so a topic created after the consumer started joins its subscription.
#[test]
fn consume_a_topic_pattern_including_topics_created_later() {
    let server = Server::start();
    server.weir("topic create logs-a --partitions 1", "").ok();
    server.weir("topic create other --partitions 1", "").ok();
    server.weir("produce logs-a", "a1\n").ok();
    server.weir("produce other", "x1\n").ok();
    let (child, lines) = consume_in_background(
        &server,
        &[
            "--group",
            "tail",
            "--topic-pattern",
            "logs-.*",
            "--group-protocol",
            "consumer",
            "--from",
            "beginning",
        ],
    );
    assert_eq!(next_line(&lines, PROCESS_TIMEOUT), "a1");
    // `weir group describe` sees a KIP-848 group (through ConsumerGroupDescribe).
    let describe = describe_until(&server, "tail", "a stable member", |d| {
        d.contains("members 1") && d.contains("state Stable")
    });
    assert!(describe.contains("logs-a-0"), "{describe}");
    assert!(describe.contains("protocol uniform"), "{describe}");
    server.weir("topic create logs-b --partitions 2", "").ok();
    server.weir("produce logs-b --partition 1", "b1\n").ok();
    assert_eq!(next_line(&lines, PROCESS_TIMEOUT), "b1");
    interrupt(child);
    assert!(lines.try_iter().all(|l| l != "x1"), "other never matched");
}
