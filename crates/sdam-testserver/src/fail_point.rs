//! The `failCommand` fail point, as the unified test format and the SDAM unified tests use
//! it: `{configureFailPoint: "failCommand", mode, data}` on a member sets it, and every later
//! command that matches (its name in `data.failCommands`, and the connection's `appName` when
//! `data.appName` is given) is blocked for `blockTimeMS` (`blockConnection`), then has its
//! connection closed without a reply (`closeConnection`) or is answered with `errorCode`
//! (and `errorLabels`), or else runs normally.
//!
//! Modes: `"alwaysOn"`, `{times: n}` (the next `n` matching commands), `{skip: n}` (all but
//! the next `n`) and `"off"`. An option this server cannot honour (e.g.
//! `activationProbability`, `writeConcernError`) is refused with an error reply naming it,
//! never ignored.
//!
//! A streaming hello is checked before each of its replies, and setting a fail point wakes
//! waiting streams, so a fail point on `hello` takes effect on the next streamed reply rather
//! than after `maxAwaitTimeMS`.

use std::time::Duration;

use bson::{doc, Bson, Document, RawBsonRef, RawDocument};

/// What a fail point does to one matching command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Action {
    /// Wait this long before acting (`blockConnection` + `blockTimeMS`).
    pub(crate) block: Option<Duration>,
    /// Close the connection without answering.
    pub(crate) close_connection: bool,
    /// Answer with this error instead of running the command.
    pub(crate) error: Option<Document>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    AlwaysOn,
    Times(u64),
    Skip(u64),
}

/// A configured `failCommand` fail point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailPoint {
    mode: Mode,
    commands: Vec<String>,
    app_name: Option<String>,
    action: Action,
}

/// The command name a fail point matches (`ismaster` is `isMaster`'s alias).
fn canonical(name: &str) -> &str {
    if name == "ismaster" {
        "isMaster"
    } else {
        name
    }
}

impl FailPoint {
    /// Whether a command `name` on a connection of `app_name` is one this fail point targets.
    fn targets(&self, name: &str, app_name: Option<&str>) -> bool {
        self.commands.iter().any(|c| canonical(c) == canonical(name))
            && self.app_name.as_deref().is_none_or(|want| app_name == Some(want))
    }
}

/// Whether `fail_point` targets command `name` on a connection of `app_name` (without
/// consuming it).
pub(crate) fn pending(fail_point: Option<&FailPoint>, name: &str, app_name: Option<&str>) -> bool {
    fail_point.is_some_and(|fp| fp.targets(name, app_name) && !matches!(fp.mode, Mode::Skip(n) if n > 0))
}

/// Checks command `name` on a connection of `app_name` against the member's fail point:
/// the action if it fires (a `times` fail point counts down and turns itself off).
pub(crate) fn check(
    fail_point: &mut Option<FailPoint>,
    name: &str,
    app_name: Option<&str>,
) -> Option<Action> {
    let fp = fail_point.as_mut()?;
    if !fp.targets(name, app_name) {
        return None;
    }
    let action = match &mut fp.mode {
        Mode::AlwaysOn => Some(fp.action.clone()),
        Mode::Skip(n) if *n > 0 => {
            *n -= 1;
            None
        }
        Mode::Skip(_) => Some(fp.action.clone()),
        Mode::Times(n) => {
            *n = n.saturating_sub(1);
            Some(fp.action.clone())
        }
    };
    if matches!(fp.mode, Mode::Times(0)) {
        *fail_point = None;
    }
    action
}

/// Runs `configureFailPoint` on a member whose fail point is `fail_point`; the reply.
pub(crate) fn configure(fail_point: &mut Option<FailPoint>, body: &RawDocument) -> Document {
    match parse(body) {
        Ok(Some(fp)) => {
            *fail_point = Some(fp);
            doc! { "ok": 1.0 }
        }
        Ok(None) => {
            *fail_point = None;
            doc! { "ok": 1.0 }
        }
        Err(message) => doc! { "ok": 0.0, "code": 2, "codeName": "BadValue", "errmsg": message },
    }
}

fn int(value: RawBsonRef<'_>) -> Option<i64> {
    match value {
        RawBsonRef::Int32(i) => Some(i64::from(i)),
        RawBsonRef::Int64(i) => Some(i),
        #[allow(clippy::cast_possible_truncation)]
        RawBsonRef::Double(d) if d.fract() == 0.0 => Some(d as i64),
        _ => None,
    }
}

fn count(value: RawBsonRef<'_>, what: &str) -> Result<u64, String> {
    int(value)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| format!("{what} must be a non-negative integer"))
}

/// `Ok(None)`: mode `off`.
fn parse(body: &RawDocument) -> Result<Option<FailPoint>, String> {
    let name = body.get_str("configureFailPoint").map_err(|_| "configureFailPoint must name a fail point")?;
    if name != "failCommand" {
        return Err(format!("unsupported fail point '{name}' (this scripted server has failCommand only)"));
    }
    let mode = match body.get("mode").map_err(|e| e.to_string())? {
        Some(RawBsonRef::String("alwaysOn")) => Mode::AlwaysOn,
        Some(RawBsonRef::String("off")) => return Ok(None),
        Some(RawBsonRef::Document(mode)) => {
            let mut parsed = None;
            for element in mode {
                let (key, value) = element.map_err(|e| e.to_string())?;
                parsed = Some(match key.as_str() {
                    "times" => Mode::Times(count(value, "mode.times")?),
                    "skip" => Mode::Skip(count(value, "mode.skip")?),
                    other => return Err(format!("unsupported fail point mode '{other}'")),
                });
            }
            parsed.ok_or("the fail point mode document is empty")?
        }
        other => return Err(format!("invalid fail point mode {other:?}")),
    };
    if matches!(mode, Mode::Times(0)) {
        return Ok(None);
    }
    let data = body.get_document("data").map_err(|_| "failCommand needs a data document")?;
    let mut fp = FailPoint { mode, commands: Vec::new(), app_name: None, action: Action::default() };
    let mut block_connection = false;
    let mut block_time = None;
    for element in data {
        let (key, value) = element.map_err(|e| e.to_string())?;
        match (key.as_str(), value) {
            ("failCommands", RawBsonRef::Array(names)) => {
                for name in names {
                    match name.map_err(|e| e.to_string())? {
                        RawBsonRef::String(n) => fp.commands.push(n.to_owned()),
                        other => return Err(format!("failCommands must list strings, not {other:?}")),
                    }
                }
            }
            ("appName", RawBsonRef::String(app)) => fp.app_name = Some(app.to_owned()),
            ("closeConnection", RawBsonRef::Boolean(b)) => fp.action.close_connection = b,
            ("blockConnection", RawBsonRef::Boolean(b)) => block_connection = b,
            ("blockTimeMS", v) => {
                block_time = Some(Duration::from_millis(count(v, "blockTimeMS")?));
            }
            ("errorCode", v) => {
                let code = int(v).and_then(|c| i32::try_from(c).ok()).ok_or("errorCode must be an int32")?;
                let error = fp.action.error.get_or_insert_with(Document::new);
                error.insert("code", code);
            }
            ("errorLabels", RawBsonRef::Array(labels)) => {
                let labels: Vec<Bson> = labels
                    .into_iter()
                    .map(|l| match l {
                        Ok(RawBsonRef::String(s)) => Ok(Bson::from(s)),
                        _ => Err("errorLabels must list strings".to_owned()),
                    })
                    .collect::<Result<_, _>>()?;
                fp.action.error.get_or_insert_with(Document::new).insert("errorLabels", labels);
            }
            // There are no internal clients here: internal commands never reach a fail point.
            ("failInternalCommands", RawBsonRef::Boolean(_)) => {}
            (other, _) => return Err(format!("unsupported failCommand option '{other}'")),
        }
    }
    if fp.commands.is_empty() {
        return Err("failCommand needs data.failCommands".into());
    }
    if block_connection {
        fp.action.block = Some(block_time.ok_or("blockConnection needs blockTimeMS")?);
    }
    if let Some(error) = &mut fp.action.error {
        if !error.contains_key("code") {
            return Err("errorLabels without errorCode is not supported".into());
        }
        error.insert("ok", 0.0);
        error.insert("errmsg", "Failing command via 'failCommand' failpoint");
    }
    Ok(Some(fp))
}

/// The application name a hello handshake announces (`client.application.name`).
pub(crate) fn handshake_app_name(body: &RawDocument) -> Option<String> {
    let client = body.get_document("client").ok()?;
    let application = client.get_document("application").ok()?;
    application.get_str("name").ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    fn configured(body: &RawDocument) -> Option<FailPoint> {
        let mut fp = None;
        let reply = configure(&mut fp, body);
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
        fp
    }

    #[test]
    fn times_counts_down_matching_commands_only_then_turns_off() {
        let mut fp = configured(&rawdoc! {
            "configureFailPoint": "failCommand", "mode": { "times": 2 },
            "data": { "failCommands": ["hello", "isMaster"], "appName": "app", "errorCode": 91 },
        });
        assert_eq!(check(&mut fp, "hello", Some("other")), None);
        assert_eq!(check(&mut fp, "ping", Some("app")), None);
        let action = check(&mut fp, "ismaster", Some("app")).expect("fires");
        let error = action.error.expect("an error reply");
        assert_eq!(error.get_i32("code").ok(), Some(91));
        assert_eq!(error.get_f64("ok").ok(), Some(0.0));
        assert!(check(&mut fp, "hello", Some("app")).is_some());
        assert!(fp.is_none(), "two times used up");
        assert_eq!(check(&mut fp, "hello", Some("app")), None);
    }

    #[test]
    fn always_on_block_close_skip_and_off() {
        let mut fp = configured(&rawdoc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["hello"], "blockConnection": true, "blockTimeMS": 550, "closeConnection": true },
        });
        for _ in 0..3 {
            let action = check(&mut fp, "hello", None).expect("always");
            assert_eq!(action.block, Some(Duration::from_millis(550)));
            assert!(action.close_connection);
            assert_eq!(action.error, None);
        }
        let mut fp = configured(&rawdoc! {
            "configureFailPoint": "failCommand", "mode": { "skip": 1 },
            "data": { "failCommands": ["find"], "closeConnection": true },
        });
        assert!(!pending(fp.as_ref(), "find", None));
        assert_eq!(check(&mut fp, "find", None), None);
        assert!(pending(fp.as_ref(), "find", None));
        assert!(check(&mut fp, "find", None).is_some());
        let mut fp = fp;
        let reply = configure(&mut fp, &rawdoc! { "configureFailPoint": "failCommand", "mode": "off" });
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0));
        assert!(fp.is_none());
    }

    #[test]
    fn options_it_cannot_honour_are_refused() {
        for body in [
            rawdoc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["insert"], "writeConcernError": { "code": 1 } } },
            rawdoc! { "configureFailPoint": "failCommand", "mode": { "activationProbability": 0.5 },
            "data": { "failCommands": ["insert"] } },
            rawdoc! { "configureFailPoint": "other", "mode": "alwaysOn" },
            rawdoc! { "configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {} },
            rawdoc! { "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["hello"], "blockConnection": true } },
        ] {
            let mut fp = None;
            let reply = configure(&mut fp, &body);
            assert_eq!(reply.get_f64("ok").ok(), Some(0.0), "{body:?}: {reply}");
            assert!(reply.get_str("errmsg").is_ok());
            assert!(fp.is_none());
        }
    }

    #[test]
    fn the_handshake_names_the_application() {
        let hello =
            rawdoc! { "hello": 1, "client": { "application": { "name": "app" }, "driver": { "name": "x" } } };
        assert_eq!(handshake_app_name(&hello).as_deref(), Some("app"));
        assert_eq!(handshake_app_name(&rawdoc! { "hello": 1 }), None);
    }
}
