//! Group commit of row-per-claim nonce counts (`nc_lease = 0`).
//!
//! Each claim on its own would be a transaction: on SQLite a WAL append and
//! two hand-offs to sqlx's connection thread, on PostgreSQL a commit that
//! waits for the WAL flush. Here concurrent claims queue on a channel while
//! the writer task is busy; each round takes everything queued (up to
//! [`MAX_GROUP`]) and hands the claims that need the store to one callback
//! call, which decides them in one round trip (the database store's group
//! statement). Nobody is answered before that call has returned, and a
//! failed call fails every claim of the group (503).
//!
//! A group means exactly what its claims would mean one after another: the
//! store sees only the records from before the group, so repeats and
//! below-window counts *within* the group are decided here first, in arrival
//! order, by the engine's rule; and each claim tells the callback how many
//! claims on its nonce come before it in the group, so that the per-nonce
//! bound holds for the group as a whole.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use rocket::tokio::sync::{mpsc, oneshot};

use super::{below_window, ClaimRequest};
use crate::store::{Claim, StoreError};

/// Most claims in one group (the group statement binds 7 values each, well
/// under SQLite's limit of 32766 parameters and PostgreSQL's of 65535).
pub(crate) const MAX_GROUP: usize = 256;

/// A claim of a group that the store has to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    pub(crate) nonce: String,
    pub(crate) cnonce: String,
    pub(crate) nc: u32,
    pub(crate) expires_at: i64,
    pub(crate) window: u32,
    /// Claims on the same nonce asked before this one in the group: the
    /// store counts them against the per-nonce bound, as if they had been
    /// accepted (a refusal then errs on the safe side).
    pub(crate) earlier: u32,
}

struct Queued {
    claim: Asked,
    reply: oneshot::Sender<Result<Claim, StoreError>>,
}

/// The handle claims are sent through.
#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<Queued>,
}

impl Batcher {
    /// Starts the writer task on the current runtime. `decide` gets the
    /// claims of one group that need the store, in arrival order, and
    /// returns for each whether it was accepted.
    pub(crate) fn start<D, Fut>(decide: D) -> Batcher
    where
        D: Fn(Vec<Asked>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<bool>, StoreError>> + Send + 'static,
    {
        let (queue, requests) = mpsc::channel(4 * MAX_GROUP);
        rocket::tokio::spawn(run(decide, requests));
        Batcher { queue }
    }

    /// Claims `request` with the next group.
    pub(crate) async fn claim(&self, request: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let stopped = || StoreError::new("the nonce-count claim writer has stopped");
        let (reply, answer) = oneshot::channel();
        let claim = Asked {
            nonce: request.nonce.to_owned(),
            cnonce: request.cnonce.to_owned(),
            nc: request.nc,
            expires_at: request.expires_at,
            window: request.window,
            earlier: 0,
        };
        let queued = Queued { claim, reply };
        self.queue.send(queued).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run<D, Fut>(decide: D, mut requests: mpsc::Receiver<Queued>)
where
    D: Fn(Vec<Asked>) -> Fut,
    Fut: Future<Output = Result<Vec<bool>, StoreError>>,
{
    let mut group = Vec::with_capacity(MAX_GROUP);
    while requests.recv_many(&mut group, MAX_GROUP).await > 0 {
        // A claim whose request gave up (`store_timeout`, answered 503) is
        // not made: it would spend a count the client was never told of.
        group.retain(|queued| !queued.reply.is_closed());
        let (asked, claims) = pre_decide(&group);
        let answers = if claims.is_empty() {
            Ok(Vec::new())
        } else {
            // Once nobody waits, the call is dropped, and with it a command
            // the store has not been sent yet (a connection still coming back).
            rocket::tokio::select! {
                answers = decide(claims) => answers,
                () = all_gone(&mut group) => {
                    group.clear();
                    continue;
                }
            }
        };
        match answers {
            Ok(accepted) if accepted.len() == asked.len() => {
                let mut outcomes = vec![Claim::Replayed; group.len()];
                for (&i, yes) in asked.iter().zip(accepted) {
                    if yes {
                        outcomes[i] = Claim::Accepted;
                    }
                }
                for (queued, outcome) in group.drain(..).zip(outcomes) {
                    let _ = queued.reply.send(Ok(outcome));
                }
            }
            answers => {
                let message = match answers {
                    Err(e) => e.to_string(),
                    Ok(_) => "the group statement answered for another number of claims".into(),
                };
                for queued in group.drain(..) {
                    let _ = queued.reply.send(Err(StoreError::new(message.clone())));
                }
            }
        }
    }
}

/// Resolves once every request of `group` has stopped waiting.
async fn all_gone(group: &mut [Queued]) {
    for queued in group {
        queued.reply.closed().await;
    }
}

/// Which claims of `group` the store must decide (their indices, and the
/// claims with `earlier` filled in); the others are refused as in-group
/// repeats or below the window of an earlier claim of the group.
fn pre_decide(group: &[Queued]) -> (Vec<usize>, Vec<Asked>) {
    // In arrival order: the highest count so far on each nonce, how many
    // claims on it were asked, and the keys so far. A refused claim is
    // counted as if accepted, which can only refuse more, never accept twice.
    let mut highest: HashMap<&str, (u32, u32)> = HashMap::new();
    let mut seen: HashSet<(&str, &str, u32)> = HashSet::new();
    let (mut indices, mut asked) = (Vec::new(), Vec::new());
    for (i, queued) in group.iter().enumerate() {
        let c = &queued.claim;
        let (top, earlier) = highest.entry(c.nonce.as_str()).or_insert((0, 0));
        if below_window(c.nc, c.window, *top) {
            continue;
        }
        if !seen.insert((&c.nonce, &c.cnonce, c.nc)) {
            continue;
        }
        *top = (*top).max(c.nc);
        indices.push(i);
        asked.push(Asked {
            earlier: *earlier,
            ..c.clone()
        });
        *earlier += 1;
    }
    (indices, asked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::counts::NonceCounts;
    use std::sync::{Arc, Mutex};

    /// A store that decides by the engine, one claim after another.
    fn engine_store() -> impl Fn(Vec<Asked>) -> std::future::Ready<Result<Vec<bool>, StoreError>> {
        let nonces: Arc<Mutex<HashMap<String, NonceCounts>>> = Arc::default();
        move |claims| {
            let mut nonces = nonces.lock().unwrap();
            let answers = claims
                .into_iter()
                .map(|c| {
                    let counts = nonces
                        .entry(c.nonce.clone())
                        .or_insert_with(|| NonceCounts::new(c.expires_at));
                    counts.decide(&c.cnonce, c.nc, c.window) == Claim::Accepted
                })
                .collect();
            std::future::ready(Ok(answers))
        }
    }

    fn queued(nonce: &str, cnonce: &str, nc: u32) -> Queued {
        let (reply, _) = oneshot::channel();
        let claim = Asked {
            nonce: nonce.into(),
            cnonce: cnonce.into(),
            nc,
            expires_at: i64::MAX,
            window: 64,
            earlier: 0,
        };
        Queued { claim, reply }
    }

    #[test]
    fn in_group_repeats_and_below_window_are_refused_before_the_store() {
        let group = [
            queued("n", "c", 100),
            queued("n", "c", 100),
            queued("n", "c", 36),
            queued("n", "c", 37),
            queued("m", "c", 100),
        ];
        let (indices, asked) = pre_decide(&group);
        assert_eq!(indices, [0, 3, 4]);
        let earlier: Vec<u32> = asked.iter().map(|a| a.earlier).collect();
        assert_eq!(earlier, [0, 1, 0]);
    }

    #[rocket::async_test]
    async fn a_group_decides_as_its_claims_one_after_another() {
        let batcher = Batcher::start(engine_store());
        let mut tasks = Vec::new();
        for round in 0..2 {
            for nc in 1..=50u32 {
                let batcher = batcher.clone();
                tasks.push(rocket::tokio::spawn(async move {
                    let request = ClaimRequest::new("n", "c", nc, i64::MAX, 64);
                    (round, batcher.claim(request).await.unwrap())
                }));
            }
        }
        let mut accepted = 0;
        for task in tasks {
            let (_, claim) = task.await.unwrap();
            accepted += u32::from(claim == Claim::Accepted);
        }
        assert_eq!(accepted, 50);
    }

    fn at(nc: u32) -> ClaimRequest<'static> {
        ClaimRequest::new("n", "c", nc, i64::MAX, 64)
    }

    #[rocket::async_test]
    async fn a_claim_whose_request_gave_up_is_not_made() {
        // The first call waits to be released; a claim queued behind it
        // gives up meanwhile.
        let made: Arc<Mutex<Vec<u32>>> = Arc::default();
        let release = Arc::new(rocket::tokio::sync::Notify::new());
        let batcher = {
            let (made, release) = (made.clone(), release.clone());
            Batcher::start(move |claims: Vec<Asked>| {
                let (made, release) = (made.clone(), release.clone());
                async move {
                    made.lock().unwrap().extend(claims.iter().map(|c| c.nc));
                    if claims[0].nc == 1 {
                        release.notified().await;
                    }
                    Ok(vec![true; claims.len()])
                }
            })
        };
        let first = rocket::tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.claim(at(1)).await }
        });
        while made.lock().unwrap().is_empty() {
            rocket::tokio::task::yield_now().await;
        }
        let patience = std::time::Duration::from_millis(50);
        let gave_up = rocket::tokio::time::timeout(patience, batcher.claim(at(2))).await;
        assert!(gave_up.is_err());
        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap(), Claim::Accepted);
        assert_eq!(batcher.claim(at(3)).await.unwrap(), Claim::Accepted);
        assert_eq!(*made.lock().unwrap(), [1, 3], "count 2 was never made");
    }

    #[rocket::async_test]
    async fn a_call_nobody_waits_for_any_more_is_dropped() {
        struct Dropped(Arc<Mutex<bool>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = true;
            }
        }
        let dropped = Arc::new(Mutex::new(false));
        let batcher = {
            let dropped = dropped.clone();
            Batcher::start(move |claims: Vec<Asked>| {
                // Only the first call, which never ends on its own (a store
                // that hangs), flags its drop.
                let hangs = (claims[0].nc == 1).then(|| Dropped(dropped.clone()));
                async move {
                    if let Some(_flag) = hangs {
                        std::future::pending::<()>().await;
                    }
                    Ok(vec![true; claims.len()])
                }
            })
        };
        let patience = std::time::Duration::from_millis(50);
        assert!(rocket::tokio::time::timeout(patience, batcher.claim(at(1)))
            .await
            .is_err());
        // The writer is not held by the call: the next claim is decided.
        let next = rocket::tokio::time::timeout(patience * 100, batcher.claim(at(2)))
            .await
            .expect("the writer is still held by a call nobody waits for");
        assert_eq!(next.unwrap(), Claim::Accepted);
        assert!(*dropped.lock().unwrap());
    }

    #[rocket::async_test]
    async fn a_failed_round_fails_every_claim_of_it() {
        let batcher = Batcher::start(|_| async { Err(StoreError::new("down")) });
        let request = ClaimRequest::new("n", "c", 1, i64::MAX, 64);
        assert!(batcher.claim(request).await.is_err());
    }
}
