// SPDX-License-Identifier: GPL-2.0

//! Progress of long operations, on stderr and only when stderr is a terminal (so scripts
//! and CI logs stay clean).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress line, redrawn at most ten times a second.
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    last: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// Starts reporting `label` out of `total` units.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        Self {
            label: label.into(),
            total,
            done: 0,
            last: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Records `n` more units done.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        self.draw();
    }

    fn draw(&self) {
        let pct = (self.done * 100).checked_div(self.total).unwrap_or(100);
        let _ = write!(
            std::io::stderr(),
            "\r{}: {}/{} ({pct}%)\x1b[K",
            self.label,
            self.done,
            self.total
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.enabled && self.last.is_some() {
            self.draw();
            let _ = writeln!(std::io::stderr());
        }
    }
}
