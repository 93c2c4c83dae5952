//! The client commands (`weir topic`, `produce`, `consume`, `perf`) run as a user
//! runs them: the built binary against a real `weir server` child on port 0.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{next_line, run, wait, weir, Server, PROCESS_TIMEOUT};
use serde_json::Value;

/// Parses one JSON document or panics with the text.
fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

#[test]
fn topic_commands_create_list_describe_alter_add_partitions_and_delete() {
    let server = Server::start();
    let create = "topic create orders --partitions 2 --replication-factor 1 \
                  --config retention.ms=3600000";
    let out = server.weir(create, "").ok();
    assert_eq!(
        out.stdout,
        "created topic orders (2 partitions, replication factor 1)\n"
    );
    server.weir("topic create audit", "").ok();

    // The table: a header and one row per topic, sorted by name.
    let out = server.weir("topic list", "").ok();
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    assert_eq!(rows[0], ["TOPIC", "PARTITIONS", "REPLICATION", "TOPIC-ID"]);
    assert_eq!(rows[1][..3], ["audit", "1", "1"]);
    assert_eq!(rows[2][..3], ["orders", "2", "1"]);
    assert_eq!(rows[2][3].len(), 22, "base64 topic id");

    let list = json(&server.weir("topic list --json", "").ok().stdout);
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["audit", "orders"]);
    assert_eq!(list[1]["partitions"], 2);
    assert_eq!(list[1]["topic_id"].as_str(), Some(rows[2][3]));

    // Offsets move with produced records.
    server
        .weir("produce orders --partition 1", "a\nb\nc\n")
        .ok();
    let d = json(&server.weir("topic describe orders --json", "").ok().stdout);
    assert_eq!(d["name"], "orders");
    assert_eq!(d["configs"]["retention.ms"], "3600000");
    let parts = d["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 2);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["leader"], 1);
        assert_eq!(p["replicas"], serde_json::json!([1]));
        assert_eq!(p["isr"], serde_json::json!([1]));
        assert_eq!(p["log_start_offset"], 0);
    }
    assert_eq!(parts[0]["log_end_offset"], 0);
    assert_eq!(parts[1]["log_end_offset"], 3);
    let text = server.weir("topic describe orders", "").ok().stdout;
    assert!(text.contains("Configs: retention.ms=3600000"), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert_eq!(
        last.split_whitespace().collect::<Vec<_>>(),
        ["1", "1", "1", "1", "0", "3"]
    );

    // Configs: set one, remove another.
    server
        .weir(
            "topic alter-config orders --set cleanup.policy=compact --delete retention.ms",
            "",
        )
        .ok();
    let d = json(&server.weir("topic describe orders --json", "").ok().stdout);
    assert_eq!(d["configs"]["cleanup.policy"], "compact");
    assert!(d["configs"].get("retention.ms").is_none(), "{d}");
    let out = server.weir("topic alter-config orders", "");
    assert!(!out.status.success());
    assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);

    // Partitions only grow.
    let out = server
        .weir("topic add-partitions orders --partitions 4", "")
        .ok();
    assert_eq!(out.stdout, "topic orders now has 4 partitions\n");
    let d = json(&server.weir("topic describe orders --json", "").ok().stdout);
    assert_eq!(d["partitions"].as_array().map(Vec::len), Some(4));
    let out = server.weir("topic add-partitions orders --partitions 2", "");
    assert!(!out.status.success(), "shrinking must fail: {}", out.stdout);

    // Delete, then the topic is gone; deleting it again fails.
    let out = server.weir("topic delete orders", "").ok();
    assert_eq!(out.stdout, "deleted topic orders\n");
    let list = json(&server.weir("topic list --json", "").ok().stdout);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let out = server.weir("topic delete orders", "");
    assert!(!out.status.success());
    assert!(out.stderr.contains("orders"), "{}", out.stderr);
    let out = server.weir("topic describe orders", "");
    assert!(!out.status.success());
}

/// Lines with keys (`key:value`) and headers, produced then consumed in every format.
#[test]
fn produce_then_consume_in_every_format() {
    let server = Server::start();
    server.weir("topic create events --partitions 1", "").ok();
    let input = "user1:clicked\nuser2:viewed \"page\"\r\nuser1:a:b\n:no key\n";
    let produce = "produce events --key-separator : --header source=cli -H v=2 \
                   --compression zstd --acks 1 -v";
    let out = server.weir(produce, input).ok();
    assert_eq!(
        out.stdout,
        "partition 0 offset 0\npartition 0 offset 1\npartition 0 offset 2\npartition 0 offset 3\n"
    );

    let consume = |format: &str| {
        let args = [
            "consume",
            "events",
            "--from",
            "beginning",
            "--count",
            "4",
            "--format",
        ];
        let mut args = args.to_vec();
        args.push(format);
        server.weir_args(&args, "").ok().stdout
    };
    assert_eq!(consume("value"), "clicked\nviewed \"page\"\na:b\nno key\n");
    assert_eq!(
        consume("key-value"),
        "user1\tclicked\nuser2\tviewed \"page\"\nuser1\ta:b\n\tno key\n"
    );
    assert_eq!(
        consume("%t/%p/%o %k=%v [%h]"),
        "events/0/0 user1=clicked [source=cli,v=2]\n\
         events/0/1 user2=viewed \"page\" [source=cli,v=2]\n\
         events/0/2 user1=a:b [source=cli,v=2]\n\
         events/0/3 =no key [source=cli,v=2]\n"
    );
    let lines = consume("json");
    let records: Vec<Value> = lines.lines().map(json).collect();
    assert_eq!(records.len(), 4, "{lines}");
    let expected = [
        ("user1", "clicked"),
        ("user2", "viewed \"page\""),
        ("user1", "a:b"),
        ("", "no key"),
    ];
    for (i, (r, (key, value))) in records.iter().zip(expected).enumerate() {
        let ts = r["timestamp"].as_i64().expect("timestamp");
        assert!(ts > 1_600_000_000_000, "{r}");
        let want = serde_json::json!({
            "topic": "events", "partition": 0, "offset": i, "timestamp": ts,
            "key": key, "value": value,
            "headers": [{"key": "source", "value": "cli"}, {"key": "v", "value": "2"}],
        });
        assert_eq!(*r, want);
    }

    // A window from an offset, and a stop at the end instead of following.
    let out = server
        .weir("consume events --from 2 --partition 0 --exit-at-end", "")
        .ok();
    assert_eq!(out.stdout, "a:b\nno key\n");

    // A line without the separator is an error that names the line.
    let out = server.weir("produce events --key-separator :", "k:v\nnothing here\n");
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("line 2 has no key separator"),
        "{}",
        out.stderr
    );
}

/// ms since the epoch as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[test]
fn consume_from_a_timestamp() {
    assert_eq!(rfc3339(1_767_225_600_250), "2026-01-01T00:00:00.250Z");
    let server = Server::start();
    server.weir("topic create clock --partitions 2", "").ok();
    server.weir("produce clock", "old1\nold2\n").ok();
    // Records get the producer's clock in ms: leave a clear gap.
    std::thread::sleep(Duration::from_millis(50));
    server.weir("produce clock", "new1\nnew2\n").ok();
    let all = server
        .weir(
            "consume clock --from beginning --exit-at-end --format json",
            "",
        )
        .ok()
        .stdout;
    let records: Vec<Value> = all.lines().map(json).collect();
    assert_eq!(records.len(), 4, "{all}");
    let first_new = records
        .iter()
        .filter(|r| r["value"].as_str().is_some_and(|v| v.starts_with("new")))
        .filter_map(|r| r["timestamp"].as_i64())
        .min()
        .expect("new records");
    for from in [format!("@{first_new}"), rfc3339(first_new)] {
        let out = server
            .weir_args(&["consume", "clock", "--from", &from, "--exit-at-end"], "")
            .ok();
        let mut values: Vec<&str> = out.stdout.lines().collect();
        values.sort_unstable();
        assert_eq!(values, ["new1", "new2"], "--from {from}");
    }
    // After the last record: nothing, and --exit-at-end still ends.
    let out = server
        .weir("consume clock --from @9999999999999 -e", "")
        .ok();
    assert_eq!(out.stdout, "");
    let out = server.weir("consume clock --from yesterday", "");
    assert!(!out.status.success());
    assert!(out.stderr.contains("RFC 3339"), "{}", out.stderr);
}

#[test]
fn consume_follows_until_ctrl_c_and_exits_cleanly() {
    let server = Server::start();
    let b = server.addr.as_str();
    server.weir("topic create live --partitions 1", "").ok();
    let mut child = weir()
        .args(["consume", "live", "--from", "beginning", "-b", b])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir consume");
    let lines = common::lines_of(child.stdout.take().expect("piped stdout"));
    server.weir("produce live", "first\n").ok();
    assert_eq!(next_line(&lines, PROCESS_TIMEOUT), "first");
    // Still following: a later record shows up too.
    server.weir("produce live", "second\n").ok();
    assert_eq!(next_line(&lines, PROCESS_TIMEOUT), "second");
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

/// `weir consume ... | head -1`: a reader that has seen enough closes the pipe, and
/// the consumer ends quietly with success at its next write.
#[test]
fn consume_ends_quietly_when_stdout_closes() {
    let server = Server::start();
    let b = server.addr.as_str();
    server.weir("topic create piped --partitions 1", "").ok();
    server.weir("produce piped", "one\ntwo\n").ok();
    let mut child = weir()
        .args(["consume", "piped", "--from", "beginning", "-b", b])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir consume");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("one"));
    drop(lines);
    server.weir("produce piped", "three\n").ok();
    let status = wait(&mut child, PROCESS_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("weir consume did not stop when its stdout closed")
    });
    let mut stderr = String::new();
    let _ =
        std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut stderr);
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn perf_produce_and_consume_report_json() {
    let server = Server::start();
    server.weir("topic create perf --partitions 1", "").ok();
    let perf = "perf produce --topic perf --records 20000 --record-size 100 --acks 1 \
                --producers 2 --json";
    let out = server.weir(perf, "").ok();
    let report = json(&out.stdout);
    assert_eq!(report["records"], 20000, "{report}");
    assert_eq!(report["bytes"], 2_000_000);
    assert_eq!(report["errors"], 0);
    assert!(report["records_per_sec"].as_f64().is_some_and(|r| r > 0.0));
    assert!(report["mb_per_sec"].as_f64().is_some_and(|r| r > 0.0));
    let latency = &report["latency_ms"];
    let p = |k: &str| {
        latency[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {report}"))
    };
    assert!(p("p50") <= p("p95") && p("p95") <= p("p99"), "{report}");
    assert!(p("p99") <= p("p999") && p("p999") <= p("max"), "{report}");
    assert!(p("p50") > 0.0);

    let out = server
        .weir("perf consume --topic perf --records 20000 --json", "")
        .ok();
    let report = json(&out.stdout);
    assert_eq!(report["records"], 20000, "{report}");
    assert_eq!(report["bytes"], 2_000_000);

    // A bounded run by time, text summary.
    let out = server
        .weir(
            "perf produce --topic perf --duration 0.5 --throughput 2000",
            "",
        )
        .ok();
    assert!(out.stdout.contains("records sent in"), "{}", out.stdout);
    assert!(out.stdout.contains("p99.9"), "{}", out.stdout);
    let sent: u64 = out
        .stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("record count");
    assert!((500..=1500).contains(&sent), "throttled to ~1000: {sent}");
}

#[test]
fn a_bad_bootstrap_server_fails_with_a_helpful_message() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let commands: [&[&str]; 4] = [
        &["topic", "list"],
        &["produce", "t"],
        &["consume", "t", "--count", "1"],
        &["perf", "produce", "--topic", "t", "--records", "1"],
    ];
    for args in commands {
        let mut args = args.to_vec();
        args.extend(["--bootstrap-server", addr.as_str()]);
        let out = run(&args, "x\n");
        assert!(!out.status.success(), "{args:?} must fail");
        let want =
            format!("error: cannot reach {addr}: connection refused — is `weir server` running?");
        assert_eq!(out.stderr.trim(), want, "{args:?}");
    }
}

#[test]
fn help_shows_examples() {
    for args in [
        &["topic", "--help"][..],
        &["produce", "--help"],
        &["consume", "--help"],
        &["perf", "--help"],
        &["perf", "produce", "--help"],
    ] {
        let out = run(args, "").ok();
        assert!(out.stdout.contains("Examples:"), "{args:?}: {}", out.stdout);
        assert!(out.stdout.contains("--bootstrap-server"), "{args:?}");
    }
    let out = run(&["consume", "--help"], "").ok();
    assert!(out.stdout.contains("%o offset"), "{}", out.stdout);
    // A wrong flag value is a usage error that says what is allowed.
    let out = run(&["produce", "t", "--acks", "2"], "");
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("acks must be 0, 1 or all"),
        "{}",
        out.stderr
    );
}
