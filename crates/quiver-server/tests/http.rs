//! The HTTP endpoint over a real socket: the JSON API against the gRPC and `quiver online`
//! answers, refusals with their statuses, tokens, the OpenAPI document, and every catalog
//! page with every link on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use quiver_server::pb;
use quiver_server::{App, Limits};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP endpoint started for a test on a free port; stopped when dropped.
struct HttpEndpoint {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HttpEndpoint {
    async fn start(app: &Arc<App>, limits: Limits, metrics: bool) -> HttpEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(quiver_server::http::serve_http(app.clone(), listener, limits, metrics, async move {
            let _ = stopped.await;
        }));
        HttpEndpoint { addr, stop: Some(stop) }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], b"").await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send("GET", path, headers, b"").await
    }

    async fn post_json(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, body).await
    }

    /// Bytes sent as they are on a connection of their own; the answer read to the end.
    async fn raw(&self, request: &[u8]) -> Answer {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        Answer::parse(&raw)
    }

    /// One HTTP/1.1 request on its own connection, read to the end.
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        Answer::parse(&raw)
    }
}

impl Drop for HttpEndpoint {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response: {text:?}"));
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Answer { status, headers, body: body.to_string() }
    }

    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `{"error": {"code", "message"}}` of a refusal.
    fn error(&self) -> (String, String) {
        let j = self.json();
        (
            j["error"]["code"].as_str().unwrap().to_string(),
            j["error"]["message"].as_str().unwrap().to_string(),
        )
    }
}

/// The JSON `quiver online` prints for `refs` and driver ids at `at`: the same read and the
/// same builder the CLI runs, on the server's store.
async fn cli_answer(server: &TestServer, refs: &[&str], drivers: &[i64], at: &str) -> Json {
    let snapshot = server.app.project().current().unwrap();
    let feature_refs: Vec<_> =
        refs.iter().map(|r| quiver_core::definitions::FeatureRef::parse(r).unwrap()).collect();
    let rows: Vec<BTreeMap<String, quiver_online::value::Value>> = drivers
        .iter()
        .map(|d| BTreeMap::from([("driver_id".to_string(), quiver_online::value::Value::Int64(*d))]))
        .collect();
    let response = quiver_online::read::get_online_features(
        server.app.project().online().as_ref(),
        &snapshot.definitions,
        &feature_refs,
        &rows[..],
        ns(at),
    )
    .await
    .unwrap();
    response.to_json(&rows)
}

/// One `driver_stats` row for `driver` at `event` with a null `conv_rate`.
fn row_without_conv_rate(driver: i64, event: &str) -> datafusion::arrow::array::RecordBatch {
    DriverStats { conv_rate: None, acc_rate: 0.5, ..DriverStats::at(driver, ns(event)) }.batch()
}

fn online_body(refs: &[&str], drivers: &[i64], at: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"features": refs, "entities": {"driver_id": drivers}, "at": at})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_online_answer_equals_grpc_and_quiver_online_for_every_status() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let job = materialize_all(channel.clone()).await;
    assert_eq!(job.state(), pb::JobState::Succeeded, "{job:?}");
    // Driver 4242's latest row, pushed online, has no conv_rate: NULL_VALUE.
    pb::push_service_client::PushServiceClient::new(channel.clone())
        .push(pb::PushRequest {
            feature_view: "driver_stats".into(),
            arrow_ipc: ipc(&[row_without_conv_rate(4242, "2026-01-02T22:30:00Z")]),
            to: pb::PushTarget::Online as i32,
        })
        .await
        .unwrap();
    let http = HttpEndpoint::start(&server.app, Limits::default(), false).await;
    let refs = ["driver_stats:conv_rate", "driver_stats:avg_daily_trips", "driver_profile:vehicle_type"];
    let drivers = [1001, 1002, 999_999, 4242];
    for at in ["2026-01-02T23:00:00Z", "2026-01-05T00:00:00Z"] {
        let answer = http.post_json("/v1/online", &online_body(&refs, &drivers, at), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.headers["content-type"], "application/json");
        let got = answer.json();
        assert_eq!(got, cli_answer(&server, &refs, &drivers, at).await, "at {at}");
        // And the same statuses and times as the gRPC answer.
        let grpc = online(channel.clone(), &refs, &drivers, ns(at)).await.unwrap();
        for (column, name) in grpc.results.iter().zip(&grpc.feature_names) {
            for (row, status) in column.statuses.iter().enumerate() {
                let feature = &got["results"][row]["features"][name.as_str()];
                let expected = pb::FeatureStatus::try_from(*status).unwrap().as_str_name();
                assert_eq!(feature["status"], expected, "{name} row {row} at {at}");
            }
        }
    }
    let now =
        http.post_json("/v1/online", &online_body(&refs, &drivers, "2026-01-02T23:00:00Z"), &[]).await.json();
    let statuses = |j: &Json| -> BTreeSet<String> {
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["features"].as_object().unwrap().values().map(|f| f["status"].as_str().unwrap().to_string())
            })
            .collect()
    };
    let all_but_old = BTreeSet::from(["PRESENT".into(), "NOT_FOUND".into(), "NULL_VALUE".into()]);
    assert!(statuses(&now).is_superset(&all_but_old), "{now}");
    assert_eq!(now["results"][0]["entity"], json!({"driver_id": 1001}));
    let later =
        http.post_json("/v1/online", &online_body(&refs, &drivers, "2026-01-05T00:00:00Z"), &[]).await.json();
    assert!(statuses(&later).contains("OUTSIDE_MAX_AGE"), "{later}");
    // A feature service answers as its features would.
    let by_service = http
        .post_json(
            "/v1/online",
            br#"{"feature_service": "ride_ranking_v1", "entities": {"driver_id": [1001], "customer_id": [2001]}}"#,
            &[],
        )
        .await;
    assert_eq!(by_service.status, 200, "{}", by_service.body);
    assert!(by_service.json()["results"][0]["features"]["driver_stats:conv_rate"].is_object());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_with_a_clear_message_and_the_server_keeps_serving() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    let http = HttpEndpoint::start(&server.app, Limits::default(), false).await;
    // Nothing applied: the server says so, as gRPC does (FAILED_PRECONDITION).
    let early = http.get("/v1/views").await;
    assert_eq!((early.status, early.error().0.as_str()), (409, "FAILED_PRECONDITION"), "{}", early.body);
    let index = http.get("/").await;
    assert_eq!(index.status, 200);
    assert!(index.body.contains("Nothing is applied yet"));
    for page in ["/lineage", "/history", "/runs"] {
        assert_eq!(http.get(page).await.status, 200, "{page} before anything is applied");
    }
    apply_example(channel.clone()).await;

    let post = |body: &'static [u8]| http.post_json("/v1/online", body, &[]);
    let bad_json = post(b"{\"features\": [").await;
    assert_eq!(bad_json.status, 400);
    let (code, message) = bad_json.error();
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("not valid JSON") && message.contains("line 1"), "{message}");
    let unknown = post(br#"{"features": ["driver_stats:nope"], "entities": {"driver_id": [1]}}"#).await;
    assert_eq!((unknown.status, unknown.error().0.as_str()), (404, "NOT_FOUND"), "{}", unknown.body);
    let wrong_type =
        post(br#"{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [true]}}"#).await;
    assert_eq!(wrong_type.status, 400);
    assert!(wrong_type.error().1.contains("entities.driver_id[0]"), "{}", wrong_type.body);
    let field = post(
        br#"{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1]}, "<img src=x>": 1}"#,
    )
    .await;
    assert_eq!(field.status, 400);
    assert!(!field.body.contains("img"), "an unknown field is not repeated: {}", field.body);
    // A body declared over the limit is refused before it is read.
    let big = http
        .raw(b"POST /v1/online HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 1500000\r\nconnection: close\r\n\r\n")
        .await;
    assert_eq!((big.status, big.error().0.as_str()), (413, "RESOURCE_EXHAUSTED"), "{}", big.body);
    assert!(big.error().1.contains("limit"), "{}", big.body);
    let rows = format!(
        r#"{{"features": ["driver_stats:conv_rate"], "entities": {{"driver_id": [{}]}}}}"#,
        vec!["1"; 10_001].join(",")
    );
    let many = http.post_json("/v1/online", rows.as_bytes(), &[]).await;
    assert_eq!((many.status, many.error().0.as_str()), (429, "RESOURCE_EXHAUSTED"), "{}", many.body);
    let form = http.send("POST", "/v1/online", &[("content-type", "text/plain")], b"{}").await;
    assert_eq!(form.status, 415);
    let get = http.get("/v1/online").await;
    assert_eq!((get.status, get.headers["allow"].as_str()), (405, "POST"));
    let nowhere = http.get("/v1/nowhere/%3Cscript%3E").await;
    assert_eq!(nowhere.status, 404);
    assert!(!nowhere.body.contains("script"), "{}", nowhere.body);
    let page = http.get("/views/%3Cb%3Ex%3C%2Fb%3E").await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("<b>x"), "{}", page.body);
    let no_view = http.get("/v1/views/nope").await;
    assert_eq!((no_view.status, no_view.error().0.as_str()), (404, "NOT_FOUND"));

    // Still serving, over the same listener.
    let ok = post(br#"{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}"#).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["results"][0]["features"]["driver_stats:conv_rate"]["status"], "NOT_FOUND");
    let views = http.get("/v1/views").await;
    assert_eq!(views.status, 200);
    let views = views.json();
    assert_eq!(views["registry_version"], 1);
    assert!(views["feature_views"].as_array().unwrap().iter().any(|v| v["name"] == "driver_stats"));
    let one = http.get("/v1/views/driver_stats").await.json();
    assert_eq!(one["join_keys"][0]["name"], "driver_id");
    let services = http.get("/v1/services").await.json();
    let ranking = services["feature_services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ride_ranking_v1")
        .unwrap();
    assert!(ranking["resolved_features"].as_array().unwrap().contains(&json!("driver_stats:acc_rate")));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_the_json_endpoints_and_the_catalog_as_they_guard_grpc() {
    let digest = |t: &str| hex::encode(quiver_server::auth::token_digest(t));
    let config = format!(
        "server:\n  reads_need_token: true\n  tokens:\n    - {{name: model_svc, role: reader, sha256: {}}}\n",
        digest("reader-token")
    );
    let mut server = TestServer::start_custom(Limits::default(), Some("admin-token"), &config, |_| {}).await;
    let channel = server.channel().await;
    let mut registry = pb::registry_service_client::RegistryServiceClient::new(channel.clone());
    let mut apply = tonic::Request::new(pb::ApplyRequest {
        documents: example_documents(),
        expected_version: 0,
        applied_by: "t".into(),
    });
    apply.metadata_mut().insert("authorization", "Bearer admin-token".parse().unwrap());
    registry.apply(apply).await.unwrap();
    let http = HttpEndpoint::start(&server.app, Limits::default(), true).await;
    let body = br#"{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}"#;
    let none = http.post_json("/v1/online", body, &[]).await;
    assert_eq!((none.status, none.error().0.as_str()), (401, "UNAUTHENTICATED"), "{}", none.body);
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    assert!(none.error().1.contains("Bearer"), "{}", none.body);
    let wrong = http.post_json("/v1/online", body, &[("authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status, 401);
    let reader = http.post_json("/v1/online", body, &[("authorization", "Bearer reader-token")]).await;
    assert_eq!(reader.status, 200, "{}", reader.body);
    assert_eq!(http.get("/v1/views").await.status, 401);
    assert_eq!(http.get_with("/v1/views", &[("authorization", "bearer reader-token")]).await.status, 200);
    assert_eq!(http.get("/").await.status, 401, "the catalog shows what a reader may read");
    assert_eq!(
        http.get_with("/views/driver_stats", &[("authorization", "Bearer admin-token")]).await.status,
        200
    );
    // Health, the API's description, the assets and metrics are open.
    for open in ["/healthz", "/v1/openapi.json", "/static/catalog.js", "/static/catalog.css", "/metrics"] {
        assert_eq!(http.get(open).await.status, 200, "{open}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_health_and_metrics_answer_on_the_http_port() {
    let mut server = TestServer::start().await;
    apply_example(server.channel().await).await;
    let with_metrics = HttpEndpoint::start(&server.app, Limits::default(), true).await;
    let doc = with_metrics.get("/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: BTreeSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for path in
        ["/v1/online", "/v1/views", "/v1/views/{name}", "/v1/services", "/v1/openapi.json", "/healthz"]
    {
        assert!(paths.contains(path), "{path} missing from {paths:?}");
    }
    assert!(doc["paths"]["/v1/online"]["post"]["requestBody"].is_object());
    let health = with_metrics.get("/healthz").await;
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("serving")));
    let metrics = with_metrics.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("quiver_registry_version 1"), "{}", metrics.body);
    assert!(
        metrics.body.contains("quiver_http_requests_total{route=\"/v1/openapi.json\",status=\"200\"} 1"),
        "{}",
        metrics.body
    );
    assert_eq!(with_metrics.get("/no/such/page").await.status, 404);
    let counted = with_metrics.get("/metrics").await.body;
    assert!(counted.contains("quiver_http_requests_total{route=\"unknown\",status=\"404\"} 1"), "{counted}");
    let without = HttpEndpoint::start(&server.app, Limits::default(), false).await;
    assert_eq!(without.get("/metrics").await.status, 404, "metrics on their own address are not repeated");
    server.shutdown().await;
}

/// Every `href="..."` and `src="..."` of a page.
fn hrefs(html: &str) -> Vec<String> {
    ["href=\"", "src=\""]
        .iter()
        .flat_map(|attr| html.split(attr).skip(1).filter_map(|rest| rest.split('"').next()))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalog_page_shows_the_example_project_and_every_link_answers() {
    let mut server = TestServer::start().await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    let job = materialize_all(channel.clone()).await;
    assert_eq!(job.state(), pb::JobState::Succeeded, "{job:?}");
    // A second version: a changed description (with markup, which must come out escaped).
    let documents: Vec<pb::YamlDocument> = example_documents()
        .into_iter()
        .map(|mut d| {
            d.content = d.content.replace(
                "Recent conversion, acceptance and trip volume of each driver.",
                "Recent <script>alert('x')</script> conversion of each driver.",
            );
            d
        })
        .collect();
    let mut registry = pb::registry_service_client::RegistryServiceClient::new(channel.clone());
    let applied = registry
        .apply(pb::ApplyRequest { documents, expected_version: 1, applied_by: "editor".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.version, 2);
    let http = HttpEndpoint::start(&server.app, Limits::default(), false).await;
    let snapshot = server.app.project().current().unwrap();
    let d = &snapshot.definitions;

    let index = http.get("/").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(index.headers["x-content-type-options"], "nosniff");
    assert!(index.headers["content-security-policy"].contains("script-src 'self'"));
    for name in d.entities.iter().map(|e| &e.name).chain(d.sources.iter().map(|s| &s.name)) {
        assert!(index.body.contains(name.as_str()), "{name} not in the catalog");
    }
    for v in &d.feature_views {
        assert!(index.body.contains(&format!("href=\"/views/{}\"", v.name)), "{}", v.name);
    }
    for s in &d.feature_services {
        assert!(index.body.contains(&format!("href=\"/services/{}\"", s.name)), "{}", s.name);
    }
    assert!(index.body.contains("id=\"search\"") && index.body.contains("data-search=\""));
    assert!(!index.body.contains("<script>alert"), "markup in a definition is escaped");
    assert!(index.body.contains("&lt;script&gt;alert(&#39;x&#39;)"));

    let view = http.get("/views/driver_stats").await;
    assert_eq!(view.status, 200);
    for text in [
        "conv_rate",
        "float32",
        "driver_id",
        "driver_stats_src",
        "2h",
        "pricing-team@rides.example",
        "newest event",
        "succeeded",
        "<svg",
        "p50",
        "conv_rate between 0 and 1",
        "held",
    ] {
        assert!(view.body.contains(text), "{text} not on the view page");
    }
    assert!(!view.body.contains("<script>alert"));
    let service = http.get("/services/ride_ranking_v1").await;
    assert_eq!(service.status, 200);
    assert!(service.body.contains("customer_profile") && service.body.contains("current_balance"));
    let lineage = http.get("/lineage").await;
    assert_eq!(lineage.status, 200);
    assert!(lineage.body.contains("<svg") && lineage.body.contains("class=\"edge\""));
    assert!(
        lineage.body.contains("href=\"/#source-driver_stats_src\"")
            && lineage.body.contains("href=\"/services/ride_ranking_v1\"")
    );
    let history = http.get("/history").await;
    assert_eq!(history.status, 200);
    assert!(
        history.body.contains("Version 2")
            && history.body.contains("Version 1")
            && history.body.contains("editor")
    );
    assert!(history.body.contains("description: Recent conversion, acceptance and trip volume of each driver. -&gt; Recent &lt;script&gt;"), "the field diff quiver plan shows");
    let v1 = http.get("/history/1").await;
    assert_eq!(v1.status, 200);
    assert!(v1.body.contains("driver_stats_src"));
    assert_eq!(http.get("/history/99").await.status, 404);
    let runs = http.get("/runs").await;
    assert_eq!(runs.status, 200);
    assert!(runs.body.contains(&job.id) && runs.body.contains("href=\"/views/driver_stats\""));

    // Every link on every page answers 200.
    let mut seen = BTreeSet::new();
    let mut queue: Vec<String> = vec!["/".into()];
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let answer = http.get(&path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        if answer.headers["content-type"].starts_with("text/html") {
            for href in hrefs(&answer.body) {
                assert!(href.starts_with('/'), "only links within the catalog: {href} on {path}");
                let target = href.split('#').next().unwrap().to_string();
                if !target.is_empty() && !seen.contains(&target) {
                    queue.push(target);
                }
            }
        }
    }
    for page in [
        "/",
        "/lineage",
        "/history",
        "/runs",
        "/views/driver_stats",
        "/services/ride_ranking_v1",
        "/history/2",
        "/static/catalog.js",
    ] {
        assert!(seen.contains(page), "{page} is not reachable by links");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_headers_is_closed_and_huge_headers_are_refused() {
    let mut server = TestServer::start().await;
    let http = HttpEndpoint::start(&server.app, Limits::default(), false).await;
    // Headers never finished: the connection is closed after the header timeout (10 s), long
    // before the idle timeout (5 min).
    let mut slow = tokio::net::TcpStream::connect(http.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a connection that never finished its headers is still open after 30 s");
    // A request head over 64 KiB is refused (431), not buffered. The server closes with the
    // rest of the head unread, so the kernel may reset the connection before the answer is
    // read: then there is no answer to check, only that the server goes on.
    let huge = format!("GET / HTTP/1.1\r\nhost: test\r\nx-filler: {}\r\n\r\n", "a".repeat(100_000));
    let mut stream = tokio::net::TcpStream::connect(http.addr).await.unwrap();
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    if !raw.is_empty() {
        assert_eq!(Answer::parse(&raw).status, 431);
    }
    assert_eq!(http.get("/healthz").await.status, 200, "still serving");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_slower_than_the_deadline_is_answered_504_and_frees_its_slot() {
    let mut server = TestServer::start().await;
    apply_example(server.channel().await).await;
    let limits =
        Limits { deadline: std::time::Duration::from_secs(1), max_concurrent_online: 1, ..Limits::default() };
    let http = HttpEndpoint::start(&server.app, limits, false).await;
    let mut slow = tokio::net::TcpStream::connect(http.addr).await.unwrap();
    slow.write_all(
        b"POST /v1/online HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"features\"",
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), slow.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let answer = Answer::parse(&raw);
    assert_eq!((answer.status, answer.error().0.as_str()), (504, "DEADLINE_EXCEEDED"), "{}", answer.body);
    // The only online slot is free again.
    let ok = http
        .post_json(
            "/v1/online",
            br#"{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}"#,
            &[],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_page_shows_the_latest_declared_drift_scores() {
    let mut server = TestServer::start_custom(Limits::default(), None, "", |o| {
        o.drift_check_every = Some(std::time::Duration::from_millis(300));
    })
    .await;
    let channel = server.channel().await;
    apply_example(channel.clone()).await;
    // Two days, one window each: the declared check compares the second with the first.
    let (day1, day2, day3) = (DATA_START, "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z");
    materialize_window(channel.clone(), &["driver_stats"], day1, day2).await;
    materialize_window(channel.clone(), &["driver_stats"], day2, day3).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report = loop {
        let round = server.app.latest_drift();
        let found =
            round.and_then(|r| r.views.iter().find(|(v, _)| v == "driver_stats").map(|(_, o)| o.clone()));
        if let Some(Ok(report)) = found {
            break report;
        }
        assert!(std::time::Instant::now() < deadline, "no drift check of driver_stats ran");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let http = HttpEndpoint::start(&server.app, Limits::default(), false).await;
    let page = http.get("/views/driver_stats").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<th>PSI</th>") && page.body.contains("Checked "), "{}", page.body);
    let drift_table = page.body.split("<th>PSI</th>").nth(1).unwrap();
    let row =
        drift_table.split("<td><code>conv_rate</code></td>").nth(1).unwrap().split("</tr>").next().unwrap();
    let drifted = if report.features["conv_rate"].drifted { "drifted" } else { "<td>no</td>" };
    assert!(row.contains(drifted), "{row}");
    server.shutdown().await;
}
