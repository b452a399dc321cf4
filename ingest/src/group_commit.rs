//! Group commit: concurrent requests' statements go to Postgres as one. Each caller
//! submits its item and awaits its own answer; a worker takes whatever has queued up
//! (up to `max_batch`) whenever one of its `max_in_flight` slots is free, and runs the
//! batch's one statement. Under load a round trip carries many requests; alone, a request
//! goes out at once. A deadlock or serialization failure between two batches (transient
//! by definition) is retried; any other error is every caller's answer.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use prometheus::{register_histogram_vec, HistogramVec};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Registers the group commit's metrics now.
pub fn register_metrics() {
    LazyLock::force(&BATCH_SIZE);
}

static BATCH_SIZE: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "ingest_group_commit_batch_size",
        "Requests carried by one group-committed statement",
        &["batch"],
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    )
    .expect("metric registers once")
});

type Answer<Res> = oneshot::Sender<Result<Res, sqlx::Error>>;

pub struct GroupCommit<Req, Res> {
    sender: mpsc::UnboundedSender<(Req, Answer<Res>)>,
    statements: Arc<AtomicU64>,
}

/// How often a batch that lost a deadlock is run again.
const RETRIES: usize = 3;

impl<Req: Send + Sync + 'static, Res: Send + 'static> GroupCommit<Req, Res> {
    /// Starts the worker. `execute` runs one batch and answers each item, in order.
    pub fn spawn<F, Fut>(
        name: &'static str,
        max_batch: usize,
        max_in_flight: usize,
        execute: F,
    ) -> Self
    where
        F: Fn(Arc<Vec<Req>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Res>, sqlx::Error>> + Send + 'static,
    {
        let (sender, mut receiver) = mpsc::unbounded_channel::<(Req, Answer<Res>)>();
        let execute = Arc::new(execute);
        let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
        let statements = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&statements);
        let sizes = BATCH_SIZE.with_label_values(&[name]);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                // While we waited for a slot, more requests queued up: take them along.
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match receiver.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                counted.fetch_add(1, Ordering::Relaxed);
                sizes.observe(batch.len() as f64);
                let execute = Arc::clone(&execute);
                tokio::spawn(async move {
                    let (items, answers): (Vec<Req>, Vec<Answer<Res>>) = batch.into_iter().unzip();
                    let items = Arc::new(items);
                    let mut outcome = execute(Arc::clone(&items)).await;
                    for _ in 0..RETRIES {
                        match &outcome {
                            Err(error) if is_transient(error) => {
                                tracing::debug!(batch = name, %error, "batch lost a deadlock; running it again");
                                outcome = execute(Arc::clone(&items)).await;
                            }
                            _ => break,
                        }
                    }
                    drop(slot);
                    match outcome {
                        Ok(results) => {
                            debug_assert_eq!(results.len(), answers.len());
                            for (answer, result) in answers.into_iter().zip(results) {
                                let _ = answer.send(Ok(result));
                            }
                        }
                        Err(error) => {
                            tracing::warn!(batch = name, %error, size = answers.len(), "batch failed");
                            for answer in answers {
                                let _ = answer.send(Err(sqlx::Error::Protocol(error.to_string())));
                            }
                        }
                    }
                });
            }
        });
        Self { sender, statements }
    }

    /// How many batches have gone to Postgres.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Queues `item` for the next batch and waits for its answer.
    pub async fn submit(&self, item: Req) -> Result<Res, sqlx::Error> {
        let (answer, answered) = oneshot::channel();
        self.sender
            .send((item, answer))
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answered.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Deadlock detected, or a serialization failure.
fn is_transient(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}
