//! Reading a definitions folder: every `*.yaml` / `*.yml` file in it (and below it), merged
//! into one [`Definitions`], with the file, line and column of every object and field kept
//! in [`Origins`] so that any later check can point at the exact place to fix.
//!
//! Parsing is lenient about *what* is missing and strict about *shape*: a file that is not
//! valid YAML, or has a misspelt key, is one problem for that file; a missing or malformed
//! field is one problem for that field, and the rest of the file is still read, so a user
//! sees every problem at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::definitions::{
    Bound, CsvOptions, Definitions, DriftThresholds, Entity, Expectation, FeatureService, FeatureView, Field,
    OnFailure, Period, Source, SourceFormat,
};
use crate::dtype::{DTYPE_NAMES, DType};
use crate::duration::Ttl;
use crate::error::{Error, Result};
use crate::problem::{ObjectKind, Origin, Problem, Problems};

/// Where each object and field was written. Keys are `(kind, object, field)`; the empty
/// field is the object itself.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    map: BTreeMap<(ObjectKind, String, String), Origin>,
}

impl Origins {
    pub fn insert(&mut self, kind: ObjectKind, object: &str, field: &str, origin: Origin) {
        self.map.insert((kind, object.to_string(), field.to_string()), origin);
    }

    /// The place of a field, falling back to its object when the field was not written.
    pub fn field(&self, kind: ObjectKind, object: &str, field: &str) -> Option<Origin> {
        self.map
            .get(&(kind, object.to_string(), field.to_string()))
            .or_else(|| self.map.get(&(kind, object.to_string(), String::new())))
            .cloned()
    }

    /// A problem with one field of an object, located where the field was written.
    pub fn problem(
        &self,
        kind: ObjectKind,
        object: &str,
        field: &str,
        message: impl Into<String>,
    ) -> Problem {
        Problem::at(self.field(kind, object, field), kind, object, Some(field.to_string()), message)
    }

    pub fn object(&self, kind: ObjectKind, object: &str) -> Option<Origin> {
        self.field(kind, object, "")
    }
}

/// Definitions read from files, before validation against each other or the data.
#[derive(Clone, Debug, Default)]
pub struct LoadedDefinitions {
    pub definitions: Definitions,
    pub origins: Origins,
    /// Problems found while reading (syntax, missing fields, bad dtype or ttl, duplicates).
    pub problems: Problems,
    /// The files read, in the order read.
    pub files: Vec<String>,
    /// Objects kept although part of them could not be read (a bad dtype, a bad ttl):
    /// later checks still run on them, but do not report what is missing as a second problem.
    pub incomplete: BTreeSet<(ObjectKind, String)>,
    /// `(view, k)` -> the entry of the view's `expectations:` list that its k-th expectation
    /// came from (one entry may hold several checks; a broken entry gives none).
    pub expectation_entries: BTreeMap<(String, usize), usize>,
}

/// A YAML scalar read as text whatever its YAML type, so `ttl: 0` and `ttl: "0"` mean
/// the same and a number where a name is expected gets a helpful message later.
#[derive(Debug, Clone)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a plain value (text or number)")
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        // Ask for a string, not "any": YAML 1.1 reads plain `n`, `yes` or `off` as booleans,
        // and a feature named `n` must stay `n`.
        d.deserialize_string(V)
    }
}

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    entities: Option<Vec<S<RawEntity>>>,
    sources: Option<Vec<S<RawSource>>>,
    feature_views: Option<Vec<S<RawView>>>,
    feature_services: Option<Vec<S<RawService>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: Option<S<Text>>,
    dtype: Option<S<Text>>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    name: Option<S<Text>>,
    join_keys: Option<S<Vec<S<RawField>>>>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCsvOptions {
    delimiter: Option<S<Text>>,
    has_header: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Option<S<Text>>,
    path: Option<S<Text>>,
    format: Option<S<Text>>,
    timestamp_field: Option<S<Text>>,
    created_timestamp_field: Option<S<Text>>,
    options: Option<S<RawCsvOptions>>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawView {
    name: Option<S<Text>>,
    entities: Option<S<Vec<S<Text>>>>,
    source: Option<S<Text>>,
    ttl: Option<S<Text>>,
    online: Option<bool>,
    features: Option<S<Vec<S<RawField>>>>,
    transform: Option<S<String>>,
    tags: Option<BTreeMap<String, Text>>,
    owner: Option<String>,
    description: Option<String>,
    expectations: Option<S<Vec<S<RawExpectation>>>>,
    on_failure: Option<S<Text>>,
    drift: Option<S<RawDrift>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrift {
    psi: Option<S<Text>>,
    ks: Option<S<Text>>,
    js: Option<S<Text>>,
    reference: Option<S<Text>>,
}

/// One entry of a view's `expectations:` list: a column and its checks, or one of
/// `unique`, `rows`, `freshness`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    column: Option<S<Text>>,
    not_null: Option<S<bool>>,
    min: Option<S<Text>>,
    max: Option<S<Text>>,
    allowed: Option<S<Vec<S<Text>>>>,
    unique: Option<S<Vec<S<Text>>>>,
    rows: Option<S<RawRows>>,
    freshness: Option<S<Text>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRows {
    min: Option<S<Text>>,
    max: Option<S<Text>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Option<S<Text>>,
    features: Option<S<Vec<S<Text>>>>,
    tags: Option<BTreeMap<String, Text>>,
    owner: Option<String>,
    description: Option<String>,
}

/// Reads every `*.yaml` / `*.yml` file under `dir` (sorted, recursive; hidden entries are
/// skipped). `display_root` is stripped from file names in messages when it is a prefix.
pub fn load_dir(dir: &Path, display_root: Option<&Path>) -> Result<LoadedDefinitions> {
    if !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "definitions folder {} does not exist or is not a folder",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    collect_yaml_files(dir, &mut files)?;
    if files.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "definitions folder {} holds no *.yaml files",
            dir.display()
        )));
    }
    let mut docs = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(path.display(), e))?;
        let shown = match display_root.and_then(|root| path.strip_prefix(root).ok()) {
            Some(rel) => rel.display().to_string(),
            None => path.display().to_string(),
        };
        docs.push((shown, text));
    }
    Ok(parse_documents(&docs))
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses named YAML documents (file name, text) into merged definitions. Never fails:
/// everything wrong is in the returned `problems`.
pub fn parse_documents(docs: &[(String, String)]) -> LoadedDefinitions {
    let mut reader = Reader::default();
    for (file, text) in docs {
        reader.files.push(file.clone());
        reader.read_file(file, text);
    }
    let mut definitions = reader.definitions;
    definitions.sort();
    LoadedDefinitions {
        definitions,
        origins: reader.origins,
        problems: reader.problems,
        files: reader.files,
        incomplete: reader.incomplete,
        expectation_entries: reader.expectation_entries,
    }
}

#[derive(Default)]
struct Reader {
    definitions: Definitions,
    origins: Origins,
    problems: Problems,
    files: Vec<String>,
    /// First place each name was declared, per kind, to report duplicates.
    seen: BTreeMap<(ObjectKind, String), Origin>,
    incomplete: BTreeSet<(ObjectKind, String)>,
    expectation_entries: BTreeMap<(String, usize), usize>,
}

fn origin(file: &str, loc: &serde_saphyr::Location) -> Origin {
    Origin { file: file.to_string(), line: loc.line(), column: loc.column() }
}

/// Whether a name can be used in references (`view:feature`), column names and keys.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

const EXPECTATION_FORMS: &str = "write each as one of {column: NAME, not_null: true}, {column: NAME, min: 0, max: 1}, \
     {column: NAME, allowed: [a, b]}, {unique: [COLUMNS]}, {rows: {min: N, max: N}} or {freshness: 2h}";

const NAME_HINT: &str =
    "names start with a letter or '_' and hold only letters, digits and '_' (at most 128)";

impl Reader {
    fn read_file(&mut self, file: &str, text: &str) {
        let has_content = text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
        if !has_content {
            return;
        }
        let raw: RawFile = match serde_saphyr::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let at = e.location().map(|l| origin(file, &l)).unwrap_or_else(|| Origin {
                    file: file.to_string(),
                    line: 0,
                    column: 0,
                });
                self.problems.push(
                    Problem::in_file(at, format!("cannot read this file: {}", first_line(&e.to_string())))
                        .with_hint(
                            "the file must be a YAML mapping with the sections entities, sources, \
                             feature_views and feature_services, each a list",
                        ),
                );
                return;
            }
        };
        for e in raw.entities.unwrap_or_default() {
            self.entity(file, e);
        }
        for s in raw.sources.unwrap_or_default() {
            self.source(file, s);
        }
        for v in raw.feature_views.unwrap_or_default() {
            self.view(file, v);
        }
        for s in raw.feature_services.unwrap_or_default() {
            self.service(file, s);
        }
    }

    /// Registers an object's name; returns it when it is new and valid.
    fn declare(
        &mut self,
        file: &str,
        kind: ObjectKind,
        at: &serde_saphyr::Location,
        name: Option<S<Text>>,
    ) -> Option<String> {
        let object_origin = origin(file, at);
        let Some(name) = name else {
            self.problems.push(
                Problem::in_file(object_origin, format!("{} without a `name`", kind.with_article()))
                    .with_hint(format!("give every {kind} a unique `name`")),
            );
            return None;
        };
        let name_origin = origin(file, &name.referenced);
        let n = name.value.0;
        if !is_valid_name(&n) {
            self.problems.push(
                Problem::at(Some(name_origin), kind, &n, Some("name".into()), "invalid name")
                    .with_hint(NAME_HINT),
            );
            return None;
        }
        if let Some(first) = self.seen.get(&(kind, n.clone())) {
            self.problems.push(
                Problem::at(
                    Some(name_origin),
                    kind,
                    &n,
                    Some("name".into()),
                    format!(
                        "duplicate name: {} named '{n}' is already declared at {first}",
                        kind.with_article()
                    ),
                )
                .with_hint(format!("rename one of them or delete the copy; {kind} names are unique")),
            );
            return None;
        }
        self.seen.insert((kind, n.clone()), object_origin.clone());
        self.origins.insert(kind, &n, "", object_origin);
        Some(n)
    }

    // Every argument is a different fact about the field; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn required(
        &mut self,
        file: &str,
        kind: ObjectKind,
        name: &str,
        at: &serde_saphyr::Location,
        field: &str,
        value: Option<S<Text>>,
        hint: &str,
    ) -> Option<String> {
        match value {
            Some(v) if !v.value.0.trim().is_empty() => {
                self.origins.insert(kind, name, field, origin(file, &v.referenced));
                Some(v.value.0)
            }
            Some(v) => {
                self.problems.push(
                    Problem::at(
                        Some(origin(file, &v.referenced)),
                        kind,
                        name,
                        Some(field.into()),
                        "is empty",
                    )
                    .with_hint(hint.to_string()),
                );
                None
            }
            None => {
                self.missing(file, kind, name, at, field, hint);
                None
            }
        }
    }

    /// A list of names (a view's `entities`, a service's `features`), remembering where the
    /// list and each of its items were written.
    fn name_list(
        &mut self,
        file: &str,
        kind: ObjectKind,
        object: &str,
        field: &str,
        list: S<Vec<S<Text>>>,
    ) -> Vec<String> {
        self.origins.insert(kind, object, field, origin(file, &list.referenced));
        list.value
            .into_iter()
            .map(|item| {
                let place = origin(file, &item.referenced);
                self.origins.insert(kind, object, &format!("{field}[{}]", item.value.0), place);
                item.value.0
            })
            .collect()
    }

    /// Reports a required field that was not written, at the object's place.
    fn missing(
        &mut self,
        file: &str,
        kind: ObjectKind,
        name: &str,
        at: &serde_saphyr::Location,
        field: &str,
        hint: &str,
    ) {
        self.problems.push(
            Problem::at(Some(origin(file, at)), kind, name, Some(field.into()), format!("missing `{field}`"))
                .with_hint(hint.to_string()),
        );
    }

    fn fields(
        &mut self,
        file: &str,
        kind: ObjectKind,
        object: &str,
        list_name: &str,
        raw: Vec<S<RawField>>,
    ) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        for (i, f) in raw.into_iter().enumerate() {
            let at = origin(file, &f.referenced);
            let raw = f.value;
            let Some(name) = raw.name else {
                self.problems.push(
                    Problem::at(Some(at), kind, object, Some(format!("{list_name}[{i}]")), "missing `name`")
                        .with_hint("write each as {name: ..., dtype: ...}"),
                );
                continue;
            };
            let fname = name.value.0;
            let field_path = format!("{list_name}[{fname}]");
            self.origins.insert(kind, object, &field_path, origin(file, &name.referenced));
            if !is_valid_name(&fname) {
                self.problems.push(
                    Problem::at(
                        Some(origin(file, &name.referenced)),
                        kind,
                        object,
                        Some(field_path.clone()),
                        format!("invalid name '{fname}'"),
                    )
                    .with_hint(NAME_HINT),
                );
                continue;
            }
            if out.iter().any(|o| o.name == fname) {
                self.problems.push(
                    Problem::at(
                        Some(origin(file, &name.referenced)),
                        kind,
                        object,
                        Some(field_path.clone()),
                        format!("'{fname}' is listed twice in {list_name}"),
                    )
                    .with_hint("names in one list are unique; remove the copy"),
                );
                continue;
            }
            let Some(dtype) = raw.dtype else {
                self.problems.push(
                    Problem::at(
                        Some(at),
                        kind,
                        object,
                        Some(format!("{field_path}.dtype")),
                        "missing `dtype`",
                    )
                    .with_hint(format!("one of {DTYPE_NAMES}")),
                );
                continue;
            };
            let dtype_origin = origin(file, &dtype.referenced);
            self.origins.insert(kind, object, &format!("{field_path}.dtype"), dtype_origin.clone());
            match dtype.value.0.parse::<DType>() {
                Ok(d) => out.push(Field { name: fname, dtype: d, description: raw.description }),
                Err(e) => self.problems.push(
                    Problem::at(Some(dtype_origin), kind, object, Some(format!("{field_path}.dtype")), e.0)
                        .with_hint(format!("one of {DTYPE_NAMES}")),
                ),
            }
        }
        out
    }

    fn entity(&mut self, file: &str, raw: S<RawEntity>) {
        let at = raw.referenced;
        let raw = raw.value;
        let Some(name) = self.declare(file, ObjectKind::Entity, &at, raw.name) else { return };
        let kind = ObjectKind::Entity;
        let join_keys = match raw.join_keys {
            Some(keys) => {
                self.origins.insert(kind, &name, "join_keys", origin(file, &keys.referenced));
                self.fields(file, kind, &name, "join_keys", keys.value)
            }
            None => {
                self.missing(
                    file,
                    kind,
                    &name,
                    &at,
                    "join_keys",
                    "e.g. join_keys: [{name: driver_id, dtype: int64}]",
                );
                Vec::new()
            }
        };
        self.definitions.entities.push(Entity { name, join_keys, description: raw.description });
    }

    fn source(&mut self, file: &str, raw: S<RawSource>) {
        let at = raw.referenced;
        let raw = raw.value;
        let kind = ObjectKind::Source;
        let Some(name) = self.declare(file, kind, &at, raw.name) else { return };
        let path = self.required(
            file,
            kind,
            &name,
            &at,
            "path",
            raw.path,
            "a path relative to the lake, or a URL; globs allowed",
        );
        let format_text = self.required(file, kind, &name, &at, "format", raw.format, "parquet, csv or json");
        let format = format_text.and_then(|f| match SourceFormat::parse(&f) {
            Some(f) => Some(f),
            None => {
                self.problems.push(
                    Problem::at(
                        self.origins.field(kind, &name, "format"),
                        kind,
                        &name,
                        Some("format".into()),
                        format!("unknown format '{f}'"),
                    )
                    .with_hint("parquet, csv or json (newline-delimited)"),
                );
                None
            }
        });
        let ts = self.required(
            file,
            kind,
            &name,
            &at,
            "timestamp_field",
            raw.timestamp_field,
            "the column holding each row's event time",
        );
        let created = raw.created_timestamp_field.map(|c| {
            self.origins.insert(kind, &name, "created_timestamp_field", origin(file, &c.referenced));
            c.value.0
        });
        let csv = match raw.options {
            None => None,
            Some(opts) => {
                let opts_at = origin(file, &opts.referenced);
                let o = opts.value;
                let mut csv = CsvOptions::default();
                if let Some(d) = o.delimiter {
                    let mut chars = d.value.0.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) if c.is_ascii() => csv.delimiter = c,
                        _ => self.problems.push(
                            Problem::at(
                                Some(origin(file, &d.referenced)),
                                kind,
                                &name,
                                Some("options.delimiter".into()),
                                format!("'{}' is not one ASCII character", d.value.0),
                            )
                            .with_hint("e.g. delimiter: \";\""),
                        ),
                    }
                }
                if let Some(h) = o.has_header {
                    csv.has_header = h;
                }
                if format.is_some_and(|f| f != SourceFormat::Csv) {
                    self.problems.push(
                        Problem::at(
                            Some(opts_at),
                            kind,
                            &name,
                            Some("options".into()),
                            "options apply to csv sources only",
                        )
                        .with_hint("remove `options`, or set format: csv"),
                    );
                }
                Some(csv)
            }
        };
        if let (Some(ts), Some(c)) = (&ts, &created)
            && ts == c
        {
            self.problems.push(
                Problem::at(
                    self.origins.field(kind, &name, "created_timestamp_field"),
                    kind,
                    &name,
                    Some("created_timestamp_field".into()),
                    "is the same column as timestamp_field",
                )
                .with_hint("name the column holding when the row was written, or leave it out"),
            );
        }
        if let (Some(path), Some(format), Some(timestamp_field)) = (path, format, ts) {
            self.definitions.sources.push(Source {
                name,
                path,
                format,
                timestamp_field,
                created_timestamp_field: created,
                csv,
                description: raw.description,
            });
        }
    }

    fn view(&mut self, file: &str, raw: S<RawView>) {
        let at = raw.referenced;
        let raw = raw.value;
        let kind = ObjectKind::FeatureView;
        let Some(name) = self.declare(file, kind, &at, raw.name) else { return };
        let mut complete = true;
        let entities = match raw.entities {
            Some(list) => self.name_list(file, kind, &name, "entities", list),
            None => {
                self.missing(
                    file,
                    kind,
                    &name,
                    &at,
                    "entities",
                    "list the entities the features describe, e.g. entities: [driver]",
                );
                complete = false;
                Vec::new()
            }
        };
        let source =
            self.required(file, kind, &name, &at, "source", raw.source, "the name of a declared source");
        complete &= source.is_some();
        let ttl = match raw.ttl {
            None => Ttl::NEVER_EXPIRES,
            Some(t) => {
                let o = origin(file, &t.referenced);
                self.origins.insert(kind, &name, "ttl", o.clone());
                match t.value.0.parse::<Ttl>() {
                    Ok(t) => t,
                    Err(e) => {
                        self.problems
                            .push(Problem::at(Some(o), kind, &name, Some("ttl".into()), e.0).with_hint(
                            "a number and a unit s, m, h or d, e.g. 2h or 1d12h; 0 means values never expire",
                        ));
                        complete = false;
                        Ttl::NEVER_EXPIRES
                    }
                }
            }
        };
        let features = match raw.features {
            Some(list) => {
                self.origins.insert(kind, &name, "features", origin(file, &list.referenced));
                let n = list.value.len();
                let f = self.fields(file, kind, &name, "features", list.value);
                complete &= f.len() == n;
                f
            }
            None => {
                self.missing(
                    file,
                    kind,
                    &name,
                    &at,
                    "features",
                    "e.g. features: [{name: conv_rate, dtype: float32}]",
                );
                complete = false;
                Vec::new()
            }
        };
        let transform = raw.transform.map(|t| {
            self.origins.insert(kind, &name, "transform", origin(file, &t.referenced));
            t.value
        });
        let tags = raw.tags.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        let expectations = match raw.expectations {
            Some(list) => {
                self.origins.insert(kind, &name, "expectations", origin(file, &list.referenced));
                self.expectations(file, &name, list.value)
            }
            None => Vec::new(),
        };
        let on_failure = match raw.on_failure {
            None => OnFailure::Fail,
            Some(t) => {
                let o = origin(file, &t.referenced);
                self.origins.insert(kind, &name, "on_failure", o.clone());
                OnFailure::parse(&t.value.0).unwrap_or_else(|| {
                    self.problems.push(
                        Problem::at(
                            Some(o),
                            kind,
                            &name,
                            Some("on_failure".into()),
                            format!("unknown on_failure '{}'", t.value.0),
                        )
                        .with_hint(
                            "fail (nothing is committed, the default) or warn (committed and reported)",
                        ),
                    );
                    OnFailure::Fail
                })
            }
        };
        let drift = raw.drift.map(|d| self.drift(file, &name, d));
        let Some(source) = source else {
            // Keep the name declared (so references to it do not also fail) but do not add a
            // view without a source to the definitions.
            return;
        };
        if !complete {
            self.incomplete.insert((kind, name.clone()));
        }
        self.definitions.feature_views.push(FeatureView {
            name,
            entities,
            source,
            ttl,
            online: raw.online.unwrap_or(true),
            features,
            transform,
            tags,
            owner: raw.owner,
            description: raw.description,
            expectations,
            on_failure,
            drift,
        });
    }

    /// A view's `drift:` thresholds; a value left out keeps its default.
    fn drift(&mut self, file: &str, view: &str, raw: S<RawDrift>) -> DriftThresholds {
        let kind = ObjectKind::FeatureView;
        self.origins.insert(kind, view, "drift", origin(file, &raw.referenced));
        let mut out = DriftThresholds::default();
        let RawDrift { psi, ks, js, reference } = raw.value;
        if let Some(text) = reference {
            match Period::parse(&text.value.0) {
                Ok(p) => out.reference = Some(p),
                Err(message) => self.problems.push(
                    Problem::at(
                        Some(origin(file, &text.referenced)),
                        kind,
                        view,
                        Some("drift.reference".into()),
                        format!("drift.reference: {message}"),
                    )
                    .with_hint("e.g. drift: {reference: 2026-01-01..2026-02-01}"),
                ),
            }
        }
        for (name, value, slot, most) in [
            ("psi", psi, &mut out.psi, f64::INFINITY),
            ("ks", ks, &mut out.ks, 1.0),
            ("js", js, &mut out.js, 1.0),
        ] {
            let Some(text) = value else { continue };
            let place = origin(file, &text.referenced);
            match text.value.0.trim().parse::<f64>() {
                Ok(v) if v > 0.0 && v <= most => *slot = Bound(v),
                _ => self.problems.push(
                    Problem::at(
                        Some(place),
                        kind,
                        view,
                        Some(format!("drift.{name}")),
                        format!("'{}' is not a {name} threshold", text.value.0),
                    )
                    .with_hint(
                        "a number above 0 (ks and js at most 1), e.g. drift: {psi: 0.2, ks: 0.1, js: 0.1}",
                    ),
                ),
            }
        }
        out
    }

    /// A view's `expectations:`. Each entry's place is kept as `expectations[i]` (and its
    /// columns as `expectations[i].column`) for the checks against the view's columns.
    fn expectations(&mut self, file: &str, view: &str, raw: Vec<S<RawExpectation>>) -> Vec<Expectation> {
        let kind = ObjectKind::FeatureView;
        let mut out: Vec<(usize, Expectation)> = Vec::new();
        for (i, entry) in raw.into_iter().enumerate() {
            let at = origin(file, &entry.referenced);
            let path = format!("expectations[{i}]");
            self.origins.insert(kind, view, &path, at.clone());
            let e = entry.value;
            let problem = |place: Origin, field: &str, message: String, hint: &str| {
                Problem::at(Some(place), kind, view, Some(format!("{path}{field}")), message)
                    .with_hint(hint.to_string())
            };
            let column_checks =
                e.not_null.is_some() || e.min.is_some() || e.max.is_some() || e.allowed.is_some();
            let forms = [
                e.column.is_some() || column_checks,
                e.unique.is_some(),
                e.rows.is_some(),
                e.freshness.is_some(),
            ];
            if forms.iter().filter(|f| **f).count() != 1 {
                self.problems.push(problem(
                    at,
                    "",
                    "an expectation is one kind of check".into(),
                    EXPECTATION_FORMS,
                ));
                continue;
            }
            if let Some(columns) = e.unique {
                let place = origin(file, &columns.referenced);
                let names = self.name_list(file, kind, view, &format!("{path}.unique"), columns);
                if names.is_empty() {
                    self.problems.push(problem(
                        place,
                        ".unique",
                        "lists no columns".into(),
                        "e.g. {unique: [driver_id, event_timestamp]}",
                    ));
                } else if let Some(twice) = names.iter().enumerate().find(|(j, n)| names[..*j].contains(n)) {
                    self.problems.push(problem(
                        place,
                        ".unique",
                        format!("names '{}' twice", twice.1),
                        "list each column once",
                    ));
                } else {
                    out.push((i, Expectation::Unique { columns: names }));
                }
                continue;
            }
            if let Some(rows) = e.rows {
                let place = origin(file, &rows.referenced);
                let hint = "a whole number of rows per materialized window, e.g. {rows: {min: 1000}}";
                let mut count = |t: Option<S<Text>>, which: &str| -> Option<Option<u64>> {
                    let Some(t) = t else { return Some(None) };
                    match t.value.0.trim().parse::<u64>() {
                        Ok(n) => Some(Some(n)),
                        Err(_) => {
                            self.problems.push(problem(
                                origin(file, &t.referenced),
                                &format!(".rows.{which}"),
                                format!("'{}' is not a whole number of rows", t.value.0),
                                hint,
                            ));
                            None
                        }
                    }
                };
                let (Some(min), Some(max)) = (count(rows.value.min, "min"), count(rows.value.max, "max"))
                else {
                    continue;
                };
                match (min, max) {
                    (None, None) => {
                        self.problems.push(problem(place, ".rows", "gives neither min nor max".into(), hint))
                    }
                    (Some(lo), Some(hi)) if lo > hi => self.problems.push(problem(
                        place,
                        ".rows",
                        format!("min {lo} is above max {hi}"),
                        "min is at most max",
                    )),
                    _ => out.push((i, Expectation::Rows { min, max })),
                }
                continue;
            }
            if let Some(age) = e.freshness {
                let place = origin(file, &age.referenced);
                match age.value.0.parse::<Ttl>() {
                    Ok(t) if !t.is_unbounded() => out.push((i, Expectation::Freshness { max_age: t })),
                    Ok(_) => self.problems.push(problem(
                        place,
                        ".freshness",
                        "is zero".into(),
                        "how old the newest row may be at the window's end, e.g. 2h",
                    )),
                    Err(err) => self.problems.push(problem(
                        place,
                        ".freshness",
                        err.0,
                        "a number and a unit s, m, h or d, e.g. 2h",
                    )),
                }
                continue;
            }
            let Some(column) = e.column else {
                self.problems.push(problem(
                    at,
                    "",
                    "checks a column without naming it".into(),
                    "add column: NAME",
                ));
                continue;
            };
            self.origins.insert(kind, view, &format!("{path}.column"), origin(file, &column.referenced));
            let column = column.value.0;
            if !column_checks {
                self.problems.push(problem(
                    at,
                    "",
                    format!("names column '{column}' but no check"),
                    "add not_null: true, min, max or allowed",
                ));
                continue;
            }
            if let Some(flag) = e.not_null {
                if flag.value {
                    out.push((i, Expectation::NotNull { column: column.clone() }));
                } else {
                    let place = origin(file, &flag.referenced);
                    self.problems.push(problem(
                        place,
                        ".not_null",
                        "not_null: false checks nothing".into(),
                        "write not_null: true, or remove it",
                    ));
                }
            }
            if e.min.is_some() || e.max.is_some() {
                let mut bound = |t: Option<S<Text>>, which: &str| -> Option<Option<Bound>> {
                    let Some(t) = t else { return Some(None) };
                    match t.value.0.trim().parse::<f64>() {
                        Ok(v) if v.is_finite() => Some(Some(Bound(v))),
                        _ => {
                            self.problems.push(problem(
                                origin(file, &t.referenced),
                                &format!(".{which}"),
                                format!("'{}' is not a finite number", t.value.0),
                                "e.g. min: 0, max: 1",
                            ));
                            None
                        }
                    }
                };
                let min_place = e.min.as_ref().map(|t| origin(file, &t.referenced));
                if let (Some(min), Some(max)) = (bound(e.min, "min"), bound(e.max, "max")) {
                    match (min, max) {
                        (Some(lo), Some(hi)) if lo.0 > hi.0 => self.problems.push(problem(
                            min_place.unwrap_or(at.clone()),
                            ".min",
                            format!("min {lo} is above max {hi}"),
                            "min is at most max",
                        )),
                        _ => out.push((i, Expectation::Range { column: column.clone(), min, max })),
                    }
                }
            }
            if let Some(values) = e.allowed {
                let place = origin(file, &values.referenced);
                self.origins.insert(kind, view, &format!("{path}.allowed"), place.clone());
                let values: Vec<String> = values.value.into_iter().map(|v| v.value.0).collect();
                if values.is_empty() {
                    self.problems.push(problem(
                        place,
                        ".allowed",
                        "lists no values".into(),
                        "e.g. allowed: [car, van, bike]",
                    ));
                } else {
                    out.push((i, Expectation::Allowed { column, values }));
                }
            }
        }
        for (k, (entry, _)) in out.iter().enumerate() {
            self.expectation_entries.insert((view.to_string(), k), *entry);
        }
        out.into_iter().map(|(_, e)| e).collect()
    }

    fn service(&mut self, file: &str, raw: S<RawService>) {
        let at = raw.referenced;
        let raw = raw.value;
        let kind = ObjectKind::FeatureService;
        let Some(name) = self.declare(file, kind, &at, raw.name) else { return };
        let features = match raw.features {
            Some(list) => self.name_list(file, kind, &name, "features", list),
            None => {
                self.missing(
                    file,
                    kind,
                    &name,
                    &at,
                    "features",
                    "list whole views or view:feature references",
                );
                return;
            }
        };
        let tags = raw.tags.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        self.definitions.feature_services.push(FeatureService {
            name,
            features,
            tags,
            owner: raw.owner,
            description: raw.description,
        });
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// Whether `name` was declared (even if the object was incomplete and left out).
impl LoadedDefinitions {
    pub fn declared(&self, kind: ObjectKind, name: &str) -> bool {
        self.origins.object(kind, name).is_some()
    }
}
