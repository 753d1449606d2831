//! DNS lookups for `mongodb+srv` (`Command::ResolveSrv` / `Command::ResolveTxt`): hickory's
//! resolver on a current-thread tokio runtime in one dedicated thread, each lookup bounded by
//! the command's timeout.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_resolver::proto::rr::{RData, Record};
use hickory_resolver::TokioResolver;
use sdam::connection_string::srv::{SrvRecord, TxtRecord};
use sdam::{Input, RequestId};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::shared::Shared;

/// A lookup for the DNS thread.
#[derive(Debug)]
enum Lookup {
    Srv { request: RequestId, name: String, timeout: Duration },
    Txt { request: RequestId, name: String, timeout: Duration },
}

/// The DNS thread.
#[derive(Debug)]
pub(crate) struct Dns {
    jobs: Option<UnboundedSender<Lookup>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Dns {
    /// Starts the thread (lookups fail with an explanation if it cannot start).
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (tx, mut rx) = unbounded_channel::<Lookup>();
        let answers = Arc::clone(&shared);
        let thread = shared
            .spawn("sdam-dns".to_owned(), move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        return fail_all(&answers, &mut rx, &format!("cannot start the DNS runtime: {e}"))
                    }
                };
                runtime.block_on(async move {
                    let resolver =
                        TokioResolver::builder_tokio().and_then(|b| b.build()).map_err(|e| e.to_string());
                    let resolver = Arc::new(resolver);
                    let mut tasks = tokio::task::JoinSet::new();
                    while let Some(job) = rx.recv().await {
                        tasks.spawn(lookup(Arc::clone(&answers), Arc::clone(&resolver), job));
                    }
                    // The client is closing: abandon lookups in flight.
                    tasks.abort_all();
                });
            })
            .ok();
        Self { jobs: Some(tx), thread, shared }
    }

    pub(crate) fn resolve_srv(&self, request: RequestId, name: String, timeout: Duration) {
        self.submit(Lookup::Srv { request, name, timeout });
    }

    pub(crate) fn resolve_txt(&self, request: RequestId, name: String, timeout: Duration) {
        self.submit(Lookup::Txt { request, name, timeout });
    }

    fn submit(&self, job: Lookup) {
        let request = job_request(&job);
        let job = match (&self.thread, &self.jobs) {
            (Some(_), Some(tx)) => match tx.send(job) {
                Ok(()) => return,
                Err(returned) => returned.0,
            },
            _ => job,
        };
        answer(&self.shared, request, &job, Err("the DNS thread is not running".to_owned()));
    }

    /// Stops the thread, abandoning lookups in flight, and joins it.
    pub(crate) fn stop(mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn fail_all(shared: &Shared, rx: &mut tokio::sync::mpsc::UnboundedReceiver<Lookup>, error: &str) {
    while let Some(job) = rx.blocking_recv() {
        answer(shared, job_request(&job), &job, Err(error.to_owned()));
    }
}

fn job_request(job: &Lookup) -> RequestId {
    match job {
        Lookup::Srv { request, .. } | Lookup::Txt { request, .. } => *request,
    }
}

async fn lookup(shared: Arc<Shared>, resolver: Arc<Result<TokioResolver, String>>, job: Lookup) {
    let request = job_request(&job);
    let resolver = match resolver.as_ref() {
        Ok(r) => r,
        Err(e) => {
            let name = match &job {
                Lookup::Srv { name, .. } | Lookup::Txt { name, .. } => name,
            };
            return answer(
                &shared,
                request,
                &job,
                Err(format!("cannot look up {name}: no DNS resolver: {e}")),
            );
        }
    };
    let result = match &job {
        Lookup::Srv { name, timeout, .. } => {
            match tokio::time::timeout(*timeout, resolver.srv_lookup(name.as_str())).await {
                Ok(r) => Answer::Srv(srv_answer(
                    name,
                    r.map(|l| l.answers().to_vec()).map_err(|e| (e.is_no_records_found(), e.to_string())),
                )),
                Err(_) => Answer::Srv(Err(timed_out(name, *timeout))),
            }
        }
        Lookup::Txt { name, timeout, .. } => {
            match tokio::time::timeout(*timeout, resolver.txt_lookup(name.as_str())).await {
                Ok(r) => Answer::Txt(txt_answer(
                    name,
                    r.map(|l| l.answers().to_vec()).map_err(|e| (e.is_no_records_found(), e.to_string())),
                )),
                Err(_) => Answer::Txt(Err(timed_out(name, *timeout))),
            }
        }
    };
    match result {
        Answer::Srv(r) => {
            shared.handle(Input::SrvResolved { request, result: r.as_deref().map_err(Clone::clone) });
        }
        Answer::Txt(r) => {
            shared.handle(Input::TxtResolved { request, result: r.as_deref().map_err(Clone::clone) });
        }
    }
}

enum Answer {
    Srv(Result<Vec<SrvRecord>, String>),
    Txt(Result<Vec<TxtRecord>, String>),
}

/// Reports a failed lookup of either kind.
fn answer(shared: &Shared, request: RequestId, job: &Lookup, result: Result<(), String>) {
    let error = result.err().unwrap_or_default();
    match job {
        Lookup::Srv { .. } => shared.handle(Input::SrvResolved { request, result: Err(error) }),
        Lookup::Txt { .. } => shared.handle(Input::TxtResolved { request, result: Err(error) }),
    }
}

fn timed_out(name: &str, timeout: Duration) -> String {
    format!("DNS lookup of {name} timed out after {} ms", timeout.as_millis())
}

/// The SRV records of an answer (empty when the name has none: what that means is the
/// core's decision).
pub(crate) fn srv_answer(
    name: &str,
    answer: Result<Vec<Record>, (bool, String)>,
) -> Result<Vec<SrvRecord>, String> {
    match answer {
        Ok(records) => Ok(records
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(
                    SrvRecord::new(srv.target.to_string(), srv.port)
                        .with_ttl(Duration::from_secs(u64::from(r.ttl))),
                ),
                _ => None,
            })
            .collect()),
        Err((true, _)) => Ok(Vec::new()),
        Err((false, e)) => Err(format!("SRV lookup of {name} failed: {e}")),
    }
}

/// The TXT records of an answer; a name without TXT records is an empty answer.
pub(crate) fn txt_answer(
    name: &str,
    answer: Result<Vec<Record>, (bool, String)>,
) -> Result<Vec<TxtRecord>, String> {
    match answer {
        Ok(records) => Ok(records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => {
                    Some(TxtRecord::new(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned())))
                }
                _ => None,
            })
            .collect()),
        Err((true, _)) => Ok(Vec::new()),
        Err((false, e)) => Err(format!("TXT lookup of {name} failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{SRV, TXT};
    use hickory_resolver::proto::rr::Name;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn srv(target: &str, port: u16, ttl: u32) -> Record {
        Record::from_rdata(
            name("_mongodb._tcp.test.build.10gen.cc."),
            ttl,
            RData::SRV(SRV::new(0, 5, port, name(target))),
        )
    }

    fn txt(strings: &[&str]) -> Record {
        let strings = strings.iter().map(|s| (*s).to_owned()).collect();
        Record::from_rdata(name("test.build.10gen.cc."), 60, RData::TXT(TXT::new(strings)))
    }

    #[test]
    fn srv_records_keep_target_port_and_ttl() {
        let answer = vec![
            srv("localhost.test.build.10gen.cc.", 27017, 60),
            srv("other.test.build.10gen.cc.", 27018, 300),
        ];
        let records = srv_answer("_mongodb._tcp.test.build.10gen.cc", Ok(answer)).unwrap();
        assert_eq!(
            records,
            vec![
                SrvRecord::new("localhost.test.build.10gen.cc.", 27017).with_ttl(Duration::from_secs(60)),
                SrvRecord::new("other.test.build.10gen.cc.", 27018).with_ttl(Duration::from_secs(300)),
            ]
        );
    }

    #[test]
    fn srv_without_records_is_an_empty_answer_and_errors_are_explained() {
        assert_eq!(
            srv_answer("_mongodb._tcp.x.example.com", Err((true, "no records".into()))),
            Ok(Vec::new())
        );
        // Records of other types in the answer are ignored.
        assert_eq!(srv_answer("_mongodb._tcp.x.example.com", Ok(vec![txt(&["a=b"])])), Ok(Vec::new()));
        let err =
            srv_answer("_mongodb._tcp.x.example.com", Err((false, "connection refused".into()))).unwrap_err();
        assert_eq!(err, "SRV lookup of _mongodb._tcp.x.example.com failed: connection refused");
    }

    #[test]
    fn txt_records_join_their_strings_and_absent_is_empty() {
        let records =
            txt_answer("x.example.com", Ok(vec![txt(&["replicaSet=rs0&", "authSource=admin"])])).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].text(), "replicaSet=rs0&authSource=admin");
        assert_eq!(txt_answer("x.example.com", Err((true, "none".into()))).unwrap(), Vec::new());
        let err = txt_answer("x.example.com", Err((false, "servfail".into()))).unwrap_err();
        assert_eq!(err, "TXT lookup of x.example.com failed: servfail");
    }

    #[test]
    fn timeouts_name_the_lookup() {
        assert_eq!(
            timed_out("x.example.com", Duration::from_millis(1500)),
            "DNS lookup of x.example.com timed out after 1500 ms"
        );
    }
}
