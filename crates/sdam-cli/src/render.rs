//! How the tool prints topologies, events and explanations: aligned tables for people,
//! JSON objects for scripts, colour only when the output is a terminal.

use std::fmt::Write as _;
use std::time::Duration;

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

/// Whether an event is a heartbeat (left out of the human log unless asked for).
pub(crate) fn is_heartbeat(event: &Event) -> bool {
    matches!(
        event,
        Event::ServerHeartbeatStarted { .. }
            | Event::ServerHeartbeatSucceeded { .. }
            | Event::ServerHeartbeatFailed { .. }
    )
}

/// One line describing an event for people: the core's `Display`, which names the fields
/// that changed (`server a:27017 changed: topologyVersion 3 -> 4, tags {dc:ny} -> {dc:sf}`).
pub(crate) fn event_line(event: &Event) -> String {
    event.to_string()
}

/// One JSON line of `--json`: the event as the core serializes it (feature `serde`: the
/// spec's camelCase names, durations in milliseconds, addresses as strings), with the time it
/// was seen (milliseconds since the epoch).
#[derive(serde::Serialize)]
pub(crate) struct EventLine<'a> {
    #[serde(flatten)]
    pub(crate) event: &'a Event,
    pub(crate) time: u64,
}

/// A note of `demo` (what the storyline did) as a JSON line.
#[derive(serde::Serialize)]
pub(crate) struct NoteLine<'a> {
    pub(crate) event: &'static str,
    pub(crate) note: &'a str,
    pub(crate) time: u64,
}

/// Milliseconds since the epoch, now.
pub(crate) fn unix_ms() -> u64 {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// One value as a line of JSON.
pub(crate) fn json_line(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize: {e}\"}}"))
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
        // A known server with wire versions this crate supports (a hand-built description is
        // checked for compatibility like any other).
        sd.max_wire_version = 21;
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
        assert_eq!(event_line(&event), "server a:27017 changed: type Unknown -> RSPrimary");
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&EventLine { event: &event, time: 5 })).unwrap();
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
