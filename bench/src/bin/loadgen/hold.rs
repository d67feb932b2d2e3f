//! `--hold`: a load generator that one of several started together, so their connections are
//! all open at the same time. It reports on stdout and takes its cues from stdin:
//!
//! 1. after its warm-up connections it prints `{"ready":true}` and waits for a line on stdin
//!    (so every generator starts its measured connections at once, from one baseline);
//! 2. after the measured connections it prints its figures, as without `--hold`;
//! 3. it keeps every connection open (answering pings) until stdin is closed, then exits.

use std::io::{BufRead, Write};

use tokio::sync::mpsc;

use crate::conn::Result;

/// The runner's cues: each line of stdin, then `None` at its end.
pub struct Hold {
    rx: mpsc::UnboundedReceiver<Option<String>>,
}

impl Hold {
    /// Starts reading stdin (on a thread of its own: reading stdin blocks).
    pub fn start() -> Hold {
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    break;
                }
            }
            let _ = tx.send(None);
        });
        Hold { rx }
    }

    /// Prints `line` on stdout at once.
    pub fn say(&self, line: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))
    }

    /// Says it is ready and waits for the go (a line on stdin).
    pub async fn ready(&mut self) -> Result<()> {
        self.say(r#"{"ready":true}"#)?;
        match self.rx.recv().await {
            Some(Some(_)) => Ok(()),
            _ => Err("stdin closed before the go".into()),
        }
    }

    /// Waits until stdin is closed.
    pub async fn released(&mut self) {
        while let Some(Some(_)) = self.rx.recv().await {}
    }
}
