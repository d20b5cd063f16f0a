//! `quiver`: the command line of the Quiver feature store.
//!
//! Every command reads `quiver.yaml` (from `--config`, else `QUIVER_CONFIG`, else the
//! current folder), prints for people by default and JSON with `--json`, and exits
//! 0 on success, 1 on an error (invalid definitions, unreadable data, storage), 2 on a
//! usage error, and 3 when an apply lost a compare-and-swap race to another writer.

mod ballista;
mod commands;
mod example;
mod failure;
mod offline;
mod online;
mod output;
mod quality;
mod quickstart;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use quiver_core::config::{Config, OfflineEngineConfig};

use crate::failure::Failure;

#[derive(Parser)]
#[command(
    name = "quiver",
    version,
    about = "Quiver feature store: declare, apply, materialize and serve ML features"
)]
struct Cli {
    /// Project config file [default: ./quiver.yaml]
    #[arg(long, global = true, env = "QUIVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    json: bool,

    /// Memory offline jobs may use before spilling to disk, e.g. 512MiB, 4GiB
    #[arg(long, global = true, env = "QUIVER_MEMORY_LIMIT", default_value = "2GiB", value_name = "SIZE")]
    memory_limit: String,

    /// Where offline jobs (training sets, materialization) run: `local`, or a Ballista scheduler's df://HOST:PORT
    /// [default: `offline_engine` in the config, else local]
    #[arg(long, global = true, env = "QUIVER_OFFLINE_ENGINE", value_name = "ENGINE")]
    offline_engine: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what `apply` would change, after validating the definitions against the data
    Plan {
        /// Also write the plan to FILE, for `quiver apply FILE`: it applies exactly what was
        /// reviewed, or nothing (exit 3) if the registry or the definitions moved since
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Validate the definitions and store them as a new registry version
    Apply {
        /// A plan written by `quiver plan --out`: apply only if the registry is still at the
        /// version it was planned against and the definitions are the ones it planned
        #[arg(value_name = "PLAN", conflicts_with = "expected_version")]
        plan: Option<std::path::PathBuf>,
        /// Apply only if the registry is at version N (0: empty); exit 3 otherwise
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// List applied objects of one kind
    List {
        #[arg(value_enum)]
        kind: Kind,
    },
    /// Show one applied object in full
    Describe {
        #[arg(value_enum)]
        kind: Kind,
        name: String,
    },
    /// Registry commands
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Compute every selected view for the window [START, END) into the offline store
    Materialize {
        /// Start of the window (inclusive): RFC 3339, YYYY-MM-DD or `now`
        #[arg(long)]
        start: String,
        /// End of the window (exclusive)
        #[arg(long)]
        end: String,
        /// Only these views (comma separated); all views when absent
        #[arg(long, value_delimiter = ',')]
        views: Vec<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Materialize each view from its watermark (or the start of its data) up to END
    MaterializeIncremental {
        /// End of the window (exclusive): RFC 3339, YYYY-MM-DD or `now`
        #[arg(long)]
        end: String,
        /// Only these views (comma separated); all views when absent
        #[arg(long, value_delimiter = ',')]
        views: Vec<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Build a training set: the spine with each feature as it was at each row's time
    Historical {
        /// The spine: a .parquet or .csv file of entity keys, a timestamp column and labels
        #[arg(long, value_name = "FILE", required_unless_present = "from_manifest")]
        entities: Option<PathBuf>,
        /// Features as view:feature (or a whole view), comma separated
        #[arg(long, value_delimiter = ',', conflicts_with = "service")]
        features: Vec<String>,
        /// A feature service instead of --features
        #[arg(long)]
        service: Option<String>,
        /// The training set to write (.parquet); a manifest is written beside it. Also needed
        /// with --from-manifest: an output path is never taken from a manifest
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace --out (and its manifest) when it exists; the spine is never replaced
        #[arg(long)]
        overwrite: bool,
        /// Name feature columns view__feature instead of feature
        #[arg(long)]
        full_feature_names: bool,
        /// The spine's timestamp column
        #[arg(long, default_value = "event_timestamp")]
        timestamp_column: String,
        /// Rebuild the training set a manifest describes (same definitions, same table versions)
        #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["entities", "features", "service"])]
        from_manifest: Option<PathBuf>,
    },
    /// The latest feature values of some entities from the online store, as JSON
    /// (`quiver online rebuild` refills the online store from the offline tables)
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Online {
        #[command(subcommand)]
        action: Option<OnlineAction>,
        /// Features as view:feature (or a whole view), comma separated
        #[arg(long, value_delimiter = ',', conflicts_with = "service")]
        features: Vec<String>,
        /// A feature service instead of --features
        #[arg(long)]
        service: Option<String>,
        /// An entity: join keys as name=value, comma separated; repeat for more entities
        #[arg(long = "entity", value_name = "KEY=VALUE[,KEY=VALUE]", required = true)]
        entities: Vec<String>,
        /// Judge the ttl at this time instead of now (RFC 3339 or YYYY-MM-DD)
        #[arg(long)]
        at: Option<String>,
    },
    /// Serve the gRPC API: registry, online, offline (and Arrow Flight), materialization, push; with --http-addr also a JSON API and a web catalog
    Serve(Box<serve::ServeOpts>),
    /// Roles of an Apache Ballista cluster that runs Quiver's offline plans
    Ballista {
        #[command(subcommand)]
        role: ballista::BallistaCommand,
    },
    /// Who is materializing which view: the leases in the offline store
    Leases,
    /// How far a view's feature distributions moved between two periods of event time
    /// (exit 4 when a feature drifted past the view's thresholds). Without periods, the
    /// view's declared check: its newest successful window against `drift.reference`, or
    /// else against the window of the same length just before it
    Drift {
        /// The feature view
        view: String,
        /// The reference period, START..END (times as for materialize)
        #[arg(long, value_name = "START..END", requires = "current")]
        reference: Option<String>,
        /// The period compared with it
        #[arg(long, value_name = "START..END", requires = "reference")]
        current: Option<String>,
    },
    /// Train/serve skew: online values of sampled entities against a training set's for the
    /// same entities at the same moment (exit 4 when any differ)
    Skew {
        /// Feature references (view:feature or a whole view), comma separated
        #[arg(long, value_delimiter = ',', conflicts_with = "service", required_unless_present = "service")]
        features: Vec<String>,
        /// A feature service instead
        #[arg(long)]
        service: Option<String>,
        /// Entities to compare (at most 100 000)
        #[arg(long, default_value_t = 100)]
        sample: usize,
    },
    /// Statistics of a view's features, as a materialization run found them
    Stats {
        /// The feature view
        view: String,
        /// Which run: 1 the newest, 2 the one before, ... or a run id (default: the newest
        /// run with statistics)
        #[arg(long, value_name = "N")]
        run: Option<String>,
    },
    /// Create an example project in DIR, with sample data, and run the whole flow on it
    Quickstart {
        /// Folder to create the project in (must not already hold a project)
        #[arg(long, default_value = "quiver-quickstart")]
        dir: PathBuf,
        /// Rows of the largest sample table
        #[arg(long, default_value_t = 20_000)]
        rows: u64,
    },
    /// Write the example ride-hailing lake at any scale (deterministic for a seed)
    SampleLake {
        /// Folder to write the lake into
        #[arg(long)]
        dir: PathBuf,
        /// Rows of the driver_stats table; other tables scale with it
        #[arg(long, default_value_t = 20_000)]
        rows: u64,
        /// Number of drivers
        #[arg(long, default_value_t = 100)]
        drivers: u64,
        /// Number of customers
        #[arg(long, default_value_t = 500)]
        customers: u64,
        /// Days of data
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Random seed: the same seed writes the same bytes
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// First day of data (UTC), e.g. 2026-01-01
        #[arg(long, default_value = "2026-01-01")]
        start: String,
        /// Also write a training spine (driver_id, customer_id, event_timestamp,
        /// trip_completed) of this lake to this Parquet file
        #[arg(long)]
        spine: Option<PathBuf>,
        /// Rows of the spine (with --spine)
        #[arg(long, default_value_t = 10_000, requires = "spine")]
        spine_rows: u64,
    },
}

#[derive(Subcommand)]
enum OnlineAction {
    /// Refill the online store from the offline tables: the latest row of every entity,
    /// newer-wins (for a Redis that lost its rows, or a new online store)
    Rebuild {
        /// Views to rebuild, comma separated [default: every online view]
        #[arg(long, value_delimiter = ',')]
        views: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Every applied version, oldest first
    History,
}

/// Object kinds, with the spellings people try.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    #[value(alias = "entity")]
    Entities,
    #[value(alias = "source")]
    Sources,
    #[value(alias = "view", alias = "feature-views", alias = "feature_views", alias = "feature-view")]
    Views,
    #[value(
        alias = "service",
        alias = "feature-services",
        alias = "feature_services",
        alias = "feature-service"
    )]
    Services,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs what it does; a command only what went wrong. Libraries (the Delta
    // kernel, DataFusion, hyper…) log at WARN unless QUIVER_LOG asks for more: their INFO
    // lines are per batch, not per call.
    let default_level = if matches!(cli.command, Command::Serve(_)) { "warn,quiver=info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUIVER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal only: a log collected from a pipe or a file
        // (docker, systemd, CI) stays plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(json);
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The config, with the offline engine `--offline-engine` (or `QUIVER_OFFLINE_ENGINE`)
/// names in place of the config's own.
fn engine_config(config: &Option<PathBuf>, engine: &Option<String>) -> Result<Config, Failure> {
    let mut loaded = commands::load_config(config.as_deref())?;
    if let Some(text) = engine {
        loaded.offline_engine = OfflineEngineConfig::parse_flag(text)
            .map_err(|e| Failure { code: 2, ..Failure::new(format!("--offline-engine: {e}")) })?;
    }
    Ok(loaded)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let out = output::Output::new(cli.json);
    let memory_limit = quiver_offline::session::parse_size(&cli.memory_limit)
        .map_err(|e| Failure { code: 2, ..Failure::new(format!("--memory-limit: {e}")) })?;
    match cli.command {
        Command::Materialize { start, end, views, run } => {
            let span = quiver_offline::materialize::Span::Window {
                start: offline::parse_time(&start)?,
                end: offline::parse_time(&end)?,
            };
            materialize(&cli.config, &cli.offline_engine, span, &views, run.settings()?, memory_limit, &out)
                .await
        }
        Command::MaterializeIncremental { end, views, run } => {
            let span = quiver_offline::materialize::Span::Incremental { end: offline::parse_time(&end)? };
            materialize(&cli.config, &cli.offline_engine, span, &views, run.settings()?, memory_limit, &out)
                .await
        }
        Command::Historical {
            entities,
            features,
            service,
            out: out_path,
            overwrite,
            full_feature_names,
            timestamp_column,
            from_manifest,
        } => {
            let args = offline::HistoricalArgs {
                entities,
                features,
                service,
                out: out_path,
                overwrite,
                full_feature_names,
                timestamp_column,
                from_manifest,
            };
            offline::historical(&engine_config(&cli.config, &cli.offline_engine)?, args, memory_limit, &out)
                .await
        }
        Command::Plan { out: file } => {
            commands::plan(&commands::load_config(cli.config.as_deref())?, file.as_deref(), &out).await
        }
        Command::Apply { plan, expected_version } => {
            let config = commands::load_config(cli.config.as_deref())?;
            let expect = match plan {
                Some(file) => commands::Expect::Plan(file),
                None => expected_version.map_or(commands::Expect::Head, commands::Expect::Version),
            };
            commands::apply(&config, expect, &out).await
        }
        Command::List { kind } => {
            commands::list(&commands::load_config(cli.config.as_deref())?, kind, &out).await
        }
        Command::Describe { kind, name } => {
            commands::describe(&commands::load_config(cli.config.as_deref())?, kind, &name, &out).await
        }
        Command::Registry { command: RegistryCommand::History } => {
            commands::history(&commands::load_config(cli.config.as_deref())?, &out).await
        }
        Command::Online { action: Some(OnlineAction::Rebuild { views }), .. } => {
            online::rebuild(&commands::load_config(cli.config.as_deref())?, &views, memory_limit, &out).await
        }
        Command::Online { action: None, features, service, entities, at } => {
            let at = at.as_deref().map(offline::parse_time).transpose()?;
            online::online(
                &commands::load_config(cli.config.as_deref())?,
                &features,
                service.as_deref(),
                &entities,
                at,
                &out,
            )
            .await
        }
        Command::Serve(opts) => {
            serve::serve(engine_config(&cli.config, &cli.offline_engine)?, *opts, memory_limit).await
        }
        Command::Ballista { role } => ballista::run(role, memory_limit).await,
        Command::Leases => {
            offline::leases(&commands::load_config(cli.config.as_deref())?, memory_limit, &out).await
        }
        Command::Drift { view, reference, current } => {
            let config = commands::load_config(cli.config.as_deref())?;
            let periods = reference.as_deref().zip(current.as_deref());
            quality::drift(&config, &view, periods, memory_limit, &out).await
        }
        Command::Skew { features, service, sample } => {
            let config = commands::load_config(cli.config.as_deref())?;
            quality::skew(&config, &features, service.as_deref(), sample, memory_limit, &out).await
        }
        Command::Stats { view, run } => {
            quality::stats(&commands::load_config(cli.config.as_deref())?, &view, run.as_deref(), &out).await
        }
        Command::Quickstart { dir, rows } => quickstart::run(&dir, rows, memory_limit, &out).await,
        Command::SampleLake { dir, rows, drivers, customers, days, seed, start, spine, spine_rows } => {
            let start = offline::parse_time(&start)?;
            let spec = quiver_sample::SampleSpec { rows, drivers, customers, days, seed, start };
            let spine = spine.map(|path| (path, spine_rows));
            commands::sample_lake(&dir, &spec, spine.as_ref().map(|(p, n)| (p.as_path(), *n)), &out)
        }
    }
}

async fn materialize(
    config: &Option<PathBuf>,
    engine: &Option<String>,
    span: quiver_offline::materialize::Span,
    views: &[String],
    run: offline::RunSettings,
    memory_limit: usize,
    out: &output::Output,
) -> Result<(), Failure> {
    offline::materialize(&engine_config(config, engine)?, span, views, run, memory_limit, out).await
}

/// How a materialization runs: each view's lease, and whether the window may end in the future.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Wait up to this long (30s, 5m, 1h) for a view another process is materializing,
    /// instead of failing at once
    #[arg(long, value_name = "DURATION")]
    wait_for_lease: Option<String>,
    /// Lifetime of the leases taken (renewed every third of it while the run goes on)
    #[arg(long, env = "QUIVER_LEASE_TTL", default_value = "30s", value_name = "DURATION")]
    lease_ttl: String,
    /// Accept a window ending more than 5 minutes after now (a source with future-dated rows)
    #[arg(long)]
    allow_future: bool,
    /// Replace each named view's whole table with this window under the view's current
    /// columns (after its keys or features changed); earlier table versions keep the old rows
    #[arg(long, requires = "views")]
    rebuild: bool,
}

impl RunArgs {
    fn settings(&self) -> Result<offline::RunSettings, Failure> {
        let wait = match &self.wait_for_lease {
            None => std::time::Duration::ZERO,
            Some(text) => serve::duration("wait-for-lease", text)?,
        };
        let lease = quiver_offline::lease::LeaseSettings {
            ttl: serve::lease_ttl(&self.lease_ttl)?,
            wait,
            ..quiver_offline::lease::LeaseSettings::for_process("quiver materialize")
        };
        Ok(offline::RunSettings { lease, allow_future: self.allow_future, rebuild: self.rebuild })
    }
}
