//! Rendering: documents as text or markdown (`doc`), the per-command document builders
//! (`report`), JSON with rounded floats (`json`), and SVG charts (`svg`). Nothing here computes
//! a model figure.

pub mod doc;
pub mod json;
pub mod report;
pub mod svg;

/// Output format of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned plain-text tables.
    #[default]
    Text,
    /// GitHub markdown.
    Markdown,
    /// JSON: the model's own result types, floats to 12 significant digits.
    Json,
}

/// Renders `blocks` as text or markdown (`Json` is handled by the caller from the model types).
pub fn blocks(blocks: &[doc::Block], format: Format) -> String {
    match format {
        Format::Markdown => doc::to_markdown(blocks),
        Format::Text | Format::Json => doc::to_text(blocks),
    }
}
