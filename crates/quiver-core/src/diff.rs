//! What `apply` would change: objects added, removed, and changed field by field.
//!
//! The diff walks the canonical JSON of each object. Lists of named items (features, join
//! keys) are matched by name, so reordering is reported as a reorder and a changed dtype as
//! `features[conv_rate].dtype: float32 -> float64`, not as a whole new list.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::definitions::Definitions;
use crate::problem::ObjectKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Added,
    Removed,
    Changed,
}

/// One changed field of an object. `None` means the field is absent on that side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "(absent)".to_string(),
            Some(Value::String(s)) if !s.contains('\n') => s.clone(),
            Some(Value::String(s)) => format!("{:?}", s),
            Some(v) => v.to_string(),
        };
        write!(f, "{}: {} -> {}", self.path, show(&self.before), show(&self.after))
    }
}

/// One object that differs between two definition sets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectChange {
    pub kind: ObjectKind,
    pub name: String,
    pub action: Action,
    /// For `Changed`: every differing field. Empty for added and removed objects.
    pub fields: Vec<FieldChange>,
}

/// Every difference from `before` to `after`, ordered by kind then name.
pub fn diff(before: &Definitions, after: &Definitions) -> Vec<ObjectChange> {
    let index = |d: &Definitions| -> BTreeMap<(ObjectKind, String), Value> {
        d.objects().into_iter().map(|(k, n, v)| ((k, n), v)).collect()
    };
    let old = index(before);
    let new = index(after);
    let mut changes = Vec::new();
    let keys: std::collections::BTreeSet<&(ObjectKind, String)> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (kind, name) = key.clone();
        match (old.get(key), new.get(key)) {
            (None, Some(_)) => {
                changes.push(ObjectChange { kind, name, action: Action::Added, fields: vec![] })
            }
            (Some(_), None) => {
                changes.push(ObjectChange { kind, name, action: Action::Removed, fields: vec![] })
            }
            (Some(a), Some(b)) if a != b => {
                let mut fields = Vec::new();
                diff_values("", a, b, &mut fields);
                changes.push(ObjectChange { kind, name, action: Action::Changed, fields });
            }
            _ => {}
        }
    }
    changes
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

/// `Some(names)` when every element is an object with a unique string `name`.
fn names_of(items: &[Value]) -> Option<Vec<&str>> {
    let names: Vec<&str> =
        items.iter().map(|v| v.get("name").and_then(Value::as_str)).collect::<Option<_>>()?;
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    (unique.len() == names.len()).then_some(names)
}

fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldChange>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = join(path, k);
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff_values(&p, u, v, out),
                    (u, v) => out.push(FieldChange { path: p, before: u.cloned(), after: v.cloned() }),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => match (names_of(x), names_of(y)) {
            (Some(xn), Some(yn)) => {
                for (i, n) in xn.iter().enumerate() {
                    let p = format!("{path}[{n}]");
                    match yn.iter().position(|m| m == n) {
                        Some(j) => diff_values(&p, &x[i], &y[j], out),
                        None => out.push(FieldChange { path: p, before: Some(x[i].clone()), after: None }),
                    }
                }
                for (j, n) in yn.iter().enumerate() {
                    if !xn.contains(n) {
                        out.push(FieldChange {
                            path: format!("{path}[{n}]"),
                            before: None,
                            after: Some(y[j].clone()),
                        });
                    }
                }
                let common_x: Vec<&&str> = xn.iter().filter(|n| yn.contains(n)).collect();
                let common_y: Vec<&&str> = yn.iter().filter(|n| xn.contains(n)).collect();
                if common_x != common_y {
                    out.push(FieldChange {
                        path: format!("{path} (order)"),
                        before: Some(Value::from(common_x.iter().map(|s| s.to_string()).collect::<Vec<_>>())),
                        after: Some(Value::from(common_y.iter().map(|s| s.to_string()).collect::<Vec<_>>())),
                    });
                }
            }
            _ => out.push(FieldChange {
                path: path.to_string(),
                before: Some(a.clone()),
                after: Some(b.clone()),
            }),
        },
        _ => {
            out.push(FieldChange { path: path.to_string(), before: Some(a.clone()), after: Some(b.clone()) })
        }
    }
}

/// Feature views whose online rows must go when `changes` are applied: removed views, and
/// views that are no longer online in `after`.
pub fn views_leaving_online(changes: &[ObjectChange], after: &Definitions) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.kind == ObjectKind::FeatureView)
        .filter(|c| match c.action {
            Action::Removed => true,
            Action::Changed => after.feature_view(&c.name).is_some_and(|v| !v.online),
            Action::Added => false,
        })
        .map(|c| c.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::parse_documents;

    fn defs(yaml: &str) -> Definitions {
        let loaded = parse_documents(&[("t.yaml".into(), yaml.into())]);
        assert!(loaded.problems.is_empty(), "{}", loaded.problems);
        loaded.definitions
    }

    const BASE: &str = "
entities:
  - {name: driver, join_keys: [{name: driver_id, dtype: int64}]}
sources:
  - {name: src, path: a/*.parquet, format: parquet, timestamp_field: ts}
feature_views:
  - name: stats
    entities: [driver]
    source: src
    ttl: 2h
    features:
      - {name: a, dtype: float32}
      - {name: b, dtype: int64}
";

    #[test]
    fn identical_definitions_have_no_changes() {
        assert!(diff(&defs(BASE), &defs(BASE)).is_empty());
    }

    #[test]
    fn added_removed_and_changed_fields_are_reported() {
        let after = BASE
            .replace("ttl: 2h", "ttl: 1d")
            .replace("{name: a, dtype: float32}", "{name: a, dtype: float64}")
            .replace("      - {name: b, dtype: int64}\n", "      - {name: c, dtype: string}\n")
            .replace("entities:\n  - {name: driver", "entities:\n  - {name: rider, join_keys: [{name: rider_id, dtype: string}]}\n  - {name: driver");
        let changes = diff(&defs(BASE), &defs(&after));
        let text: Vec<String> = changes
            .iter()
            .map(|c| {
                format!(
                    "{:?} {} {:?} {}",
                    c.kind,
                    c.name,
                    c.action,
                    c.fields.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ")
                )
            })
            .collect();
        assert_eq!(
            text,
            vec![
                "Entity rider Added ".to_string(),
                "FeatureView stats Changed features[a].dtype: float32 -> float64; features[b]: {\"dtype\":\"int64\",\"name\":\"b\"} -> (absent); features[c]: (absent) -> {\"dtype\":\"string\",\"name\":\"c\"}; ttl: 2h -> 1d".to_string(),
            ]
        );
        let back = diff(&defs(&after), &defs(BASE));
        assert_eq!(back[0].action, Action::Removed);
    }

    #[test]
    fn reordering_features_is_a_change() {
        let after = BASE.replace(
            "      - {name: a, dtype: float32}\n      - {name: b, dtype: int64}\n",
            "      - {name: b, dtype: int64}\n      - {name: a, dtype: float32}\n",
        );
        let changes = diff(&defs(BASE), &defs(&after));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].fields[0].path, "features (order)");
    }
}
