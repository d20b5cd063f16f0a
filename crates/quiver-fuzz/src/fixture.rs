//! The in-process project the server-side targets run against.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use quiver_core::config::Config;
use quiver_offline::materialize::Span;
use quiver_offline::training::TrainingSetRequest;
use quiver_server::domain::jobs::JobState;
use quiver_server::materialize_svc::MaterializeApi;
use quiver_server::online_svc::OnlineApi;
use quiver_server::pb;
use quiver_server::pb::materialize_service_server::MaterializeService;
use quiver_server::pb::online_service_server::OnlineService;
use quiver_server::pb::push_service_server::PushService;
use quiver_server::pb::registry_service_server::RegistryService;
use quiver_server::push_svc::PushApi;
use quiver_server::registry_svc::RegistryApi;
use quiver_server::{App, Limits};
use tonic::{Code, Request, Status};

/// First day of the generated lake; it spans two days.
const DATA_START: &str = "2026-01-01T00:00:00Z";

/// The feature service the spine target asks for (two entities, four views' features).
const SERVICE: &str = "ride_ranking_v1";

/// A project served in-process: the example definitions applied, two days materialized.
pub struct Fixture {
    runtime: tokio::runtime::Runtime,
    pub app: Arc<App>,
    dir: tempfile::TempDir,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// Fails the input when `status` says the server broke rather than the input.
pub(crate) fn assert_not_internal(status: &Status) {
    assert!(
        !matches!(status.code(), Code::Internal | Code::Unknown),
        "the input got {:?}: {}",
        status.code(),
        status.message()
    );
}

/// libFuzzer's panic hook aborts on every panic, caught or not. Arrow's IPC reader panics on
/// a buffer past its message's body, and the Parquet reader on some damaged files. Quiver
/// catches those where it reads a caller's bytes and refuses the input: `convert::decode_ipc`
/// and the Parquet spine check run under `quiver_core::untrusted::guarded`, which marks its
/// thread; the Flight spine decoder, a stream polled on any thread, is told by the panic's
/// place in Arrow's code. Such panics are passed over here. Any other panic goes to the hook that was installed (the
/// fuzzer's, or the default one under `cargo test`); one that is not caught still fails the
/// input when it unwinds out of the target.
fn tolerate_arrow_reader_panics() {
    let installed = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let caught_by_quiver = quiver_core::untrusted::decoding()
            || info
                .location()
                .is_some_and(|l| l.file().contains("/arrow-buffer-") || l.file().contains("/arrow-ipc-"));
        if !caught_by_quiver {
            installed(info);
        }
    }));
}

impl Fixture {
    /// The shared fixture, built on first use.
    pub fn get() -> &'static Fixture {
        FIXTURE.get_or_init(Fixture::build)
    }

    fn build() -> Fixture {
        tolerate_arrow_reader_panics();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let start = chrono::DateTime::parse_from_rfc3339(DATA_START).expect("a time").to_utc();
        let spec =
            quiver_sample::SampleSpec { rows: 2_000, drivers: 20, customers: 50, days: 2, seed: 7, start };
        quiver_sample::generate_lake(&dir.path().join("lake"), &spec).expect("the sample lake");
        let config_path = dir.path().join("quiver.yaml");
        std::fs::write(
            &config_path,
            "project: fuzz\nregistry: registry\nlake: lake\noffline_store: offline\n",
        )
        .expect("quiver.yaml");
        let config = Config::load(&config_path).expect("the config");
        let app = runtime.block_on(async {
            let app = App::open(config, 256 << 20, None, dir.path().join("work")).await.expect("the project");
            app.project()
                .apply(Fixture::documents(), 0, "fuzz")
                .await
                .expect("the example definitions apply");
            let window = Span::Window { start, end: start + chrono::Duration::days(2) };
            let job = app.project().start_materialization(window, &[]).await.expect("a materialization");
            loop {
                let now = app.project().jobs().get(&job.id).await.expect("the job").expect("the job exists");
                match now.state {
                    JobState::Succeeded => break,
                    JobState::Failed => panic!("the fixture's materialization failed: {:?}", now.error),
                    JobState::Pending | JobState::Running => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                }
            }
            app
        });
        Fixture { runtime, app, dir }
    }

    /// Runs `f` on the fixture's runtime. A panic that unwinds out of it fails the input with
    /// a message of its own: a panic passed over by the hook above would otherwise reach
    /// libFuzzer only as "panic in a function that cannot unwind", its origin unprinted.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.runtime.block_on(f))) {
            Ok(output) => output,
            Err(payload) => panic!(
                "a panic unwound out of the target: {}",
                quiver_core::untrusted::panic_message(payload.as_ref())
            ),
        }
    }

    /// Builds a training set of [`SERVICE`] from a spine file holding `body`.
    pub async fn training_set(&self, parquet: bool, body: &[u8]) -> quiver_offline::Result<()> {
        let project = self.app.project();
        let snapshot = project.require_current().expect("definitions applied");
        let dir = tempfile::tempdir_in(self.dir.path()).expect("a folder for the set");
        let spine = dir.path().join(if parquet { "spine.parquet" } else { "spine.csv" });
        std::fs::write(&spine, body).expect("the spine file");
        let request = TrainingSetRequest {
            spine,
            out: dir.path().join("set.parquet"),
            features: snapshot.definitions.resolve_service(SERVICE)?,
            feature_service: Some(SERVICE.into()),
            full_feature_names: false,
            timestamp_column: "event_timestamp".into(),
            table_versions: Default::default(),
            overwrite: false,
        };
        quiver_offline::training::build(project.lake().session(), &snapshot, project.offline(), &request)
            .await
            .map(|_| ())
    }

    /// Calls method `method` (modulo the methods fuzzed) with `body` as its request: `None`
    /// when the body is not that request (the transport refuses it) or the call succeeds,
    /// else the status.
    pub async fn call(&self, method: u8, body: &[u8]) -> Option<Status> {
        use prost::Message;
        let app = self.app.clone();
        macro_rules! call {
            ($api:expr, $method:ident, $request:ty) => {{
                let request = <$request>::decode(body).ok()?;
                $api.$method(Request::new(request)).await.err()
            }};
        }
        match method % 7 {
            0 => call!(
                OnlineApi { app, max_cells: Limits::default().max_online_values },
                get_online_features,
                pb::GetOnlineFeaturesRequest
            ),
            1 => {
                let mut request = pb::PushRequest::decode(body).ok()?;
                // Offline pushes validate as online ones do, then commit to Delta: kept
                // online so that every input stays cheap.
                if matches!(request.to(), pb::PushTarget::Offline | pb::PushTarget::OnlineAndOffline) {
                    request.set_to(pb::PushTarget::Online);
                }
                PushApi(app).push(Request::new(request)).await.err()
            }
            2 => call!(RegistryApi(app), plan, pb::PlanRequest),
            3 => call!(RegistryApi(app), get_feature_view, pb::GetFeatureViewRequest),
            4 => call!(RegistryApi(app), list_feature_views, pb::ListRequest),
            5 => call!(MaterializeApi(app), get, pb::GetMaterializationRequest),
            _ => call!(RegistryApi(app), history, pb::HistoryRequest),
        }
    }

    /// The repository's example definitions, as `(file name, text)`.
    pub fn documents() -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../feature_defs/rides");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("feature_defs/rides")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let name = p.file_name().expect("a file name").to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).expect("a definitions file"))
            })
            .collect()
    }
}
