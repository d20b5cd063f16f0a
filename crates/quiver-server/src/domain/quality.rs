//! Drift: between two periods a caller names, or a view's declared check (its newest
//! successful window against its `drift.reference` period or the window before it), which
//! `quiver serve --check-drift-every` runs for every view that declares `drift:`.

use quiver_offline::drift::DriftReport;
use quiver_offline::layout::Window;

use super::{Project, Result, project};

impl Project {
    /// The drift of view `name` between `periods` (`(reference, current)`), or, without
    /// them, its declared check. Reads the view's offline table as it is now.
    pub async fn drift(&self, name: &str, periods: Option<(Window, Window)>) -> Result<DriftReport> {
        let snapshot = self.require_current()?;
        let view = project::view(&snapshot, name)?;
        let (reference, current) = match periods {
            Some(p) => p,
            None => {
                let state = self.state().view(name).await?;
                quiver_offline::drift::declared_periods(view, &state)?
            }
        };
        Ok(quiver_offline::drift::drift(self.lake().session(), view, self.offline(), &reference, &current)
            .await?)
    }

    /// Runs the declared drift check of every view of the served version that declares
    /// `drift:` and has a successful materialization, one after the other. A failed check is
    /// returned as its message.
    pub async fn check_declared_drift(&self) -> Vec<(String, std::result::Result<DriftReport, String>)> {
        let Some(snapshot) = self.current() else { return Vec::new() };
        let mut out = Vec::new();
        for view in snapshot.definitions.feature_views.iter().filter(|v| v.drift.is_some()) {
            match self.state().view(&view.name).await {
                Ok(state) if state.last_success().is_none() => continue,
                Ok(_) => {}
                Err(e) => {
                    out.push((view.name.clone(), Err(e.to_string())));
                    continue;
                }
            }
            let outcome = self.drift(&view.name, None).await.map_err(|e| e.to_string());
            out.push((view.name.clone(), outcome));
        }
        out
    }
}
