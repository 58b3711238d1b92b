//! Charts are Nomad Packs: a pack directory (`metadata.hcl`, `variables.hcl`, `templates/`,
//! `deps/`) loaded from any file map ([`pack`]), its variables merged and type-checked
//! ([`variables`]), and its templates rendered with drover's Go-template engine ([`render`]).
//! Packs shipped with drover live in [`shipped`]. Levant templates are rendered by [`levant`].

pub mod cli;
pub mod levant;
pub mod pack;
pub mod render;
pub mod shipped;
pub mod variables;

use std::fmt;

pub use pack::{Pack, PackFiles, load_pack};
pub use render::{Rendered, render_pack};
pub use variables::{GivenValue, VarType, VariableDecl};

/// A problem with a pack, located in the pack's files (or in the file that gave a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ChartError {
    /// The file the problem is in (pack file, app.yaml or var file), as the user names it.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ChartError {
    pub(crate) fn new(file: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        ChartError {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}
