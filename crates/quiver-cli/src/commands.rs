//! The registry commands: plan, apply, list, describe, registry history, sample-lake.

use std::path::Path;

use quiver_core::config::Config;
use quiver_core::definitions::Definitions;
use quiver_core::diff::{Action, ObjectChange, diff, views_leaving_online};
use quiver_core::problem::ObjectKind;
use quiver_core::registry::{ApplyOutcome, Registry, Snapshot};
use quiver_core::repo::{LoadedDefinitions, load_dir};
use quiver_offline::check::{CheckLimits, check_all};
use quiver_offline::lake::Lake;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Kind;
use crate::failure::{EXIT_CONFLICT, Failure};
use crate::output::{Output, table};

pub fn load_config(explicit: Option<&Path>) -> Result<Config, Failure> {
    Ok(Config::load(&Config::locate(explicit))?)
}

pub fn open_registry(config: &Config) -> Result<Registry, Failure> {
    Ok(Registry::open(&config.registry, &config.project)?)
}

/// The registry's current version, or the error every command gives before the first apply.
pub async fn applied(registry: &Registry) -> Result<quiver_core::registry::Snapshot, Failure> {
    registry.head().await?.ok_or_else(|| Failure::new("nothing applied yet: run `quiver apply` first"))
}

/// Reads the definitions folder and runs every check: structure, references, data.
/// All problems come back together.
pub async fn load_and_check(config: &Config) -> Result<LoadedDefinitions, Failure> {
    let loaded = load_dir(&config.definitions, Some(&config.root))?;
    check_all(
        &loaded,
        &Lake::new(config.lake.clone()).with_roots(config.lake_roots.clone()),
        CheckLimits::default(),
    )
    .await?;
    Ok(loaded)
}

fn sign(action: Action) -> &'static str {
    match action {
        Action::Added => "+",
        Action::Changed => "~",
        Action::Removed => "-",
    }
}

fn print_changes(out: &Output, changes: &[ObjectChange]) {
    for c in changes {
        out.line(format!("  {} {} {}", sign(c.action), c.kind, c.name));
        for f in &c.fields {
            out.line(format!("      {f}"));
        }
    }
}

fn counts(changes: &[ObjectChange]) -> String {
    let n = |a: Action| changes.iter().filter(|c| c.action == a).count();
    format!("{} added, {} changed, {} removed", n(Action::Added), n(Action::Changed), n(Action::Removed))
}

/// What `quiver plan --out` writes and `quiver apply PLAN` reads: which registry version the
/// plan was made against, and which definitions (by content hash).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    format: String,
    project: String,
    /// The registry head when planned (0: empty).
    registry_version: u64,
    /// `definitions_hash` of the planned definitions.
    definitions_hash: String,
    planned_at: chrono::DateTime<chrono::Utc>,
    planned_by: String,
    /// What the plan showed, for the reader of the file.
    changes: serde_json::Value,
}

const PLAN_FORMAT: &str = "quiver plan v1";
/// A plan file is small; a bigger one is not a plan.
const PLAN_MAX_BYTES: u64 = 16 << 20;

fn definitions_hash(defs: &Definitions) -> String {
    quiver_core::registry::definitions_hash(&defs.hashes())
}

pub async fn plan(config: &Config, file: Option<&Path>, out: &Output) -> Result<(), Failure> {
    let loaded = load_and_check(config).await?;
    let registry = open_registry(config)?;
    let head = registry.head().await?;
    let version = head.as_ref().map_or(0, |h| h.version);
    let empty = Definitions::default();
    let changes = diff(head.as_ref().map_or(&empty, |h| &h.definitions), &loaded.definitions);
    if let Some(file) = file {
        let plan = PlanFile {
            format: PLAN_FORMAT.into(),
            project: config.project.clone(),
            registry_version: version,
            definitions_hash: definitions_hash(&loaded.definitions),
            planned_at: chrono::Utc::now(),
            planned_by: applied_by(),
            changes: serde_json::to_value(&changes)
                .map_err(|e| Failure::new(format!("encoding the plan: {e}")))?,
        };
        let text = serde_json::to_string_pretty(&plan)
            .map_err(|e| Failure::new(format!("encoding the plan: {e}")))?;
        std::fs::write(file, text + "\n")
            .map_err(|e| Failure::new(format!("writing the plan to {}: {e}", file.display())))?;
    }
    if out.json {
        out.json(
            &json!({"ok": true, "project": config.project, "registry_version": version, "changes": changes}),
        );
        return Ok(());
    }
    out.line(format!(
        "Definitions in {} are valid ({} files; checked against the lake).",
        config.definitions.strip_prefix(&config.root).unwrap_or(&config.definitions).display(),
        loaded.files.len()
    ));
    if changes.is_empty() {
        out.line(format!("No changes: registry version {version} already matches."));
    } else {
        out.line(format!("Changes from registry version {version}:"));
        print_changes(out, &changes);
        let how = match file {
            Some(f) => format!("`quiver apply {}`", f.display()),
            // Against the version reviewed here, not whatever the head is by then.
            None => format!(
                "`quiver apply --expected-version {version}` (or `quiver plan --out PLAN`, then `quiver apply PLAN`)"
            ),
        };
        out.line(format!("{}. Run {how} to apply them as version {}.", counts(&changes), version + 1));
    }
    Ok(())
}

/// What an apply must find in the registry.
pub enum Expect {
    /// Whatever the head is when the apply reads it (a race of milliseconds is still caught).
    Head,
    /// This version (0: empty).
    Version(u64),
    /// What the plan file was made against, with the definitions it planned.
    Plan(std::path::PathBuf),
}

fn read_plan(file: &Path, config: &Config) -> Result<PlanFile, Failure> {
    let bad = |why: String| Failure { code: 2, ..Failure::new(format!("{}: {why}", file.display())) };
    let meta = std::fs::metadata(file).map_err(|e| bad(e.to_string()))?;
    if meta.len() > PLAN_MAX_BYTES {
        return Err(bad("not a plan written by `quiver plan --out` (too large)".into()));
    }
    let text = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
    let plan: PlanFile = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("not a plan written by `quiver plan --out` ({e})")))?;
    if plan.format != PLAN_FORMAT {
        return Err(bad("not a plan written by this version of `quiver plan --out`".into()));
    }
    if plan.project != config.project {
        return Err(bad(format!("a plan for project '{}', not '{}'", plan.project, config.project)));
    }
    Ok(plan)
}

/// Who the registry records as applying (and a plan file as planning): `QUIVER_USER`, else
/// `USER` or `LOGNAME`, else the system account this process runs as (containers and CI jobs
/// often set neither variable), else "unknown"; bounded as the registry records it, so a
/// plan file's `planned_by` is bounded too.
fn applied_by() -> String {
    ["QUIVER_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .chain(std::iter::once_with(system_account).flatten())
        .map(|name| quiver_core::registry::bounded_applied_by(&name))
        .find(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The name of the account this process runs as: the owner of `/proc/self` looked up in
/// `/etc/passwd`, or `uid N` when the passwd file does not name it. `None` without `/proc`.
#[cfg(unix)]
fn system_account() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    Some(account_name(&passwd, uid).unwrap_or_else(|| format!("uid {uid}")))
}

#[cfg(not(unix))]
fn system_account() -> Option<String> {
    None
}

/// The name `passwd` (the text of `/etc/passwd`) gives `uid`.
fn account_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

pub async fn apply(config: &Config, expect: Expect, out: &Output) -> Result<(), Failure> {
    let plan = match &expect {
        Expect::Plan(file) => Some(read_plan(file, config)?),
        _ => None,
    };
    let loaded = load_and_check(config).await?;
    if let Some(plan) = &plan
        && definitions_hash(&loaded.definitions) != plan.definitions_hash
    {
        return Err(Failure {
            code: EXIT_CONFLICT,
            ..Failure::new(format!(
                "the definitions in {} changed since the plan was made ({} by {}): nothing applied; \
                 run `quiver plan --out` again and review it",
                config.definitions.display(),
                plan.planned_at.format("%Y-%m-%d %H:%M:%S UTC"),
                plan.planned_by
            ))
        });
    }
    let registry = open_registry(config)?;
    let head = registry.head().await?;
    let expected = match (&expect, &plan) {
        (_, Some(plan)) => plan.registry_version,
        (Expect::Version(n), _) => *n,
        _ => head.as_ref().map_or(0, |h| h.version),
    };
    let empty = Definitions::default();
    let changes = diff(head.as_ref().map_or(&empty, |h| &h.definitions), &loaded.definitions);
    match registry.apply(&loaded.definitions, expected, &applied_by()).await? {
        ApplyOutcome::Unchanged { version } => {
            if out.json {
                out.json(&json!({"ok": true, "applied": false, "version": version, "changes": []}));
            } else {
                out.line(format!("No changes: registry stays at version {version}."));
            }
        }
        ApplyOutcome::Applied(snapshot) => {
            // Views that are gone (or no longer online) lose their online rows.
            let dropped = views_leaving_online(&changes, &loaded.definitions);
            if !dropped.is_empty() {
                let store = quiver_online::open(&config.online_store, &config.project).await.map_err(|e| {
                    Failure::new(format!(
                        "registry version {} is applied, but the online store could not be opened to delete the rows of {}: {e}",
                        snapshot.version,
                        dropped.join(", ")
                    ))
                })?;
                for view in &dropped {
                    let n = store.delete_view(view).await.map_err(|e| {
                        Failure::new(format!(
                            "registry version {} is applied, but deleting the online rows of '{view}' failed: {e}",
                            snapshot.version
                        ))
                    })?;
                    out.line(format!("Deleted {n} online rows of feature view '{view}'."));
                }
            }
            if out.json {
                out.json(
                    &json!({"ok": true, "applied": true, "version": snapshot.version, "changes": changes}),
                );
            } else {
                print_changes(out, &changes);
                out.line(format!("Applied registry version {} ({}).", snapshot.version, counts(&changes)));
            }
        }
    }
    Ok(())
}

async fn head_or_explain(config: &Config) -> Result<Option<Snapshot>, Failure> {
    open_registry(config)?.head().await.map_err(Failure::from)
}

pub async fn list(config: &Config, kind: Kind, out: &Output) -> Result<(), Failure> {
    let head = head_or_explain(config).await?;
    let version = head.as_ref().map_or(0, |h| h.version);
    let empty = Definitions::default();
    let defs = head.as_ref().map_or(&empty, |h| &h.definitions);
    if out.json {
        let items = match kind {
            Kind::Entities => serde_json::to_value(&defs.entities),
            Kind::Sources => serde_json::to_value(&defs.sources),
            Kind::Views => serde_json::to_value(&defs.feature_views),
            Kind::Services => serde_json::to_value(&defs.feature_services),
        }
        .map_err(|e| Failure::new(e.to_string()))?;
        out.json(&json!({"ok": true, "registry_version": version, "items": items}));
        return Ok(());
    }
    if head.is_none() {
        out.line("Nothing applied yet: run `quiver plan`, then `quiver apply`.");
        return Ok(());
    }
    let none = || "-".to_string();
    let text = match kind {
        Kind::Entities => table(
            &["NAME", "JOIN KEYS", "DESCRIPTION"],
            &defs
                .entities
                .iter()
                .map(|e| {
                    vec![
                        e.name.clone(),
                        e.join_keys
                            .iter()
                            .map(|k| format!("{}:{}", k.name, k.dtype))
                            .collect::<Vec<_>>()
                            .join(", "),
                        e.description.clone().unwrap_or_else(none),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Sources => table(
            &["NAME", "FORMAT", "PATH", "TIMESTAMP", "CREATED"],
            &defs
                .sources
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.format.to_string(),
                        s.path.clone(),
                        s.timestamp_field.clone(),
                        s.created_timestamp_field.clone().unwrap_or_else(none),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Views => table(
            &["NAME", "ENTITIES", "FEATURES", "TTL", "ONLINE", "SOURCE", "TRANSFORM"],
            &defs
                .feature_views
                .iter()
                .map(|v| {
                    vec![
                        v.name.clone(),
                        v.entities.join(", "),
                        v.features.len().to_string(),
                        v.ttl.to_string(),
                        v.online.to_string(),
                        v.source.clone(),
                        if v.transform.is_some() { "sql" } else { "-" }.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Services => table(
            &["NAME", "FEATURES", "DESCRIPTION"],
            &defs
                .feature_services
                .iter()
                .map(|s| {
                    let n = defs
                        .resolve_service(&s.name)
                        .map(|r| r.len().to_string())
                        .unwrap_or_else(|_| "?".into());
                    vec![s.name.clone(), n, s.description.clone().unwrap_or_else(none)]
                })
                .collect::<Vec<_>>(),
        ),
    };
    out.line(text);
    out.line(format!("(registry version {version})"));
    Ok(())
}

#[derive(Serialize)]
struct Described<'a, T: Serialize> {
    ok: bool,
    registry_version: u64,
    kind: ObjectKind,
    hash: Option<&'a String>,
    object: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    join_keys: Option<Vec<quiver_core::definitions::Field>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_features: Option<Vec<String>>,
}

pub async fn describe(config: &Config, kind: Kind, name: &str, out: &Output) -> Result<(), Failure> {
    let head = head_or_explain(config)
        .await?
        .ok_or_else(|| Failure::new("nothing applied yet: run `quiver apply` first"))?;
    let defs = &head.definitions;
    let (object_kind, value, join_keys, resolved) = match kind {
        Kind::Entities => {
            let e = defs
                .entity(name)
                .ok_or_else(|| not_found("entity", name, defs.entities.iter().map(|e| e.name.as_str())))?;
            (ObjectKind::Entity, serde_json::to_value(e), None, None)
        }
        Kind::Sources => {
            let s = defs
                .source(name)
                .ok_or_else(|| not_found("source", name, defs.sources.iter().map(|s| s.name.as_str())))?;
            (ObjectKind::Source, serde_json::to_value(s), None, None)
        }
        Kind::Views => {
            let v = defs.feature_view(name).ok_or_else(|| {
                not_found("feature view", name, defs.feature_views.iter().map(|v| v.name.as_str()))
            })?;
            (ObjectKind::FeatureView, serde_json::to_value(v), Some(defs.join_keys(v)), None)
        }
        Kind::Services => {
            let s = defs.feature_service(name).ok_or_else(|| {
                not_found("feature service", name, defs.feature_services.iter().map(|s| s.name.as_str()))
            })?;
            let refs = defs.resolve_service(&s.name)?.iter().map(|r| r.to_string()).collect();
            (ObjectKind::FeatureService, serde_json::to_value(s), None, Some(refs))
        }
    };
    let value = value.map_err(|e| Failure::new(e.to_string()))?;
    let hash = head.hashes.get(&format!("{}/{name}", object_kind.section()));
    if out.json {
        out.json(&Described {
            ok: true,
            registry_version: head.version,
            kind: object_kind,
            hash,
            object: &value,
            join_keys,
            resolved_features: resolved,
        });
        return Ok(());
    }
    out.line(format!("{object_kind} {name} (registry version {})", head.version));
    if let Some(h) = hash {
        out.line(format!("  hash: {h}"));
    }
    if let serde_json::Value::Object(map) = &value {
        for (k, v) in map {
            if k == "name" {
                continue;
            }
            print_value(out, k, v, 1);
        }
    }
    if let Some(keys) = join_keys {
        out.line(format!(
            "  join keys: {}",
            keys.iter().map(|k| format!("{}:{}", k.name, k.dtype)).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(refs) = resolved {
        out.line("  resolves to:");
        for r in refs {
            out.line(format!("    {r}"));
        }
    }
    Ok(())
}

fn print_value(out: &Output, key: &str, value: &serde_json::Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match value {
        serde_json::Value::String(s) if s.contains('\n') => {
            out.line(format!("{pad}{key}: |"));
            for l in s.lines() {
                out.line(format!("{pad}  {l}"));
            }
        }
        serde_json::Value::String(s) => out.line(format!("{pad}{key}: {s}")),
        serde_json::Value::Array(items) => {
            out.line(format!("{pad}{key}:"));
            for item in items {
                match item {
                    serde_json::Value::Object(m) => {
                        let parts: Vec<String> = m
                            .iter()
                            .map(|(k, v)| {
                                format!(
                                    "{k}: {}",
                                    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
                                )
                            })
                            .collect();
                        out.line(format!("{pad}  - {}", parts.join(", ")));
                    }
                    serde_json::Value::String(s) => out.line(format!("{pad}  - {s}")),
                    other => out.line(format!("{pad}  - {other}")),
                }
            }
        }
        serde_json::Value::Object(m) => {
            out.line(format!("{pad}{key}:"));
            for (k, v) in m {
                print_value(out, k, v, depth + 1);
            }
        }
        other => out.line(format!("{pad}{key}: {other}")),
    }
}

fn not_found<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a str>) -> Failure {
    Failure::new(format!(
        "{kind} '{name}' is not in the registry{}",
        quiver_core::definitions::suggest(name, known)
    ))
}

pub async fn history(config: &Config, out: &Output) -> Result<(), Failure> {
    let registry = open_registry(config)?;
    let versions = registry.history().await?;
    if out.json {
        let items: Vec<_> = versions
            .iter()
            .map(|s| {
                json!({
                    "version": s.version,
                    "applied_at": s.applied_at,
                    "applied_by": s.applied_by,
                    "definitions_hash": s.definitions_hash,
                    "summary": s.summary,
                })
            })
            .collect();
        out.json(&json!({"ok": true, "versions": items}));
        return Ok(());
    }
    if versions.is_empty() {
        out.line("Nothing applied yet.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|s| {
            let mut changes: Vec<String> = Vec::new();
            changes.extend(s.summary.added.iter().map(|k| format!("+{k}")));
            changes.extend(s.summary.changed.iter().map(|k| format!("~{k}")));
            changes.extend(s.summary.removed.iter().map(|k| format!("-{k}")));
            let shown = if changes.len() > 4 {
                format!("{} … ({} objects)", changes[..4].join(" "), changes.len())
            } else {
                changes.join(" ")
            };
            vec![
                s.version.to_string(),
                s.applied_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                s.applied_by.clone(),
                s.definitions_hash[..12].to_string(),
                shown,
            ]
        })
        .collect();
    out.line(table(&["VERSION", "APPLIED AT", "BY", "HASH", "CHANGES"], &rows));
    Ok(())
}

/// The largest spine `sample-lake --spine` writes (a benchmark's, not a disk's worth).
const SPINE_ROWS_MAX: u64 = 1_000_000_000;

pub fn sample_lake(
    dir: &Path,
    spec: &quiver_sample::SampleSpec,
    spine: Option<(&Path, u64)>,
    out: &Output,
) -> Result<(), Failure> {
    if spine.is_some_and(|(_, rows)| rows == 0 || rows > SPINE_ROWS_MAX) {
        return Err(Failure {
            code: 2,
            ..Failure::new(format!("--spine-rows must be 1 to {SPINE_ROWS_MAX}"))
        });
    }
    let summary = quiver_sample::generate_lake(dir, spec)?;
    let spine = match spine {
        Some((path, rows)) => Some((path, quiver_sample::write_spine(path, spec, rows, spec.seed)?)),
        None => None,
    };
    if out.json {
        let files: Vec<_> = summary.files.iter().map(|(p, n)| json!({"path": p, "rows": n})).collect();
        let spine = spine.map(|(p, n)| json!({"path": p, "rows": n}));
        out.json(&json!({"ok": true, "dir": dir, "files": files, "spine": spine}));
    } else {
        let rows: Vec<Vec<String>> =
            summary.files.iter().map(|(p, n)| vec![p.clone(), n.to_string()]).collect();
        out.line(table(&["FILE", "ROWS"], &rows));
        out.line(format!("Wrote {} files under {}.", summary.files.len(), dir.display()));
        if let Some((path, rows)) = spine {
            out.line(format!("Wrote a spine of {rows} rows to {}.", path.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::account_name;

    #[test]
    fn account_names_are_read_from_the_passwd_text() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # a comment line\n\
                      broken line\n\
                      ci:x:1001:1001::/home/ci:/bin/sh\n";
        assert_eq!(account_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(account_name(passwd, 1001).as_deref(), Some("ci"));
        assert_eq!(account_name(passwd, 1002), None);
        assert_eq!(account_name("", 0), None);
    }
}
