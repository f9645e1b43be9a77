//! The threads validations run on: CPU-bound work stays off the async reactor, on a fixed number
//! of threads (one per core), fed from one queue.
//!
//! Each thread is also the only worker of a rayon pool of its own. `shacl-rust` fans out over
//! rayon (`par_iter` over shapes and focus nodes, `join` while indexing the data graph); called
//! from any other thread, every one of those calls hands work to rayon's global pool and blocks
//! until it comes back, and the idle global workers spin in `sched_yield`. On the 2-core machine
//! that was a third of the service's CPU time under `wrk` (docs/validation.md, "Performance").
//! Here those calls run inline, on the thread that already runs the validation: one request
//! costs one hand-off to a validation thread and one back.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("the validation threads have stopped")]
    Stopped,
    #[error("a validator panicked: {0}")]
    Panicked(String),
}

pub struct ValidationPool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl ValidationPool {
    /// Starts `threads` validation threads (at least one). They live as long as the process.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("hex-validate-{index}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self { jobs, threads })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` on a validation thread and waits for its result. A job whose caller stopped
    /// waiting (its time budget ran out while it queued) is dropped unrun when a thread takes it.
    pub async fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> Result<R, PoolError> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                if done.is_closed() {
                    return;
                }
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(job)).map_err(panic_message);
                let _ = done.send(outcome);
            }))
            .map_err(|_| PoolError::Stopped)?;
        result
            .await
            .map_err(|_| PoolError::Stopped)?
            .map_err(PoolError::Panicked)
    }
}

/// Runs `job` on the calling thread, with rayon calls inline as on a validation thread. For
/// validations known to be cheap (see `usecases::validate`), where the hand-off to a validation
/// thread and back would cost more than the validation.
pub fn run_here<R>(job: impl FnOnce() -> R) -> Result<R, PoolError> {
    thread_local! {
        static OWN_POOL: Option<rayon::ThreadPool> = own_rayon_pool();
    }
    OWN_POOL.with(|_| ());
    std::panic::catch_unwind(AssertUnwindSafe(job)).map_err(|panic| PoolError::Panicked(panic_message(panic)))
}

/// Makes the calling thread the single worker of a rayon pool of its own, so rayon calls made on
/// it run inline (see the module comment). The pool must live as long as the thread. Nothing on
/// these threads uses `rayon::spawn`, whose jobs such a thread would never pick up (only
/// `shacl-rust` uses rayon, with `par_iter` and `join`).
fn own_rayon_pool() -> Option<rayon::ThreadPool> {
    if rayon::current_thread_index().is_some() {
        return None;
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
    {
        Ok(pool) => Some(pool),
        Err(error) => {
            tracing::warn!(error = %error, "thread without its own rayon pool: SHACL fans out to the global pool");
            None
        }
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let _own_pool = own_rayon_pool();
    loop {
        // The lock is held while waiting, so idle threads queue on the mutex, not on the channel.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_named_threads_with_rayon_inline() {
        let pool = ValidationPool::new(2).unwrap();
        let (name, rayon_threads, sum) = pool
            .run(|| {
                use rayon::prelude::*;
                let sum: u64 = (0..1000u64).into_par_iter().sum();
                (
                    std::thread::current().name().map(str::to_string),
                    rayon::current_num_threads(),
                    sum,
                )
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("hex-validate-"));
        assert_eq!(rayon_threads, 1, "rayon calls run on the validation thread itself");
        assert_eq!(sum, 499_500);
    }

    #[test]
    fn run_here_runs_rayon_inline_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let (thread, rayon_threads) = run_here(|| {
            use rayon::prelude::*;
            let ids: Vec<_> = (0..64).into_par_iter().map(|_| std::thread::current().id()).collect();
            assert!(ids.iter().all(|id| *id == ids[0]));
            (ids[0], rayon::current_num_threads())
        })
        .unwrap();
        assert_eq!(thread, caller);
        assert_eq!(rayon_threads, 1);
        assert_eq!(
            run_here(|| -> u8 { panic!("inline boom") }),
            Err(PoolError::Panicked("inline boom".into()))
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_thread_survives() {
        let pool = ValidationPool::new(1).unwrap();
        let error = pool.run(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert_eq!(error, PoolError::Panicked("boom".into()));
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_job_whose_caller_gave_up_is_not_run() {
        let pool = Arc::new(ValidationPool::new(1).unwrap());
        let (started, busy_started) = oneshot::channel::<()>();
        let (release, blocker) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = started.send(());
                    blocker.recv().ok()
                })
                .await
            }
        });
        busy_started.await.unwrap();
        // The only thread is busy: this job queues, and its caller stops waiting.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let abandoned = pool.run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), abandoned)
                .await
                .is_err()
        );
        release.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        assert_eq!(pool.run(|| 1).await.unwrap(), 1, "the queue moves on");
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
