//! The storage conformance suite: one set of behaviour tests that every
//! backend must pass, written against the `QueueStore` trait only.
//!
//! Each test takes a freshly opened [`Store`]; the `backends!` macro at the
//! bottom instantiates every test for every backend (SQLite in a file,
//! SQLite in memory; PostgreSQL joins with its backend and is enabled by
//! `SWITCHYARD_TEST_POSTGRES_URL`).

use std::time::Duration;

use crate::clock::Timestamp;
use crate::envelope::{MessageId, Payload, TraceParent};
use crate::storage::{
    Answered, ClaimPolicy, DeadLetterQuery, DeadReason, FlowSummaryRow, InsertPolicy, LeaseRef,
    MessageState, NewMessage, OverflowAction, QueueId, QueueStore, Settlement, SpanBatch, SpanKey,
    SpanRecord, SpanStore, StaleReason, StorageError, Store,
};

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(ms: i64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

/// Shared with the SQLite backend's own tests.
pub(super) fn message(body: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        payload: Payload::bytes("text/plain", body.as_bytes().to_vec()),
        envelope: "{\"timestamp\":0,\"correlation_id\":\"c\"}".to_owned(),
        traceparent: None,
        visible_at: T0,
        expires_at: None,
        idempotency_key: None,
    }
}

/// Shared with the SQLite backend's own tests.
pub(super) fn insert_policy(now: Timestamp) -> InsertPolicy {
    InsertPolicy {
        now,
        length_max: None,
        overflow: OverflowAction::Reject,
        dedup_until: now.plus(Duration::from_secs(60)),
        queue_name: "q".to_owned(),
    }
}

/// Shared with the SQLite backend's own tests.
pub(super) fn claim_policy(now: Timestamp, lease_ms: i64) -> ClaimPolicy {
    ClaimPolicy {
        now,
        lease_until: Timestamp(now.0 + lease_ms),
        attempts_max: 3,
        dead_letter_to: None,
    }
}

async fn queue(store: &Store, name: &str) -> QueueId {
    store
        .create_queue(name.to_owned(), "{}".to_owned(), T0)
        .await
        .expect("create queue")
        .id
}

async fn send(store: &Store, queue_id: QueueId, body: &str) -> MessageId {
    let result = store
        .insert(queue_id, vec![message(body)], insert_policy(T0))
        .await
        .expect("insert");
    result.inserted[0].id
}

/// Calls `claim_or_wait` on a queue with nothing visible: the consumer
/// must be put in line.
async fn wait_in_line(
    store: &Store,
    queue_id: QueueId,
    now: Timestamp,
) -> crate::storage::WaitTicket {
    match store
        .claim_or_wait(queue_id, 5, claim_policy(now, 1000))
        .await
        .unwrap()
    {
        crate::storage::ClaimOrWait::Waiting(ticket) => ticket,
        other => panic!("expected to wait, got {other:?}"),
    }
}

/// Shared with the SQLite backend's own tests.
pub(super) fn lease_of(queue_id: QueueId, m: &crate::storage::StoredMessage) -> LeaseRef {
    LeaseRef {
        lease_gen: m.lease_gen,
        queue_id,
        seq: m.seq,
        attempt: m.attempts,
    }
}

async fn queue_names_are_unique(store: Store) {
    let id = queue(&store, "orders").await;
    let err = store
        .create_queue("orders".to_owned(), "{}".to_owned(), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::QueueExists { ref name } if name == "orders"),
        "{err}"
    );
    let rows = store.queues().await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.id, r.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(id, "orders")]
    );
}

async fn claims_are_fifo_and_count_attempts(store: Store) {
    let q = queue(&store, "q").await;
    let ids = [
        send(&store, q, "a").await,
        send(&store, q, "b").await,
        send(&store, q, "c").await,
    ];
    let first = store
        .claim(q, 2, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(first.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..2]);
    assert!(
        first.iter().all(|m| m.attempts == 1
            && m.state == MessageState::Leased
            && m.visible_at == at(1000))
    );
    let rest = store
        .claim(q, 10, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(rest.iter().map(|m| m.id).collect::<Vec<_>>(), ids[2..]);
    assert!(
        store
            .claim(q, 10, claim_policy(at(999), 1000))
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );
    // Leases ran out: visible again, in the original order, attempt 2.
    let again = store
        .claim(q, 10, claim_policy(at(1000), 1000))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert!(again.iter().all(|m| m.attempts == 2));
}

async fn settling_checks_the_lease(store: Store) {
    let q = queue(&store, "q").await;
    send(&store, q, "a").await;
    let m = store
        .claim(q, 1, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    let old = lease_of(q, &m);
    let stale = |e: StorageError| match e {
        StorageError::StaleLease(reason) => reason,
        other => panic!("expected a stale lease, got {other}"),
    };
    assert_eq!(
        stale(
            store
                .settle(old, Settlement::Ack, at(1000))
                .await
                .unwrap_err()
        ),
        StaleReason::Expired { at: at(1000) }
    );
    let m = store
        .claim(q, 1, claim_policy(at(1000), 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    assert_eq!(
        stale(
            store
                .settle(old, Settlement::Ack, at(1001))
                .await
                .unwrap_err()
        ),
        StaleReason::Superseded { current_attempt: 2 }
    );
    let current = lease_of(q, &m);
    let retry = Settlement::Retry {
        visible_at: at(5000),
        error: Some("x".to_owned()),
    };
    assert_eq!(store.settle(current, retry, at(1001)).await.unwrap(), m.id);
    assert_eq!(
        stale(
            store
                .settle(current, Settlement::Ack, at(1002))
                .await
                .unwrap_err()
        ),
        StaleReason::NotLeased
    );
    let m = store
        .claim(q, 1, claim_policy(at(5000), 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    assert_eq!(m.last_error.as_deref(), Some("x"));
    assert_eq!(
        store
            .settle(lease_of(q, &m), Settlement::Ack, at(5001))
            .await
            .unwrap(),
        m.id
    );
    assert_eq!(
        stale(
            store
                .settle(lease_of(q, &m), Settlement::Ack, at(5001))
                .await
                .unwrap_err()
        ),
        StaleReason::Gone
    );
}

async fn settle_many_settles_each_on_its_own(store: Store) {
    let q = queue(&store, "q").await;
    for body in ["a", "b", "c"] {
        send(&store, q, body).await;
    }
    let ms = store
        .claim(q, 3, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries;
    let stale = LeaseRef {
        lease_gen: 999_999,
        ..lease_of(q, &ms[1])
    };
    let results = store
        .settle_many(
            vec![
                (lease_of(q, &ms[0]), Settlement::Ack),
                (stale, Settlement::Ack),
                (lease_of(q, &ms[2]), Settlement::Ack),
            ],
            at(1),
            Answered::AtCommit,
        )
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    let counts = store.counts(q, "q".to_owned(), at(1)).await.unwrap();
    assert_eq!((counts.ready, counts.in_flight), (0, 1));
}

async fn retries_wait_until_due(store: Store) {
    let q = queue(&store, "q").await;
    send(&store, q, "a").await;
    let m = store
        .claim(q, 1, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    store
        .settle(
            lease_of(q, &m),
            Settlement::Retry {
                visible_at: at(300),
                error: None,
            },
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        store.next_visible_at(q, at(1)).await.unwrap(),
        Some(at(300))
    );
    let counts = store.counts(q, "q".to_owned(), at(1)).await.unwrap();
    assert_eq!(
        (counts.ready, counts.scheduled, counts.in_flight),
        (0, 1, 0)
    );
    assert!(
        store
            .claim(q, 1, claim_policy(at(299), 1000))
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );
    assert_eq!(
        store
            .claim(q, 1, claim_policy(at(300), 1000))
            .await
            .unwrap()
            .deliveries[0]
            .attempts,
        2
    );
}

async fn claims_dead_letter_expired_and_exhausted_messages(store: Store) {
    let q = queue(&store, "q").await;
    let dlq = queue(&store, "dlq").await;
    let expiring = NewMessage {
        expires_at: Some(at(100)),
        ..message("ttl")
    };
    let expiring_id = expiring.id;
    store
        .insert(q, vec![expiring], insert_policy(T0))
        .await
        .unwrap();
    let exhausted_id = send(&store, q, "poison").await;
    let policy = |now| ClaimPolicy {
        attempts_max: 1,
        dead_letter_to: Some(dlq),
        ..claim_policy(now, 50)
    };
    let claimed = store.claim(q, 10, policy(T0)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 2);
    // Both leases lapse; at t=100 one message has expired and the other used its only attempt.
    let claimed = store.claim(q, 10, policy(at(100))).await.unwrap();
    assert!(claimed.deliveries.is_empty());
    let mut reasons: Vec<_> = claimed
        .dead_lettered
        .iter()
        .map(|d| (d.id, d.reason))
        .collect();
    reasons.sort();
    let mut expected = vec![(exhausted_id, DeadReason::MaxRetries)];
    // A leased message is not expired while its consumer holds it; once its
    // lease lapses, it has used its attempt too.
    expected.push((expiring_id, DeadReason::MaxRetries));
    expected.sort();
    assert_eq!(reasons, expected);
    let dead = store
        .dead_letters(DeadLetterQuery {
            queue_id: Some(dlq),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .all(|m| m.state == MessageState::Ready && m.attempts == 0)
    );
    assert!(dead.iter().all(|m| {
        m.death
            .as_ref()
            .is_some_and(|d| d.origin_queue == "q" && d.attempts == 1)
    }));
    // Dead letters in a DLQ are deliverable there.
    assert_eq!(
        store
            .claim(dlq, 10, claim_policy(at(100), 10))
            .await
            .unwrap()
            .deliveries
            .len(),
        2
    );
}

async fn traceparents_are_kept_with_their_messages(store: Store) {
    let q = queue(&store, "q").await;
    let tp: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        .parse()
        .unwrap();
    let traced = NewMessage {
        traceparent: Some(tp),
        ..message("traced")
    };
    let traced_id = traced.id;
    store
        .insert(q, vec![traced, message("plain")], insert_policy(T0))
        .await
        .unwrap();
    let traceparents = |messages: &[crate::storage::StoredMessage]| {
        messages
            .iter()
            .map(|m| (m.id, m.traceparent))
            .collect::<Vec<_>>()
    };
    let peeked = store.peek(q, 10).await.unwrap();
    let plain_id = peeked[1].id;
    let expected = vec![(traced_id, Some(tp)), (plain_id, None)];
    assert_eq!(traceparents(&peeked), expected, "as read from the rows");
    // The first claim takes the bodies kept since the insert; the second
    // (after the leases lapse) reads the rows.
    let first = store.claim(q, 10, claim_policy(T0, 10)).await.unwrap();
    assert_eq!(traceparents(&first.deliveries), expected, "as sent");
    let policy = |now| ClaimPolicy {
        attempts_max: 2,
        ..claim_policy(now, 10)
    };
    let second = store.claim(q, 10, policy(at(10))).await.unwrap();
    assert_eq!(traceparents(&second.deliveries), expected, "as stored");
    // A dead-lettering carries it, for the dead-letter span.
    let third = store.claim(q, 10, policy(at(20))).await.unwrap();
    let mut dead: Vec<_> = third
        .dead_lettered
        .iter()
        .map(|d| (d.id, d.traceparent))
        .collect();
    dead.sort_by_key(|(id, _)| *id);
    let mut expected = expected;
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(dead, expected, "as dead-lettered");
}

async fn expiry_sweeps_ready_messages(store: Store) {
    let q = queue(&store, "q").await;
    let expiring = NewMessage {
        expires_at: Some(at(100)),
        ..message("ttl")
    };
    store
        .insert(q, vec![expiring, message("keep")], insert_policy(T0))
        .await
        .unwrap();
    assert!(
        store
            .expire(q, "q".to_owned(), None, at(99), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store
        .expire(q, "q".to_owned(), None, at(100), 10)
        .await
        .unwrap();
    assert_eq!(
        (dead.len(), dead[0].reason, dead[0].to),
        (1, DeadReason::Expired, None)
    );
    let counts = store.counts(q, "q".to_owned(), at(100)).await.unwrap();
    assert_eq!(
        (counts.ready, counts.parked, counts.dead_lettered),
        (1, 1, 1)
    );
}

async fn batches_are_atomic_and_overflow_is_enforced(store: Store) {
    let q = queue(&store, "q").await;
    let limited = |overflow| InsertPolicy {
        length_max: Some(2),
        overflow,
        ..insert_policy(T0)
    };
    let err = store
        .insert(
            q,
            vec![message("a"), message("b"), message("c")],
            limited(OverflowAction::Reject),
        )
        .await;
    assert!(matches!(
        err,
        Err(StorageError::QueueFull { length_max: 2 })
    ));
    assert_eq!(
        store.counts(q, "q".to_owned(), T0).await.unwrap().ready,
        0,
        "nothing of the batch stored"
    );
    let first = send(&store, q, "a").await;
    send(&store, q, "b").await;
    let result = store
        .insert(
            q,
            vec![message("c")],
            limited(OverflowAction::DeadLetterOldest { to: None }),
        )
        .await
        .unwrap();
    assert_eq!(
        result
            .dead_lettered
            .iter()
            .map(|d| (d.id, d.reason))
            .collect::<Vec<_>>(),
        vec![(first, DeadReason::Overflow)]
    );
    assert_eq!(store.counts(q, "q".to_owned(), T0).await.unwrap().ready, 2);
}

async fn idempotency_keys_dedup_until_they_lapse(store: Store) {
    let q = queue(&store, "q").await;
    let keyed = || NewMessage {
        idempotency_key: Some("k".to_owned()),
        ..message("a")
    };
    let first = store
        .insert(q, vec![keyed()], insert_policy(T0))
        .await
        .unwrap()
        .inserted[0];
    let again = store
        .insert(q, vec![keyed()], insert_policy(at(59_999)))
        .await
        .unwrap()
        .inserted[0];
    assert_eq!((again.id, again.duplicate), (first.id, true));
    store.maintain(at(60_000)).await.unwrap();
    let later = store
        .insert(q, vec![keyed()], insert_policy(at(60_000)))
        .await
        .unwrap()
        .inserted[0];
    assert!(!later.duplicate);
    assert_eq!(
        store
            .counts(q, "q".to_owned(), at(60_000))
            .await
            .unwrap()
            .ready,
        2
    );
}

async fn dead_letters_can_be_listed_redriven_and_purged(store: Store) {
    let q = queue(&store, "q").await;
    let other = queue(&store, "other").await;
    let mut ids = Vec::new();
    for body in ["a", "b", "c"] {
        ids.push(send(&store, q, body).await);
    }
    for m in store
        .claim(q, 3, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries
    {
        let death = Settlement::DeadLetter {
            reason: DeadReason::Rejected,
            to: None,
            error: Some("bad".to_owned()),
            queue_name: "q".to_owned(),
        };
        store.settle(lease_of(q, &m), death, at(1)).await.unwrap();
    }
    let all = DeadLetterQuery {
        origin_queue: Some("q".to_owned()),
        ..Default::default()
    };
    assert_eq!(store.count_dead_letters(all.clone()).await.unwrap(), 3);
    let listed = store
        .dead_letters(DeadLetterQuery {
            limit: Some(2),
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..2]);
    assert!(
        listed
            .iter()
            .all(|m| m.state == MessageState::Parked && m.last_error.as_deref() == Some("bad"))
    );

    let one = DeadLetterQuery {
        ids: Some(vec![ids[0]]),
        ..Default::default()
    };
    assert_eq!(
        store
            .redrive_dead_letters(one, other, "other".to_owned(), "moved", at(2))
            .await
            .unwrap(),
        vec![ids[0]]
    );
    let moved = store
        .claim(other, 10, claim_policy(at(2), 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!((moved.len(), moved[0].attempts), (1, 1));
    assert_eq!(
        moved[0]
            .history
            .iter()
            .map(|h| h.action.as_str())
            .collect::<Vec<_>>(),
        ["dead-lettered", "moved"]
    );

    assert_eq!(store.purge_dead_letters(all.clone()).await.unwrap(), 2);
    assert_eq!(store.count_dead_letters(all).await.unwrap(), 0);
}

async fn peek_and_delete(store: Store) {
    let q = queue(&store, "q").await;
    let ids = [send(&store, q, "a").await, send(&store, q, "b").await];
    let peeked = store.peek(q, 10).await.unwrap();
    assert_eq!(peeked.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert_eq!(peeked[0].payload.bytes, b"a");
    assert_eq!(
        store
            .claim(q, 10, claim_policy(T0, 10))
            .await
            .unwrap()
            .deliveries
            .len(),
        2,
        "peek leased nothing"
    );
    assert_eq!(store.delete_queue(q).await.unwrap(), 2);
    assert!(store.queues().await.unwrap().is_empty());
}

async fn group_commit_coalesces_concurrent_writes(store: Store) {
    let q = queue(&store, "q").await;
    let before = store.writer_stats();
    let writes = (0..200).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .insert(q, vec![message("x")], insert_policy(T0))
                .await
                .unwrap()
        })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.unwrap();
    }
    let after = store.writer_stats();
    assert_eq!(after.n_jobs - before.n_jobs, 200);
    assert!(
        after.n_transactions - before.n_transactions < 100,
        "{before:?} -> {after:?}"
    );
}

async fn a_waiting_consumer_is_served_by_the_next_send(store: Store) {
    // Goal: with nothing visible, claim_or_wait leaves the consumer in line;
    // the next insert leases the message to it (attempt 1) in the insert's
    // own transaction, and the ticket resolves once that is committed.
    let q = queue(&store, "q").await;
    let ticket = wait_in_line(&store, q, T0).await;
    assert_eq!(ticket.next_visible_at, None);
    let id = send(&store, q, "direct").await;
    let served = ticket.deliveries.await.expect("served").expect("committed");
    assert_eq!(served.deliveries.len(), 1);
    let m = &served.deliveries[0];
    assert_eq!(
        (m.id, m.attempts, m.state, m.visible_at),
        (id, 1, MessageState::Leased, at(1000))
    );
    assert_eq!(m.payload.bytes, b"direct");
    let counts = store.counts(q, "q".to_owned(), T0).await.unwrap();
    assert_eq!((counts.ready, counts.in_flight), (0, 1), "stored as leased");
    assert!(
        store
            .claim(q, 5, claim_policy(T0, 1000))
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );
    assert_eq!(
        store
            .settle(lease_of(q, m), Settlement::Ack, at(1))
            .await
            .unwrap(),
        id
    );
}

async fn a_cancelled_wait_is_not_served(store: Store) {
    let q = queue(&store, "q").await;
    let mut ticket = wait_in_line(&store, q, T0).await;
    assert!(store.cancel_wait(q, ticket.id).await.unwrap());
    send(&store, q, "later").await;
    assert!(
        ticket.deliveries.try_recv().is_err(),
        "a cancelled wait gets nothing"
    );
    assert_eq!(
        store.counts(q, "q".to_owned(), T0).await.unwrap().ready,
        1,
        "the message waits in the queue"
    );
    // Served before the cancel: cancel says so and the ticket holds the deliveries.
    let ticket = match store
        .claim_or_wait(q, 5, claim_policy(T0, 1000))
        .await
        .unwrap()
    {
        crate::storage::ClaimOrWait::Claimed(claimed) => {
            assert_eq!(claimed.deliveries.len(), 1);
            wait_in_line(&store, q, T0).await
        }
        other => panic!("expected the waiting message, got {other:?}"),
    };
    send(&store, q, "served").await;
    assert!(
        !store.cancel_wait(q, ticket.id).await.unwrap(),
        "already served"
    );
    // Served before the cancel: the deliveries arrive once durable.
    let served = ticket.deliveries.await.expect("served").expect("committed");
    assert_eq!(served.deliveries.len(), 1);
}

async fn waiters_do_not_jump_the_queue(store: Store) {
    // Goal: a send serves waiting consumers only when nothing older is
    // visible, so delivery stays in order.
    let q = queue(&store, "q").await;
    let old = NewMessage {
        visible_at: at(50),
        ..message("delayed")
    };
    store.insert(q, vec![old], insert_policy(T0)).await.unwrap();
    let ticket = wait_in_line(&store, q, T0).await;
    assert_eq!(
        ticket.next_visible_at,
        Some(at(50)),
        "wake up for the delayed message"
    );
    let new = NewMessage {
        visible_at: at(60),
        ..message("new")
    };
    let policy = InsertPolicy {
        now: at(60),
        ..insert_policy(at(60))
    };
    store.insert(q, vec![new], policy).await.unwrap();
    let mut deliveries = ticket.deliveries;
    assert!(
        deliveries.try_recv().is_err(),
        "the delayed message is visible and older: no direct delivery"
    );
    let claimed = store
        .claim(q, 5, claim_policy(at(60), 1000))
        .await
        .unwrap()
        .deliveries;
    let bodies: Vec<&[u8]> = claimed.iter().map(|m| m.payload.bytes.as_slice()).collect();
    assert_eq!(bodies, [b"delayed".as_slice(), b"new".as_slice()]);
}

async fn a_token_never_matches_a_later_lease(store: Store) {
    // Goal: attempts restart at 0 when a message is dead-lettered or
    // redriven, so (seq, attempt) can repeat; the lease number cannot. An
    // old holder's ack must not delete the message a new holder works on.
    let q = queue(&store, "q").await;
    let dlq = queue(&store, "dlq").await;
    send(&store, q, "a").await;
    let policy = |now| ClaimPolicy {
        attempts_max: 1,
        dead_letter_to: Some(dlq),
        ..claim_policy(now, 1000)
    };
    store.claim(q, 1, policy(T0)).await.unwrap();
    // Lease lapses on the only attempt: dead-lettered into dlq, attempts 0.
    let moved = store.claim(q, 1, policy(at(1000))).await.unwrap();
    assert_eq!(moved.dead_lettered.len(), 1);
    let first = store
        .claim(dlq, 1, claim_policy(at(1000), 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    let query = DeadLetterQuery {
        queue_id: Some(dlq),
        ..Default::default()
    };
    // The operator sends it back, it fails again, and is leased in dlq again.
    store
        .redrive_dead_letters(query, q, "q".to_owned(), "retried", at(1001))
        .await
        .unwrap();
    store.claim(q, 1, policy(at(1001))).await.unwrap();
    store.claim(q, 1, policy(at(2001))).await.unwrap();
    let second = store
        .claim(dlq, 1, claim_policy(at(2001), 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    assert_eq!(
        (first.seq, first.attempts),
        (second.seq, second.attempts),
        "same seq and attempt"
    );
    let err = store
        .settle(lease_of(dlq, &first), Settlement::Ack, at(2002))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::StaleLease(StaleReason::Superseded { .. })
        ),
        "{err}"
    );
    assert_eq!(
        store
            .settle(lease_of(dlq, &second), Settlement::Ack, at(2002))
            .await
            .unwrap(),
        second.id
    );
}

fn span(trace: &str, id: &str, correlation: &str, message: &str, start_us: i64) -> SpanRecord {
    let mut attributes = serde_json::Map::new();
    attributes.insert("messaging.system".to_owned(), "switchyard".into());
    SpanRecord {
        trace_id: trace.to_owned(),
        span_id: id.to_owned(),
        parent_span_id: None,
        name: "send orders".to_owned(),
        kind: "producer".to_owned(),
        start_us,
        duration_us: 5,
        status: "ok".to_owned(),
        status_message: None,
        operation: Some("send".to_owned()),
        queue: Some("orders".to_owned()),
        message_id: Some(message.to_owned()),
        correlation_id: Some(correlation.to_owned()),
        causation_id: None,
        attempt: Some(1),
        outcome: None,
        attributes,
        links: vec![("t0".to_owned(), "s0".to_owned())],
    }
}

/// Stores `spans` as one batch.
fn record(store: &Store, spans: Vec<SpanRecord>) {
    let batch = SpanBatch::from_records(&spans).expect("spans of a flow");
    store.record_spans(&batch).unwrap();
}

async fn spans_are_found_by_correlation_trace_and_message(store: Store) {
    let a = span("t1", "s1", "c1", "m1", 10);
    let mut b = span("t1", "s2", "c1", "m2", 5);
    b.parent_span_id = Some("s1".to_owned());
    b.status = "error".to_owned();
    b.status_message = Some("boom".to_owned());
    let c = span("t2", "s3", "c2", "m1", 20);
    record(&store, vec![a.clone(), b.clone(), c.clone()]);
    let by = |key| store.spans(key, 100);
    assert_eq!(
        by(SpanKey::Correlation("c1".to_owned())).await.unwrap(),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(
        by(SpanKey::Trace("t2".to_owned())).await.unwrap(),
        vec![c.clone()]
    );
    assert_eq!(
        by(SpanKey::Message("m1".to_owned())).await.unwrap(),
        vec![a, c]
    );
    assert!(
        by(SpanKey::Message("none".to_owned()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .spans(SpanKey::Correlation("c1".to_owned()), 1)
            .await
            .unwrap(),
        vec![b]
    );
}

async fn recent_flows_summarize_the_latest_activity(store: Store) {
    let mut dead = span("t1", "s2", "c1", "m1", 30);
    dead.operation = Some("dead_letter".to_owned());
    dead.status = "error".to_owned();
    dead.queue = Some("orders.dlq".to_owned());
    record(
        &store,
        vec![
            span("t1", "s1", "c1", "m1", 10),
            dead,
            span("t2", "s3", "c2", "m2", 20),
        ],
    );
    let flows = store.recent_flows(10, 1000).await.unwrap();
    assert_eq!(
        flows,
        vec![
            FlowSummaryRow {
                correlation_id: "c1".to_owned(),
                first_us: 10,
                last_us: 35,
                n_spans: 2,
                n_errors: 1,
                n_dead_lettered: 1,
                queues: vec!["orders".to_owned(), "orders.dlq".to_owned()],
            },
            FlowSummaryRow {
                correlation_id: "c2".to_owned(),
                first_us: 20,
                last_us: 25,
                n_spans: 1,
                n_errors: 0,
                n_dead_lettered: 0,
                queues: vec!["orders".to_owned()],
            },
        ]
    );
    assert_eq!(store.recent_flows(1, 1000).await.unwrap().len(), 1);
    // The window looks at the newest spans (by start) only.
    let newest = store.recent_flows(10, 1).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].correlation_id, "c1");
    assert_eq!(newest[0].n_spans, 1);
}

async fn spans_are_pruned_by_age_then_count(store: Store) {
    // One batch per span here, so whole-batch retention is per span.
    for n in 0..6 {
        record(&store, vec![span("t", &format!("s{n}"), "c", "m", n * 10)]);
    }
    assert_eq!(
        store.prune_spans(20, 100).await.unwrap(),
        2,
        "s0 and s1 are too old"
    );
    assert_eq!(
        store.prune_spans(0, 3).await.unwrap(),
        1,
        "then the oldest over the limit"
    );
    assert_eq!(
        store.prune_spans(0, 3).await.unwrap(),
        0,
        "nothing more to do"
    );
    let kept: Vec<String> = store
        .spans(SpanKey::Trace("t".to_owned()), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.span_id)
        .collect();
    assert_eq!(kept, vec!["s3", "s4", "s5"]);
    // A batch goes whole: three spans recorded together stay or go together.
    let batch = (6..9)
        .map(|n| span("t", &format!("s{n}"), "c", "m", 100 + n))
        .collect();
    record(&store, batch);
    assert_eq!(
        store.prune_spans(0, 3).await.unwrap(),
        3,
        "s3, s4, s5 make room"
    );
    let kept = store
        .spans(SpanKey::Correlation("c".to_owned()), 100)
        .await
        .unwrap();
    assert_eq!(kept.len(), 3);
}

/// Opens a backend for one test and keeps what it needs alive.
struct Opened {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite_file() -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = crate::storage::sqlite::SqliteOptions {
        path: Some(dir.path().join("conformance.db")),
        keep_spans: true,
        ..Default::default()
    };
    let store =
        Store::Sqlite(crate::storage::sqlite::SqliteStore::open(options).expect("open sqlite"));
    Opened {
        store,
        _dir: Some(dir),
    }
}

fn sqlite_memory() -> Opened {
    let store = Store::Sqlite(
        crate::storage::sqlite::SqliteStore::open(crate::storage::sqlite::SqliteOptions {
            keep_spans: true,
            ..Default::default()
        })
        .expect("open sqlite in memory"),
    );
    Opened { store, _dir: None }
}

/// Instantiates every test of the suite for one backend.
macro_rules! conformance_tests {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let opened = super::$backend();
                    super::$test(opened.store.clone()).await;
                    opened.store.close().await;
                }
            )*
        }
    };
}

/// The suite: every backend runs all of these.
macro_rules! suite {
    ($backend:ident) => {
        conformance_tests!(
            $backend:
            queue_names_are_unique,
            claims_are_fifo_and_count_attempts,
            settling_checks_the_lease,
            settle_many_settles_each_on_its_own,
            retries_wait_until_due,
            claims_dead_letter_expired_and_exhausted_messages,
            traceparents_are_kept_with_their_messages,
            expiry_sweeps_ready_messages,
            batches_are_atomic_and_overflow_is_enforced,
            idempotency_keys_dedup_until_they_lapse,
            dead_letters_can_be_listed_redriven_and_purged,
            peek_and_delete,
            group_commit_coalesces_concurrent_writes,
            a_waiting_consumer_is_served_by_the_next_send,
            a_cancelled_wait_is_not_served,
            waiters_do_not_jump_the_queue,
            a_token_never_matches_a_later_lease,
            spans_are_found_by_correlation_trace_and_message,
            recent_flows_summarize_the_latest_activity,
            spans_are_pruned_by_age_then_count,
        );
    };
}

suite!(sqlite_file);
suite!(sqlite_memory);

/// Durable backends keep everything across a reopen, and rebuild what they
/// keep in memory from it.
#[tokio::test]
async fn sqlite_file_keeps_state_across_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = || crate::storage::sqlite::SqliteOptions {
        path: Some(dir.path().join("reopen.db")),
        ..Default::default()
    };
    let store = Store::Sqlite(crate::storage::sqlite::SqliteStore::open(options()).unwrap());
    let q = queue(&store, "q").await;
    let ids = [
        send(&store, q, "a").await,
        send(&store, q, "b").await,
        send(&store, q, "c").await,
    ];
    let leased = store
        .claim(q, 1, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    let retried = store
        .claim(q, 1, claim_policy(T0, 1000))
        .await
        .unwrap()
        .deliveries
        .remove(0);
    store
        .settle(
            lease_of(q, &retried),
            Settlement::Retry {
                visible_at: at(500),
                error: None,
            },
            T0,
        )
        .await
        .unwrap();
    store.close().await;

    let store = Store::Sqlite(crate::storage::sqlite::SqliteStore::open(options()).unwrap());
    let counts = store.counts(q, "q".to_owned(), T0).await.unwrap();
    assert_eq!(
        (counts.ready, counts.in_flight, counts.scheduled),
        (1, 1, 1)
    );
    // The lease survives the reopen and still works.
    assert_eq!(
        store
            .settle(lease_of(q, &leased), Settlement::Ack, at(1))
            .await
            .unwrap(),
        ids[0]
    );
    let later = store
        .claim(q, 10, claim_policy(at(500), 10))
        .await
        .unwrap()
        .deliveries;
    assert_eq!(
        later.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        vec![(ids[2], 1), (ids[1], 2)],
        "delivery order is by visibility: c was ready before b's retry fell due"
    );
    store.close().await;
}
