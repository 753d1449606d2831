//! hickory-resolver answers to the core's records, for `Command::ResolveSrv` /
//! `Command::ResolveTxt`. Only hickory's record and error types are used here: each adapter
//! runs the resolver on its own runtime and passes the result in.

use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};

use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use sdam::connection_string::srv::{SrvRecord, TxtRecord};

/// The resolver configuration for `options`: `None` (the system's) without name servers, else
/// those servers over UDP and TCP on their ports, in order, with no search domains.
pub fn resolver_config(options: &crate::DnsOptions) -> Option<ResolverConfig> {
    if options.name_servers.is_empty() {
        return None;
    }
    let servers = options
        .name_servers
        .iter()
        .map(|addr| {
            let connection = |mut c: ConnectionConfig| {
                c.port = addr.port();
                c
            };
            NameServerConfig::new(
                addr.ip(),
                true,
                vec![connection(ConnectionConfig::udp()), connection(ConnectionConfig::tcp())],
            )
        })
        .collect();
    Some(ResolverConfig::from_name_servers(servers))
}

/// An SRV answer as the core wants it. A name without records (NXDOMAIN or no SRV record) is
/// an empty answer: the core decides what that means (no seeds, or an unchanged host list).
pub fn srv_answer(name: &str, result: Result<Lookup, NetError>) -> Result<Vec<SrvRecord>, String> {
    let lookup = match result {
        Ok(lookup) => lookup,
        Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
        Err(e) => return Err(format!("the SRV lookup of {name} failed: {e}")),
    };
    Ok(lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(
                SrvRecord::new(srv.target.to_string(), srv.port)
                    .with_ttl(Duration::from_secs(u64::from(record.ttl))),
            ),
            _ => None, // CNAMEs and other records on the way
        })
        .collect())
}

/// A TXT answer as the core wants it: one [`TxtRecord`] per record, its character strings in
/// order. A name without TXT records (NXDOMAIN or no TXT record) is an empty answer, not a
/// failure (initial-dns-seedlist-discovery.md: TXT records are optional). A string that is not
/// UTF-8 fails the lookup.
pub fn txt_answer(name: &str, result: Result<Lookup, NetError>) -> Result<Vec<TxtRecord>, String> {
    let lookup = match result {
        Ok(lookup) => lookup,
        Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
        Err(e) => return Err(format!("the TXT lookup of {name} failed: {e}")),
    };
    let mut records = Vec::new();
    for record in lookup.answers() {
        let RData::TXT(txt) = &record.data else { continue };
        let mut strings = Vec::with_capacity(txt.txt_data.len());
        for bytes in txt.txt_data.iter() {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| format!("a TXT record of {name} is not valid UTF-8"))?;
            strings.push(text.to_owned());
        }
        records.push(TxtRecord::new(strings));
    }
    Ok(records)
}

/// The error of a lookup (`kind`: "SRV" or "TXT") that outlived the command's timeout.
pub fn timed_out(kind: &str, name: &str, timeout: Duration) -> String {
    format!("the {kind} lookup of {name} timed out after {} ms", timeout.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::{DnsError, NoRecords};
    use hickory_resolver::proto::op::{Query, ResponseCode};
    use hickory_resolver::proto::rr::rdata::{CNAME, SRV, TXT};
    use hickory_resolver::proto::rr::{Name, Record, RecordType};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn lookup(query: &str, kind: RecordType, answers: Vec<(u32, RData)>) -> Lookup {
        let records = answers.into_iter().map(|(ttl, data)| Record::from_rdata(name(query), ttl, data));
        Lookup::new_with_max_ttl(Query::query(name(query), kind), records)
    }

    fn no_records(query: &str, kind: RecordType, code: ResponseCode) -> NetError {
        NetError::from(DnsError::NoRecordsFound(NoRecords::new(Query::query(name(query), kind), code)))
    }

    #[test]
    fn srv_records_keep_target_port_and_ttl_and_skip_other_records() {
        let q = "_mongodb._tcp.cluster0.example.com.";
        let answer = lookup(
            q,
            RecordType::SRV,
            vec![
                (60, RData::CNAME(CNAME(name("alias.example.com.")))),
                (300, RData::SRV(SRV::new(0, 5, 27017, name("shard-00.example.com.")))),
                (120, RData::SRV(SRV::new(1, 5, 27018, name("shard-01.example.com.")))),
                (60, RData::TXT(TXT::new(vec!["a=b".into()]))),
            ],
        );
        let records = srv_answer(q, Ok(answer)).unwrap();
        assert_eq!(
            records,
            vec![
                SrvRecord::new("shard-00.example.com.", 27017).with_ttl(Duration::from_secs(300)),
                SrvRecord::new("shard-01.example.com.", 27018).with_ttl(Duration::from_secs(120)),
            ]
        );
    }

    #[test]
    fn missing_names_are_empty_answers_and_other_errors_are_failures() {
        let q = "_mongodb._tcp.nowhere.example.com.";
        for code in [ResponseCode::NXDomain, ResponseCode::NoError] {
            assert_eq!(srv_answer(q, Err(no_records(q, RecordType::SRV, code))), Ok(vec![]));
            assert_eq!(txt_answer(q, Err(no_records(q, RecordType::TXT, code))), Ok(vec![]));
        }
        let refused = NetError::from(DnsError::ResponseCode(ResponseCode::Refused));
        let e = srv_answer(q, Err(refused.clone())).unwrap_err();
        assert!(e.starts_with("the SRV lookup of _mongodb._tcp.nowhere.example.com. failed"), "{e}");
        assert!(txt_answer(q, Err(refused)).unwrap_err().contains("TXT lookup"));
    }

    #[test]
    fn txt_records_keep_their_strings_in_order() {
        let q = "cluster0.example.com.";
        let answer = lookup(
            q,
            RecordType::TXT,
            vec![
                (60, RData::TXT(TXT::new(vec!["replicaSet=rs0&".into(), "authSource=admin".into()]))),
                (60, RData::TXT(TXT::new(vec!["loadBalanced=false".into()]))),
            ],
        );
        let records = txt_answer(q, Ok(answer)).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].text(), "replicaSet=rs0&authSource=admin");
        assert_eq!(records[0].strings.len(), 2);
        assert_eq!(records[1], TxtRecord::new(["loadBalanced=false"]));
    }

    #[test]
    fn txt_records_that_are_not_utf8_are_refused() {
        let q = "cluster0.example.com.";
        let txt = TXT::from_bytes(vec![&[0xff, 0xfe]]);
        let answer = lookup(q, RecordType::TXT, vec![(60, RData::TXT(txt))]);
        assert_eq!(
            txt_answer(q, Ok(answer)),
            Err("a TXT record of cluster0.example.com. is not valid UTF-8".to_owned())
        );
    }

    #[test]
    fn timeouts_name_the_lookup() {
        assert_eq!(
            timed_out("SRV", "x.example.com", Duration::from_millis(1500)),
            "the SRV lookup of x.example.com timed out after 1500 ms"
        );
    }
}
