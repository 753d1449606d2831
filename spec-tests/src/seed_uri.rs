//! Turns a spec test's `uri` into a topology configuration.

use sdam::{ServerAddress, TopologyConfig};

/// The topology configuration a test's connection string describes: its hosts and the SDAM
/// options (`replicaSet`, `directConnection`, `loadBalanced`, `heartbeatFrequencyMS`,
/// `localThresholdMS`).
pub(crate) fn config_from_uri(uri: &str) -> Result<TopologyConfig, String> {
    let rest = uri.strip_prefix("mongodb://").ok_or_else(|| format!("unsupported URI {uri:?}"))?;
    let (hosts, query) = match rest.split_once('?') {
        Some((h, q)) => (h.trim_end_matches('/'), q),
        None => (rest.trim_end_matches('/'), ""),
    };
    let seeds = hosts
        .split(',')
        .map(|h| ServerAddress::parse(h).map_err(|e| format!("bad host {h:?} in {uri:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = TopologyConfig::with_seeds(seeds);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("bad option {pair:?}"))?;
        let flag = || value.parse::<bool>().map_err(|_| format!("bad boolean {pair:?}"));
        let millis = || {
            value.parse::<u64>().map(std::time::Duration::from_millis).map_err(|_| format!("bad {pair:?}"))
        };
        match key.to_ascii_lowercase().as_str() {
            "replicaset" => config.replica_set_name = Some(value.to_owned()),
            "directconnection" => config.direct_connection = Some(flag()?),
            "loadbalanced" => config.load_balanced = flag()?,
            "heartbeatfrequencyms" => config.heartbeat_frequency = millis()?,
            "localthresholdms" => config.local_threshold = millis()?,
            _ => return Err(format!("option {key:?} is not supported by the SDAM runner")),
        }
    }
    Ok(config)
}
