//! A simulated DNS zone: the SRV and TXT records a `mongodb+srv` topology looks up with
//! `Command::ResolveSrv` / `Command::ResolveTxt`, answered by [`Sim`](crate::Sim) in virtual
//! time after the zone's latency. Records can change, lookups can fail or go unanswered at any
//! moment of a scenario, and every lookup the core sent is logged.

use std::collections::BTreeMap;
use std::time::Duration;

use sdam::connection_string::srv::{SrvRecord, TxtRecord};
use sdam::{Input, RequestId};

use crate::{Delivery, Sim, DNS_CONNECTION};

/// The record type of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsQuery {
    /// SRV records.
    Srv,
    /// TXT records.
    Txt,
}

/// One lookup the core asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsLookup {
    /// Virtual time at which the core sent it.
    pub at: Duration,
    /// The record type.
    pub query: DnsQuery,
    /// The name looked up.
    pub name: String,
    /// The timeout the core gave it.
    pub timeout: Duration,
}

/// How the zone answers right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DnsHealth {
    /// Lookups are answered from the records.
    #[default]
    Answering,
    /// Every lookup fails with this error (e.g. `SERVFAIL`), after the zone's latency.
    Failing(String),
    /// No lookup is ever answered: the resolver's timeout (the command's) runs out.
    Unresponsive,
}

/// The simulated zone.
#[derive(Debug, Clone, Default)]
pub struct DnsZone {
    srv: BTreeMap<String, Vec<SrvRecord>>,
    txt: BTreeMap<String, Vec<TxtRecord>>,
    latency: Duration,
    health: DnsHealth,
    lookups: Vec<DnsLookup>,
}

/// DNS names compare without case and without the root's trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsZone {
    /// An empty zone that answers at once. A name with no SRV entry answers NXDOMAIN; a name
    /// with no TXT entry has no TXT records (an empty answer).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long every lookup takes.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Adds one SRV record for `name` (with a TTL, if given).
    #[must_use]
    pub fn with_srv(mut self, name: &str, target: &str, port: u16, ttl: Option<Duration>) -> Self {
        self.add_srv(name, target, port, ttl);
        self
    }

    /// Adds one TXT record (its character strings) for `name`.
    #[must_use]
    pub fn with_txt(mut self, name: &str, strings: &[&str]) -> Self {
        self.txt.entry(key(name)).or_default().push(TxtRecord::new(strings.iter().copied()));
        self
    }

    /// Adds one SRV record for `name`.
    pub fn add_srv(&mut self, name: &str, target: &str, port: u16, ttl: Option<Duration>) {
        let record = SrvRecord { target: target.into(), port, ttl };
        self.srv.entry(key(name)).or_default().push(record);
    }

    /// Removes the SRV records of `name` with this target and port; the name stays (with
    /// possibly no record left: an empty answer, not NXDOMAIN).
    pub fn remove_srv(&mut self, name: &str, target: &str, port: u16) {
        if let Some(records) = self.srv.get_mut(&key(name)) {
            records.retain(|r| !(key(&r.target) == key(target) && r.port == port));
        }
    }

    /// Replaces every SRV record of `name`.
    pub fn set_srv(&mut self, name: &str, records: Vec<SrvRecord>) {
        self.srv.insert(key(name), records);
    }

    /// Removes the name from the zone: its SRV lookups answer NXDOMAIN.
    pub fn remove_name(&mut self, name: &str) {
        self.srv.remove(&key(name));
        self.txt.remove(&key(name));
    }

    /// Changes how long every lookup sent from now on takes.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// Changes how lookups sent from now on are answered.
    pub fn set_health(&mut self, health: DnsHealth) {
        self.health = health;
    }

    /// How lookups are answered now.
    pub fn health(&self) -> &DnsHealth {
        &self.health
    }

    /// The lookup latency.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Every lookup the core sent, in order.
    pub fn lookups(&self) -> &[DnsLookup] {
        &self.lookups
    }

    /// The virtual times at which SRV lookups were sent.
    pub fn srv_lookup_times(&self) -> Vec<Duration> {
        self.lookups.iter().filter(|l| l.query == DnsQuery::Srv).map(|l| l.at).collect()
    }

    pub(crate) fn log(&mut self, lookup: DnsLookup) {
        self.lookups.push(lookup);
    }

    /// The current SRV answer for `name`.
    pub(crate) fn answer_srv(&self, name: &str) -> Result<Vec<SrvRecord>, String> {
        self.check_health()?;
        self.srv.get(&key(name)).cloned().ok_or_else(|| format!("{name}: no such name (NXDOMAIN)"))
    }

    /// The current TXT answer for `name`.
    pub(crate) fn answer_txt(&self, name: &str) -> Result<Vec<TxtRecord>, String> {
        self.check_health()?;
        Ok(self.txt.get(&key(name)).cloned().unwrap_or_default())
    }

    fn check_health(&self) -> Result<(), String> {
        match &self.health {
            DnsHealth::Failing(error) => Err(error.clone()),
            DnsHealth::Answering | DnsHealth::Unresponsive => Ok(()),
        }
    }
}

/// An answer on its way to the client.
#[derive(Debug, Clone)]
pub(crate) enum DnsAnswer {
    Srv(Result<Vec<SrvRecord>, String>),
    Txt(Result<Vec<TxtRecord>, String>),
}

impl Sim {
    /// Carries out a `ResolveSrv` / `ResolveTxt`: the zone answers after its latency, or the
    /// lookup fails at its timeout if the latency is longer; an unresponsive zone never
    /// answers (the core gives up by itself).
    pub(crate) fn resolve(&mut self, request: RequestId, query: DnsQuery, name: String, timeout: Duration) {
        let at = self.elapsed();
        let answer = match query {
            DnsQuery::Srv => DnsAnswer::Srv(self.dns.answer_srv(&name)),
            DnsQuery::Txt => DnsAnswer::Txt(self.dns.answer_txt(&name)),
        };
        let unresponsive = self.dns.health == DnsHealth::Unresponsive;
        let latency = self.dns.latency;
        self.dns.log(DnsLookup { at, query, name: name.clone(), timeout });
        if unresponsive {
            return;
        }
        let (delay, answer) = if latency > timeout {
            let error = format!("{name}: DNS timeout after {} ms", timeout.as_millis());
            let answer = match query {
                DnsQuery::Srv => DnsAnswer::Srv(Err(error)),
                DnsQuery::Txt => DnsAnswer::Txt(Err(error)),
            };
            (timeout, answer)
        } else {
            (latency, answer)
        };
        self.schedule(self.now + delay, DNS_CONNECTION, Delivery::Dns { request, answer });
    }

    /// Hands a DNS answer to the topology.
    pub(crate) fn deliver_dns(&mut self, request: RequestId, answer: DnsAnswer) {
        let input = match &answer {
            DnsAnswer::Srv(result) => {
                Input::SrvResolved { request, result: result.as_deref().map_err(Clone::clone) }
            }
            DnsAnswer::Txt(result) => {
                Input::TxtResolved { request, result: result.as_deref().map_err(Clone::clone) }
            }
        };
        self.topology.handle(input, self.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_name_without_case_or_trailing_dot() {
        let mut zone = DnsZone::new()
            .with_srv("_mongodb._tcp.Test1.example.com.", "a.example.com.", 27017, None)
            .with_txt("test1.example.com", &["replicaSet=rs"]);
        assert_eq!(zone.answer_srv("_mongodb._tcp.test1.example.com").unwrap().len(), 1);
        assert_eq!(zone.answer_txt("TEST1.example.com.").unwrap()[0].text(), "replicaSet=rs");
        assert!(zone.answer_txt("other.example.com").unwrap().is_empty(), "no TXT is an empty answer");
        assert!(zone.answer_srv("_mongodb._tcp.other.example.com").unwrap_err().contains("NXDOMAIN"));
        zone.remove_srv("_mongodb._tcp.test1.example.com", "A.example.com", 27017);
        assert_eq!(zone.answer_srv("_mongodb._tcp.test1.example.com"), Ok(Vec::new()));
        zone.set_health(DnsHealth::Failing("SERVFAIL".into()));
        assert_eq!(zone.answer_txt("test1.example.com"), Err("SERVFAIL".into()));
    }
}
