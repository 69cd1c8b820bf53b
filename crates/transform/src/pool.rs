//! Worker threads and a bounded queue.
//!
//! Plain OS threads, not tokio's blocking pool: the number of libvips jobs
//! in flight must be bounded by `workers` exactly (CPU and memory), and a
//! job beyond `workers + queue` must be refused at once (429) instead of
//! piling up. Callers wait on a `tokio::sync::oneshot`, so an event loop
//! never blocks.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

/// A unit of work run on a worker thread.
pub(crate) type Task = Box<dyn FnOnce() + Send + 'static>;

/// Load of the pool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Worker threads.
    pub workers: usize,
    /// Workers running a job.
    pub busy: usize,
    /// Jobs waiting for a worker.
    pub queued: usize,
    /// Waiting jobs allowed.
    pub capacity: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Task>,
    busy: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    workers: usize,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking task never holds the lock (tasks run unlocked), so a
        // poisoned mutex still guards consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The queue is full: refuse the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// A fixed set of worker threads fed by a bounded FIFO queue. Dropping the
/// pool lets the workers finish the queued jobs and exit.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Starts `workers` threads named `{name}-{i}`; each runs `on_exit` when
    /// it stops (libvips per-thread clean-up).
    pub(crate) fn start(
        name: &str,
        workers: usize,
        capacity: usize,
        on_exit: fn(),
    ) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            workers,
            capacity,
        });
        for i in 0..workers {
            let worker = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    work(&worker);
                    on_exit();
                });
            if let Err(e) = spawned {
                let pool = Pool { shared };
                drop(pool); // stops the threads already started
                return Err(e);
            }
        }
        Ok(Pool { shared })
    }

    /// Queues `task`, or refuses it when `workers + capacity` jobs are
    /// already running or waiting.
    pub(crate) fn submit(&self, task: Task) -> Result<(), Full> {
        let mut state = self.shared.lock();
        if state.closed
            || state.busy + state.queue.len() >= self.shared.workers + self.shared.capacity
        {
            return Err(Full);
        }
        state.queue.push_back(task);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Current load.
    pub(crate) fn stats(&self) -> PoolStats {
        let state = self.shared.lock();
        PoolStats {
            workers: self.shared.workers,
            busy: state.busy,
            queued: state.queue.len(),
            capacity: self.shared.capacity,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

fn work(shared: &Shared) {
    loop {
        let task = {
            let mut state = shared.lock();
            loop {
                if let Some(task) = state.queue.pop_front() {
                    state.busy += 1;
                    break task;
                }
                if state.closed {
                    return;
                }
                state = shared.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        // A panic must not take the worker down: the task's result channel
        // is dropped, which its caller reports as an internal error.
        let _ = catch_unwind(AssertUnwindSafe(task));
        shared.lock().busy -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn wait_until(pool: &Pool, f: impl Fn(PoolStats) -> bool) {
        for _ in 0..500 {
            if f(pool.stats()) {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        panic!("pool never reached the expected state: {:?}", pool.stats());
    }

    #[test]
    fn bounded_queue_refuses_beyond_capacity() {
        let pool = Pool::start("test-pool", 1, 1, || {}).unwrap();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        let d1 = done_tx.clone();
        pool.submit(Box::new(move || {
            release_rx.recv().unwrap();
            d1.send(1).unwrap();
        }))
        .unwrap();
        wait_until(&pool, |s| s.busy == 1);
        let d2 = done_tx.clone();
        pool.submit(Box::new(move || d2.send(2).unwrap())).unwrap();
        assert_eq!(pool.submit(Box::new(|| {})), Err(Full));
        assert_eq!(
            pool.stats(),
            PoolStats {
                workers: 1,
                busy: 1,
                queued: 1,
                capacity: 1
            }
        );
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), 1);
        assert_eq!(done_rx.recv().unwrap(), 2);
        wait_until(&pool, |s| s.busy == 0 && s.queued == 0);
        pool.submit(Box::new(|| {})).unwrap();
    }

    #[test]
    fn panicking_task_keeps_worker_alive() {
        let pool = Pool::start("test-panic", 1, 4, || {}).unwrap();
        pool.submit(Box::new(|| panic!("boom"))).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(7).unwrap())).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
    }

    #[test]
    fn drop_drains_queue_and_stops_workers() {
        let (tx, rx) = mpsc::channel();
        {
            let pool = Pool::start("test-drop", 2, 8, || {}).unwrap();
            for i in 0..6 {
                let tx = tx.clone();
                pool.submit(Box::new(move || tx.send(i).unwrap())).unwrap();
            }
        }
        drop(tx);
        let mut got: Vec<i32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
    }
}
