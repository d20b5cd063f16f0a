//! Checks the definitions against each other: every reference resolves, keys and features do
//! not collide, services name what exists. Checks against the data itself (columns, types,
//! SQL) live in `quiver-offline`, which has DataFusion.

use std::collections::BTreeMap;

use crate::definitions::{Definitions, Expectation, FeatureView, suggest};
use crate::dtype::DType;
use crate::problem::{ObjectKind, Problem, Problems};
use crate::repo::{LoadedDefinitions, is_valid_name};

/// Column names the offline store writes next to the join keys and features.
pub const RESERVED_COLUMNS: [&str; 2] = ["event_timestamp", "created_timestamp"];

/// Every cross-reference problem in `loaded`, in declaration order.
pub fn validate_references(loaded: &LoadedDefinitions) -> Problems {
    let defs = &loaded.definitions;
    let origins = &loaded.origins;
    let mut problems = Problems::default();

    for entity in &defs.entities {
        let kind = ObjectKind::Entity;
        if entity.join_keys.is_empty() {
            problems.push(
                origins
                    .problem(kind, &entity.name, "join_keys", "no join keys")
                    .with_hint("an entity needs at least one join key, e.g. {name: driver_id, dtype: int64}"),
            );
        }
        for key in &entity.join_keys {
            if !key.dtype.is_join_key() {
                let field = format!("join_keys[{}].dtype", key.name);
                problems.push(
                    origins
                        .problem(
                            kind,
                            &entity.name,
                            &field,
                            format!("{} cannot be a join key type", key.dtype),
                        )
                        .with_hint("join keys are int32, int64, string or bytes"),
                );
            }
        }
    }

    for view in &defs.feature_views {
        let kind = ObjectKind::FeatureView;
        let name = view.name.as_str();
        if view.entities.is_empty() {
            problems.push(
                origins
                    .problem(kind, name, "entities", "no entities")
                    .with_hint("list the entities the features describe, e.g. entities: [driver]"),
            );
        }
        // Join key name -> (entity, dtype), to find two entities disagreeing on a key.
        let mut keys: BTreeMap<&str, (&str, String)> = BTreeMap::new();
        for (i, entity_name) in view.entities.iter().enumerate() {
            let field = format!("entities[{entity_name}]");
            if view.entities[..i].contains(entity_name) {
                problems.push(
                    origins
                        .problem(kind, name, &field, format!("entity '{entity_name}' is listed twice"))
                        .with_hint("remove the copy"),
                );
                continue;
            }
            match defs.entity(entity_name) {
                Some(entity) => {
                    for key in &entity.join_keys {
                        if let Some((other, dtype)) = keys.get(key.name.as_str())
                            && *dtype != key.dtype.to_string()
                        {
                            problems.push(
                                origins.problem(kind, name, &field, format!(
                                    "join key '{}' is {} in entity '{entity_name}' but {dtype} in entity '{other}'",
                                    key.name, key.dtype
                                ))
                                .with_hint("entities sharing a join key must give it the same dtype"),
                            );
                        }
                        keys.insert(&key.name, (entity_name, key.dtype.to_string()));
                    }
                }
                None if loaded.declared(ObjectKind::Entity, entity_name) => {}
                None => problems.push(
                    origins
                        .problem(
                            kind,
                            name,
                            &field,
                            format!(
                                "unknown entity '{entity_name}'{}",
                                suggest(entity_name, defs.entities.iter().map(|e| e.name.as_str()))
                            ),
                        )
                        .with_hint("declare it under `entities:` or fix the name"),
                ),
            }
        }
        if defs.source(&view.source).is_none() && !loaded.declared(ObjectKind::Source, &view.source) {
            problems.push(
                origins
                    .problem(
                        kind,
                        name,
                        "source",
                        format!(
                            "unknown source '{}'{}",
                            view.source,
                            suggest(&view.source, defs.sources.iter().map(|s| s.name.as_str()))
                        ),
                    )
                    .with_hint("declare it under `sources:` or fix the name"),
            );
        }
        if view.features.is_empty() && !loaded.incomplete.contains(&(kind, view.name.clone())) {
            problems.push(
                origins
                    .problem(kind, name, "features", "no features")
                    .with_hint("a view declares at least one feature"),
            );
        }
        let timestamp_columns: Vec<&str> = defs
            .source(&view.source)
            .map(|s| {
                std::iter::once(s.timestamp_field.as_str())
                    .chain(s.created_timestamp_field.as_deref())
                    .collect()
            })
            .unwrap_or_default();
        for feature in &view.features {
            let field = format!("features[{}]", feature.name);
            let clash = if keys.contains_key(feature.name.as_str()) {
                Some("a join key of this view")
            } else if RESERVED_COLUMNS.contains(&feature.name.as_str()) {
                Some("reserved for the offline store's timestamp columns")
            } else if timestamp_columns.contains(&feature.name.as_str()) {
                Some("a timestamp column of the view's source")
            } else {
                None
            };
            if let Some(what) = clash {
                problems.push(
                    origins
                        .problem(kind, name, &field, format!("feature '{}' is {what}", feature.name))
                        .with_hint(
                            "rename the feature (a transform can alias the column: SELECT x AS new_name ...)",
                        ),
                );
            }
        }
        if let Some(sql) = &view.transform
            && sql.trim().is_empty()
        {
            problems.push(
                origins
                    .problem(kind, name, "transform", "is empty")
                    .with_hint("write a SQL query over the table `source`, or remove `transform`"),
            );
        }
        for tag in view.tags.keys() {
            if tag.is_empty() {
                problems.push(origins.problem(kind, name, "tags", "a tag has an empty key"));
            }
        }
        let keys: Vec<(String, DType)> =
            defs.join_keys(view).into_iter().map(|k| (k.name, k.dtype)).collect();
        for (i, expectation) in view.expectations.iter().enumerate() {
            check_expectation(loaded, view, &keys, i, expectation, &mut problems);
        }
    }

    for service in &defs.feature_services {
        let kind = ObjectKind::FeatureService;
        let name = service.name.as_str();
        if service.features.is_empty() {
            problems.push(
                origins
                    .problem(kind, name, "features", "no features")
                    .with_hint("list whole views or view:feature references"),
            );
        }
        for (i, item) in service.features.iter().enumerate() {
            let field = format!("features[{item}]");
            let at = origins.field(kind, name, &field);
            if service.features[..i].contains(item) {
                problems.push(
                    Problem::at(at, kind, name, Some(field), format!("'{item}' is listed twice"))
                        .with_hint("remove the copy"),
                );
                continue;
            }
            if let Some(problem) = check_reference(defs, loaded, item) {
                problems.push(Problem::at(at, kind, name, Some(field), problem.0).with_hint(problem.1));
            }
        }
    }
    problems
}

/// What is wrong with a service item (`view` or `view:feature`), with a hint.
fn check_reference(defs: &Definitions, loaded: &LoadedDefinitions, item: &str) -> Option<(String, String)> {
    let (view_name, feature) = match item.split_once(':') {
        Some((v, f)) => (v, Some(f)),
        None => (item, None),
    };
    if !is_valid_name(view_name) || feature.is_some_and(|f| !is_valid_name(f)) {
        return Some((
            format!("'{item}' is not a feature reference"),
            "write a view name, or view:feature".into(),
        ));
    }
    let Some(view) = defs.feature_view(view_name) else {
        if loaded.declared(ObjectKind::FeatureView, view_name) {
            return None; // the view itself has problems, reported there
        }
        return Some((
            format!(
                "unknown feature view '{view_name}'{}",
                suggest(view_name, defs.feature_views.iter().map(|v| v.name.as_str()))
            ),
            "declare the view under `feature_views:` or fix the name".into(),
        ));
    };
    let feature = feature?;
    if view.feature(feature).is_none()
        && !loaded.incomplete.contains(&(ObjectKind::FeatureView, view_name.to_string()))
    {
        return Some((
            format!(
                "view '{view_name}' has no feature '{feature}'{}",
                suggest(feature, view.features.iter().map(|f| f.name.as_str()))
            ),
            format!("features of '{view_name}' are listed under its `features:`"),
        ));
    }
    None
}

/// The type of a column of a view's offline table: a join key, a feature, or one of the
/// two timestamp columns.
fn column_type(view: &FeatureView, keys: &[(String, DType)], column: &str) -> Option<DType> {
    if RESERVED_COLUMNS.contains(&column) {
        return Some(DType::Timestamp);
    }
    keys.iter()
        .find(|(k, _)| k == column)
        .map(|(_, t)| t.clone())
        .or_else(|| view.feature(column).map(|f| f.dtype.clone()))
}

/// One expectation of a view against the view's columns: every column it names exists,
/// `min`/`max` are on numbers, `allowed` on strings or booleans (with values a boolean can
/// take).
fn check_expectation(
    loaded: &LoadedDefinitions,
    view: &FeatureView,
    keys: &[(String, DType)],
    index: usize,
    expectation: &Expectation,
    problems: &mut Problems,
) {
    let kind = ObjectKind::FeatureView;
    if loaded.incomplete.contains(&(kind, view.name.clone())) {
        // Some keys or features could not be read: a missing column here would be a second
        // report of the same problem.
        return;
    }
    let entry = loaded.expectation_entries.get(&(view.name.clone(), index)).copied().unwrap_or(index);
    let path = format!("expectations[{entry}]");
    let mut report = |field: String, message: String, hint: &str| {
        problems.push(loaded.origins.problem(kind, &view.name, &field, message).with_hint(hint.to_string()));
    };
    for column in expectation.columns() {
        if column_type(view, keys, column).is_none() {
            let known: Vec<&str> = keys
                .iter()
                .map(|(k, _)| k.as_str())
                .chain(RESERVED_COLUMNS)
                .chain(view.features.iter().map(|f| f.name.as_str()))
                .collect();
            let place = match expectation {
                Expectation::Unique { .. } => format!("{path}.unique[{column}]"),
                _ => format!("{path}.column"),
            };
            report(
                place,
                format!("unknown column '{column}'{}", suggest(column, known.into_iter())),
                "expectations check the view's join keys, features, event_timestamp or created_timestamp",
            );
            return;
        }
    }
    match expectation {
        Expectation::Range { column, .. } => {
            let dtype = column_type(view, keys, column);
            if !matches!(dtype, Some(DType::Int32 | DType::Int64 | DType::Float32 | DType::Float64)) {
                report(
                    format!("{path}.column"),
                    format!("min and max need a number column; '{column}' is {}", show(dtype)),
                    "use allowed for strings and booleans, or check another column",
                );
            }
        }
        Expectation::Allowed { column, values } => match column_type(view, keys, column) {
            Some(DType::String) => {}
            Some(DType::Bool) => {
                if let Some(v) = values.iter().find(|v| *v != "true" && *v != "false") {
                    report(
                        format!("{path}.allowed"),
                        format!("'{v}' is not a value of the bool column '{column}'"),
                        "a bool column allows true and false",
                    );
                }
            }
            dtype => report(
                format!("{path}.allowed"),
                format!("allowed needs a string or bool column; '{column}' is {}", show(dtype)),
                "for numbers use min and max",
            ),
        },
        _ => {}
    }
}

fn show(dtype: Option<DType>) -> String {
    dtype.map_or_else(|| "unknown".into(), |d| d.to_string())
}
