//! Where one command's time went, for `-v`: its phases in the order they ended, each with its
//! wall time, and what the index clients fetched and took from their caches.
//!
//! The phases are contiguous from the start of `main`: each [`Timeline::mark`] ends the interval
//! since the previous one, so together they add up to the command's time, and work a callee
//! timed itself (its own phases, reported with [`Timeline::within`]) is taken out of the
//! interval it ran in rather than counted twice. Parallel work is one phase: its wall time.
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dx_py_core::index::ClientStats;

/// One phase and its wall time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) took: Duration,
}

/// The phases of a command so far.
#[derive(Debug)]
pub(crate) struct Timeline {
    start: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// When the last phase ended.
    last: Instant,
    phases: Vec<Phase>,
    /// Parts of the open interval that a callee timed (see [`Timeline::within`]).
    pending: Vec<Phase>,
    clients: ClientStats,
}

impl Timeline {
    /// A timeline starting now.
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            inner: Mutex::new(Inner {
                last: now,
                phases: Vec::new(),
                pending: Vec::new(),
                clients: ClientStats::default(),
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the interval since the previous mark: the parts reported with [`Self::within`]
    /// come first, and what is left of it is `name`.
    pub(crate) fn mark(&self, name: &'static str) {
        let now = Instant::now();
        let mut inner = self.inner();
        let interval = now - inner.last;
        let pending = std::mem::take(&mut inner.pending);
        let timed: Duration = pending.iter().map(|p| p.took).sum();
        inner.phases.extend(pending);
        inner.phases.push(Phase {
            name,
            took: interval.saturating_sub(timed),
        });
        inner.last = now;
    }

    /// A part of the open interval that a callee timed as `name`; the next [`Self::mark`]
    /// takes it out of its own time.
    pub(crate) fn within(&self, name: &'static str, took: Duration) {
        self.inner().pending.push(Phase { name, took });
    }

    /// Adds what an index client did (each client is added once, when it is done).
    pub(crate) fn add_client(&self, stats: ClientStats) {
        self.inner().clients += stats;
    }

    /// The phases so far, what is not in any of them yet (`other`: since the last mark), and
    /// the time since the start.
    pub(crate) fn finish(&self) -> (Vec<Phase>, Duration, Duration, ClientStats) {
        let now = Instant::now();
        let inner = self.inner();
        let mut phases = inner.phases.clone();
        phases.extend(inner.pending.iter().cloned());
        let timed: Duration = phases.iter().map(|p| p.took).sum();
        let total = now - self.start;
        (phases, total.saturating_sub(timed), total, inner.clients)
    }

    /// The report `-v` prints: a line per phase, `other`, the total, and the index's counts.
    pub(crate) fn lines(&self) -> Vec<String> {
        let (phases, other, total, clients) = self.finish();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut lines =
            vec!["Timings (wall time of each phase; they add up to the total):".to_string()];
        for phase in &phases {
            lines.push(format!("  {:<16} {:>9.1} ms", phase.name, ms(phase.took)));
        }
        lines.push(format!("  {:<16} {:>9.1} ms", "other", ms(other)));
        lines.push(format!("  {:<16} {:>9.1} ms", "total", ms(total)));
        lines.push(network_line(&clients));
        lines
    }
}

/// What the index clients did, on one line: `pages: …; metadata: …; downloads: N (X MiB), …`.
fn network_line(c: &ClientStats) -> String {
    format!(
        "Index: pages: {} fetched, {} revalidated, {} cached; metadata: {} fetched, {} cached; \
         downloads: {} ({}), {} from the cache or local files",
        c.pages_fetched,
        c.pages_revalidated,
        c.pages_cached,
        c.metadata_fetched,
        c.metadata_cached,
        c.downloads,
        size(c.download_bytes),
        c.downloads_cached
    )
}

/// `bytes` in KiB below a MiB, else in MiB.
fn size(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_timed_by_a_callee_are_not_counted_twice() {
        let t = Timeline::new();
        std::thread::sleep(Duration::from_millis(20));
        t.within("fetch", Duration::from_millis(15));
        t.mark("install");
        std::thread::sleep(Duration::from_millis(5));
        t.mark("write");
        let (phases, other, total, _) = t.finish();
        let names: Vec<_> = phases.iter().map(|p| p.name).collect();
        assert_eq!(names, ["fetch", "install", "write"]);
        assert_eq!(phases[0].took, Duration::from_millis(15));
        assert!(phases[1].took >= Duration::from_millis(5));
        let sum: Duration = phases.iter().map(|p| p.took).sum::<Duration>() + other;
        assert_eq!(sum, total);
    }

    #[test]
    fn clients_add_up() {
        let t = Timeline::new();
        let one = ClientStats {
            downloads: 2,
            download_bytes: 1 << 20,
            ..ClientStats::default()
        };
        t.add_client(one);
        t.add_client(one);
        let lines = t.lines();
        let last = lines.last().unwrap();
        assert!(last.contains("downloads: 4 (2.0 MiB)"), "{last}");
        assert_eq!(size(1536), "1.5 KiB");
        assert!(lines.iter().any(|l| l.trim_start().starts_with("other")));
    }
}
