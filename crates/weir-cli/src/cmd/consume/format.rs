//! How `weir consume` prints a record: one line per record, in one of four formats.
//!
//! - `value`: the value bytes as they are;
//! - `key-value`: key, separator (a tab by default), value;
//! - `json`: a JSON object with topic, partition, offset, timestamp, key, value and
//!   headers (null key or value is `null`; bytes that are not UTF-8 become U+FFFD);
//! - a template with `%` fields, e.g. `'%p %o %k %v'`.
//!
//! In the text formats a null key or value prints as nothing.

use weir_client::ConsumerRecord;

use crate::cmd::common::{json_array, JsonObject};

/// The fields a template may use; shown in `--help`.
pub(crate) const TEMPLATE_HELP: &str = "\
Template fields: %t topic, %p partition, %o offset, %T timestamp (ms), %k key,
%v value, %h headers (k=v,k=v), %K key length, %V value length, %% a percent sign;
escapes: \\n newline, \\t tab, \\\\ backslash. Each record ends with a newline.";

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    Value,
    KeyValue { separator: Vec<u8> },
    Json,
    Template(Vec<Piece>),
}

/// One part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
    KeyLength,
    ValueLength,
}

impl Format {
    /// Parses `value`, `key-value`, `json` or a template containing `%`.
    pub(crate) fn parse(text: &str, key_separator: &str) -> Result<Format, String> {
        match text {
            "value" => Ok(Format::Value),
            "key-value" => Ok(Format::KeyValue {
                separator: key_separator.as_bytes().to_vec(),
            }),
            "json" => Ok(Format::Json),
            t if t.contains('%') => parse_template(t).map(Format::Template),
            other => Err(format!(
                "unknown format {other:?}: use value, key-value, json or a template \
                 such as '%p %o %k %v'"
            )),
        }
    }

    /// Appends the record, and a newline, to `out`.
    pub(crate) fn write(&self, record: &ConsumerRecord, out: &mut Vec<u8>) {
        match self {
            Format::Value => out.extend_from_slice(record.value.as_deref().unwrap_or_default()),
            Format::KeyValue { separator } => {
                out.extend_from_slice(record.key.as_deref().unwrap_or_default());
                out.extend_from_slice(separator);
                out.extend_from_slice(record.value.as_deref().unwrap_or_default());
            }
            Format::Json => out.extend_from_slice(json(record).as_bytes()),
            Format::Template(pieces) => {
                for piece in pieces {
                    write_piece(piece, record, out);
                }
            }
        }
        out.push(b'\n');
    }
}

/// The record as one JSON object.
fn json(record: &ConsumerRecord) -> String {
    let headers = record.headers.iter().map(|(k, v)| {
        JsonObject::new()
            .str("key", k)
            .bytes("value", v.as_deref())
            .finish()
    });
    JsonObject::new()
        .str("topic", &record.topic)
        .int("partition", record.partition.into())
        .int("offset", record.offset)
        .int("timestamp", record.timestamp)
        .bytes("key", record.key.as_deref())
        .bytes("value", record.value.as_deref())
        .raw("headers", &json_array(headers))
        .finish()
}

fn write_piece(piece: &Piece, record: &ConsumerRecord, out: &mut Vec<u8>) {
    let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
    match piece {
        Piece::Literal(bytes) => out.extend_from_slice(bytes),
        Piece::Topic => out.extend_from_slice(record.topic.as_bytes()),
        Piece::Partition => out.extend_from_slice(record.partition.to_string().as_bytes()),
        Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
        Piece::Timestamp => out.extend_from_slice(record.timestamp.to_string().as_bytes()),
        Piece::Key => out.extend_from_slice(record.key.as_deref().unwrap_or_default()),
        Piece::Value => out.extend_from_slice(record.value.as_deref().unwrap_or_default()),
        Piece::KeyLength => out.extend_from_slice(len(&record.key).to_string().as_bytes()),
        Piece::ValueLength => out.extend_from_slice(len(&record.value).to_string().as_bytes()),
        Piece::Headers => {
            for (i, (k, v)) in record.headers.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                out.extend_from_slice(v.as_deref().unwrap_or_default());
            }
        }
    }
}

fn parse_template(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let field = match c {
            '%' => match chars.next() {
                Some('t') => Piece::Topic,
                Some('p') => Piece::Partition,
                Some('o') => Piece::Offset,
                Some('T') => Piece::Timestamp,
                Some('k') => Piece::Key,
                Some('v') => Piece::Value,
                Some('h') => Piece::Headers,
                Some('K') => Piece::KeyLength,
                Some('V') => Piece::ValueLength,
                Some('%') => {
                    literal.push(b'%');
                    continue;
                }
                Some(other) => {
                    return Err(format!(
                        "unknown template field %{other}; {}",
                        TEMPLATE_HELP.replace('\n', " ")
                    ))
                }
                None => {
                    return Err(
                        "the template ends with a lone %; write %% for a percent sign".into(),
                    )
                }
            },
            '\\' => {
                match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('t') => literal.push(b'\t'),
                    Some('r') => literal.push(b'\r'),
                    Some('\\') => literal.push(b'\\'),
                    Some(other) => {
                        literal.push(b'\\');
                        let mut buf = [0; 4];
                        literal.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    }
                    None => literal.push(b'\\'),
                }
                continue;
            }
            c => {
                let mut buf = [0; 4];
                literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
        };
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(field);
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 1000,
            timestamp_type: Default::default(),
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"v \"1\"")),
            headers: vec![
                ("a".into(), Some(Bytes::from_static(b"1"))),
                ("b".into(), None),
            ],
            leader_epoch: None,
        }
    }

    fn render(format: &str) -> String {
        let mut out = Vec::new();
        Format::parse(format, ":")
            .unwrap()
            .write(&record(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_format_renders_one_line() {
        assert_eq!(render("value"), "v \"1\"\n");
        assert_eq!(render("key-value"), "k1:v \"1\"\n");
        assert_eq!(
            render("json"),
            r#"{"topic":"t","partition":2,"offset":7,"timestamp":1000,"key":"k1","value":"v \"1\"","headers":[{"key":"a","value":"1"},{"key":"b","value":null}]}"#
                .to_owned()
                + "\n"
        );
        assert_eq!(
            render(r"%t/%p@%o %T %k=%v [%h] %K %V 100%%\t."),
            "t/2@7 1000 k1=v \"1\" [a=1,b=] 2 5 100%\t.\n"
        );
    }

    #[test]
    fn bad_formats_say_what_is_allowed() {
        assert!(Format::parse("xml", "\t")
            .unwrap_err()
            .contains("key-value"));
        assert!(Format::parse("%q", "\t").unwrap_err().contains("%q"));
        assert!(Format::parse("50%", "\t").is_err());
    }
}
