//! Every online store implementation passes the same conformance suite, against the real
//! thing: an embedded store file, a `redis-server`, and a 3-node Redis Cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod suite;

use std::sync::Arc;

use quiver_online::embedded::EmbeddedStore;
use quiver_online::redis_store::RedisStore;
use quiver_online::store::OnlineStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn OnlineStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    suite::run(store.clone(), "t").await;
    // The data survives reopening the file.
    let k = quiver_online::keys::entity_key(&[("id", &quiver_online::value::Value::Int64(1))]).unwrap();
    let row = quiver_online::RowWrite {
        view: "v".into(),
        entity: k.clone(),
        bytes: vec![1; 23],
        expire_at_ms: None,
    };
    store.write(&[row]).await.unwrap();
    drop(store);
    let reopened = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(reopened.read(&[("v", k)]).await.unwrap()[0], Some(vec![1; 23]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_passes_the_conformance_suite() {
    let server = common::RedisServer::start();
    let store: Arc<dyn OnlineStore> = Arc::new(RedisStore::connect(&server.url(), "rides").await.unwrap());
    suite::run(store, "t").await;
    // Keys carry the project and the entity hash tag.
    let store = RedisStore::connect(&server.url(), "rides").await.unwrap();
    let k =
        quiver_online::keys::entity_key(&[("driver_id", &quiver_online::value::Value::Int64(1001))]).unwrap();
    assert_eq!(store.key("driver_stats", &k), "rides:{driver_id=1001}:driver_stats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_store_passes_the_conformance_suite() {
    let cluster = common::RedisCluster::start();
    let store: Arc<dyn OnlineStore> = Arc::new(RedisStore::connect(&cluster.url(), "rides").await.unwrap());
    suite::run(store.clone(), "t").await;
    // One entity's rows of every view live on one shard: same hash tag, same slot.
    let write = |view: &str| quiver_online::RowWrite {
        view: view.into(),
        entity: quiver_online::store::EntityKey("driver_id=77".into()),
        bytes: vec![1; 23],
        expire_at_ms: None,
    };
    store.write(&[write("v1"), write("v2"), write("v3")]).await.unwrap();
    let slot =
        |view: &str| cluster.nodes[0].cli(&["cluster", "keyslot", &format!("rides:{{driver_id=77}}:{view}")]);
    assert_eq!(slot("v1"), slot("v2"));
    assert_eq!(slot("v1"), slot("v3"));
    // The keys really are spread over the three shards.
    let sizes: Vec<u64> = cluster.nodes.iter().map(|n| n.cli(&["dbsize"]).trim().parse().unwrap()).collect();
    assert_eq!(sizes.iter().sum::<u64>(), 3);
    store
        .write(
            &(0..3000)
                .map(|i| quiver_online::RowWrite {
                    view: "spread".into(),
                    entity: quiver_online::store::EntityKey(format!("id={i}")),
                    bytes: vec![1; 23],
                    expire_at_ms: None,
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let sizes: Vec<u64> = cluster.nodes.iter().map(|n| n.cli(&["dbsize"]).trim().parse().unwrap()).collect();
    assert!(sizes.iter().all(|s| *s > 500), "keys spread over the shards: {sizes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_expires_rows_past_their_ttl_when_asked() {
    let server = common::RedisServer::start();
    let store = RedisStore::connect(&server.url(), "rides").await.unwrap();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let row = |id: &str, expire: Option<i64>| quiver_online::RowWrite {
        view: "v".into(),
        entity: quiver_online::store::EntityKey(id.into()),
        bytes: vec![1; 23],
        expire_at_ms: expire,
    };
    // id=1 expires soon, id=3 in an hour, id=2 never. The hour-long expiry is read back as
    // set (a bound no slow machine can break); id=1 is then awaited with bounded polling.
    let hour_ms = 3_600_000;
    store
        .write(&[row("id=1", Some(now_ms + 300)), row("id=2", None), row("id=3", Some(now_ms + hour_ms))])
        .await
        .unwrap();
    let ttl: i64 = server.cli(&["pttl", "rides:{id=3}:v"]).trim().parse().unwrap();
    assert!(ttl > hour_ms - 60_000 && ttl <= hour_ms, "pttl {ttl}: the expiry is the time asked for");
    assert_eq!(server.cli(&["pttl", "rides:{id=2}:v"]).trim(), "-1", "no expiry asked, none set");
    let keys = |ids: &[&str]| -> Vec<(&'static str, quiver_online::store::EntityKey)> {
        ids.iter().map(|id| ("v", quiver_online::store::EntityKey(id.to_string()))).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let got = loop {
        let got = store.read(&keys(&["id=1", "id=2", "id=3"])).await.unwrap();
        if got[0].is_none() || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(got[0], None, "expired");
    assert!(got[2].is_some(), "not yet expired, kept");
    assert!(got[1].is_some(), "no expiry asked, kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_unavailable_and_the_store_recovers_when_it_returns() {
    let mut server = common::RedisServer::start();
    let store = RedisStore::connect(&server.url(), "rides").await.unwrap();
    let key = ("v", quiver_online::store::EntityKey("id=1".into()));
    store
        .write(&[quiver_online::RowWrite {
            view: "v".into(),
            entity: key.1.clone(),
            bytes: vec![1; 23],
            expire_at_ms: None,
        }])
        .await
        .unwrap();
    server.stop();
    // A refused connection fails the read after two quick retries (about a third of a
    // second), not after the redis client's default six with backoff (about nine seconds):
    // the bound below sits far from both.
    let asked = std::time::Instant::now();
    let err = store.read(std::slice::from_ref(&key)).await.unwrap_err();
    let waited = asked.elapsed();
    assert!(matches!(err, quiver_online::Error::Unavailable(_)), "{err}");
    assert!(waited < std::time::Duration::from_secs(4), "a refused connection took {waited:?} to fail");
    server.restart();
    // The connection heals by itself; the restarted server is empty, and the script is
    // loaded again on demand.
    let mut healed = false;
    for _ in 0..50 {
        if let Ok(v) = store.read(std::slice::from_ref(&key)).await {
            assert_eq!(v, vec![None]);
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healed, "the store did not recover");
    let written = store
        .write(&[quiver_online::RowWrite {
            view: "v".into(),
            entity: key.1.clone(),
            bytes: vec![1; 23],
            expire_at_ms: None,
        }])
        .await
        .unwrap();
    assert_eq!(written, 1);
}

/// Redis paused (`CLIENT PAUSE`, as during a failover or a slow fork): a read made meanwhile
/// waits, so a caller's deadline ends it with no answer, and once Redis goes on the read
/// answers with the stored row. Never a row that is there reported missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_makes_reads_wait_and_never_reports_a_stored_row_missing() {
    let server = common::RedisServer::start();
    let store = RedisStore::connect(&server.url(), "rides").await.unwrap();
    let key = ("v", quiver_online::store::EntityKey("id=1".into()));
    let row = vec![1; 23];
    let write = quiver_online::RowWrite {
        view: "v".into(),
        entity: key.1.clone(),
        bytes: row.clone(),
        expire_at_ms: None,
    };
    store.write(&[write]).await.unwrap();
    server.cli(&["client", "pause", "3000", "all"]);
    let cut =
        tokio::time::timeout(std::time::Duration::from_millis(200), store.read(std::slice::from_ref(&key)))
            .await;
    assert!(cut.is_err(), "a read answered while Redis was paused: {cut:?}");
    // Reads go on until Redis does: each either fails as unavailable (the store's own
    // timeout) or answers the stored row, never "not there".
    let mut unavailable = 0;
    let answered = loop {
        match store.read(std::slice::from_ref(&key)).await {
            Ok(rows) => break rows,
            Err(quiver_online::Error::Unavailable(_)) if unavailable < 20 => unavailable += 1,
            Err(e) => panic!("a read during the pause failed as {e:?}"),
        }
    };
    assert_eq!(answered, vec![Some(row)], "after the pause the stored row is read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_over_tls_trusts_the_configured_ca_and_nothing_else() {
    let certs = quiver_testkit::tls::TestCerts::generate();
    let server = common::RedisServer::start_tls(&certs);
    let url = server.tls_url();
    let store: Arc<dyn OnlineStore> =
        Arc::new(RedisStore::connect_with_ca(&url, "rides", Some(&certs.ca())).await.unwrap());
    suite::run(store, "t").await;
    // A CA that did not sign the server's certificate, or the system's roots: refused.
    let untrusted = RedisStore::connect_with_ca(&url, "rides", Some(&certs.other_ca())).await;
    assert!(untrusted.is_err(), "a server signed by another CA was trusted");
    assert!(RedisStore::connect(&url, "rides").await.is_err(), "the test CA is not a system root");
    // Plaintext against the TLS port fails too; a CA with a plaintext url is a config error.
    let plain = format!("redis://localhost:{}/0", server.tls_port.unwrap());
    let plain =
        tokio::time::timeout(std::time::Duration::from_secs(20), RedisStore::connect(&plain, "rides")).await;
    assert!(!matches!(plain, Ok(Ok(_))), "a plaintext client talked to the TLS port");
    let e = RedisStore::connect_with_ca(&server.url(), "rides", Some(&certs.ca())).await.unwrap_err();
    assert!(e.to_string().contains("not rediss://"), "{e}");
    // The quiver.yaml path: online_store {type: redis, url: rediss://..., tls_ca: ...}.
    let config = quiver_core::config::OnlineStoreConfig::Redis {
        url: url.clone(),
        expire_keys: false,
        tls_ca: Some(certs.ca()),
    };
    let store = quiver_online::open(&config, "rides").await.unwrap();
    assert!(store.read(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_written_once_in_a_cluster_url_reaches_every_node() {
    let cluster = common::RedisCluster::start_with_password("s3cret/pw");
    let hosts: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    // The password on the first host only (percent-encoded: it holds a '/'); the scans of
    // `delete_view`, which connect to each primary by itself, need it too.
    let url = format!("redis+cluster://:s3cret%2Fpw@{}", hosts.join(","));
    let store: Arc<dyn OnlineStore> = Arc::new(RedisStore::connect(&url, "rides").await.unwrap());
    assert!(!store.describe().contains("s3cret"), "{}", store.describe());
    suite::run(store.clone(), "t").await;
    let rows: Vec<quiver_online::RowWrite> = (0..300)
        .map(|i| quiver_online::RowWrite {
            view: "spread".into(),
            entity: quiver_online::store::EntityKey(format!("id={i}")),
            bytes: vec![1; 23],
            expire_at_ms: None,
        })
        .collect();
    store.write(&rows).await.unwrap();
    let sizes: Vec<u64> = cluster.nodes.iter().map(|n| n.cli(&["dbsize"]).trim().parse().unwrap()).collect();
    assert!(sizes.iter().all(|s| *s > 0), "keys on every shard: {sizes:?}");
    assert_eq!(store.delete_view("spread").await.unwrap(), 300);
    // A wrong password is refused, and the error does not repeat it.
    let wrong = format!("redis+cluster://:not-it@{}", hosts.join(","));
    let err = RedisStore::connect(&wrong, "rides").await.unwrap_err().to_string();
    assert!(!err.contains("not-it"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_over_tls_passes_the_conformance_suite() {
    let certs = quiver_testkit::tls::TestCerts::generate();
    let cluster = common::RedisCluster::start_tls(&certs);
    let url = cluster.tls_url();
    let store: Arc<dyn OnlineStore> =
        Arc::new(RedisStore::connect_with_ca(&url, "rides", Some(&certs.ca())).await.unwrap());
    suite::run(store, "t").await;
    let untrusted = RedisStore::connect_with_ca(&url, "rides", Some(&certs.other_ca())).await;
    assert!(untrusted.is_err(), "a cluster signed by another CA was trusted");
}

/// Reads on a single server travel over connections of their own (`quiver_online::direct`):
/// they log in as the url's user, use the url's database, carry replies far larger than one
/// socket read, and outlive the server closing them between reads. A password changed under
/// a running store is a configuration error that does not repeat the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_reads_log_in_use_the_database_and_outlive_closed_connections() {
    let server = common::RedisServer::start_with(&["--requirepass", "admin-pw"]);
    server.cli(&["acl", "setuser", "reader", "on", ">r-pass%", "~*", "+@all"]);
    let url = format!("redis://reader:r-pass%25@127.0.0.1:{}/3", server.port);
    let store = RedisStore::connect(&url, "rides").await.unwrap();
    // 2 000 rows of 2 KiB, each different: a reply of about 4 MB.
    let row = |i: u64| {
        let mut bytes = vec![1u8; 2048];
        bytes[100..108].copy_from_slice(&i.to_be_bytes());
        bytes
    };
    let entity = |i: u64| quiver_online::store::EntityKey(format!("id={i}"));
    let rows: Vec<quiver_online::RowWrite> = (0..2000)
        .map(|i| quiver_online::RowWrite {
            view: "v".into(),
            entity: entity(i),
            bytes: row(i),
            expire_at_ms: None,
        })
        .collect();
    assert_eq!(store.write(&rows).await.unwrap(), 2000);
    assert_eq!(server.cli(&["-n", "3", "dbsize"]).trim(), "2000", "the rows are in the url's database");
    assert_eq!(server.cli(&["-n", "0", "dbsize"]).trim(), "0");
    // Every other key is missing: nulls and values interleave through the reply.
    let keys: Vec<(&str, quiver_online::store::EntityKey)> =
        (0..4000u64).map(|k| ("v", if k % 2 == 0 { entity(k / 2) } else { entity(5000 + k) })).collect();
    let expected: Vec<Option<Vec<u8>>> = (0..4000u64).map(|k| (k % 2 == 0).then(|| row(k / 2))).collect();
    for _ in 0..3 {
        let got = store.read(&keys).await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "a large read came back different");
        // The server closes every client connection (as a restart or its idle timeout would):
        // the next read still answers.
        server.cli(&["client", "kill", "type", "normal"]);
    }
    let one = [("v", entity(7))];
    assert_eq!(store.read(&one).await.unwrap(), vec![Some(row(7))]);
    // Reads at once.
    let store = Arc::new(store);
    let reads: Vec<_> = (0..16u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.read(&[("v", entity(i))]).await.unwrap() })
        })
        .collect();
    for (i, read) in reads.into_iter().enumerate() {
        assert_eq!(read.await.unwrap(), vec![Some(row(i as u64))]);
    }
    // The reader's password changes; connections opened from now on are refused.
    server.cli(&["acl", "setuser", "reader", "resetpass", ">another"]);
    server.cli(&["client", "kill", "type", "normal"]);
    let e = store.read(&one).await.unwrap_err();
    assert!(matches!(e, quiver_online::Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("credentials"), "{e}");
    assert!(!e.to_string().contains("r-pass"), "the password is repeated: {e}");
}
