//! Parser for the `.wire` schema language (see schema/README.md).

use std::fmt;

/// An inclusive version range; `max == None` means "and every later version".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: Option<i16>,
}

impl Versions {
    pub const ALL: Versions = Versions { min: 0, max: None };

    pub fn contains(&self, v: i16) -> bool {
        v >= self.min && self.max.is_none_or(|m| v <= m)
    }

    /// A Rust boolean expression over `version`.
    pub fn cond(&self, within: Versions) -> String {
        let lo = self.min > within.min;
        let hi = match (self.max, within.max) {
            (Some(m), Some(w)) => m < w,
            (Some(_), None) => true,
            _ => false,
        };
        match (lo, hi) {
            (false, false) => "true".into(),
            (true, false) => format!("version >= {}", self.min),
            (false, true) => format!("version <= {}", self.max.unwrap_or(i16::MAX)),
            (true, true) => format!(
                "version >= {} && version <= {}",
                self.min,
                self.max.unwrap_or(i16::MAX)
            ),
        }
    }

    fn parse(s: &str) -> Result<Versions, String> {
        let bad = || format!("bad version range `{s}`");
        if let Some(min) = s.strip_suffix('+') {
            return Ok(Versions {
                min: min.parse().map_err(|_| bad())?,
                max: None,
            });
        }
        if let Some((a, b)) = s.split_once('-') {
            let min = a.parse().map_err(|_| bad())?;
            let max = b.parse().map_err(|_| bad())?;
            if max < min {
                return Err(bad());
            }
            return Ok(Versions {
                min,
                max: Some(max),
            });
        }
        let v = s.parse().map_err(|_| bad())?;
        Ok(Versions {
            min: v,
            max: Some(v),
        })
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            None => write!(f, "{}+", self.min),
            Some(m) if m == self.min => write!(f, "{m}"),
            Some(m) => write!(f, "{}-{m}", self.min),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
    F64,
    Uuid,
    String,
    Bytes,
    Records,
}

impl Prim {
    fn parse(s: &str) -> Option<Prim> {
        Some(match s {
            "bool" => Prim::Bool,
            "i8" => Prim::I8,
            "i16" => Prim::I16,
            "i32" => Prim::I32,
            "i64" => Prim::I64,
            "u16" => Prim::U16,
            "u32" => Prim::U32,
            "f64" => Prim::F64,
            "uuid" => Prim::Uuid,
            "string" => Prim::String,
            "bytes" => Prim::Bytes,
            "records" => Prim::Records,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Prim(Prim),
    Struct(String),
    Array(Box<Type>),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    pub versions: Versions,
    /// Versions in which the field may be null (None: never).
    pub nullable: Option<Versions>,
    pub tag: Option<u32>,
    pub default: Option<String>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Api(i16),
    Data,
}

#[derive(Debug)]
pub struct Schema {
    pub file: String,
    pub kind: Kind,
    pub name: String,
    pub versions: Versions,
    pub flexible: Option<i16>,
    /// Top-level structures: `<Name>Request`/`<Name>Response`, or `<Name>` for data.
    pub messages: Vec<StructDef>,
    /// Every other struct of the file, inline or shared.
    pub structs: Vec<StructDef>,
}

struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

pub fn parse(file: &str, src: &str) -> Result<Schema, String> {
    let lines: Vec<Line> = src
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let t = l.trim_end();
            let body = t.trim_start();
            if body.is_empty() || body.starts_with('#') {
                return None;
            }
            Some(Line {
                no: i + 1,
                indent: t.len() - body.len(),
                text: body,
            })
        })
        .collect();
    let err = |no: usize, msg: String| format!("{file}:{no}: {msg}");
    let head = lines.first().ok_or_else(|| err(1, "empty schema".into()))?;
    let words: Vec<&str> = head.text.split_whitespace().collect();
    let (kind, name, rest) = match words.as_slice() {
        ["api", key, name, rest @ ..] => {
            let key: i16 = key
                .parse()
                .map_err(|_| err(head.no, format!("bad api key `{key}`")))?;
            (Kind::Api(key), name.to_string(), rest)
        }
        ["data", name, rest @ ..] => (Kind::Data, name.to_string(), rest),
        _ => {
            return Err(err(
                head.no,
                "expected `api <key> <Name> ...` or `data <Name> ...`".into(),
            ))
        }
    };
    let (versions, flexible) = match rest {
        ["versions", v, "flexible", f] => {
            let v = Versions::parse(v).map_err(|e| err(head.no, e))?;
            let f = if *f == "none" {
                None
            } else {
                Some(Versions::parse(f).map_err(|e| err(head.no, e))?.min)
            };
            (v, f)
        }
        _ => {
            return Err(err(
                head.no,
                "expected `versions <a>-<b> flexible <n>+|none`".into(),
            ))
        }
    };
    if versions.max.is_none() {
        return Err(err(
            head.no,
            "the API's version range needs a maximum".into(),
        ));
    }
    let mut schema = Schema {
        file: file.to_string(),
        kind,
        name: name.clone(),
        versions,
        flexible,
        messages: vec![],
        structs: vec![],
    };
    let mut i = 1;
    while i < lines.len() {
        let l = &lines[i];
        if l.indent != 0 {
            return Err(err(
                l.no,
                "expected a section (`request`, `response`, `body`, `struct Name`)".into(),
            ));
        }
        let sname = match (
            l.text.split_whitespace().collect::<Vec<_>>().as_slice(),
            kind,
        ) {
            (["request"], Kind::Api(_)) => format!("{name}Request"),
            (["response"], Kind::Api(_)) => format!("{name}Response"),
            (["body"], Kind::Data) => name.clone(),
            (["struct", s], _) => s.to_string(),
            _ => return Err(err(l.no, format!("unknown section `{}`", l.text))),
        };
        let is_message = !l.text.starts_with("struct");
        let (fields, next) = parse_fields(&lines, i + 1, 2, &mut schema.structs, &err)?;
        let def = StructDef {
            name: sname,
            fields,
        };
        if is_message {
            schema.messages.push(def);
        } else {
            schema.structs.push(def);
        }
        i = next;
    }
    check(&schema)?;
    Ok(schema)
}

fn parse_fields(
    lines: &[Line],
    mut i: usize,
    indent: usize,
    structs: &mut Vec<StructDef>,
    err: &dyn Fn(usize, String) -> String,
) -> Result<(Vec<Field>, usize), String> {
    let mut fields = vec![];
    while i < lines.len() && lines[i].indent >= indent {
        let l = &lines[i];
        if l.indent != indent {
            return Err(err(
                l.no,
                format!("expected indentation {indent}, found {}", l.indent),
            ));
        }
        let mut words = l.text.split_whitespace();
        let name = words.next().unwrap_or_default().to_string();
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(err(l.no, format!("field name `{name}` must be snake_case")));
        }
        let ty_text = words
            .next()
            .ok_or_else(|| err(l.no, "missing type".into()))?;
        let ty = parse_type(ty_text);
        let mut f = Field {
            name,
            ty,
            versions: Versions::ALL,
            nullable: None,
            tag: None,
            default: None,
            line: l.no,
        };
        let mut nullable_all = false;
        for m in words {
            if let Some(v) = m.strip_prefix('v') {
                f.versions = Versions::parse(v).map_err(|e| err(l.no, e))?;
            } else if m == "nullable" {
                nullable_all = true;
            } else if let Some(v) = m.strip_prefix("nullable=v") {
                f.nullable = Some(Versions::parse(v).map_err(|e| err(l.no, e))?);
            } else if let Some(t) = m.strip_prefix("tag=") {
                f.tag = Some(t.parse().map_err(|_| err(l.no, format!("bad tag `{t}`")))?);
            } else if let Some(d) = m.strip_prefix("default=") {
                f.default = Some(d.to_string());
            } else {
                return Err(err(l.no, format!("unknown modifier `{m}`")));
            }
        }
        if nullable_all {
            f.nullable = Some(f.versions);
        }
        // `nullable=v1+` on a field that ends at v5 means 1-5.
        if let (Some(n), Some(max)) = (f.nullable.as_mut(), f.versions.max) {
            n.max = Some(n.max.map_or(max, |m| m.min(max)));
        }
        if f.ty == Type::Prim(Prim::Records) && f.nullable.is_none() {
            f.nullable = Some(f.versions);
        }
        i += 1;
        let has_children = i < lines.len() && lines[i].indent > indent;
        if has_children {
            let sname = match struct_name(&f.ty) {
                Some(s) => s.to_string(),
                None => return Err(err(l.no, "only a struct type can have child fields".into())),
            };
            let (children, next) = parse_fields(lines, i, indent + 2, structs, err)?;
            structs.push(StructDef {
                name: sname,
                fields: children,
            });
            i = next;
        }
        fields.push(f);
    }
    Ok((fields, i))
}

fn parse_type(s: &str) -> Type {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Type::Array(Box::new(parse_type(inner)));
    }
    match Prim::parse(s) {
        Some(p) => Type::Prim(p),
        None => Type::Struct(s.to_string()),
    }
}

pub fn struct_name(t: &Type) -> Option<&str> {
    match t {
        Type::Struct(s) => Some(s),
        Type::Array(inner) => struct_name(inner),
        Type::Prim(_) => None,
    }
}

/// Semantic checks: referenced structs exist, names are unique, tags are valid.
fn check(s: &Schema) -> Result<(), String> {
    let mut names: Vec<&str> = s.messages.iter().map(|m| m.name.as_str()).collect();
    for st in &s.structs {
        if names.contains(&st.name.as_str()) {
            return Err(format!(
                "{}: struct name `{}` is defined twice",
                s.file, st.name
            ));
        }
        names.push(&st.name);
    }
    for def in s.messages.iter().chain(&s.structs) {
        let mut tags = vec![];
        let mut fnames = vec![];
        for f in &def.fields {
            let e = |m: String| format!("{}:{}: {m}", s.file, f.line);
            if fnames.contains(&&f.name) {
                return Err(e(format!("field `{}` defined twice", f.name)));
            }
            fnames.push(&f.name);
            if let Some(n) = struct_name(&f.ty) {
                if !names.contains(&n) {
                    return Err(e(format!("unknown type `{n}`")));
                }
            }
            if let Type::Array(inner) = &f.ty {
                if matches!(**inner, Type::Array(_)) || **inner == Type::Prim(Prim::Records) {
                    return Err(e("arrays of arrays or records are not supported".into()));
                }
            }
            if let Some(n) = f.nullable {
                if n.min < f.versions.min {
                    return Err(e(
                        "nullable versions must lie within the field's versions".into()
                    ));
                }
                if matches!(f.ty, Type::Prim(p) if !matches!(p, Prim::String | Prim::Bytes | Prim::Records))
                {
                    return Err(e(
                        "only strings, bytes, records, arrays and structs can be nullable".into(),
                    ));
                }
            }
            if let Some(t) = f.tag {
                if tags.contains(&t) {
                    return Err(e(format!("tag {t} used twice")));
                }
                tags.push(t);
                match s.flexible {
                    Some(fl) if f.versions.min >= fl => {}
                    _ => {
                        return Err(e(
                            "a tagged field may only exist in flexible versions".into()
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}
