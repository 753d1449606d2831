//! DNS lookups for `mongodb+srv` (`Command::ResolveSrv` / `Command::ResolveTxt`): hickory's
//! resolver on a current-thread tokio runtime in one dedicated thread, each lookup bounded by
//! the command's timeout.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use sdam::connection_string::srv::{SrvRecord, TxtRecord};
use sdam::{Input, RequestId};
use sdam_adapter::dns::{resolver_config, srv_answer, timed_out, txt_answer};
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
    pub(crate) fn start(shared: Arc<Shared>, options: sdam_adapter::DnsOptions) -> Self {
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
                    let resolver = match resolver_config(&options) {
                        Some(config) => {
                            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                                .build()
                                .map_err(|e| format!("name servers {:?}: {e}", options.name_servers))
                        }
                        None => {
                            TokioResolver::builder_tokio().and_then(|b| b.build()).map_err(|e| e.to_string())
                        }
                    };
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
                Ok(r) => Answer::Srv(srv_answer(name, r)),
                Err(_) => Answer::Srv(Err(timed_out("SRV", name, *timeout))),
            }
        }
        Lookup::Txt { name, timeout, .. } => {
            match tokio::time::timeout(*timeout, resolver.txt_lookup(name.as_str())).await {
                Ok(r) => Answer::Txt(txt_answer(name, r)),
                Err(_) => Answer::Txt(Err(timed_out("TXT", name, *timeout))),
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
