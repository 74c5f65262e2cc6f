//! Group commit of row-per-claim nonce counts (`nc_lease = 0`), on SQLite and
//! PostgreSQL.
//!
//! Each claim on its own is a transaction: on SQLite a WAL append and two
//! hand-offs to sqlx's connection thread, on PostgreSQL a commit that waits
//! for the WAL flush. Here concurrent claims queue on a channel while the
//! writer task is busy;
//! each round takes everything queued (up to [`MAX_GROUP`]) and decides it
//! with ONE multi-row `INSERT ... SELECT FROM (VALUES ...) WHERE <window>
//! ON CONFLICT DO NOTHING RETURNING` statement: one transaction for the
//! group. Nobody is answered before that statement has committed, and a
//! failed statement fails every claim of the group (503).
//!
//! A group means exactly what its claims would mean one after another: the
//! statement sees only the rows from before it, so repeats and below-window
//! counts *within* the group are decided here first, in arrival order.

use std::collections::{HashMap, HashSet};

use rocket::tokio::sync::{mpsc, oneshot};

use super::{Claim, StoreError};

/// The pool the writer task runs its statements on.
#[derive(Debug, Clone)]
pub(super) enum WriterPool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Most claims decided by one statement (4 bound values each, well under
/// SQLite's limit of 32766 parameters and PostgreSQL's of 65535).
const MAX_GROUP: usize = 256;

/// One claim waiting for its group.
pub(super) struct ClaimRequest {
    nonce: String,
    cnonce: String,
    nc: u32,
    expires_at: i64,
    reply: oneshot::Sender<Result<Claim, StoreError>>,
}

/// The handle claims are sent through.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<ClaimRequest>,
}

impl GroupCommit {
    /// Starts the writer task on the current runtime.
    pub(super) fn start(pool: WriterPool, window: u32) -> GroupCommit {
        let (queue, requests) = mpsc::channel(4 * MAX_GROUP);
        rocket::tokio::spawn(run(pool, window, requests));
        GroupCommit { queue }
    }

    /// Claims (nonce, cnonce, nc) with the next group.
    pub(super) async fn claim(
        &self,
        nonce: &str,
        cnonce: &str,
        nc: u32,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        let stopped = || StoreError::new("the nonce-count claim writer has stopped");
        let (reply, answer) = oneshot::channel();
        let request = ClaimRequest {
            nonce: nonce.to_owned(),
            cnonce: cnonce.to_owned(),
            nc,
            expires_at,
            reply,
        };
        self.queue.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(pool: WriterPool, window: u32, mut requests: mpsc::Receiver<ClaimRequest>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while requests.recv_many(&mut group, MAX_GROUP).await > 0 {
        match decide(&pool, window, &group).await {
            Ok(outcomes) => {
                for (request, outcome) in group.drain(..).zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for request in group.drain(..) {
                    let _ = request.reply.send(Err(StoreError::new(message.clone())));
                }
            }
        }
    }
}

/// Decides every claim of `group` with (at most) one statement.
async fn decide(
    pool: &WriterPool,
    window: u32,
    group: &[ClaimRequest],
) -> Result<Vec<Claim>, sqlx::Error> {
    let mut outcomes = vec![Claim::Replayed; group.len()];
    // In arrival order: the highest count so far on each nonce, and the keys
    // so far. A refused claim cannot raise the highest: its count is below
    // a row that already exists.
    let mut highest: HashMap<&str, u32> = HashMap::new();
    let mut seen: HashSet<(&str, &str, u32)> = HashSet::new();
    let mut asked = Vec::with_capacity(group.len());
    for (i, c) in group.iter().enumerate() {
        let top = highest.entry(c.nonce.as_str()).or_insert(0);
        let below = u64::from(c.nc) + u64::from(window) <= u64::from(*top);
        *top = (*top).max(c.nc);
        if !below && seen.insert((&c.nonce, &c.cnonce, c.nc)) {
            asked.push(i);
        }
    }
    if asked.is_empty() {
        return Ok(outcomes);
    }
    // Explicit types: PostgreSQL would take untyped VALUES parameters as text.
    let mut sql = String::from(
        "INSERT INTO digest_auth_nonce_counts (nonce, nc, cnonce, expires_at) \
         SELECT v.column1, v.column2, v.column3, v.column4 FROM (VALUES ",
    );
    for k in 0..asked.len() {
        let n = 4 * k;
        sql.push_str(if k == 0 { "" } else { ", " });
        sql.push_str(&format!(
            "(CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT))",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        ));
    }
    // Rows go in key order: two instances whose groups share keys then wait
    // for each other's uncommitted rows in the same order. In arrival order,
    // each could hold a key the other wanted next, and PostgreSQL aborted
    // one of the two groups as a deadlock (every claim in it a 503).
    sql.push_str(&format!(
        ") AS v WHERE v.column2 + ${} > COALESCE((SELECT MAX(nc) FROM digest_auth_nonce_counts \
         WHERE nonce = v.column1), 0) AND NOT EXISTS (SELECT 1 FROM digest_auth_nonce_leases \
         WHERE nonce = v.column1) ORDER BY v.column1, v.column2, v.column3 \
         ON CONFLICT DO NOTHING RETURNING nonce, nc, cnonce",
        4 * asked.len() + 1
    ));
    // The same binds for either pool; the query types differ.
    macro_rules! fetch {
        ($p:expr) => {{
            let mut query = sqlx::query_as::<_, (String, i64, String)>(&sql);
            for &i in &asked {
                let c = &group[i];
                query = query
                    .bind(c.nonce.as_str())
                    .bind(i64::from(c.nc))
                    .bind(c.cnonce.as_str())
                    .bind(c.expires_at);
            }
            query.bind(i64::from(window)).fetch_all($p).await?
        }};
    }
    let rows = match pool {
        #[cfg(feature = "sqlite")]
        WriterPool::Sqlite(p) => fetch!(p),
        #[cfg(feature = "postgres")]
        WriterPool::Postgres(p) => fetch!(p),
    };
    let inserted: HashSet<(String, i64, String)> = rows.into_iter().collect();
    for &i in &asked {
        let c = &group[i];
        if inserted.contains(&(c.nonce.clone(), i64::from(c.nc), c.cnonce.clone())) {
            outcomes[i] = Claim::Accepted;
        }
    }
    Ok(outcomes)
}
