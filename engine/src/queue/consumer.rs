//! Push consumers: a task that leases messages as handler slots free up
//! (prefetch = most deliveries in flight), runs the handler with a
//! concurrency limit, and settles each delivery by the handler's outcome.
//!
//! An idle consumer sleeps until a send wakes its queue or the next message
//! becomes visible (a retry or a lease falling due), on the engine's clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::queue::{
    Delivery, LeaseToken, QueueEntry, QueueError, Queues, check_owner, storage_error,
};
use crate::storage::{ClaimOrWait, ClaimResult, QueueStore, StorageError};
use crate::telemetry::{self, Cause, DeliveryMode, with_cause};
use tracing::Instrument;

/// How a handler ends a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the message is removed.
    Ack,
    /// Failed: retried after the queue's backoff, or dead-lettered when this
    /// was the last attempt.
    Nack {
        /// What went wrong (kept as the message's last error).
        error: String,
    },
    /// Failed, retried after `delay_ms` instead of the queue's backoff (or
    /// dead-lettered when this was the last attempt).
    NackAfter {
        /// What went wrong (kept as the message's last error).
        error: String,
        /// Delay before the next attempt.
        delay_ms: u64,
    },
    /// Unprocessable: dead-lettered now.
    Reject {
        /// Why.
        error: String,
    },
}

/// Options of a push consumer.
#[derive(Clone, Debug)]
pub struct ConsumeOptions {
    /// Most deliveries handed out and not yet handled. A handled delivery
    /// frees its slot when its outcome goes to storage, before the commit
    /// (as an ack sent to RabbitMQ frees its slot), so up to twice this many
    /// messages may be leased to the consumer while acks commit.
    pub prefetch: u32,
    /// Most handlers running at once (at most `prefetch`).
    pub concurrency: u32,
    /// Lease of each delivery; the engine default when `None`. A handler
    /// running longer than this sees its message redelivered.
    pub lease_ms: Option<u64>,
    /// Owner token, required for exclusive queues.
    pub owner: Option<String>,
    /// Longest an idle consumer waits before looking again, as a safety net
    /// under the wake-ups.
    pub idle_poll_ms: u64,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            prefetch: 100,
            concurrency: 16,
            lease_ms: None,
            owner: None,
            idle_poll_ms: 1000,
        }
    }
}

type Handler = Arc<dyn Fn(Delivery) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// A running push consumer. Dropping it stops it without waiting;
/// [`Consumer::unsubscribe`] waits for in-flight deliveries to be settled.
pub struct Consumer {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    queues: Queues,
    entry: Arc<QueueEntry>,
}

impl Queues {
    /// Starts a push consumer that calls `handler` for every delivery.
    pub async fn consume<F, Fut>(
        &self,
        queue: &str,
        options: ConsumeOptions,
        handler: F,
    ) -> Result<Consumer, QueueError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let entry = self.entry(queue)?;
        check_owner(&entry, options.owner.as_deref())?;
        let lease_ms = self.lease_ms(options.lease_ms)?;
        let prefetch = options.prefetch.max(1);
        let concurrency = options.concurrency.clamp(1, prefetch);
        let handler: Handler = Arc::new(move |delivery| Box::pin(handler(delivery)));
        let (stop_tx, stop_rx) = watch::channel(false);
        entry.n_consumers.fetch_add(1, Ordering::SeqCst);
        let run = Run {
            queues: self.clone(),
            entry: entry.clone(),
            handler,
            slots: Arc::new(Semaphore::new(prefetch as usize)),
            workers: Arc::new(Semaphore::new(concurrency as usize)),
            prefetch,
            lease_ms,
            idle_poll: Duration::from_millis(options.idle_poll_ms.max(1)),
        };
        let task = tokio::spawn(run.run(stop_rx));
        Ok(Consumer {
            stop: stop_tx,
            task: Some(task),
            queues: self.clone(),
            entry,
        })
    }
}

impl Consumer {
    /// Stops leasing, waits for every in-flight delivery to be handled and
    /// settled, then detaches. The last consumer of an auto-delete queue
    /// deletes it.
    pub async fn unsubscribe(mut self) -> Result<(), QueueError> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.detach().await
    }

    async fn detach(&self) -> Result<(), QueueError> {
        let remaining = self.entry.n_consumers.fetch_sub(1, Ordering::SeqCst) - 1;
        if remaining == 0 && self.entry.spec.auto_delete {
            let _declaring = self.queues.inner.declare_lock.lock().await;
            // Re-check under the lock: a consumer may have attached meanwhile.
            if self.entry.n_consumers.load(Ordering::SeqCst) == 0
                && self.queues.find(self.entry.name.as_str()).is_some()
            {
                self.queues.delete_entry(&self.entry).await?;
            }
        }
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if self.task.is_some() {
            let _ = self.stop.send(true);
            self.entry.n_consumers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

struct Run {
    queues: Queues,
    entry: Arc<QueueEntry>,
    handler: Handler,
    /// One permit per delivery that may be in flight (prefetch).
    slots: Arc<Semaphore>,
    /// One permit per handler that may run at once.
    workers: Arc<Semaphore>,
    prefetch: u32,
    lease_ms: u64,
    idle_poll: Duration,
}

/// A handled delivery on its way to the settler, holding its slot (counted
/// against the prefetch) until the settler takes it.
type Settling = (LeaseToken, Outcome, OwnedSemaphorePermit);

/// Most outcomes settled in one storage operation.
const SETTLE_BATCH_MAX: usize = 1024;

impl Run {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let (settle_tx, settle_rx) = mpsc::unbounded_channel::<Settling>();
        let settler = tokio::spawn(settle(self.queues.clone(), settle_rx));
        loop {
            let first = tokio::select! {
                permit = self.slots.clone().acquire_owned() => permit.expect("slots never close"),
                _ = stop.changed() => break,
            };
            let n_free = self.slots.available_permits() as u32 + 1;
            let (deliveries, stopping) = self.next_deliveries(n_free, &mut stop).await;
            match deliveries {
                Ok(deliveries) if !deliveries.is_empty() => {
                    self.dispatch(deliveries, first, &settle_tx)
                }
                Ok(_) => drop(first),
                Err(QueueError::Storage {
                    source: StorageError::Closed,
                    ..
                }) => {
                    // The engine shut down under us: nothing more to lease.
                    drop(first);
                    break;
                }
                Err(e) => {
                    tracing::error!(queue = %self.entry.name, cause = %e, "push consumer failed to lease messages");
                    drop(first);
                    if !stopping {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {},
                            _ = stop.changed() => break,
                        }
                    }
                }
            }
            if stopping {
                break;
            }
        }
        // Drain: every slot back means every delivery was handled and its
        // outcome taken by the settler, which commits what it holds before
        // it ends.
        let _ = self.slots.acquire_many(self.prefetch).await;
        drop(settle_tx);
        let _ = settler.await;
    }

    /// Leases what is visible now, or waits in line for new messages: a
    /// send serves a waiting consumer directly, already leased. Gives up the
    /// wait when woken (a retry falls due, an operator redrives, the idle
    /// poll passes) or told to stop; the `bool` says it was told to stop.
    async fn next_deliveries(
        &self,
        n_max: u32,
        stop: &mut watch::Receiver<bool>,
    ) -> (Result<Vec<Delivery>, QueueError>, bool) {
        let wake = self.entry.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let store = self.queues.store(self.entry.spec.durable);
        let policy = self.queues.claim_policy(&self.entry, self.lease_ms);
        let mut ticket = match store.claim_or_wait(self.entry.id, n_max, policy).await {
            Ok(ClaimOrWait::Claimed(result)) => {
                return (
                    self.queues
                        .deliveries(&self.entry, result, DeliveryMode::Push),
                    false,
                );
            }
            Ok(ClaimOrWait::Waiting(ticket)) => ticket,
            Err(e) => return (Err(storage_error(self.entry.name.as_str(), e)), false),
        };
        let poll = self.queues.inner.clock.now().plus(self.idle_poll);
        let deadline = ticket.next_visible_at.map_or(poll, |at| at.min(poll));
        let stopping = tokio::select! {
            served = &mut ticket.deliveries => return (self.served(served), false),
            _ = &mut wake => false,
            _ = self.queues.inner.clock.sleep_until(deadline) => false,
            _ = stop.changed() => true,
        };
        // Leave the line. If a send served us in the meantime, its
        // deliveries are on their way (they are answered once durable, which
        // may be after the cancel is): wait for them, never drop them, or
        // they would sit leased to nobody until their lease ran out.
        match store.cancel_wait(self.entry.id, ticket.id).await {
            Ok(true) => (Ok(Vec::new()), stopping),
            Ok(false) => match ticket.deliveries.await {
                Ok(served) => (self.served(Ok(served)), stopping),
                // The queue was deleted while we waited: nothing was served.
                Err(_) => (Ok(Vec::new()), stopping),
            },
            Err(e) => (Err(storage_error(self.entry.name.as_str(), e)), stopping),
        }
    }

    fn served(
        &self,
        served: Result<crate::storage::Result<ClaimResult>, oneshot::error::RecvError>,
    ) -> Result<Vec<Delivery>, QueueError> {
        match served {
            Ok(Ok(result)) => self
                .queues
                .deliveries(&self.entry, result, DeliveryMode::Push),
            Ok(Err(e)) => Err(storage_error(self.entry.name.as_str(), e)),
            Err(_) => Err(storage_error(
                self.entry.name.as_str(),
                StorageError::Closed,
            )),
        }
    }

    fn dispatch(
        &self,
        deliveries: Vec<Delivery>,
        first: OwnedSemaphorePermit,
        settle_tx: &mpsc::UnboundedSender<Settling>,
    ) {
        let mut first = Some(first);
        for delivery in deliveries {
            let slot = match first.take() {
                Some(permit) => permit,
                // Only this loop acquires slots, so the ones counted free are still free.
                None => self
                    .slots
                    .clone()
                    .try_acquire_owned()
                    .expect("free slot counted before claiming"),
            };
            let handler = self.handler.clone();
            let workers = self.workers.clone();
            let settle_tx = settle_tx.clone();
            let telemetry = self.queues.inner.telemetry.clone();
            let clock = self.queues.inner.clock.clone();
            tokio::spawn(async move {
                let worker = workers.acquire_owned().await.expect("workers never close");
                let lease = delivery.lease.clone();
                let cause = Cause {
                    message_id: delivery.message.id.to_string(),
                    correlation_id: delivery.message.envelope.correlation_id.clone(),
                    traceparent: delivery.traceparent,
                    tracestate: delivery.message.envelope.tracestate.clone(),
                };
                let span = telemetry::handler_span(&delivery);
                let started = clock.now_system();
                // A panicking handler fails its delivery instead of the consumer.
                let handled = AssertUnwindSafe(with_cause(cause, handler(delivery)))
                    .catch_unwind()
                    .instrument(span)
                    .await;
                let elapsed = clock
                    .now_system()
                    .duration_since(started)
                    .unwrap_or_default();
                telemetry
                    .metrics()
                    .handler_ran(lease.queue.shared(), elapsed);
                let outcome = match handled {
                    Ok(outcome) => outcome,
                    Err(panic) => Outcome::Nack {
                        error: format!("handler panicked: {}", panic_message(&panic)),
                    },
                };
                drop(worker);
                // The settler outlives every handler (it stops after the drain).
                let _ = settle_tx.send((lease, outcome, slot));
            });
        }
    }
}

/// Settles handled deliveries in batches: whatever accumulated while the
/// previous batch was being committed goes in the next one.
async fn settle(queues: Queues, mut outcomes: mpsc::UnboundedReceiver<Settling>) {
    let mut batch = Vec::with_capacity(SETTLE_BATCH_MAX);
    while outcomes.recv_many(&mut batch, SETTLE_BATCH_MAX).await > 0 {
        let mut slots = Vec::with_capacity(batch.len());
        let items = batch
            .drain(..)
            .map(|(lease, outcome, slot)| {
                slots.push(slot);
                (lease, outcome)
            })
            .collect::<Vec<_>>();
        let leases: Vec<LeaseToken> = items.iter().map(|(lease, _)| lease.clone()).collect();
        // Handled deliveries leave the prefetch window now, as an ack sent
        // to RabbitMQ frees its slot: the next claim need not wait for this
        // commit (they often share one). The messages stay leased, so
        // invisible, until it lands; the drain still waits for it.
        drop(slots);
        for (lease, result) in leases.iter().zip(queues.settle_all_at_commit(items).await) {
            if let Err(e) = result {
                tracing::warn!(lease = %lease, cause = %e, "push consumer could not settle a delivery");
            }
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
