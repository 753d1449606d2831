//! unified-test-format.md, "Evaluating Matches": flexible numerics, extra fields allowed in
//! root-level documents only, key order ignored, and the special operators these files use
//! (`$$exists`, `$$type`, `$$unsetOrMatches`, `$$matchAsDocument`, `$$matchAsRoot`).

use bson::{Bson, Document};

/// Whether `actual` matches `expected`; `Err` says where and why not.
pub fn matches(expected: &Bson, actual: Option<&Bson>, root: bool, path: &str) -> Result<(), String> {
    if let Bson::Document(e) = expected {
        if let Some((op, arg)) = special(e) {
            return operator(op, arg, actual, path);
        }
    }
    let Some(actual) = actual else { return Err(format!("{path}: expected {expected}, found nothing")) };
    match (expected, actual) {
        (Bson::Document(e), Bson::Document(a)) => documents(e, a, root, path),
        (Bson::Document(_), other) => Err(format!("{path}: expected a document, found {other}")),
        (Bson::Array(e), Bson::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{path}: expected {} elements, found {}: {actual}", e.len(), a.len()));
            }
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                matches(e, Some(a), false, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (e, a) => {
            if let (Some(x), Some(y)) = (number(e), number(a)) {
                return if x == y { Ok(()) } else { Err(format!("{path}: expected {e}, found {a}")) };
            }
            if e == a {
                Ok(())
            } else {
                Err(format!("{path}: expected {e}, found {a}"))
            }
        }
    }
}

/// Matches a root-level document (extra fields allowed).
pub fn matches_root(expected: &Document, actual: &Document, path: &str) -> Result<(), String> {
    documents(expected, actual, true, path)
}

fn documents(expected: &Document, actual: &Document, root: bool, path: &str) -> Result<(), String> {
    for (key, value) in expected {
        let here = format!("{path}.{key}");
        // $$exists: false / $$unsetOrMatches may accept a missing key.
        matches(value, actual.get(key), false, &here)?;
    }
    if !root {
        if let Some(extra) = actual.keys().find(|k| !expected.contains_key(k.as_str())) {
            return Err(format!("{path}: unexpected field {extra} in {actual}"));
        }
    }
    Ok(())
}

fn special(d: &Document) -> Option<(&str, &Bson)> {
    let mut it = d.iter();
    let (k, v) = it.next()?;
    (it.next().is_none() && k.starts_with("$$")).then_some((k.as_str(), v))
}

fn operator(op: &str, arg: &Bson, actual: Option<&Bson>, path: &str) -> Result<(), String> {
    match op {
        "$$exists" => {
            let want = arg.as_bool().ok_or_else(|| format!("{path}: $$exists needs a boolean"))?;
            if want == actual.is_some() {
                Ok(())
            } else if want {
                Err(format!("{path}: expected the field to exist"))
            } else {
                Err(format!(
                    "{path}: expected no field, found {}",
                    actual.map_or_else(String::new, ToString::to_string)
                ))
            }
        }
        "$$type" => {
            let actual =
                actual.ok_or_else(|| format!("{path}: expected a value of type {arg}, found nothing"))?;
            let names: Vec<&str> = match arg {
                Bson::String(s) => vec![s.as_str()],
                Bson::Array(a) => a.iter().filter_map(Bson::as_str).collect(),
                other => return Err(format!("{path}: bad $$type argument {other}")),
            };
            let name = type_name(actual);
            if names.contains(&name) {
                Ok(())
            } else {
                Err(format!("{path}: expected type {names:?}, found {name} ({actual})"))
            }
        }
        "$$unsetOrMatches" => match actual {
            None => Ok(()),
            Some(a) => matches(arg, Some(a), false, path),
        },
        "$$matchAsDocument" => {
            let actual = actual.ok_or_else(|| format!("{path}: expected a JSON string, found nothing"))?;
            let text = actual
                .as_str()
                .ok_or_else(|| format!("{path}: $$matchAsDocument needs a string, found {actual}"))?;
            let json: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("{path}: not JSON ({e}): {text}"))?;
            let doc = Bson::try_from(json).map_err(|e| format!("{path}: not extended JSON ({e}): {text}"))?;
            matches(arg, Some(&doc), false, path)
        }
        "$$matchAsRoot" => {
            let expected =
                arg.as_document().ok_or_else(|| format!("{path}: $$matchAsRoot needs a document"))?;
            match actual {
                Some(Bson::Document(a)) => documents(expected, a, true, path),
                other => Err(format!("{path}: $$matchAsRoot needs a document, found {other:?}")),
            }
        }
        other => Err(format!("{path}: unsupported operator {other}")),
    }
}

fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        #[allow(clippy::cast_precision_loss)]
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// The unified format's type names ($$type).
fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

#[cfg(test)]
mod tests {
    use bson::{bson, doc};

    use super::*;

    #[test]
    fn the_formats_matching_rules() {
        let ok = |e: Bson, a: Bson| matches(&e, Some(&a), true, "$").is_ok();
        assert!(ok(bson!({ "x": 1 }), bson!({ "x": 1.0, "y": 2 })), "flexible numerics, root extras");
        assert!(!ok(bson!({ "x": { "y": 1 } }), bson!({ "x": { "y": 1, "z": 1 } })), "no nested extras");
        assert!(!ok(bson!({ "x": 1, "y": 1 }), bson!({ "x": 1 })));
        assert!(!ok(bson!({ "x": 1 }), bson!({ "x": 1.5 })));
        assert!(ok(bson!({ "a": { "$$exists": false } }), bson!({ "b": 1 })));
        assert!(!ok(bson!({ "a": { "$$exists": true } }), bson!({ "b": 1 })));
        assert!(ok(bson!({ "p": { "$$type": ["int", "long"] } }), bson!({ "p": 27017_i64 })));
        assert!(!ok(bson!({ "p": { "$$type": "string" } }), bson!({ "p": 1 })));
        let reply = doc! { "reply": "{\"ok\": 1.0, \"me\": \"a\"}" };
        let expected = bson!({ "reply": { "$$matchAsDocument": { "$$matchAsRoot": { "ok": 1 } } } });
        assert!(ok(expected.clone(), Bson::Document(reply)));
        assert!(!ok(expected, bson!({ "reply": "{\"ok\": 0}" })));
        assert!(ok(bson!([{ "x": 1 }]), bson!([{ "x": 1 }])));
        assert!(!ok(bson!([{ "x": 1 }]), bson!([{ "x": 1 }, { "x": 2 }])));
    }
}
