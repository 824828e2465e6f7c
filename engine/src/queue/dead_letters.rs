//! Operator actions on dead letters: list, count (a preview of what an
//! action would touch), retry to the queue they came from, move, purge.
//!
//! A dead letter keeps its origin and history, so a retry needs no input
//! but the selection.

use std::collections::{BTreeSet, HashMap};

use crate::envelope::MessageId;
use crate::feed::FeedKind;
use crate::queue::{DeadReason, Message, QueueError, Queues, storage_error, to_message};
use crate::storage::{DeadLetterQuery, QueueStore};
use crate::telemetry::{MessageIds, OperatorAction};

/// Selects dead letters. Every field narrows the selection; an empty filter
/// selects all dead letters.
#[derive(Clone, Debug, Default)]
pub struct DeadLetterFilter {
    /// Only those sitting in this queue (a dead-letter queue, or a queue
    /// without one that parked them).
    pub queue: Option<String>,
    /// Only those dead-lettered from this queue.
    pub origin: Option<String>,
    /// Only those with this reason.
    pub reason: Option<DeadReason>,
    /// Only these messages.
    pub ids: Option<Vec<MessageId>>,
    /// Listing only: at most this many.
    pub limit: Option<u32>,
}

impl Queues {
    /// Dead letters matching `filter`, oldest first (durable ones first).
    pub async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<Message>, QueueError> {
        let mut messages = Vec::new();
        for durable in self.stores_for(filter)? {
            let query = self.query(filter)?;
            let stored = self
                .store(durable)
                .dead_letters(query)
                .await
                .map_err(|e| storage_error("*", e))?;
            for message in stored {
                let queue = self
                    .entry_by_id(durable, message.queue_id)
                    .map(|e| e.name.to_string())
                    .unwrap_or_default();
                messages.push(to_message(&queue, message)?);
            }
        }
        if let Some(limit) = filter.limit {
            messages.truncate(limit as usize);
        }
        Ok(messages)
    }

    /// How many dead letters match `filter`: what a retry, move or purge
    /// with the same filter would touch.
    pub async fn count_dead_letters(&self, filter: &DeadLetterFilter) -> Result<u64, QueueError> {
        let mut n = 0;
        for durable in self.stores_for(filter)? {
            let query = self.query(filter)?;
            n += self
                .store(durable)
                .count_dead_letters(query)
                .await
                .map_err(|e| storage_error("*", e))?;
        }
        Ok(n)
    }

    /// Puts matching dead letters back into the queues they were
    /// dead-lettered from: ready now, attempts reset, history extended.
    /// Returns the ids retried.
    pub async fn retry_dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<MessageId>, QueueError> {
        let selected = self
            .dead_letters(&DeadLetterFilter {
                limit: None,
                ..filter.clone()
            })
            .await?;
        let origins: BTreeSet<String> = selected
            .iter()
            .filter_map(|m| m.dead_letter.as_ref().map(|d| d.origin_queue.clone()))
            .collect();
        let mut retried = Vec::new();
        for origin in origins {
            let narrowed = DeadLetterFilter {
                origin: Some(origin.clone()),
                limit: None,
                ..filter.clone()
            };
            retried.extend(
                self.redrive(&narrowed, &origin, OperatorAction::Retried)
                    .await?,
            );
        }
        Ok(retried)
    }

    /// Moves matching dead letters to queue `to`, ready now. Only dead
    /// letters kept with `to`'s durability can move there: a filter naming a
    /// queue of the other durability is refused, and without a queue filter
    /// only dead letters of `to`'s durability are selected.
    pub async fn move_dead_letters(
        &self,
        filter: &DeadLetterFilter,
        to: &str,
    ) -> Result<Vec<MessageId>, QueueError> {
        self.redrive(
            &DeadLetterFilter {
                limit: None,
                ..filter.clone()
            },
            to,
            OperatorAction::Moved,
        )
        .await
    }

    /// Deletes matching dead letters for good. Returns how many.
    pub async fn purge_dead_letters(&self, filter: &DeadLetterFilter) -> Result<u64, QueueError> {
        let selected = self
            .dead_letters(&DeadLetterFilter {
                limit: None,
                ..filter.clone()
            })
            .await?;
        let mut n = 0;
        for durable in self.stores_for(filter)? {
            let query = self.query(&DeadLetterFilter {
                limit: None,
                ..filter.clone()
            })?;
            n += self
                .store(durable)
                .purge_dead_letters(query)
                .await
                .map_err(|e| storage_error("*", e))?;
        }
        let now = self.inner.clock.now();
        for message in selected {
            let queue: std::sync::Arc<str> = message.queue.as_str().into();
            self.trace_operator_action(&queue, &message, OperatorAction::Purged, None);
            self.inner
                .feed
                .emit(now, &queue, message.id, FeedKind::Purged);
        }
        Ok(n)
    }

    async fn redrive(
        &self,
        filter: &DeadLetterFilter,
        to: &str,
        action: OperatorAction,
    ) -> Result<Vec<MessageId>, QueueError> {
        let target = self.entry(to)?;
        if let Some(queue) = &filter.queue {
            let source = self.entry(queue)?;
            if source.spec.durable != target.spec.durable {
                return Err(QueueError::InvalidSpec {
                    queue: to.to_owned(),
                    reason: format!(
                        "dead letters in `{queue}` (durable = {}) cannot move to a queue with durable = {}",
                        source.spec.durable, target.spec.durable
                    ),
                });
            }
        }
        // What they were, for their spans: operator actions are rare, the
        // extra read is cheap beside them.
        let before: HashMap<MessageId, Message> = self
            .dead_letters(&DeadLetterFilter {
                limit: None,
                ..filter.clone()
            })
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let query = self.query(filter)?;
        let now = self.inner.clock.now();
        let ids = self
            .store(target.spec.durable)
            .redrive_dead_letters(query, target.id, to.to_owned(), action.as_str(), now)
            .await
            .map_err(|e| storage_error(to, e))?;
        for id in &ids {
            if let Some(message) = before.get(id) {
                let queue: std::sync::Arc<str> = message.queue.as_str().into();
                self.trace_operator_action(&queue, message, action, Some(to));
            }
            self.inner.feed.emit(
                now,
                target.name.shared(),
                *id,
                FeedKind::Redriven { to: to.to_owned() },
            );
        }
        target.wake.notify_waiters();
        Ok(ids)
    }

    fn trace_operator_action(
        &self,
        queue: &std::sync::Arc<str>,
        message: &Message,
        action: OperatorAction,
        to: Option<&str>,
    ) {
        let parked = message
            .dead_letter
            .as_ref()
            .is_some_and(|d| d.origin_queue == message.queue);
        let ids = MessageIds::new(queue, message.id, &message.envelope);
        self.inner
            .telemetry
            .operator_action(&ids, &message.envelope, action, to, parked);
    }

    /// Which stores a filter can match: both, or the one holding its queue.
    fn stores_for(&self, filter: &DeadLetterFilter) -> Result<Vec<bool>, QueueError> {
        match &filter.queue {
            Some(queue) => Ok(vec![self.entry(queue)?.spec.durable]),
            None => Ok(vec![true, false]),
        }
    }

    fn query(&self, filter: &DeadLetterFilter) -> Result<DeadLetterQuery, QueueError> {
        let queue_id = match &filter.queue {
            Some(queue) => Some(self.entry(queue)?.id),
            None => None,
        };
        Ok(DeadLetterQuery {
            queue_id,
            origin_queue: filter.origin.clone(),
            reason: filter.reason,
            ids: filter.ids.clone(),
            after_seq: None,
            limit: filter.limit,
        })
    }
}
