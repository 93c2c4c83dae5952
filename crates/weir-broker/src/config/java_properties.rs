//! A reader for Java-properties text, the format of Kafka's `server.properties`.
//!
//! Follows `java.util.Properties` closely enough that real files read the same here
//! as in Kafka; what the keys mean is [`super::properties`]' business.

use super::ConfigError;

/// Splits Java-properties text into `(line number, key, value)` entries, in order.
///
/// Follows `java.util.Properties`: blank lines and lines starting with `#` or `!` are
/// skipped; the key ends at the first unescaped `=`, `:` or whitespace; a line ending
/// in an odd number of backslashes continues on the next; `\t`, `\n`, `\r`, `\f`,
/// `\uXXXX` and `\`-anything-else escapes are decoded.
pub fn parse_properties(text: &str) -> Result<Vec<(usize, String, String)>, ConfigError> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let line_no = index + 1;
        let first = line.trim_start();
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_owned();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        let syntax = |reason: String| ConfigError::Syntax {
            reason: format!("line {line_no}: {reason}"),
        };
        entries.push((
            line_no,
            unescape(key).map_err(syntax)?,
            unescape(value).map_err(syntax)?,
        ));
    }
    Ok(entries)
}

fn ends_with_odd_backslashes(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped separator, still escaped.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                let key = &line[..i];
                let rest = line[i..].trim_start_matches([' ', '\t', '\x0c']);
                // Whitespace may be followed by one '=' or ':' that is still the separator.
                let rest = match (c, rest.chars().next()) {
                    ('=' | ':', _) => &rest[1..],
                    (_, Some('=' | ':')) => &rest[1..],
                    _ => rest,
                };
                return (key, rest.trim_start_matches([' ', '\t', '\x0c']));
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad escape \\u{hex}: write four hex digits"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn reads_java_properties() {
        let text = "# comment\n! also\n\n  a=1\nb : 2\nc 3\nd=\ne = x=y\nlong = one,\\\n    two\n\
                    path=C:\\\\data\nu=\\u0041\n";
        assert_eq!(
            entries(text),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", ""),
                pair("e", "x=y"),
                pair("long", "one,two"),
                pair("path", "C:\\data"),
                pair("u", "A"),
            ]
        );
    }

    #[test]
    fn bad_unicode_escape_is_an_error_with_the_line() {
        let error = parse_properties("ok=1\nbad=\\u00zz\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("line 2:"), "{error}");
    }
}
