//! Faults of a database server: PostgreSQL or MariaDB stopping under traffic
//! and starting again. Authentication must fail closed (503, never 200,
//! never 500, no panic) and recover by itself.
//!
//! How the faults are made real, on private servers so that the shared ones
//! (5432, 3306) are left alone:
//!
//! - PostgreSQL stops: a private cluster (`initdb` + `pg_ctl`, see
//!   `common/pg_cluster.rs`) on a free port is stopped with `pg_ctl stop -m
//!   fast` and started again.
//! - MariaDB stops: a private server (`mariadb-install-db` + `mariadbd`, see
//!   `common/mariadb_server.rs`) on a free port is stopped by its PID and
//!   started again on the same port and data.
#![cfg(all(unix, any(feature = "postgres", feature = "mysql")))]

mod common;

use std::time::{Duration, Instant};

use common::outage::{
    assert_recovered, check_outage_under, first_attempt, launch_with_a_used_header_and, run,
    Traffic, SECRET,
};
use rocket::http::Status;
use rocket::tokio::time::sleep;
use serde_json::json;

/// The pool's `connect_timeout`, in seconds: a request while the server is
/// down must be answered 503 within it (plus scheduling slack).
const CONNECT_TIMEOUT: u64 = 2;

/// A private database server a test may stop and start again.
trait StoppableServer {
    fn url(&self) -> String;
    fn stop(&mut self) -> Result<(), String>;
    fn start(&mut self) -> Result<(), String>;
}

#[cfg(feature = "postgres")]
impl StoppableServer for common::pg_cluster::PgCluster {
    fn url(&self) -> String {
        common::pg_cluster::PgCluster::url(self)
    }
    fn stop(&mut self) -> Result<(), String> {
        self.stop_server()
    }
    fn start(&mut self) -> Result<(), String> {
        self.start_server()
    }
}

#[cfg(feature = "mysql")]
impl StoppableServer for common::mariadb_server::MariaDbServer {
    fn url(&self) -> String {
        common::mariadb_server::MariaDbServer::url(self)
    }
    fn stop(&mut self) -> Result<(), String> {
        println!("stopping mariadbd (PID {:?})", self.pid());
        self.stop_server()
    }
    fn start(&mut self) -> Result<(), String> {
        self.start_server()
    }
}

/// `server` stopped under traffic, then started again: every request that
/// ran entirely inside the outage got 503 (with `nc_lease`, after those a
/// block leased before could still decide), each worker recovers, and the
/// count recorded before the outage still refuses a replay.
fn server_stopping_mid_traffic(label: &str, server: &mut impl StoppableServer, nc_lease: u32) {
    run(async {
        let (client, token, used_before) = launch_with_a_used_header_and(
            json!({ "url": server.url(), "connect_timeout": CONNECT_TIMEOUT }),
            json!({ "secret": SECRET, "nc_lease": nc_lease }),
        )
        .await;

        let traffic = Traffic::start(&client, &token, 3).await;

        let stopping = Instant::now();
        server.stop().expect("stopping the server");
        let down_at = Instant::now();
        println!("{label}: stopped in {:?}", down_at - stopping);

        // A fresh correct request while the server is down: 503 within the
        // pool's connect timeout (plus scheduling slack).
        let reply = first_attempt(&client, "alice", &token).await;
        assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
        assert!(
            reply.elapsed < Duration::from_secs(CONNECT_TIMEOUT + 3),
            "{reply:?}"
        );
        // A wrong one: 503, or 401 when the credential cache still holds the
        // user (its version read within the last 2 x credential_recheck_ms).
        let reply = first_attempt(&client, "alice", "not the token").await;
        assert!([401, 503].contains(&reply.status.code), "{reply:?}");
        sleep(Duration::from_millis(1500)).await;

        let up_at = Instant::now();
        server.start().expect("starting the server again");
        println!("{label}: started again in {:?}", up_at.elapsed());
        let recovered = traffic
            .wait_for_success_after(up_at, Duration::from_secs(20))
            .await;
        let recovery = up_at.elapsed();
        let samples = traffic.finish().await;
        assert!(recovered, "authentication did not recover within 20 s");
        check_outage_under(label, nc_lease, &samples, (down_at, up_at), recovery);

        assert_recovered(&client, &token, &used_before).await;
    });
}

/// PostgreSQL's default, no leases (`nc_lease = 0`): every request inside
/// the outage is refused with 503.
#[cfg(feature = "postgres")]
#[test]
fn postgres_server_stopping_mid_traffic_fails_closed_and_recovers() {
    let mut cluster = match common::pg_cluster::PgCluster::start() {
        Ok(cluster) => cluster,
        Err(e) => {
            common::require::POSTGRES.skip(format!("cannot start a private cluster: {e}"));
            return;
        }
    };
    server_stopping_mid_traffic("postgres stopped", &mut cluster, 0);
}

#[cfg(feature = "mysql")]
#[test]
fn mariadb_server_stopping_mid_traffic_fails_closed_and_recovers() {
    mariadb_server_stopping_mid_traffic(0);
}

#[cfg(feature = "mysql")]
#[test]
fn mariadb_server_stopping_with_leases_refuses_what_needs_the_server() {
    mariadb_server_stopping_mid_traffic(rocket_digest_auth::store::DEFAULT_MYSQL_NC_LEASE);
}

/// A private MariaDB (see `common/mariadb_server.rs`) stopped by its PID
/// under traffic, then started again on the same port and data.
#[cfg(feature = "mysql")]
fn mariadb_server_stopping_mid_traffic(nc_lease: u32) {
    let mut server = match common::mariadb_server::MariaDbServer::start() {
        Ok(server) => server,
        Err(e) => {
            common::require::MYSQL.skip(format!("cannot start a private MariaDB: {e}"));
            return;
        }
    };
    server_stopping_mid_traffic("mariadbd stopped", &mut server, nc_lease);
}
