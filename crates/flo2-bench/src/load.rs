//! Load generation: open-loop fixed-rate runs (arrivals never wait for answers, so a slow server
//! cannot slow its own measurement) and closed-loop maximum-throughput runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One request to send: a gateway key (none when calling the fake or the bare proxy) and a body.
#[derive(Clone)]
pub struct Call {
    pub key: Option<Arc<str>>,
    pub body: Bytes,
}

/// What a run sends: request `i` posts `calls[i % calls.len()]` to `url`.
#[derive(Clone)]
pub struct Load {
    pub url: String,
    pub calls: Arc<Vec<Call>>,
}

impl Load {
    /// Every request the same.
    pub fn one(url: String, key: Option<&str>, body: Bytes) -> Self {
        Self {
            url,
            calls: Arc::new(vec![Call {
                key: key.map(Arc::from),
                body,
            }]),
        }
    }

    fn send(&self, http: &reqwest::Client, i: u64) -> reqwest::RequestBuilder {
        let call = &self.calls[(i % self.calls.len() as u64) as usize];
        let mut req = http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(call.body.clone());
        if let Some(k) = &call.key {
            req = req.bearer_auth(k);
        }
        req
    }
}

/// Latency percentiles in µs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    pub fn of(mut micros: Vec<u64>) -> Self {
        micros.sort_unstable();
        let at = |q: f64| {
            if micros.is_empty() {
                return 0.0;
            }
            let i = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
            micros[i] as f64
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
        }
    }

    /// `self` minus a baseline, percentile by percentile.
    pub fn minus(self, base: Self) -> Self {
        Self {
            p50: self.p50 - base.p50,
            p90: self.p90 - base.p90,
            p99: self.p99 - base.p99,
            p999: self.p999 - base.p999,
        }
    }
}

/// The outcome of a fixed-rate run.
pub struct RateRun {
    /// Of the answered (2xx) requests.
    pub latency: Percentiles,
    pub sent: u64,
    /// Requests not answered 2xx, refusals included.
    pub errors: u64,
    /// Requests refused as overload (503 or 529), and their latency.
    pub refused: u64,
    pub refused_latency: Percentiles,
}

/// Sends `rate` requests per second for `length`; latency is to the whole answer, or to the
/// first body byte when `first_byte`.
pub async fn fixed_rate(
    http: &reqwest::Client,
    load: &Load,
    rate: u64,
    length: Duration,
    first_byte: bool,
) -> RateRun {
    let total = (u128::from(rate) * length.as_millis() / 1000).max(1) as u64;
    let lat = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tick.tick().await;
        let (req, lat, errors) = (load.send(http, i), Arc::clone(&lat), Arc::clone(&errors));
        let refused = Arc::clone(&refused);
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            match req.send().await {
                Ok(mut resp) if resp.status().is_success() => {
                    let mut first = None;
                    while let Ok(Some(_)) = resp.chunk().await {
                        first.get_or_insert_with(|| started.elapsed());
                    }
                    let took = match first {
                        Some(first) if first_byte => first,
                        _ => started.elapsed(),
                    };
                    lat.lock().unwrap().push(took.as_micros() as u64);
                }
                Ok(resp) if matches!(resp.status().as_u16(), 503 | 529) => {
                    let _ = resp.bytes().await;
                    refused
                        .lock()
                        .unwrap()
                        .push(started.elapsed().as_micros() as u64);
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let micros = std::mem::take(&mut *lat.lock().unwrap());
    let refused = std::mem::take(&mut *refused.lock().unwrap());
    RateRun {
        latency: Percentiles::of(micros),
        sent: total,
        errors: errors.load(Ordering::Relaxed),
        refused: refused.len() as u64,
        refused_latency: Percentiles::of(refused),
    }
}

/// Closed loop with `conns` workers for `secs`: (completed requests per second, requests sent).
pub async fn max_throughput(
    http: &reqwest::Client,
    load: &Load,
    conns: u64,
    secs: u64,
) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..conns)
        .map(|w| {
            let (http, load, done, sent) = (
                http.clone(),
                load.clone(),
                Arc::clone(&done),
                Arc::clone(&sent),
            );
            tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < until {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if let Ok(resp) = load.send(&http, i).send().await {
                        if resp.status().is_success() && resp.bytes().await.is_ok() {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += conns;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let n = done.load(Ordering::Relaxed);
    (n as f64 / secs as f64, sent.load(Ordering::Relaxed))
}
