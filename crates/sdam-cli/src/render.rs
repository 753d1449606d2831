//! How the tool prints topologies, events and explanations: aligned tables for people,
//! JSON objects for scripts, colour only when the output is a terminal.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use sdam::selection::estimate_staleness;
use sdam::{Event, ServerDescription, ServerType, TopologyDescription};

/// ANSI styling, enabled only when writing to a terminal (and `NO_COLOR` is unset).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    colour: bool,
}

impl Style {
    /// Colour when `stdout` is a terminal and `NO_COLOR` is not set.
    pub(crate) fn for_stdout() -> Self {
        use std::io::IsTerminal;
        Self { colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    /// No colour at all.
    #[cfg(test)]
    pub(crate) fn plain() -> Self {
        Self { colour: false }
    }

    /// Whether the output is styled (a terminal).
    pub(crate) fn is_terminal(self) -> bool {
        self.colour
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub(crate) fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub(crate) fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn server_type(self, t: ServerType) -> String {
        match t {
            ServerType::RSPrimary | ServerType::Mongos | ServerType::Standalone => self.green(t.as_str()),
            ServerType::Unknown => self.red(t.as_str()),
            _ => t.as_str().to_owned(),
        }
    }
}

/// Milliseconds with up to one decimal ("3", "12.5").
pub(crate) fn ms(d: Duration) -> String {
    let tenths = d.as_micros() / 100;
    if tenths.is_multiple_of(10) {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

/// The topology as a table: one row per server with the columns a driver engineer checks.
pub(crate) fn topology_table(td: &TopologyDescription, style: Style) -> String {
    let mut out = String::new();
    let _ = write!(out, "{} {}", style.bold("topology:"), td.topology_type);
    if let Some(set) = &td.set_name {
        let _ = write!(out, "  set: {set}");
    }
    if let Some(v) = td.max_set_version {
        let _ = write!(out, "  setVersion: {v}");
    }
    if let Some(e) = &td.compatibility_error {
        let _ = write!(out, "  {}", style.red(e));
    }
    out.push('\n');
    let header = ["ADDRESS", "TYPE", "SET", "RTT avg/min ms", "TAGS", "STALENESS", "WIRE", "LAST ERROR"];
    let rows: Vec<[String; 8]> = td.servers.iter().map(|sd| server_row(td, sd)).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String], style_type: Option<ServerType>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            let shown = match (i, style_type) {
                (1, Some(t)) => style.server_type(t),
                (7, Some(_)) if !cell.is_empty() => style.red(cell),
                _ => cell.clone(),
            };
            if i + 1 == cells.len() {
                l.push_str(&shown);
            } else {
                let _ = write!(l, "{shown}{pad}  ");
            }
        }
        l.trim_end().to_owned()
    };
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    out.push_str(&style.bold(&line(&header, None)));
    out.push('\n');
    if rows.is_empty() {
        out.push_str(&style.dim("(no servers yet)"));
        out.push('\n');
    }
    for (row, sd) in rows.iter().zip(td.servers.iter()) {
        out.push_str(&line(row, Some(sd.server_type)));
        out.push('\n');
    }
    out
}

fn server_row(td: &TopologyDescription, sd: &ServerDescription) -> [String; 8] {
    let rtt = match (sd.round_trip_time, sd.min_round_trip_time) {
        (Some(avg), Some(min)) => format!("{}/{}", ms(avg), ms(min)),
        (Some(avg), None) => ms(avg),
        _ => "-".to_owned(),
    };
    let staleness = if sd.server_type == ServerType::RSSecondary {
        estimate_staleness(td, sd).map_or_else(|| "?".to_owned(), |s| format!("{} s", s.as_secs()))
    } else {
        "-".to_owned()
    };
    let wire = if sd.server_type == ServerType::Unknown {
        "-".to_owned()
    } else {
        format!("{}..{}", sd.min_wire_version, sd.max_wire_version)
    };
    let tags = if sd.tags.is_empty() { String::new() } else { sd.tags.to_string() };
    [
        sd.address.to_string(),
        sd.server_type.as_str().to_owned(),
        sd.set_name.as_deref().unwrap_or_default().to_owned(),
        rtt,
        tags,
        staleness,
        wire,
        sd.error.as_deref().unwrap_or_default().to_owned(),
    ]
}

/// The event's name as the SDAM monitoring spec spells it.
pub(crate) fn event_name(event: &Event) -> &'static str {
    match event {
        Event::TopologyOpening { .. } => "TopologyOpeningEvent",
        Event::TopologyDescriptionChanged { .. } => "TopologyDescriptionChangedEvent",
        Event::ServerOpening { .. } => "ServerOpeningEvent",
        Event::ServerDescriptionChanged { .. } => "ServerDescriptionChangedEvent",
        Event::ServerClosed { .. } => "ServerClosedEvent",
        Event::TopologyClosed { .. } => "TopologyClosedEvent",
        Event::ServerHeartbeatStarted { .. } => "ServerHeartbeatStartedEvent",
        Event::ServerHeartbeatSucceeded { .. } => "ServerHeartbeatSucceededEvent",
        Event::ServerHeartbeatFailed { .. } => "ServerHeartbeatFailedEvent",
        _ => "Event",
    }
}

/// Whether an event is a heartbeat (left out of the human log unless asked for).
pub(crate) fn is_heartbeat(event: &Event) -> bool {
    matches!(
        event,
        Event::ServerHeartbeatStarted { .. }
            | Event::ServerHeartbeatSucceeded { .. }
            | Event::ServerHeartbeatFailed { .. }
    )
}

/// One line describing an event for people.
pub(crate) fn event_line(event: &Event) -> String {
    match event {
        Event::TopologyOpening { .. } => "topology opening".to_owned(),
        Event::TopologyDescriptionChanged { previous, new, .. } => {
            let mut s = format!("topology {} -> {}", previous.topology_type, new.topology_type);
            if previous.servers.len() != new.servers.len() {
                let _ = write!(s, " ({} -> {} servers)", previous.servers.len(), new.servers.len());
            }
            s
        }
        Event::ServerOpening { address, .. } => format!("server {address} opening"),
        Event::ServerDescriptionChanged { address, previous, new, .. } => {
            let mut s = format!("server {address} {} -> {}", previous.server_type, new.server_type);
            if previous.tags != new.tags {
                let _ = write!(s, ", tags {}", new.tags);
            }
            if let Some(e) = &new.error {
                let _ = write!(s, " ({e})");
            }
            s
        }
        Event::ServerClosed { address, .. } => format!("server {address} closed"),
        Event::TopologyClosed { .. } => "topology closed".to_owned(),
        Event::ServerHeartbeatStarted { address, awaited, .. } => {
            format!("heartbeat started {address}{}", if *awaited { " (awaited)" } else { "" })
        }
        Event::ServerHeartbeatSucceeded { address, duration, .. } => {
            format!("heartbeat succeeded {address} in {} ms", ms(*duration))
        }
        Event::ServerHeartbeatFailed { address, failure, .. } => {
            format!("heartbeat failed {address}: {failure}")
        }
        other => format!("{other:?}"),
    }
}

fn server_json(sd: &ServerDescription) -> Value {
    json!({
        "address": sd.address.to_string(),
        "type": sd.server_type.as_str(),
        "setName": sd.set_name.as_deref(),
        "roundTripTimeMS": sd.round_trip_time.map(|d| d.as_secs_f64() * 1e3),
        "minRoundTripTimeMS": sd.min_round_trip_time.map(|d| d.as_secs_f64() * 1e3),
        "tags": sd.tags.iter().map(|(k, v)| (k.to_owned(), Value::from(v))).collect::<serde_json::Map<_, _>>(),
        "minWireVersion": sd.min_wire_version,
        "maxWireVersion": sd.max_wire_version,
        "setVersion": sd.set_version,
        "electionId": sd.election_id.map(|o| o.to_hex()),
        "primary": sd.primary.as_ref().map(ToString::to_string),
        "error": sd.error.as_deref(),
    })
}

fn topology_json(td: &TopologyDescription) -> Value {
    json!({
        "type": td.topology_type.as_str(),
        "setName": td.set_name.as_deref(),
        "maxSetVersion": td.max_set_version,
        "maxElectionId": td.max_election_id.map(|o| o.to_hex()),
        "compatibilityError": td.compatibility_error,
        "servers": td.servers.iter().map(|sd| server_json(sd)).collect::<Vec<_>>(),
    })
}

/// An event as one JSON object, with the time it was seen (milliseconds since the epoch).
pub(crate) fn event_json(event: &Event, unix_ms: u128) -> Value {
    let mut v = match event {
        Event::TopologyDescriptionChanged { previous, new, .. } => {
            json!({"previousDescription": topology_json(previous), "newDescription": topology_json(new)})
        }
        Event::ServerDescriptionChanged { address, previous, new, .. } => json!({
            "address": address.to_string(),
            "previousDescription": server_json(previous),
            "newDescription": server_json(new),
        }),
        Event::ServerOpening { address, .. } | Event::ServerClosed { address, .. } => {
            json!({"address": address.to_string()})
        }
        Event::ServerHeartbeatStarted { address, awaited, .. } => {
            json!({"address": address.to_string(), "awaited": awaited})
        }
        Event::ServerHeartbeatSucceeded { address, duration, awaited, .. } => {
            json!({"address": address.to_string(), "durationMS": duration.as_secs_f64() * 1e3, "awaited": awaited})
        }
        Event::ServerHeartbeatFailed { address, duration, failure, awaited, .. } => json!({
            "address": address.to_string(),
            "durationMS": duration.as_secs_f64() * 1e3,
            "failure": failure,
            "awaited": awaited,
        }),
        _ => json!({}),
    };
    v["event"] = Value::from(event_name(event));
    v["time"] = Value::from(u64::try_from(unix_ms).unwrap_or(u64::MAX));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdam::{ServerAddress, TopologyType};

    #[test]
    fn tables_list_every_server_with_aligned_columns() {
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetNoPrimary);
        td.set_name = Some("rs0".into());
        td.insert_server(ServerDescription::unknown(ServerAddress::parse("a:27017").unwrap()));
        let mut sd = ServerDescription::unknown(ServerAddress::parse("bb:27017").unwrap());
        sd.server_type = ServerType::RSSecondary;
        sd.round_trip_time = Some(Duration::from_micros(12_500));
        sd.min_round_trip_time = Some(Duration::from_millis(10));
        td.insert_server(sd);
        let table = topology_table(&td, Style::plain());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "topology: ReplicaSetNoPrimary  set: rs0");
        assert!(lines[1].starts_with("ADDRESS   TYPE"), "{table}");
        assert!(lines[2].starts_with("a:27017   Unknown"), "{table}");
        assert!(lines[3].contains("RSSecondary") && lines[3].contains("12.5/10"), "{table}");
        assert!(!table.contains('\x1b'), "no colour when plain");
    }

    /// Any instant: the topology built here is never driven.
    fn any_instant() -> std::time::Instant {
        std::time::Instant::now()
    }

    #[test]
    fn events_render_as_lines_and_json() {
        let address = ServerAddress::parse("a:27017").unwrap();
        let previous = std::sync::Arc::new(ServerDescription::unknown(address.clone()));
        let mut new = ServerDescription::unknown(address.clone());
        new.server_type = ServerType::RSPrimary;
        let event = Event::ServerDescriptionChanged {
            topology_id: sdam::Topology::new(
                sdam::TopologyConfig::with_seeds([address.clone()]),
                any_instant(),
            )
            .unwrap()
            .id(),
            address,
            previous,
            new: std::sync::Arc::new(new),
        };
        assert_eq!(event_line(&event), "server a:27017 Unknown -> RSPrimary");
        let v = event_json(&event, 5);
        assert_eq!(v["event"], "ServerDescriptionChangedEvent");
        assert_eq!(v["newDescription"]["type"], "RSPrimary");
        assert_eq!(v["time"], 5);
    }

    #[test]
    fn milliseconds_keep_one_decimal() {
        assert_eq!(ms(Duration::from_millis(3)), "3");
        assert_eq!(ms(Duration::from_micros(12_540)), "12.5");
    }
}
