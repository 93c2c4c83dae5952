//! Pieces every client command shares: the `--bootstrap-server` flag, parsers for
//! `KEY=VALUE`, acks, codecs and times, and a small JSON writer.
//!
//! The JSON writer exists so the tools can print JSON lines without pulling in
//! serde: the shapes are flat and few, and escaping is the only subtle part.

use std::fmt::Write as _;
use std::io::Write as _;

use weir_client::producer::{parse_compression, Acks, Compression};

/// Where the cluster is; flattened into every command that talks to one.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Broker(s) to bootstrap from; a comma-separated list is fine
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub(crate) bootstrap_server: String,
}

/// `println!` that never panics: a closed stdout (`weir topic list | head -1`)
/// drops the line instead, as a reader that has seen enough wants.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cmd::common::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes one line to stdout, ignoring a closed or failing stdout (see [`outln`]).
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
}

/// Drops the causes below a weir-client error from the chain: its message already
/// says what went wrong and what to do ("cannot reach 127.0.0.1:9092: connection
/// refused — is `weir server` running?"), and `{:#}` would repeat the OS error.
pub(crate) fn tidy_error(error: anyhow::Error) -> anyhow::Error {
    if !error
        .chain()
        .any(|c| c.downcast_ref::<weir_client::Error>().is_some())
    {
        return error;
    }
    let mut parts = Vec::new();
    for cause in error.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<weir_client::Error>().is_some() {
            break;
        }
    }
    anyhow::anyhow!(parts.join(": "))
}

/// Parses `KEY=VALUE` (the value may be empty and may contain `=`).
pub(crate) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE (got {text:?})")),
    }
}

/// Parses `0`, `1`, `all` or `-1`.
pub(crate) fn parse_acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text).map_err(|e| e.to_string())
}

/// Parses `none`, `gzip`, `snappy`, `lz4` or `zstd`.
pub(crate) fn parse_codec(text: &str) -> Result<Compression, String> {
    parse_compression(text).map_err(|e| e.to_string())
}

/// The current time in ms since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses an RFC 3339 time (`2026-01-01T00:00:00Z`, `2026-01-01T01:00:00.250+01:00`,
/// or a bare date `2026-01-01`, taken as midnight UTC) into ms since the epoch.
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = number(parts.next()?, 4)?;
    let month: i64 = number(parts.next()?, 2)?;
    let day: i64 = number(parts.next()?, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let Some(rest) = rest else {
        return Some(ms);
    };
    // Split the clock from the zone: `Z`, `+HH:MM` or `-HH:MM`.
    let (clock, offset_ms) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (clock, zone) = rest.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone.get(1..)?.split_once(':')?;
        let zone_ms = (number(h, 2)? * 60 + number(m, 2)?) * 60_000;
        (clock, sign * zone_ms)
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let mut fields = hms.splitn(3, ':');
    let hour: i64 = number(fields.next()?, 2)?;
    let minute: i64 = number(fields.next()?, 2)?;
    let second: i64 = number(fields.next()?, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000;
    if let Some(f) = fraction {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Milliseconds: the first three digits, padded.
        let digits: String = f.chars().chain("000".chars()).take(3).collect();
        ms += digits.parse::<i64>().ok()?;
    }
    Some(ms - offset_ms)
}

/// A fixed-width decimal field.
fn number(text: &str, width: usize) -> Option<i64> {
    if text.len() != width || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends `text` as a JSON string literal (quotes included).
pub(crate) fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends bytes as a JSON string (invalid UTF-8 becomes U+FFFD), or `null`.
pub(crate) fn push_json_bytes(out: &mut String, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => push_json_str(out, &String::from_utf8_lossy(b)),
        None => out.push_str("null"),
    }
}

/// Builds one JSON object, key by key, in the order given.
#[derive(Debug)]
pub(crate) struct JsonObject {
    out: String,
}

impl JsonObject {
    pub(crate) fn new() -> Self {
        JsonObject {
            out: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        push_json_str(&mut self.out, key);
        self.out.push(':');
    }

    pub(crate) fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_json_str(&mut self.out, value);
        self
    }

    pub(crate) fn bytes(mut self, key: &str, value: Option<&[u8]>) -> Self {
        self.key(key);
        push_json_bytes(&mut self.out, value);
        self
    }

    pub(crate) fn int(mut self, key: &str, value: i64) -> Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    pub(crate) fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// A number with three decimals; JSON has no NaN or infinity, so those are null.
    pub(crate) fn float(mut self, key: &str, value: f64) -> Self {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.out, "{value:.3}");
        } else {
            self.out.push_str("null");
        }
        self
    }

    /// A value that is already JSON (an array or a nested object).
    pub(crate) fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// A JSON array of already-encoded values.
pub(crate) fn json_array<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// Prints rows as left-aligned columns under a header, two spaces apart.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        outln!("{}", out.trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_epoch_ms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000)
        );
        assert_eq!(parse_rfc3339_ms("2026-01-01"), Some(1_767_225_600_000));
        assert_eq!(
            parse_rfc3339_ms("2026-01-01T01:00:00.25+01:00"),
            Some(1_767_225_600_250)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:00:00-00:30"),
            Some(1_709_209_800_000)
        );
        for bad in ["", "2026", "2026-13-01", "2026-01-01T25:00:00Z", "12345"] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339_ms("2026-01-01T00:00:00"), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let obj = JsonObject::new()
            .int("n", -1)
            .float("f", f64::NAN)
            .bytes("k", None)
            .finish();
        assert_eq!(obj, r#"{"n":-1,"f":null,"k":null}"#);
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_owned(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
