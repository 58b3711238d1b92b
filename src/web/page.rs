//! The status page: HTML from templates under `src/web/templates/`, compiled into the binary and
//! rendered by minijinja with HTML auto-escaping, so nothing from Git, the cluster or an error
//! message can inject markup.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::controller::AppStatus;

/// The status page template's file name (`.html`: auto-escaped).
const PAGE: &str = "page.html";

/// The templates, parsed once. Immutable, so sharing them process-wide is safe; a template that
/// does not parse is a build mistake the unit tests catch, and at run time answers a 500.
static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Every template escapes HTML, whatever its name; `|safe` is never used.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // A misspelled field is an error (caught by the tests), not an empty cell.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(PAGE, include_str!("templates/page.html"))?;
    Ok(env)
});

/// The latest Git revision shown in the page's header.
#[derive(Debug, Serialize)]
pub struct PageRevision {
    /// Full commit id (the template shortens it).
    pub id: String,
    /// Commit message.
    pub message: String,
}

/// Everything the status page shows.
#[derive(Debug, Serialize)]
pub struct PageView {
    /// The repository URL, credentials removed.
    pub repository: String,
    /// The newest fetched revision, if any.
    pub revision: Option<PageRevision>,
    /// The last Git fetch error.
    pub git_error: Option<String>,
    /// Problems of the repository as a whole (the banner).
    pub problems: Vec<String>,
    /// Every app's status.
    pub apps: Vec<AppStatus>,
}

/// Rendering the page failed (a template bug; the detail goes to the log, never to the client).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template did not parse when the templates were loaded.
    #[error("loading the page templates: {0}")]
    Load(String),
    /// Rendering a template failed.
    #[error("rendering the status page")]
    Render(#[source] minijinja::Error),
}

/// The status page's HTML.
pub fn render(view: &PageView) -> Result<String, RenderError> {
    let templates = TEMPLATES
        .as_ref()
        .map_err(|e| RenderError::Load(format!("{e:#}")))?;
    templates
        .get_template(PAGE)
        .and_then(|template| template.render(minijinja::value::Serde(view)))
        .map_err(RenderError::Render)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_with(text: &str) -> PageView {
        let mut app = AppStatus::unknown(
            text,
            "0123456789abcdef",
            crate::controller::Phase::WaitingForDependency(text.into()),
        );
        app.errors.push(text.to_string());
        app.pinned = Some("fedcba9876543210".into());
        PageView {
            repository: text.into(),
            revision: Some(PageRevision {
                id: "0123456789abcdef".into(),
                message: text.into(),
            }),
            git_error: Some(text.into()),
            problems: vec![text.into()],
            apps: vec![app],
        }
    }

    #[test]
    fn every_field_is_escaped() {
        let html = render(&view_with("<script>x</script>&\"")).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!html.contains("<script>"), "{html}");
        // Repository, revision message, Git error, banner, name, phase, error: every place the
        // text appears, escaped.
        assert_eq!(
            html.matches("&lt;script&gt;x&lt;&#x2f;script&gt;&amp;&quot;")
                .count(),
            7,
            "{html}"
        );
        assert!(html.contains("(pinned fedcba987654)"), "{html}");
        assert!(html.contains("<code>0123456789ab</code>"), "{html}");
    }

    #[test]
    fn an_empty_page_renders() {
        let html = render(&PageView {
            repository: "file:///repo".into(),
            revision: None,
            git_error: None,
            problems: Vec::new(),
            apps: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(html.contains("none yet"), "{html}");
        assert!(!html.contains("class=banner"), "{html}");
    }
}
