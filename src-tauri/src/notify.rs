//! A system notification when dead letters grow, from the local engine's
//! feed. Batched: at most one notification per [`WINDOW`], naming the
//! queues that lost messages since the last one.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard::{Engine, FeedKind};
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Shortest time between two notifications.
pub(crate) const WINDOW: Duration = Duration::from_secs(30);

/// Dead letters counted per source queue since the last notification.
#[derive(Debug, Default)]
pub(crate) struct Tally(BTreeMap<String, u64>);

impl Tally {
    pub(crate) fn add(&mut self, queue: &str) {
        *self.0.entry(queue.to_owned()).or_default() += 1;
    }

    /// The notification's body, and a reset; `None` when nothing happened.
    pub(crate) fn take_message(&mut self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let total: u64 = self.0.values().sum();
        let queues: Vec<String> = self.0.iter().map(|(q, n)| format!("{q} ({n})")).collect();
        self.0.clear();
        Some(format!(
            "{total} new dead letter{} from {}",
            if total == 1 { "" } else { "s" },
            queues.join(", ")
        ))
    }
}

/// Watches `engine`'s feed until the engine closes (or the task is
/// aborted) and notifies through the OS.
pub(crate) fn watch<R: Runtime>(app: AppHandle<R>, engine: &Engine) -> JoinHandle<()> {
    let mut feed = engine.feed();
    tokio::spawn(async move {
        let mut tally = Tally::default();
        let mut tick = tokio::time::interval(WINDOW);
        tick.tick().await;
        loop {
            tokio::select! {
                event = feed.recv() => match event {
                    Ok(event) => {
                        if matches!(event.kind, FeedKind::DeadLettered { .. }) {
                            tally.add(&event.queue);
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "dead-letter watcher fell behind the feed");
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if let Some(body) = tally.take_message() {
                        let shown = app
                            .notification()
                            .builder()
                            .title("Switchyard: dead letters growing")
                            .body(&body)
                            .show();
                        if let Err(e) = shown {
                            tracing::info!(error = %e, %body, "cannot show a notification");
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_names_queues_and_resets() {
        let mut tally = Tally::default();
        assert_eq!(tally.take_message(), None);
        tally.add("payments");
        tally.add("orders");
        tally.add("payments");
        assert_eq!(
            tally.take_message().as_deref(),
            Some("3 new dead letters from orders (1), payments (2)")
        );
        assert_eq!(tally.take_message(), None);
        tally.add("orders");
        assert_eq!(
            tally.take_message().as_deref(),
            Some("1 new dead letter from orders (1)")
        );
    }
}
