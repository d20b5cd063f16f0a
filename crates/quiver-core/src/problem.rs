//! Validation problems: what is wrong, where (file, line, object, field), and how to fix it.
//!
//! Validation never stops at the first problem. Every check appends to a [`Problems`] list
//! and the caller reports them all at once, each on its own line.

use std::fmt;

use serde::Serialize;

/// The kind of a declared object, as it appears in messages and in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Entity,
    Source,
    FeatureView,
    FeatureService,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 4] =
        [ObjectKind::Entity, ObjectKind::Source, ObjectKind::FeatureView, ObjectKind::FeatureService];

    /// Words used in messages: "feature view".
    pub fn label(&self) -> &'static str {
        match self {
            ObjectKind::Entity => "entity",
            ObjectKind::Source => "source",
            ObjectKind::FeatureView => "feature view",
            ObjectKind::FeatureService => "feature service",
        }
    }

    /// "an entity", "a feature view".
    pub fn with_article(&self) -> &'static str {
        match self {
            ObjectKind::Entity => "an entity",
            ObjectKind::Source => "a source",
            ObjectKind::FeatureView => "a feature view",
            ObjectKind::FeatureService => "a feature service",
        }
    }

    /// The YAML section (and registry key prefix) holding this kind.
    pub fn section(&self) -> &'static str {
        match self {
            ObjectKind::Entity => "entities",
            ObjectKind::Source => "sources",
            ObjectKind::FeatureView => "feature_views",
            ObjectKind::FeatureService => "feature_services",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A place in a definitions file. Line and column are 1-based; 0 means unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: String,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        Ok(())
    }
}

/// One thing wrong with the definitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where it was written, when known.
    pub origin: Option<Origin>,
    /// The object it concerns, when there is one.
    pub kind: Option<ObjectKind>,
    pub object: Option<String>,
    /// The field within the object, e.g. `ttl` or `features[conv_rate].dtype`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem with an object field.
    pub fn at(
        origin: Option<Origin>,
        kind: ObjectKind,
        object: &str,
        field: impl Into<Option<String>>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            origin,
            kind: Some(kind),
            object: Some(object.to_string()),
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// A problem with a whole file (syntax, unknown section).
    pub fn in_file(origin: Origin, message: impl Into<String>) -> Self {
        Problem {
            origin: Some(origin),
            kind: None,
            object: None,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if let (Some(kind), Some(object)) = (&self.kind, &self.object) {
            write!(f, "{kind} '{object}'")?;
            if let Some(field) = &self.field {
                write!(f, ", field '{field}'")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one validation pass, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, p: Problem) {
        self.0.push(p);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    /// Orders problems by file, line and column (problems without a place last), keeping
    /// the order of problems at the same place.
    pub fn sort_by_place(&mut self) {
        self.0.sort_by(|a, b| {
            let key = |p: &Problem| {
                p.origin.as_ref().map(|o| (0, o.file.clone(), o.line, o.column)).unwrap_or((
                    1,
                    String::new(),
                    0,
                    0,
                ))
            };
            key(a).cmp(&key(b))
        });
    }

    /// Ok when empty, else the whole list as an [`crate::Error::Invalid`].
    pub fn into_result(self) -> crate::Result<()> {
        if self.is_empty() { Ok(()) } else { Err(crate::Error::Invalid(self)) }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} problem{} found:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}
