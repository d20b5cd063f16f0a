//! The declared objects — entities, sources, feature views, feature services — as the rest of
//! Quiver sees them once parsed and validated.
//!
//! These types are what the registry stores (as JSON) and hashes, so every field is
//! deterministic: lists keep the user's order where order means something (join keys,
//! features), maps are sorted, and absent optional fields serialize as absent.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dtype::DType;
use crate::duration::Ttl;
use crate::error::{Error, Result};
use crate::problem::ObjectKind;

/// A named, typed column: a join key or a feature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub dtype: DType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Something features describe (a driver, a customer), identified by one or more join keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub name: String,
    pub join_keys: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// File format of a lake source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Parquet,
    Csv,
    /// Newline-delimited JSON, one object per line.
    Json,
}

impl SourceFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "parquet" => Some(SourceFormat::Parquet),
            "csv" => Some(SourceFormat::Csv),
            "json" => Some(SourceFormat::Json),
            _ => None,
        }
    }

    /// The file extension expected when a source path names a folder.
    pub fn extension(&self) -> &'static str {
        match self {
            SourceFormat::Parquet => ".parquet",
            SourceFormat::Csv => ".csv",
            SourceFormat::Json => ".json",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceFormat::Parquet => "parquet",
            SourceFormat::Csv => "csv",
            SourceFormat::Json => "json",
        })
    }
}

/// Options for CSV sources. Ignored for other formats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvOptions {
    pub delimiter: char,
    pub has_header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: ',', has_header: true }
    }
}

/// Raw data in the lake: files of one format, found by a path or glob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub name: String,
    /// Relative to the configured lake, or a full URL. May hold globs (`*`, `?`, `[..]`).
    pub path: String,
    pub format: SourceFormat,
    /// The column holding when each row's values became true (the event time).
    pub timestamp_field: String,
    /// The column holding when each row was written; breaks ties between equal event times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A group of features of the same entities, computed from one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureView {
    pub name: String,
    pub entities: Vec<String>,
    pub source: String,
    /// How long a value stays valid after its event time; zero means forever.
    pub ttl: Ttl,
    /// Whether materialization writes this view to the online store.
    pub online: bool,
    pub features: Vec<Field>,
    /// DataFusion SQL over the source, visible as table `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Checks every materialized window (and every push) must pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<Expectation>,
    /// What a broken expectation does.
    #[serde(default, skip_serializing_if = "OnFailure::is_fail")]
    pub on_failure: OnFailure,
    /// When `quiver drift` flags a feature (the defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftThresholds>,
}

/// The scores above which a feature counts as drifted between two periods: the population
/// stability index (numbers and categories), the two-sample Kolmogorov-Smirnov statistic
/// (numbers) and the Jensen-Shannon distance (categories, base 2, so within 0 and 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftThresholds {
    pub psi: Bound,
    pub ks: Bound,
    pub js: Bound,
    /// The period the declared drift check compares the newest window against; absent,
    /// the window of the same length just before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Period>,
}

impl Default for DriftThresholds {
    /// PSI 0.2 (the usual "significant shift"), KS 0.1, JS distance 0.1.
    fn default() -> Self {
        DriftThresholds { psi: Bound(0.2), ks: Bound(0.1), js: Bound(0.1), reference: None }
    }
}

/// A period of event time, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
}

impl Period {
    /// `START..END`, each an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS` (UTC) or a date (midnight
    /// UTC); start before end, both within the nanosecond range (1677-2262). The error says
    /// which part is wrong without repeating the text.
    pub fn parse(text: &str) -> std::result::Result<Period, String> {
        let (start, end) = text
            .split_once("..")
            .ok_or_else(|| "write the period as START..END, e.g. 2026-01-01..2026-01-08".to_string())?;
        let instant = |t: &str, which: &str| {
            parse_instant(t.trim())
                .filter(|t| t.timestamp_nanos_opt().is_some())
                .ok_or_else(|| {
                    format!(
                        "the period's {which} is not a time between 1677 and 2262: use RFC 3339 (2026-01-01T12:00:00Z) or a date (2026-01-01)"
                    )
                })
        };
        let period = Period { start: instant(start, "start")?, end: instant(end, "end")? };
        if period.start >= period.end {
            return Err("the period is empty: its start is not before its end".into());
        }
        Ok(period)
    }
}

/// An RFC 3339 time, `YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD HH:MM:SS` (UTC), or a date
/// (midnight UTC).
pub fn parse_instant(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(x) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(x.with_timezone(&chrono::Utc));
    }
    for form in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(x) = chrono::NaiveDateTime::parse_from_str(t, form) {
            return Some(x.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|x| x.and_utc())
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start.to_rfc3339(), self.end.to_rfc3339())
    }
}

impl FeatureView {
    pub fn feature(&self, name: &str) -> Option<&Field> {
        self.features.iter().find(|f| f.name == name)
    }
}

/// A number bound of a range expectation: finite, compared as a 64-bit float. Equal when
/// the bits are (the parser never admits NaN), so definitions stay `Eq` and hash the same.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bound(pub f64);

impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Bound {}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One check of a view's rows, declared under `expectations:`. Row checks (`not_null`,
/// `range`, `allowed`, `unique`) count the rows that break them; window checks (`rows`,
/// `freshness`) judge a materialized window as a whole. Nulls break only `not_null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// Every row has a value in `column`.
    NotNull { column: String },
    /// Every value of the number column lies in `[min, max]` (NaN lies outside).
    Range {
        column: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<Bound>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<Bound>,
    },
    /// Every value of the string or bool column is one of `values`.
    Allowed { column: String, values: Vec<String> },
    /// No two rows share the values of `columns`.
    Unique { columns: Vec<String> },
    /// A materialized window holds between `min` and `max` rows.
    Rows {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u64>,
    },
    /// The newest event time of a materialized window is at most `max_age` before its end.
    Freshness { max_age: Ttl },
}

impl Expectation {
    /// Whether it judges rows one by one (and so applies to pushed rows too).
    pub fn is_row_check(&self) -> bool {
        !matches!(self, Expectation::Rows { .. } | Expectation::Freshness { .. })
    }

    /// The columns it reads.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Expectation::NotNull { column }
            | Expectation::Range { column, .. }
            | Expectation::Allowed { column, .. } => vec![column.as_str()],
            Expectation::Unique { columns } => columns.iter().map(String::as_str).collect(),
            Expectation::Rows { .. } | Expectation::Freshness { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::NotNull { column } => write!(f, "{column} not_null"),
            Expectation::Range { column, min, max } => match (min, max) {
                (Some(lo), Some(hi)) => write!(f, "{column} between {lo} and {hi}"),
                (Some(lo), None) => write!(f, "{column} at least {lo}"),
                (None, Some(hi)) => write!(f, "{column} at most {hi}"),
                (None, None) => write!(f, "{column} any number"),
            },
            Expectation::Allowed { column, values } => write!(f, "{column} in [{}]", values.join(", ")),
            Expectation::Unique { columns } => write!(f, "unique [{}]", columns.join(", ")),
            Expectation::Rows { min, max } => match (min, max) {
                (Some(lo), Some(hi)) => write!(f, "rows between {lo} and {hi}"),
                (Some(lo), None) => write!(f, "rows at least {lo}"),
                (None, Some(hi)) => write!(f, "rows at most {hi}"),
                (None, None) => write!(f, "rows any number"),
            },
            Expectation::Freshness { max_age } => write!(f, "freshness {max_age}"),
        }
    }
}

/// What a broken expectation does to a materialized window or a push.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Nothing is committed: table, watermark and online rows stay as they were; a push is
    /// refused.
    #[default]
    Fail,
    /// The window (or push) is committed and the broken expectations are reported.
    Warn,
}

impl OnFailure {
    pub fn is_fail(&self) -> bool {
        *self == OnFailure::Fail
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "fail" => Some(OnFailure::Fail),
            "warn" => Some(OnFailure::Warn),
            _ => None,
        }
    }
}

/// A named set of features a model consumes, so training and serving ask for the same list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureService {
    pub name: String,
    /// As written: `view` (all its features) or `view:feature`.
    pub features: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A reference to one feature, written `view:feature` everywhere (CLI, gRPC, services).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeatureRef {
    pub view: String,
    pub feature: String,
}

impl FeatureRef {
    /// Parses `view:feature`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.split_once(':') {
            Some((view, feature)) if !view.is_empty() && !feature.is_empty() && !feature.contains(':') => {
                Ok(FeatureRef { view: view.to_string(), feature: feature.to_string() })
            }
            _ => Err(Error::InvalidArgument(format!(
                "'{text}' is not a feature reference; write it as view:feature, e.g. driver_stats:conv_rate"
            ))),
        }
    }
}

impl fmt::Display for FeatureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.view, self.feature)
    }
}

/// The whole set of declared objects of a project. Each list is sorted by name and names are
/// unique within a kind (validation guarantees it before anything is stored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definitions {
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub sources: Vec<Source>,
    #[serde(default)]
    pub feature_views: Vec<FeatureView>,
    #[serde(default)]
    pub feature_services: Vec<FeatureService>,
}

impl Definitions {
    /// Sorts every list by name, the canonical order for storage and hashing.
    pub fn sort(&mut self) {
        self.entities.sort_by(|a, b| a.name.cmp(&b.name));
        self.sources.sort_by(|a, b| a.name.cmp(&b.name));
        self.feature_views.sort_by(|a, b| a.name.cmp(&b.name));
        self.feature_services.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn feature_view(&self, name: &str) -> Option<&FeatureView> {
        self.feature_views.iter().find(|v| v.name == name)
    }

    pub fn feature_service(&self, name: &str) -> Option<&FeatureService> {
        self.feature_services.iter().find(|s| s.name == name)
    }

    /// The join keys of a view: the union of its entities' keys, in declaration order.
    /// Entities missing from the definitions are skipped (validation reports them).
    /// `view` with the entities it joins on and its source, nothing else: what a cluster's
    /// executor is sent to write the view's rows.
    pub fn only_view(&self, view: &FeatureView) -> Definitions {
        Definitions {
            entities: self.entities.iter().filter(|e| view.entities.contains(&e.name)).cloned().collect(),
            sources: self.sources.iter().filter(|s| s.name == view.source).cloned().collect(),
            feature_views: vec![view.clone()],
            feature_services: Vec::new(),
        }
    }

    pub fn join_keys(&self, view: &FeatureView) -> Vec<Field> {
        let mut keys: Vec<Field> = Vec::new();
        for name in &view.entities {
            if let Some(entity) = self.entity(name) {
                for key in &entity.join_keys {
                    if !keys.iter().any(|k| k.name == key.name) {
                        keys.push(key.clone());
                    }
                }
            }
        }
        keys
    }

    /// Expands a feature service into feature references, in the service's order.
    pub fn resolve_service(&self, name: &str) -> Result<Vec<FeatureRef>> {
        let service = self.feature_service(name).ok_or_else(|| Error::NotFound {
            kind: "feature service",
            name: name.to_string(),
            hint: suggest(name, self.feature_services.iter().map(|s| s.name.as_str())),
        })?;
        self.expand_distinct(service.features.iter().map(String::as_str))
    }

    /// The features a request asks for, named one of two ways: a feature service, or a list
    /// of references (each `view:feature` or a whole view). Exactly one of the two: a request
    /// naming both, or neither, is refused rather than answered with one of them silently.
    /// The CLI (`--service` / `--features`), the gRPC API and Flight all resolve through here.
    pub fn resolve_features(&self, service: Option<&str>, features: &[String]) -> Result<Vec<FeatureRef>> {
        match (service.filter(|s| !s.is_empty()), features.is_empty()) {
            (Some(s), true) => self.resolve_service(s),
            (None, false) => self.expand_references(features),
            (Some(_), false) => Err(Error::InvalidArgument(
                "both a feature service and a feature list were given: name the features one way, \
                 a feature service or feature references (view:feature)"
                    .into(),
            )),
            (None, true) => Err(Error::InvalidArgument(
                "no features named: give a feature service or feature references (view:feature)".into(),
            )),
        }
    }

    /// Expands several items (each `view` or `view:feature`, surrounding spaces ignored), in
    /// order. A feature named twice (`v` and `v:f`, or the same item repeated) comes back
    /// once, where it was first named: a request cannot grow its answer by repeating itself.
    pub fn expand_references(&self, items: &[String]) -> Result<Vec<FeatureRef>> {
        self.expand_distinct(items.iter().map(|i| i.trim()))
    }

    fn expand_distinct<'a>(&self, items: impl Iterator<Item = &'a str>) -> Result<Vec<FeatureRef>> {
        let mut seen_items = std::collections::HashSet::new();
        let mut seen = std::collections::HashSet::new();
        let mut refs = Vec::new();
        for item in items {
            if !seen_items.insert(item) {
                continue;
            }
            for r in self.expand_reference(item)? {
                if seen.insert(r.clone()) {
                    refs.push(r);
                }
            }
        }
        Ok(refs)
    }

    /// Expands `view` (all features) or `view:feature` (one, checked to exist).
    pub fn expand_reference(&self, item: &str) -> Result<Vec<FeatureRef>> {
        let (view_name, feature) = match item.split_once(':') {
            Some((v, f)) => (v, Some(f)),
            None => (item, None),
        };
        let view = self.feature_view(view_name).ok_or_else(|| Error::NotFound {
            kind: "feature view",
            name: view_name.to_string(),
            hint: suggest(view_name, self.feature_views.iter().map(|v| v.name.as_str())),
        })?;
        match feature {
            None => Ok(view
                .features
                .iter()
                .map(|f| FeatureRef { view: view.name.clone(), feature: f.name.clone() })
                .collect()),
            Some(f) => {
                if view.feature(f).is_none() {
                    return Err(Error::NotFound {
                        kind: "feature",
                        name: format!("{}:{f}", view.name),
                        hint: suggest(f, view.features.iter().map(|x| x.name.as_str())),
                    });
                }
                Ok(vec![FeatureRef { view: view.name.clone(), feature: f.to_string() }])
            }
        }
    }

    /// Every object as `(kind, name, canonical JSON)`, in canonical order.
    pub fn objects(&self) -> Vec<(ObjectKind, String, serde_json::Value)> {
        fn push<T: Serialize>(
            out: &mut Vec<(ObjectKind, String, serde_json::Value)>,
            kind: ObjectKind,
            name: &str,
            obj: &T,
        ) {
            // Serializing these plain structs to a JSON value cannot fail (no maps with
            // non-string keys, no custom serializers that error).
            let value = serde_json::to_value(obj).unwrap_or(serde_json::Value::Null);
            out.push((kind, name.to_string(), value));
        }
        let mut out = Vec::new();
        for e in &self.entities {
            push(&mut out, ObjectKind::Entity, &e.name, e);
        }
        for s in &self.sources {
            push(&mut out, ObjectKind::Source, &s.name, s);
        }
        for v in &self.feature_views {
            push(&mut out, ObjectKind::FeatureView, &v.name, v);
        }
        for s in &self.feature_services {
            push(&mut out, ObjectKind::FeatureService, &s.name, s);
        }
        out
    }

    /// Content hash of every object, keyed `section/name` (e.g. `feature_views/driver_stats`).
    pub fn hashes(&self) -> BTreeMap<String, String> {
        self.objects()
            .into_iter()
            .map(|(kind, name, value)| (format!("{}/{name}", kind.section()), content_hash(&value)))
            .collect()
    }
}

/// SHA-256 of an object's canonical JSON (struct fields in declaration order, maps sorted).
pub fn content_hash(value: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// ", did you mean 'x'?" when a known name is close to the unknown one, else a list of
/// what exists (short) or nothing.
pub fn suggest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    let best = known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(unknown.len()) / 3).max(1))
        .min();
    if let Some((_, k)) = best {
        return format!("; did you mean '{k}'?");
    }
    if known.is_empty() {
        String::new()
    } else if known.len() <= 8 {
        format!("; known: {}", known.join(", "))
    } else {
        format!("; {} are known, e.g. {}", known.len(), known[..5].join(", "))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_refs_parse_and_print() {
        let r = FeatureRef::parse("driver_stats:conv_rate").unwrap();
        assert_eq!(r.view, "driver_stats");
        assert_eq!(r.feature, "conv_rate");
        assert_eq!(r.to_string(), "driver_stats:conv_rate");
        for bad in ["driver_stats", ":x", "v:", "a:b:c", ""] {
            assert!(FeatureRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn suggestions_name_the_closest_known_name() {
        assert_eq!(
            suggest("driver_stat", ["driver_stats", "customer"].into_iter()),
            "; did you mean 'driver_stats'?"
        );
        assert_eq!(suggest("zzz", ["a1", "b2"].into_iter()), "; known: a1, b2");
        assert_eq!(suggest("zzz", std::iter::empty()), "");
    }

    #[test]
    fn repeated_references_expand_once_in_first_named_order() {
        let yaml = "entities: [{name: d, join_keys: [{name: id, dtype: int64}]}]\n\
            sources: [{name: s, path: x.parquet, format: parquet, timestamp_field: ts}]\n\
            feature_views: [{name: v, entities: [d], source: s, features: [{name: a, dtype: int64}, {name: b, dtype: int64}]}]\n\
            feature_services: [{name: svc, features: [v, 'v:b', v]}]\n";
        let loaded = crate::repo::parse_documents(&[("defs.yaml".into(), yaml.into())]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let defs = &loaded.definitions;
        let names = |refs: Vec<FeatureRef>| refs.iter().map(ToString::to_string).collect::<Vec<_>>();
        let many: Vec<String> =
            std::iter::repeat_n("v".to_string(), 1000).chain(["v:b".into(), " v:a ".into()]).collect();
        assert_eq!(names(defs.expand_references(&many).unwrap()), ["v:a", "v:b"]);
        assert_eq!(names(defs.expand_references(&["v:b".into(), "v".into()]).unwrap()), ["v:b", "v:a"]);
        assert_eq!(names(defs.resolve_service("svc").unwrap()), ["v:a", "v:b"]);

        // A request names its features one way: a service, or a list; never both or neither.
        assert_eq!(names(defs.resolve_features(Some("svc"), &[]).unwrap()), ["v:a", "v:b"]);
        assert_eq!(names(defs.resolve_features(None, &["v:b".into()]).unwrap()), ["v:b"]);
        let both = defs.resolve_features(Some("svc"), &["v:a".into()]).unwrap_err();
        assert!(
            matches!(&both, Error::InvalidArgument(m) if m.contains("both a feature service and a feature list")),
            "{both}"
        );
        let neither = defs.resolve_features(Some(""), &[]).unwrap_err();
        assert!(
            matches!(&neither, Error::InvalidArgument(m) if m.contains("no features named")),
            "{neither}"
        );
    }
}
