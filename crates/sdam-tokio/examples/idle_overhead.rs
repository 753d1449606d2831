//! The monitoring overhead of an idle tokio client: CPU time and wakeups per idle minute,
//! for a 3-member replica set and for 100 mongoses (default 10 s heartbeat, streaming).
//!
//! `cargo run --release -p sdam-tokio --example idle_overhead -- [SECONDS]` (default 60).
//!
//! The scripted servers run in a child process (this example started again with `serve`), so
//! the CPU time and context switches measured are the client's alone: time on CPU of its threads from
//! `/proc/self/task/*/schedstat`, voluntary context switches (a thread going to sleep, i.e. one wakeup
//! each) from `/proc/self/status`, and the driver task's own wakeups from the adapter.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use sdam::{ConnectionString, ServerType, TopologyConfig};
use sdam_testserver::{MemberSpec, Mongos, ReplicaSet, Role};
use sdam_tokio::Client;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve(args.get(1).map_or("rs", String::as_str));
    }
    let seconds: u64 = args.first().map_or(Ok(60), |s| s.parse()).map_err(|e| format!("SECONDS: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    for (what, deployment) in [("3-member replica set", "rs"), ("100 mongoses", "mongos")] {
        let figures = runtime.block_on(measure(deployment, Duration::from_secs(seconds)))?;
        println!("{what}: {figures}");
    }
    Ok(())
}

/// Child process: start the deployment, print its URI, serve until stdin closes.
fn serve(deployment: &str) -> Result<(), Error> {
    let cluster = if deployment == "mongos" {
        (0..100).fold(Mongos::builder(), |b, _| b.member(MemberSpec::new(Role::Mongos))).start()?
    } else {
        ReplicaSet::builder("rs0")
            .member(MemberSpec::new(Role::Primary))
            .member(MemberSpec::new(Role::Secondary))
            .member(MemberSpec::new(Role::Secondary))
            .start()?
    };
    println!("{}", cluster.uri());
    std::io::stdout().flush()?;
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    cluster.shutdown();
    Ok(())
}

/// Time on CPU of every thread of this process, in nanoseconds (`/proc/self/task/*/schedstat`,
/// first field), far finer than the 10 ms ticks of `/proc/self/stat`.
fn cpu_time() -> Result<Duration, Error> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task")? {
        let schedstat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        total += schedstat.split_whitespace().next().ok_or("empty schedstat")?.parse::<u64>()?;
    }
    Ok(Duration::from_nanos(total))
}

/// Voluntary context switches of every thread of this process.
fn context_switches() -> Result<u64, Error> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let status = std::fs::read_to_string(task?.path().join("status"))?;
        for line in status.lines() {
            if let Some(n) = line.strip_prefix("voluntary_ctxt_switches:") {
                total += n.trim().parse::<u64>()?;
            }
        }
    }
    Ok(total)
}

async fn measure(deployment: &str, window: Duration) -> Result<String, Error> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", deployment])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut uri = String::new();
    BufReader::new(child.stdout.take().ok_or("no child stdout")?).read_line(&mut uri)?;
    let cs = ConnectionString::parse(uri.trim())?;
    let config = TopologyConfig::from_connection_string(&cs); // default 10 s heartbeat, streaming
    let n = config.seeds.len();
    let client = Client::new(config)?;
    // Wait until every server is known, then one heartbeat more so the RTT connections are open
    // and the streams have settled.
    while client.description().servers.iter().filter(|s| s.server_type != ServerType::Unknown).count() < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (cpu0, switches0, stats0) = (cpu_time()?, context_switches()?, client.driver_stats());
    tokio::time::sleep(window).await;
    let (cpu1, switches1, stats1) = (cpu_time()?, context_switches()?, client.driver_stats());
    client.close().await;
    drop(child.stdin.take());
    let _ = child.wait();
    let per_minute = |x: f64| x * 60.0 / window.as_secs_f64();
    Ok(format!(
        "{:.2} ms CPU, {:.0} thread wakeups (voluntary context switches), {:.0} driver-task wakeups, {:.0} hellos per idle minute",
        per_minute((cpu1 - cpu0).as_secs_f64() * 1e3),
        per_minute((switches1 - switches0) as f64),
        per_minute((stats1.wakeups - stats0.wakeups) as f64),
        per_minute((stats1.hellos_sent - stats0.hellos_sent) as f64),
    ))
}
