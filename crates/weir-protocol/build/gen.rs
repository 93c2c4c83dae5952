//! Emits Rust for parsed schemas: one module per file, plus the API key table and the
//! `Request`/`Response` enums that the broker dispatches on.

use std::fmt::Write;

use crate::parse::{Field, Kind, Prim, Schema, StructDef, Type, Versions};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

pub fn module_name(file: &str) -> String {
    file.trim_end_matches(".wire").to_string()
}

/// Everything generated for one schema file.
pub fn schema_module(s: &Schema) -> String {
    let mut out = String::new();
    let m = module_name(&s.file);
    let flex = match s.flexible {
        Some(f) => format!("flexible since v{f}"),
        None => "never flexible".into(),
    };
    let kind = match s.kind {
        Kind::Api(k) => format!("API key {k}"),
        Kind::Data => "data structure".into(),
    };
    let _ = writeln!(
        out,
        "/// {} ({kind}): versions {}, {flex}; from `schema/{}`.",
        s.name, s.versions, s.file
    );
    let _ = writeln!(out, "pub mod {m} {{");
    out.push_str("    #[allow(unused_imports)]\n    use bytes::Bytes;\n");
    out.push_str("    #[allow(unused_imports)]\n    use crate::wire::{Decoder, Encoder};\n");
    out.push_str(
        "    #[allow(unused_imports)]\n    use crate::{DecodeError, EncodeError, Uuid};\n\n",
    );
    let _ = writeln!(
        out,
        "    const FLEXIBLE_SINCE: i16 = {};",
        s.flexible.unwrap_or(i16::MAX)
    );
    for def in s.messages.iter().chain(&s.structs) {
        out.push_str(&struct_code(s, def));
    }
    for def in &s.messages {
        let key = match s.kind {
            Kind::Api(k) => k,
            Kind::Data => -1,
        };
        let _ = writeln!(
            out,
            "    impl crate::Message for {n} {{
        const API_KEY: i16 = {key};
        const VERSIONS: (i16, i16) = ({min}, {max});
        const FLEXIBLE_SINCE: Option<i16> = {flex:?};
        fn encode(&self, e: &mut Encoder, version: i16) -> Result<(), EncodeError> {{
            if !(({min})..=({max})).contains(&version) {{
                return Err(EncodeError::UnsupportedVersion {{ api_key: {key}, version }});
            }}
            self.encode_fields(e, version)
        }}
        fn decode(d: &mut Decoder, version: i16) -> Result<Self, DecodeError> {{
            if !(({min})..=({max})).contains(&version) {{
                return Err(DecodeError::UnsupportedVersion {{ api_key: {key}, version }});
            }}
            Self::decode_fields(d, version)
        }}
    }}",
            n = def.name,
            min = s.versions.min,
            max = s.versions.max.unwrap_or(s.versions.min),
            flex = s.flexible,
        );
    }
    out.push_str("}\n\n");
    out
}

fn all_versions(s: &Schema) -> Versions {
    s.versions
}

fn rust_type(f: &Field) -> String {
    let base = base_type(&f.ty);
    if f.nullable.is_some() && f.ty != Type::Prim(Prim::Records) {
        format!("Option<{base}>")
    } else {
        base
    }
}

fn base_type(t: &Type) -> String {
    match t {
        Type::Prim(p) => prim_type(*p).into(),
        Type::Struct(s) => s.clone(),
        Type::Array(inner) => format!("Vec<{}>", base_type(inner)),
    }
}

fn prim_type(p: Prim) -> &'static str {
    match p {
        Prim::Bool => "bool",
        Prim::I8 => "i8",
        Prim::I16 => "i16",
        Prim::I32 => "i32",
        Prim::I64 => "i64",
        Prim::U16 => "u16",
        Prim::U32 => "u32",
        Prim::F64 => "f64",
        Prim::Uuid => "Uuid",
        Prim::String => "String",
        Prim::Bytes => "Bytes",
        Prim::Records => "Option<Bytes>",
    }
}

fn is_opt(f: &Field) -> bool {
    f.nullable.is_some()
}

fn default_expr(f: &Field) -> String {
    let d = f.default.as_deref();
    if is_opt(f) {
        return match d {
            None | Some("null") => "None".into(),
            Some(_) => format!("Some({})", base_default(&f.ty, d)),
        };
    }
    base_default(&f.ty, d)
}

fn base_default(t: &Type, d: Option<&str>) -> String {
    match (t, d) {
        (Type::Prim(Prim::String), Some(s)) => format!("{s}.to_string()"),
        (Type::Prim(Prim::String), None) => "String::new()".into(),
        (Type::Prim(Prim::Bytes), _) => "Bytes::new()".into(),
        (Type::Prim(Prim::Records), _) => "None".into(),
        (Type::Prim(Prim::Uuid), _) => "Uuid::ZERO".into(),
        (Type::Prim(Prim::Bool), Some(v)) => v.to_string(),
        (Type::Prim(Prim::Bool), None) => "false".into(),
        (Type::Prim(Prim::F64), Some(v)) => format!("{v}_f64"),
        (Type::Prim(Prim::F64), None) => "0.0".into(),
        (Type::Prim(p), Some(v)) => format!("{v}_{}", prim_type(*p)),
        (Type::Prim(_), None) => "0".into(),
        (Type::Struct(s), _) => format!("{s}::default()"),
        (Type::Array(_), _) => "Vec::new()".into(),
    }
}

/// A lower bound of the wire size of one value of `t` in any version, so element
/// counts can be checked against the remaining input before allocating.
fn min_size(s: &Schema, t: &Type, depth: usize) -> usize {
    match t {
        Type::Prim(p) => match p {
            Prim::Bool | Prim::I8 => 1,
            Prim::I16 | Prim::U16 => 2,
            Prim::I32 | Prim::U32 => 4,
            Prim::I64 | Prim::F64 => 8,
            Prim::Uuid => 16,
            Prim::String | Prim::Bytes | Prim::Records => 1,
        },
        Type::Array(_) => 1,
        Type::Struct(n) if depth < 8 => match find_struct(s, n) {
            Some(def) => def
                .fields
                .iter()
                .filter(|f| {
                    f.tag.is_none()
                        && f.nullable.is_none()
                        && f.versions.contains(s.versions.min)
                        && covers(f.versions, all_versions(s))
                })
                .map(|f| min_size(s, &f.ty, depth + 1))
                .sum::<usize>()
                .max(1),
            None => 1,
        },
        Type::Struct(_) => 1,
    }
}

fn covers(f: Versions, all: Versions) -> bool {
    f.min <= all.min && f.max.is_none_or(|m| all.max.is_some_and(|a| m >= a))
}

fn find_struct<'a>(s: &'a Schema, name: &str) -> Option<&'a StructDef> {
    s.messages.iter().chain(&s.structs).find(|d| d.name == name)
}

fn struct_code(s: &Schema, def: &StructDef) -> String {
    let mut o = String::new();
    let all = all_versions(s);
    let _ = writeln!(o, "    #[derive(Debug, Clone, PartialEq)]");
    let _ = writeln!(o, "    #[allow(missing_docs)]");
    let _ = writeln!(o, "    pub struct {} {{", def.name);
    for f in &def.fields {
        let mut doc = format!(
            "`{}` {}, versions {}",
            field_type_text(&f.ty),
            f.name,
            f.versions
        );
        if let Some(n) = f.nullable {
            let _ = write!(doc, ", nullable in {n}");
        }
        if let Some(t) = f.tag {
            let _ = write!(doc, ", tag {t}");
        }
        let _ = writeln!(o, "        /// {doc}.");
        let _ = writeln!(o, "        pub {}: {},", ident(&f.name), rust_type(f));
    }
    o.push_str("    }\n\n");
    let _ = writeln!(
        o,
        "    impl Default for {} {{\n        fn default() -> Self {{\n            Self {{",
        def.name
    );
    for f in &def.fields {
        let _ = writeln!(
            o,
            "                {}: {},",
            ident(&f.name),
            default_expr(f)
        );
    }
    o.push_str("            }\n        }\n    }\n\n");

    // encode
    let _ = writeln!(o, "    impl {} {{", def.name);
    o.push_str(
        "        /// Writes the fields for `version` (the caller checked the version range).\n",
    );
    o.push_str("        #[allow(unused_variables, unused_mut)]\n");
    o.push_str("        pub fn encode_fields(&self, e: &mut Encoder, version: i16) -> Result<(), EncodeError> {\n");
    o.push_str("            let flex = version >= FLEXIBLE_SINCE;\n");
    for f in def.fields.iter().filter(|f| f.tag.is_none()) {
        let body = encode_field(def, f, &format!("self.{}", ident(&f.name)));
        o.push_str(&guard(&f.versions.cond(all), &body, 3));
    }
    let mut tagged: Vec<&Field> = def.fields.iter().filter(|f| f.tag.is_some()).collect();
    tagged.sort_by_key(|f| f.tag);
    if s.flexible.is_some() {
        o.push_str("            if flex {\n");
        let _ = writeln!(o, "                let mut tagged_count: u32 = 0;");
        for f in &tagged {
            let _ = writeln!(
                o,
                "                let write_{n} = {c} && {nd};\n                tagged_count += u32::from(write_{n});",
                n = f.name,
                c = f.versions.cond(all),
                nd = non_default(f, &format!("self.{}", ident(&f.name)))
            );
        }
        o.push_str("                e.uvarint(tagged_count);\n");
        for f in &tagged {
            let body = encode_field(def, f, &format!("self.{}", ident(&f.name)));
            let _ = writeln!(
                o,
                "                if write_{n} {{\n                    let mut field = Encoder::new();\n                    {{\n                        let e = &mut field;\n{body}                    }}\n                    e.tagged_field({t}, field);\n                }}",
                n = f.name,
                t = f.tag.unwrap_or(0),
                body = indent(&body, 6)
            );
        }
        o.push_str("            }\n");
    }
    o.push_str("            Ok(())\n        }\n\n");

    // decode
    o.push_str(
        "        /// Reads the fields for `version` (the caller checked the version range).\n",
    );
    o.push_str("        #[allow(unused_variables, unused_mut)]\n");
    o.push_str("        pub fn decode_fields(d: &mut Decoder, version: i16) -> Result<Self, DecodeError> {\n");
    o.push_str("            let flex = version >= FLEXIBLE_SINCE;\n");
    o.push_str("            let mut this = Self::default();\n");
    for f in def.fields.iter().filter(|f| f.tag.is_none()) {
        let body = format!("this.{} = {};\n", ident(&f.name), decode_field(s, def, f));
        o.push_str(&guard(&f.versions.cond(all), &body, 3));
    }
    if s.flexible.is_some() {
        o.push_str("            if flex {\n                d.tagged_fields(|tag, d| match tag {\n");
        for f in &tagged {
            let c = f.versions.cond(all);
            let g = if c == "true" {
                String::new()
            } else {
                format!(" if {c}")
            };
            let _ = writeln!(
                o,
                "                    {t}{g} => {{\n                        this.{n} = {dec};\n                        Ok(true)\n                    }}",
                t = f.tag.unwrap_or(0),
                n = ident(&f.name),
                dec = decode_field(s, def, f)
            );
        }
        o.push_str("                    _ => Ok(false),\n                })?;\n            }\n");
    }
    o.push_str("            Ok(this)\n        }\n");

    // random values for the round-trip tests
    o.push_str("\n        #[cfg(test)]\n        #[allow(unused_variables, unused_mut)]\n");
    o.push_str(
        "        pub(crate) fn random(r: &mut crate::testing::Rng, version: i16) -> Self {\n",
    );
    o.push_str("            let mut this = Self::default();\n");
    for f in &def.fields {
        let c = f.versions.cond(all);
        let body = format!("this.{} = {};\n", ident(&f.name), random_field(f));
        o.push_str(&guard(&c, &body, 3));
    }
    o.push_str("            this\n        }\n    }\n\n");
    o
}

fn field_type_text(t: &Type) -> String {
    match t {
        Type::Prim(p) => format!("{p:?}").to_lowercase(),
        Type::Struct(s) => s.clone(),
        Type::Array(i) => format!("[{}]", field_type_text(i)),
    }
}

fn guard(cond: &str, body: &str, level: usize) -> String {
    if cond == "true" {
        indent(body, level)
    } else {
        let pad = "    ".repeat(level);
        format!("{pad}if {cond} {{\n{}{pad}}}\n", indent(body, level + 1))
    }
}

fn indent(body: &str, level: usize) -> String {
    let pad = "    ".repeat(level);
    body.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{pad}{l}\n")
            }
        })
        .collect()
}

fn what(def: &StructDef, f: &Field) -> String {
    format!("\"{}.{}\"", def.name, f.name)
}

fn non_default(f: &Field, expr: &str) -> String {
    if is_opt(f) && matches!(f.default.as_deref(), None | Some("null")) {
        return format!("{expr}.is_some()");
    }
    match &f.ty {
        Type::Array(_) if !is_opt(f) => format!("!{expr}.is_empty()"),
        Type::Prim(Prim::Bytes) if !is_opt(f) => format!("!{expr}.is_empty()"),
        _ => format!("{expr} != {}", default_expr(f)),
    }
}

/// Statements writing field `f` whose value is `expr` (a place expression).
fn encode_field(def: &StructDef, f: &Field, expr: &str) -> String {
    if !is_opt(f) {
        return encode_value(&f.ty, &format!("&{expr}"), false);
    }
    let nc = f
        .nullable
        .map(|n| n.cond(f.versions))
        .unwrap_or_else(|| "false".into());
    let null_write = match &f.ty {
        Type::Prim(Prim::String) => "e.nullable_string(None, flex)?;".to_string(),
        Type::Prim(_) => "e.nullable_bytes(None, flex)?;".to_string(),
        Type::Array(_) => "e.array_len(None, flex)?;".to_string(),
        Type::Struct(_) => "e.i8(-1);".to_string(),
    };
    let check = if nc == "true" {
        String::new()
    } else {
        format!(
            "        if !({nc}) {{\n            return Err(EncodeError::NotNullable {{ what: {}, version }});\n        }}\n",
            what(def, f)
        )
    };
    format!(
        "match &{expr} {{\n    None => {{\n{check}        {null_write}\n    }}\n    Some(v) => {{\n{}    }}\n}}\n",
        indent(&encode_value(&f.ty, "v", true), 2)
    )
}

/// Statements writing a present value; `v` is an expression of type `&T`.
fn encode_value(t: &Type, v: &str, nullable: bool) -> String {
    match t {
        Type::Prim(p) => format!("{}\n", encode_prim(*p, v)),
        Type::Struct(_) => {
            let marker = if nullable { "e.i8(1);\n" } else { "" };
            format!("{marker}({v}).encode_fields(e, version)?;\n")
        }
        Type::Array(inner) => {
            let elem = encode_value(inner, "x", false);
            format!(
                "e.array_len(Some(({v}).len()), flex)?;\nfor x in ({v}).iter() {{\n{}}}\n",
                indent(&elem, 1)
            )
        }
    }
}

fn encode_prim(p: Prim, v: &str) -> String {
    match p {
        Prim::Bool => format!("e.bool(*{v});"),
        Prim::I8 => format!("e.i8(*{v});"),
        Prim::I16 => format!("e.i16(*{v});"),
        Prim::I32 => format!("e.i32(*{v});"),
        Prim::I64 => format!("e.i64(*{v});"),
        Prim::U16 => format!("e.u16(*{v});"),
        Prim::U32 => format!("e.u32(*{v});"),
        Prim::F64 => format!("e.f64(*{v});"),
        Prim::Uuid => format!("e.uuid({v});"),
        Prim::String => format!("e.string({v}, flex)?;"),
        Prim::Bytes | Prim::Records => format!("e.bytes({v}, flex)?;"),
    }
}

/// An expression decoding field `f`.
fn decode_field(s: &Schema, def: &StructDef, f: &Field) -> String {
    let w = what(def, f);
    if !is_opt(f) {
        return decode_value(s, &f.ty, &w);
    }
    let nc = f
        .nullable
        .map(|n| n.cond(f.versions))
        .unwrap_or_else(|| "false".into());
    let null_check = if nc == "true" {
        String::new()
    } else {
        format!("if !({nc}) {{ return Err(DecodeError::UnexpectedNull {{ what: {w} }}); }} ")
    };
    match &f.ty {
        Type::Prim(Prim::String) => format!(
            "{{ let v = d.nullable_string(flex)?; if v.is_none() {{ {null_check}}} v }}"
        ),
        Type::Prim(_) => format!(
            "{{ let v = d.nullable_bytes(flex)?; if v.is_none() {{ {null_check}}} v }}"
        ),
        Type::Array(inner) => format!(
            "match d.array_len_min(flex, {min})? {{ None => {{ {null_check}None }} Some(n) => Some({{ {body} }}) }}",
            min = min_size(s, inner, 0),
            body = decode_elems(s, inner)
        ),
        Type::Struct(n) => format!(
            "if d.i8()? < 0 {{ {null_check}None }} else {{ Some({n}::decode_fields(d, version)?) }}"
        ),
    }
}

fn decode_elems(s: &Schema, inner: &Type) -> String {
    format!(
        "let mut v = Vec::with_capacity(n); for _ in 0..n {{ v.push({}); }} v",
        decode_value(s, inner, "\"element\"")
    )
}

fn decode_value(s: &Schema, t: &Type, w: &str) -> String {
    match t {
        Type::Prim(p) => match p {
            Prim::Bool => "d.bool()?".into(),
            Prim::I8 => "d.i8()?".into(),
            Prim::I16 => "d.i16()?".into(),
            Prim::I32 => "d.i32()?".into(),
            Prim::I64 => "d.i64()?".into(),
            Prim::U16 => "d.u16()?".into(),
            Prim::U32 => "d.u32()?".into(),
            Prim::F64 => "d.f64()?".into(),
            Prim::Uuid => "d.uuid()?".into(),
            Prim::String => "d.string(flex)?".into(),
            Prim::Bytes => "d.bytes(flex)?".into(),
            Prim::Records => "d.nullable_bytes(flex)?".into(),
        },
        Type::Struct(n) => format!("{n}::decode_fields(d, version)?"),
        Type::Array(inner) => format!(
            "{{ let n = d.array_len_min(flex, {min})?.ok_or(DecodeError::UnexpectedNull {{ what: {w} }})?; {body} }}",
            min = min_size(s, inner, 0),
            body = decode_elems(s, inner)
        ),
    }
}

fn random_field(f: &Field) -> String {
    let base = random_value(&f.ty);
    match f.nullable {
        Some(n) if f.ty != Type::Prim(Prim::Records) => {
            format!(
                "if {} && r.chance(4) {{ None }} else {{ Some({base}) }}",
                n.cond(f.versions)
            )
        }
        _ => base,
    }
}

fn random_value(t: &Type) -> String {
    match t {
        Type::Prim(p) => match p {
            Prim::Bool => "r.bool()".into(),
            Prim::I8 => "r.u64() as i8".into(),
            Prim::I16 => "r.u64() as i16".into(),
            Prim::I32 => "r.u64() as i32".into(),
            Prim::I64 => "r.u64() as i64".into(),
            Prim::U16 => "r.u64() as u16".into(),
            Prim::U32 => "r.u64() as u32".into(),
            Prim::F64 => "r.f64()".into(),
            Prim::Uuid => "r.uuid()".into(),
            Prim::String => "r.string()".into(),
            Prim::Bytes => "r.bytes()".into(),
            Prim::Records => "if r.chance(4) { None } else { Some(r.bytes()) }".into(),
        },
        Type::Struct(n) => format!("{n}::random(r, version)"),
        Type::Array(inner) => format!("(0..r.len(3)).map(|_| {}).collect()", random_value(inner)),
    }
}

/// The API key table and the `Request`/`Response` enums over every API schema.
pub fn dispatch(schemas: &[Schema]) -> String {
    let mut apis: Vec<(&Schema, i16)> = schemas
        .iter()
        .filter_map(|s| match s.kind {
            Kind::Api(k) => Some((s, k)),
            Kind::Data => None,
        })
        .collect();
    apis.sort_by_key(|(_, k)| *k);
    let mut o = String::new();
    o.push_str("/// Every API this codec knows, by its Kafka API key.\n");
    o.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(i16)]\npub enum ApiKey {\n");
    for (s, k) in &apis {
        let _ = writeln!(o, "    /// {} (key {k}).\n    {} = {k},", s.name, s.name);
    }
    o.push_str("}\n\nimpl ApiKey {\n    /// All known APIs in key order.\n    pub const ALL: &'static [ApiKey] = &[\n");
    for (s, _) in &apis {
        let _ = writeln!(o, "        ApiKey::{},", s.name);
    }
    o.push_str("    ];\n\n    /// The API for a wire key.\n    pub fn from_i16(key: i16) -> Option<ApiKey> {\n        Some(match key {\n");
    for (s, k) in &apis {
        let _ = writeln!(o, "            {k} => ApiKey::{},", s.name);
    }
    o.push_str("            _ => return None,\n        })\n    }\n\n");
    o.push_str("    /// The API's name as Kafka spells it.\n    pub fn name(self) -> &'static str {\n        match self {\n");
    for (s, _) in &apis {
        let _ = writeln!(o, "            ApiKey::{n} => \"{n}\",", n = s.name);
    }
    o.push_str("        }\n    }\n\n    /// The inclusive range of versions the codec can encode and decode.\n    pub fn versions(self) -> (i16, i16) {\n        match self {\n");
    for (s, _) in &apis {
        let _ = writeln!(
            o,
            "            ApiKey::{} => ({}, {}),",
            s.name,
            s.versions.min,
            s.versions.max.unwrap_or(0)
        );
    }
    o.push_str("        }\n    }\n\n    /// The first flexible version (KIP-482), if any.\n    pub fn flexible_since(self) -> Option<i16> {\n        match self {\n");
    for (s, _) in &apis {
        let _ = writeln!(o, "            ApiKey::{} => {:?},", s.name, s.flexible);
    }
    o.push_str("        }\n    }\n}\n\n");

    for (side, suffix) in [("Request", "Request"), ("Response", "Response")] {
        let _ = writeln!(o, "/// A decoded {} body of any API.\n#[derive(Debug, Clone, PartialEq)]\n#[allow(clippy::large_enum_variant)]\npub enum {side} {{", side.to_lowercase());
        for (s, _) in &apis {
            let _ = writeln!(
                o,
                "    /// {}{suffix}.\n    {}({}::{}{suffix}),",
                s.name,
                s.name,
                module_name(&s.file),
                s.name
            );
        }
        let _ = writeln!(o, "}}\n\nimpl {side} {{\n    /// The API this body belongs to.\n    pub fn api_key(&self) -> ApiKey {{\n        match self {{");
        for (s, _) in &apis {
            let _ = writeln!(o, "            {side}::{n}(_) => ApiKey::{n},", n = s.name);
        }
        let _ = writeln!(o, "        }}\n    }}\n\n    /// Decodes the body of `api` at `version`.\n    pub fn decode(api: ApiKey, version: i16, d: &mut Decoder) -> Result<Self, DecodeError> {{\n        Ok(match api {{");
        for (s, _) in &apis {
            let _ = writeln!(o, "            ApiKey::{n} => {side}::{n}(<{m}::{n}{suffix} as Message>::decode(d, version)?),", n = s.name, m = module_name(&s.file));
        }
        let _ = writeln!(o, "        }})\n    }}\n\n    /// Encodes the body at `version`.\n    pub fn encode(&self, e: &mut Encoder, version: i16) -> Result<(), EncodeError> {{\n        match self {{");
        for (s, _) in &apis {
            let _ = writeln!(
                o,
                "            {side}::{n}(m) => m.encode(e, version),",
                n = s.name
            );
        }
        let _ = writeln!(o, "        }}\n    }}\n\n    #[cfg(test)]\n    pub(crate) fn random(api: ApiKey, r: &mut crate::testing::Rng, version: i16) -> Self {{\n        match api {{");
        for (s, _) in &apis {
            let _ = writeln!(
                o,
                "            ApiKey::{n} => {side}::{n}({m}::{n}{suffix}::random(r, version)),",
                n = s.name,
                m = module_name(&s.file)
            );
        }
        o.push_str("        }\n    }\n}\n\n");
        for (s, _) in &apis {
            let _ = writeln!(o, "impl From<{m}::{n}{suffix}> for {side} {{\n    fn from(m: {m}::{n}{suffix}) -> Self {{\n        {side}::{n}(m)\n    }}\n}}\n", n = s.name, m = module_name(&s.file));
        }
    }
    o
}

/// A test hook that round-trips every data structure (non-API schema) at every
/// version, so new data schemas are covered without editing the tests.
pub fn data_round_trips(schemas: &[Schema]) -> String {
    let mut o = String::from("#[cfg(test)]\npub(crate) fn round_trip_every_data_type() -> usize {\n    let mut types = 0;\n");
    for s in schemas.iter().filter(|s| s.kind == Kind::Data) {
        for m in &s.messages {
            let _ = writeln!(
                o,
                "    tests::round_trip_data({}::{}::random);\n    types += 1;",
                module_name(&s.file),
                m.name
            );
        }
    }
    o.push_str("    types\n}\n");
    o
}

/// `pub use` lines for the top-level message types.
pub fn reexports(schemas: &[Schema]) -> String {
    let mut o = String::new();
    for s in schemas {
        let names: Vec<&str> = s.messages.iter().map(|m| m.name.as_str()).collect();
        let _ = writeln!(
            o,
            "pub use {}::{{{}}};",
            module_name(&s.file),
            names.join(", ")
        );
    }
    o
}
