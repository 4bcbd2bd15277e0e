//! Storage: embedded SQLite by default, PostgreSQL by URL, through one set of
//! portable SQL statements on sqlx's `Any` driver.
//!
//! Times are stored as microseconds since the epoch (`BIGINT`) and formatted on
//! the way out; ids and base64 blobs as text, exactly as received.

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use zeroize::Zeroizing;

use crate::auth::VaultSecret;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("the stored vault secret is corrupt")]
    CorruptVault,
    #[error("cannot open the database {place}: {source}")]
    Open {
        place: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database {place} holds {threads} threads and {messages} messages but no vault: \
         refusing to create a new vault for it (every client would derive another key). \
         Was it copied without its -wal file? Copy it again with the relay stopped, \
         or move it aside to start an empty relay"
    )]
    NoVault {
        place: String,
        threads: i64,
        messages: i64,
    },
}

/// Where a database URL points, without its password.
fn place_of(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        return rest.split('?').next().unwrap_or(rest).to_owned();
    }
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{}", host.split('?').next().unwrap_or(host))
        }
        None => url.to_owned(),
    }
}

/// A stored thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRecord {
    pub id: String,
    pub ciphertext: String,
    pub iv: String,
    pub created_at: i64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: String,
    pub thread_id: String,
    pub ciphertext: String,
    pub iv: String,
    pub created_at: i64,
    pub client_message_id: Option<String>,
}

/// Whether an insert stored a new row or found the same `client_message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New(MessageRecord),
    Duplicate(MessageRecord),
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    postgres: bool,
    /// The file or server, for errors (no password).
    place: String,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS vault (
        id INTEGER PRIMARY KEY,
        auth_hash TEXT NOT NULL,
        kdf_salt TEXT NOT NULL,
        jwt_secret TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS threads (
        id TEXT PRIMARY KEY,
        ciphertext TEXT NOT NULL,
        iv TEXT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY,
        thread_id TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        iv TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        client_message_id TEXT,
        UNIQUE (thread_id, client_message_id))",
    "CREATE INDEX IF NOT EXISTS messages_by_thread_time ON messages (thread_id, created_at, id)",
    "CREATE INDEX IF NOT EXISTS threads_by_time ON threads (created_at, id)",
];

fn message_from_row(r: &sqlx::any::AnyRow) -> Result<MessageRecord, sqlx::Error> {
    Ok(MessageRecord {
        id: r.try_get("id")?,
        thread_id: r.try_get("thread_id")?,
        ciphertext: r.try_get("ciphertext")?,
        iv: r.try_get("iv")?,
        created_at: r.try_get("created_at")?,
        client_message_id: r.try_get("client_message_id")?,
    })
}

fn thread_from_row(r: &sqlx::any::AnyRow) -> Result<ThreadRecord, sqlx::Error> {
    Ok(ThreadRecord {
        id: r.try_get("id")?,
        ciphertext: r.try_get("ciphertext")?,
        iv: r.try_get("iv")?,
        created_at: r.try_get("created_at")?,
    })
}

fn bind_messages<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ms: &'q [MessageRecord],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for m in ms {
        q = q
            .bind(&m.id)
            .bind(&m.thread_id)
            .bind(&m.ciphertext)
            .bind(&m.iv)
            .bind(m.created_at)
            .bind(m.client_message_id.as_deref());
    }
    q
}

/// A statement that sends its `n` parameters as notices on
/// [`crate::cluster::CHANNEL`] (PostgreSQL).
fn notify_sql(n: usize) -> String {
    let values: Vec<String> = (1..=n).map(|i| format!("(${i})")).collect();
    format!(
        "SELECT COUNT(*) AS n FROM (SELECT pg_notify('{}', p) FROM (VALUES {}) v(p)) q",
        crate::cluster::CHANNEL,
        values.join(", ")
    )
}

/// Rows per multi-row INSERT (6 parameters each, well under SQLite's limit).
const INSERT_BATCH: usize = 256;

const MESSAGE_COLUMNS: &str = "id, thread_id, ciphertext, iv, created_at, client_message_id";

impl Db {
    /// Opens (creating if needed) the SQLite file `dir/relay.sqlite3`.
    pub async fn open_sqlite_dir(dir: &Path) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Sql(sqlx::Error::Io(e)))?;
        let path = dir.join("relay.sqlite3");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::open(&url).await
    }

    /// Opens an in-memory SQLite database (one connection, so one database).
    pub async fn open_memory() -> Result<Db, DbError> {
        Self::open("sqlite::memory:").await
    }

    /// Opens `sqlite://…` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let is_postgres = url.starts_with("postgres");
        let memory = url.contains(":memory:");
        let place = place_of(url);
        let opened = |source: sqlx::Error| DbError::Open {
            place: place.clone(),
            source,
        };
        let opts = sqlx::any::AnyConnectOptions::from_str(url).map_err(opened)?;
        if !is_postgres && !memory {
            // One direct look first: the pool would retry a file that is no
            // database until its timeout.
            use sqlx::Connection;
            let mut probe = sqlx::AnyConnection::connect_with(&opts)
                .await
                .map_err(opened)?;
            sqlx::query("SELECT COUNT(*) FROM sqlite_master")
                .fetch_one(&mut probe)
                .await
                .map_err(opened)?;
            probe.close().await.map_err(opened)?;
        }
        let pool = AnyPoolOptions::new()
            // A database that cannot be opened says so within seconds, not
            // after the 30 s default.
            .acquire_timeout(std::time::Duration::from_secs(4))
            .max_connections(if memory {
                1
            } else if is_postgres {
                16
            } else {
                4
            })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(std::time::Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(std::time::Duration::from_secs(3600))
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if !is_postgres {
                        // WAL lets readers run beside the writer; NORMAL sync is
                        // durable across process crashes (not power loss), which
                        // is the trade every chat server makes.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await
                            .ok();
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(opened)?;
        let db = Db {
            pool,
            postgres: is_postgres,
            place: place.clone(),
        };
        for stmt in SCHEMA {
            sqlx::query(stmt).execute(&db.pool).await.map_err(opened)?;
        }
        Ok(db)
    }

    /// Fails when the database has history but no vault: a new vault would
    /// give it a new salt, and no client could read anything again.
    pub async fn check_no_orphaned_history(&self) -> Result<(), DbError> {
        let count = |table: &'static str| async move {
            sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .fetch_one(&self.pool)
                .await
                .map(|r| r.get::<i64, _>("n"))
        };
        let (threads, messages) = (count("threads").await?, count("messages").await?);
        if threads > 0 || messages > 0 {
            return Err(DbError::NoVault {
                place: self.place.clone(),
                threads,
                messages,
            });
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn load_vault(&self) -> Result<Option<VaultSecret>, DbError> {
        let row = sqlx::query("SELECT auth_hash, kdf_salt, jwt_secret FROM vault WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let secret: String = r.try_get("jwt_secret")?;
        let jwt_secret = hush_core::b64::decode(&secret).map_err(|_| DbError::CorruptVault)?;
        Ok(Some(VaultSecret {
            auth_hash: r.try_get("auth_hash")?,
            kdf_salt: r.try_get("kdf_salt")?,
            jwt_secret: Zeroizing::new(jwt_secret),
        }))
    }

    /// Stores the vault secret unless one exists; returns the one in force.
    pub async fn init_vault(&self, candidate: VaultSecret) -> Result<VaultSecret, DbError> {
        sqlx::query(
            "INSERT INTO vault (id, auth_hash, kdf_salt, jwt_secret) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&candidate.auth_hash)
        .bind(&candidate.kdf_salt)
        .bind(hush_core::b64::encode(&candidate.jwt_secret))
        .execute(&self.pool)
        .await?;
        self.load_vault().await?.ok_or(DbError::CorruptVault)
    }

    /// The newest stored time, so the relay's clock never repeats one.
    pub async fn max_created_at(&self) -> Result<i64, DbError> {
        let r = sqlx::query(
            "SELECT COALESCE(MAX(created_at), 0) AS m FROM
               (SELECT created_at FROM messages UNION ALL SELECT created_at FROM threads) t",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get::<i64, _>("m")?)
    }

    /// Creates a thread, or returns the stored one if the id exists; `true`
    /// when this call created it.
    pub async fn create_thread(&self, t: &ThreadRecord) -> Result<(ThreadRecord, bool), DbError> {
        let r = sqlx::query(
            "INSERT INTO threads (id, ciphertext, iv, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&t.id)
        .bind(&t.ciphertext)
        .bind(&t.iv)
        .bind(t.created_at)
        .execute(&self.pool)
        .await?;
        let stored = self
            .get_thread(&t.id)
            .await?
            .ok_or(DbError::Sql(sqlx::Error::RowNotFound))?;
        Ok((stored, r.rows_affected() > 0))
    }

    /// Threads in creation order (`created_at`, then id): the oldest `limit`
    /// created after `after` (exclusive), or from the first.
    pub async fn list_threads(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ThreadRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT id, ciphertext, iv, created_at FROM threads WHERE created_at > $1
             ORDER BY created_at, id LIMIT $2",
        )
        .bind(after.unwrap_or(i64::MIN))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(thread_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn get_thread(&self, id: &str) -> Result<Option<ThreadRecord>, DbError> {
        let r = sqlx::query("SELECT id, ciphertext, iv, created_at FROM threads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.as_ref().map(thread_from_row).transpose()?)
    }

    /// The existing threads among `ids`, newest first.
    pub async fn query_threads(&self, ids: &[String]) -> Result<Vec<ThreadRecord>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, ciphertext, iv, created_at FROM threads WHERE id IN ({})
             ORDER BY created_at DESC, id DESC",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(thread_from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes a thread and its messages; false if it did not exist.
    pub async fn delete_thread(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM messages WHERE thread_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM threads WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Stores a message. With a `client_message_id` already stored for the
    /// thread, nothing is written and the original row comes back.
    async fn insert_message(&self, m: &MessageRecord) -> Result<Inserted, DbError> {
        let r = sqlx::query(
            "INSERT INTO messages (id, thread_id, ciphertext, iv, created_at, client_message_id)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (thread_id, client_message_id) DO NOTHING",
        )
        .bind(&m.id)
        .bind(&m.thread_id)
        .bind(&m.ciphertext)
        .bind(&m.iv)
        .bind(m.created_at)
        .bind(m.client_message_id.as_deref())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() > 0 {
            return Ok(Inserted::New(m.clone()));
        }
        self.stored_duplicate(m).await
    }

    /// The stored message a refused insert duplicated (same thread and
    /// `client_message_id`).
    async fn stored_duplicate(&self, m: &MessageRecord) -> Result<Inserted, DbError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1 AND client_message_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(&m.thread_id)
            .bind(m.client_message_id.as_deref())
            .fetch_one(&self.pool)
            .await?;
        Ok(Inserted::Duplicate(message_from_row(&row)?))
    }

    /// Stores several messages in one statement (one transaction): what a
    /// connection sent in one burst. The outcomes are in input order; a
    /// resend of a stored `client_message_id` (also one within the batch) is
    /// a `Duplicate` of the stored message.
    ///
    /// On PostgreSQL, several relay nodes may write at once: each thread's
    /// row is locked for the transaction, and each new message gets a
    /// `created_at` after its thread's newest (its node's clock otherwise),
    /// so a thread's commit order is its `created_at` order on every node.
    /// With `broadcast`, each new message's notice
    /// ([`crate::cluster::message_notice`]) goes out on
    /// [`crate::cluster::CHANNEL`] in the same transaction.
    pub async fn insert_messages(
        &self,
        ms: &[MessageRecord],
        broadcast: bool,
    ) -> Result<Vec<Inserted>, DbError> {
        if self.postgres {
            return self.insert_messages_locked(ms, broadcast).await;
        }
        if let [one] = ms {
            return Ok(vec![self.insert_message(one).await?]);
        }
        let mut inserted = std::collections::HashSet::new();
        for chunk in ms.chunks(INSERT_BATCH) {
            let sql = self.insert_sql(chunk.len());
            for row in bind_messages(sqlx::query(&sql), chunk)
                .fetch_all(&self.pool)
                .await?
            {
                inserted.insert(row.try_get::<String, _>("id")?);
            }
        }
        self.outcomes(ms, &inserted).await
    }

    /// PostgreSQL's `insert_messages`: in a transaction that locks the
    /// threads written to.
    async fn insert_messages_locked(
        &self,
        ms: &[MessageRecord],
        broadcast: bool,
    ) -> Result<Vec<Inserted>, DbError> {
        let mut tx = self.pool.begin().await?;
        let mut threads: Vec<&str> = ms.iter().map(|m| m.thread_id.as_str()).collect();
        // One lock order for every node: no deadlocks between them.
        threads.sort_unstable();
        threads.dedup();
        let mut newest = std::collections::HashMap::with_capacity(threads.len());
        for t in threads {
            sqlx::query("SELECT id FROM threads WHERE id = $1 FOR UPDATE")
                .bind(t)
                .fetch_optional(&mut *tx)
                .await?;
            let r = sqlx::query(
                "SELECT COALESCE(MAX(created_at), 0) AS m FROM messages WHERE thread_id = $1",
            )
            .bind(t)
            .fetch_one(&mut *tx)
            .await?;
            newest.insert(t, r.try_get::<i64, _>("m")?);
        }
        let mut recs = ms.to_vec();
        for m in &mut recs {
            let last = newest
                .get_mut(m.thread_id.as_str())
                .expect("every thread was looked up");
            m.created_at = m.created_at.max(*last + 1);
            *last = m.created_at;
        }
        let mut inserted = std::collections::HashSet::new();
        for chunk in recs.chunks(INSERT_BATCH) {
            let sql = self.insert_sql(chunk.len());
            for row in bind_messages(sqlx::query(&sql), chunk)
                .fetch_all(&mut *tx)
                .await?
            {
                inserted.insert(row.try_get::<String, _>("id")?);
            }
        }
        if broadcast {
            let notices: Vec<String> = recs
                .iter()
                .filter(|m| inserted.contains(&m.id))
                .map(crate::cluster::message_notice)
                .collect();
            for chunk in notices.chunks(INSERT_BATCH) {
                let sql = notify_sql(chunk.len());
                let mut q = sqlx::query(&sql);
                for n in chunk {
                    q = q.bind(n);
                }
                q.fetch_one(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.outcomes(&recs, &inserted).await
    }

    /// The outcome of each of `ms`: new if its id is `inserted`, else the
    /// stored message it duplicated.
    async fn outcomes(
        &self,
        ms: &[MessageRecord],
        inserted: &std::collections::HashSet<String>,
    ) -> Result<Vec<Inserted>, DbError> {
        let mut out = Vec::with_capacity(ms.len());
        for m in ms {
            out.push(if inserted.contains(&m.id) {
                Inserted::New(m.clone())
            } else {
                self.stored_duplicate(m).await?
            });
        }
        Ok(out)
    }

    /// A multi-row INSERT of `n` messages that returns the ids it stored.
    fn insert_sql(&self, n: usize) -> String {
        // PostgreSQL numbers its parameters; SQLite gets anonymous `?`s, as
        // looking up a thousand numbered names cost more than the insert.
        let values: Vec<String> = (0..n)
            .map(|i| {
                if !self.postgres {
                    return "(?, ?, ?, ?, ?, ?)".to_owned();
                }
                let b = i * 6;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                )
            })
            .collect();
        format!(
            "INSERT INTO messages (id, thread_id, ciphertext, iv, created_at, client_message_id)
             VALUES {} ON CONFLICT (thread_id, client_message_id) DO NOTHING RETURNING id",
            values.join(", ")
        )
    }

    /// Sends `notice` on [`crate::cluster::CHANNEL`] (PostgreSQL only).
    pub async fn notify(&self, notice: &str) -> Result<(), DbError> {
        sqlx::query(&notify_sql(1))
            .bind(notice)
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether messages reach subscribers through PostgreSQL's notices
    /// (`cluster`) rather than straight from the storing connection.
    pub fn fans_out_by_notice(&self) -> bool {
        self.postgres
    }

    pub async fn get_message(&self, id: &str) -> Result<Option<MessageRecord>, DbError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        let r = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.as_ref().map(message_from_row).transpose()?)
    }

    /// Messages of a thread, oldest first: after `after` (exclusive) the oldest
    /// `limit`; without it the newest `limit`.
    pub async fn list_messages(
        &self,
        thread_id: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, DbError> {
        let limit = limit as i64;
        let rows = match after {
            Some(after) => {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1 AND created_at > $2
                     ORDER BY created_at, id LIMIT $3"
                );
                sqlx::query(&sql)
                    .bind(thread_id)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                );
                let mut rows = sqlx::query(&sql)
                    .bind(thread_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.reverse();
                rows
            }
        };
        Ok(rows
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn count_messages(&self, thread_id: &str) -> Result<u64, DbError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE thread_id = $1")
            .bind(thread_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get::<i64, _>("n")?.max(0) as u64)
    }

    /// Deletes one message; false if it did not exist.
    pub async fn delete_message(&self, id: &str) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM messages WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
