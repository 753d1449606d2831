//! The deployment's documents: what `insert` writes, `find` reads back, `delete` and `drop`
//! remove, shared by every member (a replica set's members agree, as after replication).
//!
//! Just enough for the unified tests' `initialData` and `outcome`: `insert` of
//! `documents` in the command body (a duplicate `_id` is a write error 11000), `find` with an
//! equality filter on top-level fields and an optional `sort: {_id: 1}` (every match in the
//! first batch), `delete` with `q` equality filters, `drop`, `create`. A filter with an
//! operator (`$gt`, ...) is refused with an error reply. At most [`MAX_DOCUMENTS`] documents
//! in all.

use std::collections::BTreeMap;

use bson::{doc, Bson, Document, RawBsonRef, RawDocument};

/// The most documents the whole deployment holds; an insert beyond fails.
pub const MAX_DOCUMENTS: usize = 100_000;

/// Every collection's documents, by (database, collection).
#[derive(Debug, Default)]
pub(crate) struct Store {
    collections: BTreeMap<(String, String), Vec<Document>>,
    total: usize,
}

fn error(code: i32, message: impl Into<String>) -> Document {
    doc! { "ok": 0.0, "code": code, "errmsg": message.into() }
}

fn matches(document: &Document, filter: &Document) -> bool {
    filter.iter().all(|(k, v)| document.get(k) == Some(v))
}

fn check_filter(filter: &Document) -> Result<(), Document> {
    match filter.iter().find(|(k, v)| {
        k.starts_with('$') || matches!(v, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')))
    }) {
        Some((k, _)) => Err(error(
            2,
            format!("unsupported filter on '{k}': this scripted server matches by equality only"),
        )),
        None => Ok(()),
    }
}

fn to_document(raw: &RawDocument) -> Result<Document, Document> {
    Document::try_from(raw).map_err(|e| error(2, format!("invalid BSON: {e}")))
}

impl Store {
    /// Runs data command `name` (`body`, already allowed on this member by the ordinary
    /// command rules): the reply, or `None` if `name` is not a data command.
    pub(crate) fn apply(&mut self, name: &str, body: &RawDocument) -> Option<Document> {
        if !matches!(name, "insert" | "find" | "delete" | "drop" | "create") {
            return None;
        }
        let db = body.get_str("$db").unwrap_or("test").to_owned();
        let Ok(collection) = body.get_str(name) else {
            return Some(error(2, format!("{name} needs a collection name")));
        };
        let key = (db.clone(), collection.to_owned());
        Some(match name {
            "insert" => self.insert(key, body),
            "find" => self.find(&key, body),
            "delete" => self.delete(&key, body),
            "drop" => {
                if let Some(docs) = self.collections.remove(&key) {
                    self.total -= docs.len();
                }
                doc! { "ok": 1.0 }
            }
            _ => {
                self.collections.entry(key).or_default();
                doc! { "ok": 1.0 }
            }
        })
    }

    fn insert(&mut self, key: (String, String), body: &RawDocument) -> Document {
        let Ok(documents) = body.get_array("documents") else {
            return error(2, "insert needs a documents array in the command body");
        };
        let docs = self.collections.entry(key).or_default();
        let mut n = 0;
        let mut write_errors = Vec::new();
        for (index, item) in documents.into_iter().enumerate() {
            let document = match item {
                Ok(RawBsonRef::Document(d)) => match to_document(d) {
                    Ok(d) => d,
                    Err(e) => return e,
                },
                _ => return error(2, "insert documents must be documents"),
            };
            if self.total >= MAX_DOCUMENTS {
                return error(
                    14031,
                    format!("the scripted deployment holds at most {MAX_DOCUMENTS} documents"),
                );
            }
            let id = document.get("_id");
            if id.is_some() && docs.iter().any(|d| d.get("_id") == id) {
                write_errors.push(doc! {
                    "index": i32::try_from(index).unwrap_or(i32::MAX), "code": 11000,
                    "errmsg": "E11000 duplicate key error",
                });
                break; // ordered
            }
            docs.push(document);
            self.total += 1;
            n += 1;
        }
        let mut reply = doc! { "n": n, "ok": 1.0 };
        if !write_errors.is_empty() {
            reply.insert("writeErrors", write_errors);
        }
        reply
    }

    fn find(&self, key: &(String, String), body: &RawDocument) -> Document {
        let filter = match body.get_document("filter") {
            Ok(f) => match to_document(f) {
                Ok(f) => f,
                Err(e) => return e,
            },
            Err(_) => Document::new(),
        };
        if let Err(e) = check_filter(&filter) {
            return e;
        }
        let mut found: Vec<Document> = self
            .collections
            .get(key)
            .map(|docs| docs.iter().filter(|d| matches(d, &filter)).cloned().collect())
            .unwrap_or_default();
        if let Ok(sort) = body.get_document("sort") {
            match sort.iter().collect::<Result<Vec<_>, _>>() {
                Ok(keys) if keys.len() == 1 && keys[0].0 == "_id" => {
                    let descending = matches!(keys[0].1, RawBsonRef::Int32(-1) | RawBsonRef::Int64(-1));
                    found.sort_by(|a, b| order(a.get("_id"), b.get("_id")));
                    if descending {
                        found.reverse();
                    }
                }
                Ok(keys) if keys.is_empty() => {}
                _ => return error(2, "this scripted server sorts by _id only"),
            }
        }
        let ns = format!("{}.{}", key.0, key.1);
        doc! { "cursor": { "id": 0_i64, "ns": ns, "firstBatch": found }, "ok": 1.0 }
    }

    fn delete(&mut self, key: &(String, String), body: &RawDocument) -> Document {
        let Ok(deletes) = body.get_array("deletes") else { return error(2, "delete needs deletes") };
        let mut n = 0;
        for item in deletes {
            let Ok(RawBsonRef::Document(spec)) = item else { return error(2, "deletes must be documents") };
            let filter = match spec
                .get_document("q")
                .map_err(|_| error(2, "a delete needs q"))
                .and_then(to_document)
            {
                Ok(f) => f,
                Err(e) => return e,
            };
            if let Err(e) = check_filter(&filter) {
                return e;
            }
            let limit_one =
                matches!(spec.get("limit"), Ok(Some(RawBsonRef::Int32(1) | RawBsonRef::Int64(1))));
            if let Some(docs) = self.collections.get_mut(key) {
                let before = docs.len();
                if limit_one {
                    if let Some(i) = docs.iter().position(|d| matches(d, &filter)) {
                        docs.remove(i);
                    }
                } else {
                    docs.retain(|d| !matches(d, &filter));
                }
                n += before - docs.len();
                self.total -= before - docs.len();
            }
        }
        doc! { "n": i64::try_from(n).unwrap_or(i64::MAX), "ok": 1.0 }
    }
}

/// Numbers by value, then anything else by its text (enough for test `_id`s).
fn order(a: Option<&Bson>, b: Option<&Bson>) -> std::cmp::Ordering {
    let number = |v: Option<&Bson>| match v {
        Some(Bson::Int32(i)) => Some(f64::from(*i)),
        #[allow(clippy::cast_precision_loss)]
        Some(Bson::Int64(i)) => Some(*i as f64),
        Some(Bson::Double(d)) => Some(*d),
        _ => None,
    };
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => format!("{a:?}").cmp(&format!("{b:?}")),
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn insert_find_delete_drop() {
        let mut store = Store::default();
        let reply = store
            .apply(
                "insert",
                &rawdoc! { "insert": "c", "$db": "d", "documents": [{ "_id": 2 }, { "_id": 1, "x": 1 }] },
            )
            .unwrap();
        assert_eq!(reply.get_i32("n").ok(), Some(2));
        let dup = store
            .apply("insert", &rawdoc! { "insert": "c", "$db": "d", "documents": [{ "_id": 1 }] })
            .unwrap();
        assert_eq!(dup.get_array("writeErrors").map(Vec::len).ok(), Some(1));
        let found = store.apply("find", &rawdoc! { "find": "c", "$db": "d", "sort": { "_id": 1 } }).unwrap();
        let batch = found.get_document("cursor").unwrap().get_array("firstBatch").unwrap().clone();
        assert_eq!(batch, vec![Bson::from(doc! { "_id": 1, "x": 1 }), Bson::from(doc! { "_id": 2 })]);
        let one = store.apply("find", &rawdoc! { "find": "c", "$db": "d", "filter": { "x": 1 } }).unwrap();
        assert_eq!(one.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 1);
        let refused =
            store.apply("find", &rawdoc! { "find": "c", "$db": "d", "filter": { "x": { "$gt": 0 } } });
        assert_eq!(refused.unwrap().get_f64("ok").ok(), Some(0.0));
        let deleted = store
            .apply("delete", &rawdoc! { "delete": "c", "$db": "d", "deletes": [{ "q": {}, "limit": 0 }] });
        assert_eq!(deleted.unwrap().get_i64("n").ok(), Some(2));
        store.apply("drop", &rawdoc! { "drop": "c", "$db": "d" });
        assert_eq!(store.total, 0);
        assert!(store.apply("ping", &rawdoc! { "ping": 1 }).is_none());
    }
}
