//! `sdam select URI`: one server selection against a live deployment, with the core's
//! explanation of why each server was or was not eligible.

use std::process::ExitCode;
use std::time::Duration;

use sdam::selection::{explain, SelectionCriteria};
use sdam::{ReadPreference, ReadPreferenceMode, TagSet, TopologyConfig};
use sdam_tokio::{ClientEvent, ClientOptions};

use crate::connect::ConnectArgs;
use crate::drops::Drops;
use crate::render::{ms, Style};

/// Arguments of `sdam select`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How to reach the deployment.
    #[command(flatten)]
    connect: ConnectArgs,
    /// The read preference mode: primary, primaryPreferred, secondary, secondaryPreferred or
    /// nearest.
    #[arg(long, short = 'r', value_name = "MODE", value_parser = parse_mode, default_value = "primary")]
    read_preference: ReadPreferenceMode,
    /// A tag set, tried in the order given: `dc:ny,rack:1`; an empty string is the empty tag
    /// set `{}` that matches any server.
    #[arg(long = "tags", value_name = "TAGSET", value_parser = parse_tag_set)]
    tag_sets: Vec<TagSet>,
    /// maxStalenessSeconds (at least 90 against a replica set).
    #[arg(long, value_name = "SECONDS")]
    max_staleness: Option<i64>,
    /// localThresholdMS: the latency window's width (default from the URI, else 15).
    #[arg(long, value_name = "MS")]
    local_threshold: Option<u64>,
    /// Select for a write (the read preference options do not apply).
    #[arg(long, conflicts_with_all = ["read_preference", "tag_sets", "max_staleness"])]
    write: bool,
    /// serverSelectionTimeoutMS (default from the URI, else 30000).
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
}

fn parse_mode(s: &str) -> Result<ReadPreferenceMode, String> {
    s.parse().map_err(|e: sdam::UnknownName| e.to_string())
}

/// `dc:ny,rack:1` → `{dc: "ny", rack: "1"}`; `""` → `{}`.
fn parse_tag_set(s: &str) -> Result<TagSet, String> {
    let mut pairs = Vec::new();
    for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| format!("tag {pair:?} is not of the form key:value (e.g. dc:ny,rack:1)"))?;
        if k.trim().is_empty() {
            return Err(format!("tag {pair:?} has an empty key"));
        }
        pairs.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(TagSet(pairs))
}

impl Args {
    fn criteria(&self) -> Result<SelectionCriteria, String> {
        if self.write {
            return Ok(SelectionCriteria::write());
        }
        let rp = ReadPreference::new(self.read_preference)
            .with_tag_sets(self.tag_sets.clone())
            .and_then(|rp| rp.with_max_staleness_seconds(self.max_staleness))
            .map_err(|e| format!("invalid read preference: {e}"))?;
        Ok(SelectionCriteria::read(rp))
    }

    fn config(&self) -> Result<(TopologyConfig, ClientOptions), String> {
        let (mut config, options) = self.connect.client_parts()?;
        if let Some(ms) = self.local_threshold {
            config.local_threshold = Duration::from_millis(ms);
        }
        if let Some(ms) = self.timeout {
            config.server_selection_timeout = Duration::from_millis(ms);
        }
        Ok((config, options))
    }
}

/// Runs one selection; exit 0 with the chosen server, 1 with the explained error, 2 on bad
/// arguments.
pub(crate) async fn run(args: &Args, style: Style) -> ExitCode {
    let (criteria, (config, options)) = match args.criteria().and_then(|c| Ok((c, args.config()?))) {
        Ok(x) => x,
        Err(e) => return crate::fail(&e),
    };
    let expected_set = config.replica_set_name.clone();
    // Subscribed before monitoring starts: a seed dropped at its first check is seen.
    let (client, mut events) = match sdam_tokio::Client::with_subscription(config, options) {
        Ok(c) => c,
        Err(e) => return crate::fail(&format!("invalid configuration: {e}")),
    };
    let result = client.select_server(criteria.clone()).await;
    let code = match result {
        Ok(server) => {
            let td = client.description();
            let chosen = server.address().clone();
            let description = server.description();
            let rtt = description.round_trip_time.map_or_else(|| "-".to_owned(), |d| format!("{} ms", ms(d)));
            println!("{} {} ({}, {rtt})", style.green("selected:"), chosen, description.server_type);
            println!("{}", explain(&td, &criteria, Some(&chosen)));
            drop(server);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{} {e}", style.red("error:"));
            // Servers dropped because of what they said about themselves: the likely cause.
            let mut drops = Drops::new(expected_set.map(|s| s.to_string()));
            while let Some(event) = events.try_recv() {
                if let ClientEvent::Sdam(event) = event {
                    if let Some(why) = drops.observe(&event) {
                        eprintln!("{} {why}", style.bold("hint:"));
                    }
                }
            }
            ExitCode::FAILURE
        }
    };
    client.close().await;
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_sets_parse_and_explain_mistakes() {
        assert_eq!(
            parse_tag_set("dc:ny,rack:1").unwrap(),
            TagSet(vec![("dc".into(), "ny".into()), ("rack".into(), "1".into())])
        );
        assert_eq!(parse_tag_set("").unwrap(), TagSet(Vec::new()));
        assert!(parse_tag_set("dc=ny").unwrap_err().contains("key:value"));
        assert!(parse_tag_set(":ny").unwrap_err().contains("empty key"));
        assert!(parse_mode("secondary").is_ok());
        assert!(parse_mode("fastest").unwrap_err().contains("unknown read preference mode"));
    }
}
