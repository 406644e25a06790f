//! The process's HTTP transport: every [`IndexClient`](super::IndexClient) of a process with the
//! same network settings shares one ureq agent, hence one connection pool, and every agent shares
//! one DNS cache.
//!
//! ```text
//! IndexClient ─┐                       ┌─ host A: ≤ cap requests at once, ≤ cap connections kept
//! IndexClient ─┴─► Transport (shared) ─┤
//!                   agent + pool       └─ host B: …
//!                        │
//!                   DnsCache (process-wide): one lookup per host:port, concurrent askers wait
//! ```
//!
//! Why: ureq 3 resolves the host name on *every* request, before it looks for a pooled
//! connection, so 59 pinned packages (a page and a wheel each) made 118 lookups, 8 at a time
//! from the 8 worker threads; a resolver that stalls at 8 concurrent lookups turned that into
//! 16–21 s. And with more workers than the pool keeps idle connections per host (3 by default),
//! connections were closed after use and opened again. Here a host is looked up once per process,
//! at most `cap` requests per host are in flight (the others wait for a slot), and the pool keeps
//! `cap` idle connections per host, so a host never gets more than `cap` connections while they
//! stay open.
//!
//! Addresses are kept for the life of the process, which is one command: DNS TTLs are longer
//! than that in practice. A failed lookup is not kept, so a retry looks up again.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// The network settings that decide which agent a client shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TransportKey {
    /// CA bundle replacing the built-in roots.
    pub(super) ca_bundle: Option<PathBuf>,
    pub(super) connect_timeout: Duration,
    pub(super) read_timeout: Duration,
    /// Requests in flight (and connections kept) per host.
    pub(super) per_host: usize,
}

/// One agent (with its connection pool) and the per-host request slots.
#[derive(Debug)]
pub(super) struct Transport {
    agent: ureq::Agent,
    slots: HostSlots,
}

impl Transport {
    /// The transport of this process for `key`, made on first use; `tls` builds the agent's TLS
    /// settings then (it reads the CA bundle).
    pub(super) fn shared<E>(
        key: &TransportKey,
        tls: impl FnOnce() -> Result<ureq::tls::TlsConfig, E>,
    ) -> Result<Arc<Self>, E> {
        static TRANSPORTS: Mutex<Vec<(TransportKey, Arc<Transport>)>> = Mutex::new(Vec::new());
        let mut all = lock(&TRANSPORTS);
        if let Some((_, t)) = all.iter().find(|(k, _)| k == key) {
            return Ok(t.clone());
        }
        let per_host = key.per_host.max(1);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(key.connect_timeout))
            .timeout_recv_response(Some(key.read_timeout))
            .timeout_per_read(Some(key.read_timeout))
            .user_agent(concat!("dx-py/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(per_host)
            .max_idle_connections(per_host * 16)
            .tls_config(tls()?)
            .build();
        let transport = Arc::new(Self {
            agent: ureq::Agent::with_parts(config, DefaultConnector::new(), CachingResolver),
            slots: HostSlots::new(per_host),
        });
        all.push((key.clone(), transport.clone()));
        Ok(transport)
    }

    /// The agent; call it only while holding a [`Transport::slot`] for the URL's host.
    pub(super) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Waits until fewer than the cap of requests to `url`'s host are in flight, and takes a
    /// place among them until the guard is dropped.
    pub(super) fn slot(&self, url: &url::Url) -> Slot<'_> {
        let host = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        self.slots.acquire(host)
    }
}

/// Requests in flight per host, at most `cap` each.
#[derive(Debug)]
struct HostSlots {
    cap: usize,
    in_use: Mutex<HashMap<String, usize>>,
    freed: Condvar,
}

impl HostSlots {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            in_use: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self, host: String) -> Slot<'_> {
        let mut in_use = lock(&self.in_use);
        while in_use.get(&host).is_some_and(|n| *n >= self.cap) {
            in_use = self
                .freed
                .wait(in_use)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *in_use.entry(host.clone()).or_default() += 1;
        Slot { slots: self, host }
    }
}

/// A place among the requests in flight to one host; given back when dropped.
pub(super) struct Slot<'a> {
    slots: &'a HostSlots,
    host: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut in_use = lock(&self.slots.in_use);
        if let Some(n) = in_use.get_mut(&self.host) {
            *n = n.saturating_sub(1);
        }
        drop(in_use);
        self.slots.freed.notify_all();
    }
}

/// Addresses per `host:port`, looked up once per process. Each entry has its own lock, so that
/// threads asking for the same host wait for the one lookup while other hosts proceed.
#[derive(Default)]
struct DnsCache {
    hosts: Mutex<HashMap<String, Arc<Mutex<DnsEntry>>>>,
}

#[derive(Default)]
struct DnsEntry {
    addrs: Option<ResolvedSocketAddrs>,
    /// Lookups made for this `host:port` (more than one only after failures).
    lookups: usize,
}

fn dns() -> &'static DnsCache {
    static DNS: OnceLock<DnsCache> = OnceLock::new();
    DNS.get_or_init(DnsCache::default)
}

/// Lookups this process has made for `host_port` (`localhost:8080`).
#[cfg(test)]
pub(super) fn dns_lookups(host_port: &str) -> usize {
    lock(&dns().hosts)
        .get(host_port)
        .map_or(0, |e| lock(e).lookups)
}

/// ureq's resolver, asked through the process's [`DnsCache`].
#[derive(Debug)]
struct CachingResolver;

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => DefaultResolver::host_and_port(scheme, authority),
            _ => None,
        };
        // Nothing to key on: let ureq's resolver report what is wrong with the URL.
        let Some(key) = key else {
            return DefaultResolver::default().resolve(uri, config, timeout);
        };
        let entry = lock(&dns().hosts).entry(key).or_default().clone();
        let mut entry = lock(&entry);
        if let Some(addrs) = &entry.addrs {
            return Ok(addrs.clone());
        }
        entry.lookups += 1;
        let found = DefaultResolver::default().resolve(uri, config, timeout)?;
        entry.addrs = Some(found.clone());
        Ok(found)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn slots_cap_requests_per_host_and_hosts_are_independent() {
        let slots = HostSlots::new(2);
        let a1 = slots.acquire("a".into());
        let _a2 = slots.acquire("a".into());
        // Another host is not held up by a full one.
        let _b = slots.acquire("b".into());
        let (inside, peak, done) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let _slot = slots.acquire("a".into());
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(peak.load(Ordering::SeqCst), 0, "both places are taken");
            // One place frees up: the four go through it one at a time.
            drop(a1);
        });
        assert_eq!(done.load(Ordering::SeqCst), 4);
        assert_eq!(peak.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn one_agent_per_setting_for_the_whole_process() {
        let key = TransportKey {
            ca_bundle: None,
            connect_timeout: Duration::from_secs(7),
            read_timeout: Duration::from_secs(7),
            per_host: 6,
        };
        let tls = || Ok::<_, ()>(ureq::tls::TlsConfig::default());
        let a = Transport::shared(&key, tls).unwrap();
        let b = Transport::shared(&key, || -> Result<_, ()> { panic!("built twice") }).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = TransportKey {
            per_host: 5,
            ..key.clone()
        };
        assert!(!Arc::ptr_eq(&a, &Transport::shared(&other, tls).unwrap()));
    }
}
