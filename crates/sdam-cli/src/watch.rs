//! `sdam watch URI`: the deployment as a driver sees it, live: one row per server, redrawn on
//! every change, and the SDAM event log underneath (or JSON lines with `--json`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use sdam::Event;
use sdam_tokio::{Client, ClientEvent, Subscription};

use crate::connect::ConnectArgs;
use crate::drops::Drops;

use crate::render::{
    event_line, is_heartbeat, json_line, topology_table, unix_ms, EventLine, NoteLine, Style,
};

/// Arguments of `sdam watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How to reach the deployment.
    #[command(flatten)]
    connect: ConnectArgs,
    /// How to show the deployment.
    #[command(flatten)]
    pub(crate) view: ViewArgs,
}

/// How `watch` (and `demo`) show the deployment.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ViewArgs {
    /// Print every event as one JSON object per line instead of the live table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also log heartbeat events (always included with --json).
    #[arg(long)]
    pub(crate) heartbeats: bool,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<f64>,
    /// How many recent events the live view keeps under the table.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub(crate) log_lines: usize,
}

/// Watches the deployment until Ctrl-C or `--duration`.
pub(crate) async fn run(args: &Args, style: Style) -> ExitCode {
    let (config, options) = match args.connect.client_parts() {
        Ok(parts) => parts,
        Err(e) => return crate::fail(&e),
    };
    // Subscribed before monitoring starts, so the log begins with TopologyOpening.
    let (client, events) = match Client::with_subscription(config, options) {
        Ok(c) => c,
        Err(e) => return crate::fail(&format!("invalid configuration: {e}")),
    };
    let title = format!("sdam watch {}", args.connect.uri);
    watch(&client, Some(events), &title, &args.view, style, None).await;
    client.close().await;
    ExitCode::SUCCESS
}

/// Shows `client`'s topology until Ctrl-C or the view's duration, with `notes` (what a demo
/// does to the deployment) logged among the events.
pub(crate) async fn watch(
    client: &Client,
    events: Option<Subscription>,
    title: &str,
    view: &ViewArgs,
    style: Style,
    mut notes: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
) {
    let mut events = events.unwrap_or_else(|| client.subscribe());
    let mut screen = Screen {
        title,
        view,
        style,
        log: VecDeque::new(),
        started: tokio::time::Instant::now(),
        drops: Drops::new(client.description().set_name.as_deref().map(str::to_owned)),
    };
    screen.show(client, None);
    let deadline = view.duration.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let until_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until_deadline);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(ClientEvent::Sdam(event)) => {
                    let closed = matches!(event, Event::TopologyClosed { .. });
                    screen.show(client, Some(&event));
                    if closed {
                        break;
                    }
                }
                Some(ClientEvent::Lagged { missed }) => {
                    screen.note(client, &format!("this view fell behind: {missed} events were dropped"));
                }
                Some(_) => {}
                None => break,
            },
            Some(note) = next_note(&mut notes) => screen.note(client, &note),
            () = &mut until_deadline => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
}

/// The next note, or never once there are none.
async fn next_note(notes: &mut Option<tokio::sync::mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match notes {
        Some(rx) => match rx.recv().await {
            Some(note) => Some(note),
            None => {
                *notes = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

struct Screen<'a> {
    title: &'a str,
    view: &'a ViewArgs,
    style: Style,
    log: VecDeque<String>,
    started: tokio::time::Instant,
    drops: Drops,
}

impl Screen<'_> {
    fn note(&mut self, client: &Client, note: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let line = format!("[{t:>8.3}s] {}", self.style.bold(&format!("** {note}")));
        if self.view.json {
            println!("{}", json_line(&NoteLine { event: "Note", note, time: unix_ms() }));
        } else if self.style.is_terminal() {
            self.log.push_back(line);
            self.show(client, None);
        } else {
            println!("{line}");
        }
    }

    /// A server dropped because of its own reply: said in the log, with the hint.
    fn dropped(&mut self, client: &Client, why: &str) {
        let t = self.started.elapsed().as_secs_f64();
        if self.view.json {
            println!("{}", json_line(&NoteLine { event: "ServerDropped", note: why, time: unix_ms() }));
        } else if self.style.is_terminal() {
            self.log.push_back(format!("[{t:>8.3}s] {}", self.style.red(why)));
            self.show(client, None);
        } else {
            println!("[{t:>8.3}s] {why}");
        }
    }

    fn show(&mut self, client: &Client, event: Option<&Event>) {
        if let Some(why) = event.and_then(|e| self.drops.observe(e)) {
            self.dropped(client, &why);
        }
        if self.view.json {
            if let Some(event) = event {
                println!("{}", json_line(&EventLine { event, time: unix_ms() }));
            }
            return;
        }
        let logged = event.filter(|e| self.view.heartbeats || !is_heartbeat(e));
        let line = logged.map(|e| {
            let t = self.started.elapsed().as_secs_f64();
            format!("[{t:>8.3}s] {}", event_line(e))
        });
        if self.style.is_terminal() {
            // The live view: redraw the table and the recent log on every event (heartbeats
            // too, so RTTs stay current).
            if let Some(line) = line {
                self.log.push_back(line);
                while self.log.len() > self.view.log_lines {
                    self.log.pop_front();
                }
            }
            let mut frame = String::from("\x1b[2J\x1b[H");
            let _ =
                writeln!(frame, "{}  {}", self.style.bold(self.title), self.style.dim("(Ctrl-C to stop)"));
            frame.push_str(&topology_table(&client.description(), self.style));
            let _ = writeln!(frame, "\n{}", self.style.bold("events:"));
            for l in &self.log {
                let _ = writeln!(frame, "{l}");
            }
            print!("{frame}");
        } else {
            // A plain log for pipes and files: each event, and the table when it changed.
            if let Some(line) = line {
                println!("{line}");
            }
            if event.is_none() || matches!(event, Some(Event::TopologyDescriptionChanged { .. })) {
                print!("{}", topology_table(&client.description(), self.style));
            }
        }
    }
}
