//! `sdam demo`: `watch` against an in-process scripted replica set while a storyline runs on
//! it (primary killed, election, rejoin, tag change, reconfig), so the tool shows something
//! real on a machine with no MongoDB server.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sdam::TopologyConfig;
use sdam_testserver::{Cluster, MemberSpec, ReplicaSet, Role};
use sdam_tokio::Client;

use crate::render::Style;
use crate::watch::{watch, ViewArgs};

/// Arguments of `sdam demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How to show the deployment.
    #[command(flatten)]
    view: ViewArgs,
    /// Seconds between the storyline's steps.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    step: f64,
}

/// One step of the storyline: what it does, said before it is done.
type Step = (&'static str, fn(&Cluster) -> Result<String, sdam_testserver::ClusterError>);

fn storyline() -> Vec<Step> {
    vec![
        ("kill the primary", |c| c.crash(0).map(|()| format!("killed the primary {}", address(c, 0)))),
        ("elect a new primary", |c| c.elect(1).map(|()| format!("{} won the election", address(c, 1)))),
        ("restart the old primary", |c| {
            c.restart(0).map(|()| format!("restarted {} on the same port", address(c, 0)))
        }),
        ("retag a secondary", |c| {
            c.set_tags(2, [("dc", "la")]).map(|()| format!("{} is now tagged {{dc: la}}", address(c, 2)))
        }),
        ("add a member", |c| {
            c.add_member(MemberSpec::new(Role::Secondary).tags([("dc", "ny")]))
                .map(|i| format!("reconfig: added {}", address(c, i)))
        }),
        ("slow a member down", |c| {
            c.set_latency(2, Duration::from_millis(40))
                .map(|()| format!("{} now answers in 40 ms", address(c, 2)))
        }),
        ("remove a member", |c| c.remove_member(3).map(|()| "reconfig: removed the added member".to_owned())),
    ]
}

fn address(cluster: &Cluster, index: usize) -> String {
    cluster.address(index).map_or_else(|_| format!("member {index}"), |a| a.to_string())
}

/// Starts the scripted set, the storyline and `watch`.
pub(crate) async fn run(args: &Args, style: Style) -> ExitCode {
    let cluster = match ReplicaSet::builder("demo")
        .member(MemberSpec::new(Role::Primary).tags([("dc", "ny")]).latency(Duration::from_millis(2)))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "ny")]).latency(Duration::from_millis(5)))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "sf")]).latency(Duration::from_millis(9)))
        .start()
    {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: cannot start the scripted replica set: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Discovery from one seed, as a driver does it.
    let seed = match cluster.address(0) {
        Ok(a) => a,
        Err(e) => return crate::fail(&e.to_string()),
    };
    let mut config = TopologyConfig::with_seeds([seed.clone()]);
    config.replica_set_name = Some("demo".to_owned());
    config.heartbeat_frequency = Duration::from_millis(500);
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => return crate::fail(&format!("invalid configuration: {e}")),
    };
    let (notes, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = notes.send(format!(
        "scripted replica set \"demo\" on {}; the client was given only {seed}",
        cluster.addresses().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let story = {
        let (cluster, stop, step) = (Arc::clone(&cluster), Arc::clone(&stop), args.step.max(0.1));
        std::thread::spawn(move || {
            for (what, action) in storyline() {
                if !sleep_unless_stopped(Duration::from_secs_f64(step), &stop) {
                    return;
                }
                let note = action(&cluster).unwrap_or_else(|e| format!("could not {what}: {e}"));
                if notes.send(note).is_err() {
                    return;
                }
            }
            let _ = notes.send("storyline over; still watching (Ctrl-C to stop)".to_owned());
        })
    };
    watch(&client, None, "sdam demo", &args.view, style, Some(rx)).await;
    stop.store(true, Ordering::Relaxed);
    client.close().await;
    let _ = story.join();
    cluster.shutdown();
    ExitCode::SUCCESS
}

/// Sleeps `total` in small steps; `false` if asked to stop meanwhile.
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) -> bool {
    let tick = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(tick);
        slept += tick;
    }
    !stop.load(Ordering::Relaxed)
}
