//! The demo workload: the spec's order-processing example running on real
//! queues, with the failures operators meet in production, so that queues,
//! retries, dead letters and flows have something to show.
//!
//! Orders enter `orders`; a handler reserves stock and forwards to
//! `payments`, which charges and forwards to `shipping`. Injected failures:
//! a flaky inventory service (nack, retried with backoff), declined payments
//! (rejected, dead-lettered at once), poison orders that fail every attempt
//! (dead-lettered after their retries), slow shipping, and a carrier outage:
//! those shipments fail until their retries run out, and succeed once an
//! operator retries the dead letter (the outage is over by then).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::envelope::OutgoingMessage;
use crate::queue::{
    Backoff, ConsumeOptions, Consumer, Delivery, Outcome, QueueError, QueueSpec, Queues,
};

/// The queues the demo declares, in flow order.
pub const QUEUES: [&str; 3] = ["orders", "payments", "shipping"];

/// An order as the demo sends it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    /// Order number.
    pub order_id: u64,
    /// Customer.
    pub customer: String,
    /// Amount in cents.
    pub amount_cents: u64,
    /// The demo's injected failure for this order, if any.
    pub trouble: Option<Trouble>,
}

/// What goes wrong with an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trouble {
    /// Inventory fails the first attempt (retried, then succeeds).
    FlakyInventory,
    /// The card is declined: rejected, dead-lettered at once.
    Declined,
    /// Malformed: fails on every attempt until dead-lettered.
    Poison,
    /// Shipping takes its time.
    SlowShipping,
    /// The carrier's API is down: shipping fails every attempt until the
    /// message is dead-lettered; an operator's retry then succeeds.
    CarrierOutage,
}

/// The running demo: stop it with [`Demo::stop`].
pub struct Demo {
    consumers: Vec<Consumer>,
    producer: tokio::task::JoinHandle<()>,
    /// Orders sent so far.
    pub n_orders: Arc<AtomicU64>,
}

/// Declares the demo's queues and starts its producer and consumers.
/// `order_interval` paces new orders.
pub async fn start(engine: &Engine, order_interval: Duration) -> Result<Demo, QueueError> {
    let queues = engine.queues();
    let backoff = Backoff {
        initial_ms: 500,
        multiplier: 2.0,
        max_ms: 5000,
        jitter: 0.2,
    };
    for queue in QUEUES {
        let spec = QueueSpec::new(queue)
            .dead_letter_queue(format!("{queue}.dlq"))
            .max_retries(3)
            .retry_backoff(backoff);
        queues.declare(spec).await?;
    }
    let options = || ConsumeOptions {
        prefetch: 20,
        concurrency: 8,
        ..ConsumeOptions::default()
    };
    let consumers = vec![
        queues
            .consume("orders", options(), {
                let queues = queues.clone();
                move |delivery| inventory(queues.clone(), delivery)
            })
            .await?,
        queues
            .consume("payments", options(), {
                let queues = queues.clone();
                move |delivery| payment(queues.clone(), delivery)
            })
            .await?,
        queues.consume("shipping", options(), shipping).await?,
    ];
    let n_orders = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn(produce(queues.clone(), order_interval, n_orders.clone()));
    Ok(Demo {
        consumers,
        producer,
        n_orders,
    })
}

impl Demo {
    /// Stops producing and waits for in-flight orders to be settled.
    pub async fn stop(self) -> Result<(), QueueError> {
        self.producer.abort();
        for consumer in self.consumers {
            consumer.unsubscribe().await?;
        }
        Ok(())
    }
}

/// The order with number `n`: most are fine, some carry trouble.
pub fn order(n: u64) -> Order {
    let trouble = match n % 20 {
        3 | 11 => Some(Trouble::FlakyInventory),
        7 => Some(Trouble::Declined),
        13 => Some(Trouble::SlowShipping),
        17 => Some(Trouble::CarrierOutage),
        19 if n % 40 == 19 => Some(Trouble::Poison),
        _ => None,
    };
    let customers = ["ada", "grace", "linus", "barbara", "ken"];
    Order {
        order_id: 1000 + n,
        customer: customers[(n % 5) as usize].to_owned(),
        amount_cents: 1500 + (n * 731) % 20_000,
        trouble,
    }
}

async fn produce(queues: Queues, interval: Duration, n_orders: Arc<AtomicU64>) {
    for n in 0u64.. {
        let order = order(n);
        let message = OutgoingMessage::json(&order)
            .source("shop")
            .idempotency_key(format!("order-{}", order.order_id));
        if let Err(e) = queues.send("orders", message).await {
            tracing::warn!(cause = %e, "demo producer could not send an order");
        }
        n_orders.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(interval).await;
    }
}

/// Sends the next step of the flow, carrying correlation and causation.
async fn forward(queues: &Queues, delivery: &Delivery, to: &str, source: &str) -> Outcome {
    let next = OutgoingMessage {
        payload: Some(delivery.message.payload.clone()),
        ..OutgoingMessage::default()
    };
    let message = delivery.follow_up(next.source(source));
    match queues.send(to, message).await {
        Ok(_) => Outcome::Ack,
        Err(e) => Outcome::Nack {
            error: format!("could not forward to {to}: {e}"),
        },
    }
}

fn parse(delivery: &Delivery) -> Result<Order, Outcome> {
    delivery
        .message
        .payload
        .to_json::<Order>()
        .map_err(|e| Outcome::Reject {
            error: format!("not an order: {e}"),
        })
}

async fn inventory(queues: Queues, delivery: Delivery) -> Outcome {
    let order = match parse(&delivery) {
        Ok(order) => order,
        Err(outcome) => return outcome,
    };
    match order.trouble {
        Some(Trouble::Poison) => Outcome::Nack {
            error: format!("order {}: line items do not parse", order.order_id),
        },
        Some(Trouble::FlakyInventory) if delivery.attempt == 1 => Outcome::Nack {
            error: "inventory service timed out after 2000 ms".to_owned(),
        },
        _ => forward(&queues, &delivery, "payments", "inventory").await,
    }
}

async fn payment(queues: Queues, delivery: Delivery) -> Outcome {
    let order = match parse(&delivery) {
        Ok(order) => order,
        Err(outcome) => return outcome,
    };
    if order.trouble == Some(Trouble::Declined) {
        return Outcome::Reject {
            error: format!(
                "card declined for {} ({} cents)",
                order.customer, order.amount_cents
            ),
        };
    }
    forward(&queues, &delivery, "shipping", "payment").await
}

async fn shipping(delivery: Delivery) -> Outcome {
    let retried_by_operator = delivery
        .message
        .history
        .iter()
        .any(|h| h.action == "retried");
    match parse(&delivery) {
        Ok(order) if order.trouble == Some(Trouble::CarrierOutage) && !retried_by_operator => {
            Outcome::Nack {
                error: format!(
                    "carrier API unavailable (HTTP 503) for order {}",
                    order.order_id
                ),
            }
        }
        Ok(order) if order.trouble == Some(Trouble::SlowShipping) => {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Outcome::Ack
        }
        Ok(_) => Outcome::Ack,
        Err(outcome) => outcome,
    }
}
