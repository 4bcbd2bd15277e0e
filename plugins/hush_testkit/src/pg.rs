//! A PostgreSQL database of its own, for a system test or a benchmark on
//! the server an admin URL names (`HUSH_TEST_DATABASE_URL`): created fresh,
//! dropped when this goes (connections still open on it are ended).

/// Not to be created or dropped inside an async runtime: it runs its own.
pub struct TempDatabase {
    admin: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl TempDatabase {
    /// A fresh database named `{prefix}_{random}`.
    pub fn create(admin: &str, prefix: &str) -> TempDatabase {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        sql(admin, &format!("CREATE DATABASE {name}"));
        let (base, _) = admin.rsplit_once('/').expect("a database URL");
        TempDatabase {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn sql(url: &str, statement: &str) {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = sqlx::postgres::PgConnection::connect(url)
            .await
            .expect("PostgreSQL");
        sqlx::Executor::execute(&mut c, statement)
            .await
            .expect("SQL");
        let _ = c.close().await;
    });
}
