//! The one thread pool: [`map`] runs a function over a slice on a few scoped threads and
//! keeps the order of the results; [`Background`] runs boxed jobs on lazily started workers
//! (the index's prefetches) until it is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

/// Runs `f` on every item on at most `threads` threads; the results come back in the items'
/// order. A panic in `f` is a panic of the caller, as with a plain loop.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let result = f(item);
                lock(&results).push((i, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The threads a CPU-bound [`map`] uses: the machine's, at most `cap`.
pub(crate) fn cpu_threads(cap: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(cap)
}

/// A job for [`Background`].
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Workers that run jobs in the background, started at the first job; they end when the pool
/// is dropped and the queue is empty.
pub(crate) struct Background {
    workers: usize,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Background {
    pub(crate) fn new(workers: usize) -> Background {
        Background {
            workers: workers.max(1),
            sender: Mutex::new(None),
        }
    }

    /// Queues `job`.
    pub(crate) fn spawn(&self, job: Job) {
        let mut sender = lock(&self.sender);
        let sender = sender.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..self.workers {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || loop {
                    let job = lock(&rx).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                });
            }
            tx
        });
        let _ = sender.send(job);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_the_order_and_runs_everything() {
        let items: Vec<u64> = (0..1000).collect();
        let out = map(&items, 4, |n| n * 2);
        assert_eq!(out, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert!(map(&[] as &[u8], 4, |_| ()).is_empty());
    }

    #[test]
    fn background_runs_every_job() {
        let pool = Background::new(3);
        let (tx, rx) = mpsc::channel();
        for i in 0..50 {
            let tx = tx.clone();
            pool.spawn(Box::new(move || {
                let _ = tx.send(i);
            }));
        }
        drop(tx);
        let mut got: Vec<i32> = rx.iter().take(50).collect();
        got.sort_unstable();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    }
}
