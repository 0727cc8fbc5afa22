//! A small document model (headings, paragraphs, tables, records) and its two text forms:
//! aligned plain text for terminals and GitHub markdown. JSON output bypasses this and
//! serialises the model's own types.

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// A table with a header row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Alignment per column.
    pub align: Vec<Align>,
    /// Rows of cells, one per column.
    pub rows: Vec<Vec<String>>,
    /// Per column, the width plain text wraps that column's cells at (None: never wrap).
    pub wrap_at: Vec<Option<usize>>,
}

impl Table {
    /// A table with these (header, alignment) columns and no rows.
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            headers: columns.iter().map(|(h, _)| h.to_string()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
            wrap_at: vec![None; columns.len()],
        }
    }

    /// Wraps column `column` at `width` characters in plain text (markdown never wraps).
    pub fn wrap(mut self, column: usize, width: usize) -> Table {
        self.wrap_at[column] = Some(width);
        self
    }

    /// Appends a row; it must have one cell per column.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }
}

/// One block of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A section heading.
    Heading(String),
    /// Preformatted text, printed as is (a fenced block in markdown).
    Pre(String),
    /// A paragraph.
    Para(String),
    /// A table.
    Table(Table),
    /// Key/value lines (a summary, or one record of a list).
    Record(Vec<(String, String)>),
}

/// The width text paragraphs and record values wrap at.
const WRAP: usize = 100;

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize, align: Align) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    match align {
        Align::Left => format!("{s}{fill}"),
        Align::Right => format!("{fill}{s}"),
    }
}

/// Splits `text` into lines of at most `limit` characters at spaces (longer words stay whole).
pub fn wrap(text: &str, limit: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && width(&line) + 1 + width(word) > limit {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn table_text(t: &Table) -> String {
    // Each cell becomes one or more lines; a row is as tall as its tallest cell.
    let cells: Vec<Vec<Vec<String>>> = std::iter::once(&t.headers)
        .chain(&t.rows)
        .map(|row| {
            row.iter()
                .zip(&t.wrap_at)
                .map(|(cell, limit)| match limit {
                    Some(limit) => wrap(cell, *limit),
                    None => vec![cell.clone()],
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..t.headers.len())
        .map(|i| {
            cells
                .iter()
                .flat_map(|row| row[i].iter().map(|l| width(l)))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render_row = |row: &Vec<Vec<String>>| -> Vec<String> {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        (0..height)
            .map(|k| {
                let padded: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .zip(&t.align)
                    .map(|((lines, w), a)| pad(lines.get(k).map_or("", |s| s), *w, *a))
                    .collect();
                padded.join("  ").trim_end().to_string()
            })
            .collect()
    };
    let mut out = render_row(&cells[0]);
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    for row in &cells[1..] {
        out.extend(render_row(row));
    }
    out.join("\n")
}

fn record_text(fields: &[(String, String)]) -> String {
    let key_width = fields.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = Vec::new();
    for (key, value) in fields {
        let lines = wrap(value, WRAP.saturating_sub(key_width + 2).max(20));
        for (i, l) in lines.iter().enumerate() {
            let k = if i == 0 { key.as_str() } else { "" };
            out.push(
                format!("{}  {l}", pad(k, key_width, Align::Left))
                    .trim_end()
                    .to_string(),
            );
        }
    }
    out.join("\n")
}

/// Renders blocks as plain text with aligned columns.
pub fn to_text(blocks: &[Block]) -> String {
    let parts: Vec<String> = blocks
        .iter()
        .map(|b| match b {
            Block::Heading(h) => format!("{h}\n{}", "=".repeat(width(h))),
            Block::Pre(text) => text.trim_end().to_string(),
            Block::Para(p) => wrap(p, WRAP).join("\n"),
            Block::Table(t) => table_text(t),
            Block::Record(fields) => record_text(fields),
        })
        .collect();
    parts.join("\n\n") + "\n"
}

fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders blocks as GitHub markdown.
pub fn to_markdown(blocks: &[Block]) -> String {
    let parts: Vec<String> = blocks
        .iter()
        .map(|b| match b {
            Block::Heading(h) => format!("### {h}"),
            Block::Pre(text) => format!("```text\n{}\n```", text.trim_end()),
            Block::Para(p) => p.clone(),
            Block::Table(t) => {
                let mut lines = vec![format!(
                    "| {} |",
                    t.headers
                        .iter()
                        .map(|h| escape_cell(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                )];
                lines.push(format!(
                    "|{}|",
                    t.align
                        .iter()
                        .map(|a| match a {
                            Align::Left => ":---",
                            Align::Right => "---:",
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                ));
                for r in &t.rows {
                    lines.push(format!(
                        "| {} |",
                        r.iter()
                            .map(|c| escape_cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    ));
                }
                lines.join("\n")
            }
            Block::Record(fields) => fields
                .iter()
                .map(|(k, v)| format!("- **{k}**: {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect();
    parts.join("\n\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Block> {
        let mut t = Table::new(&[("constraint", Align::Left), ("tenants", Align::Right)]);
        t.row(vec!["storage".into(), "5,000".into()]);
        t.row(vec!["memory".into(), "2,000".into()]);
        vec![Block::Heading("Limits".into()), Block::Table(t)]
    }

    #[test]
    fn text_tables_align_columns() {
        let text = to_text(&sample());
        assert_eq!(
            text,
            "Limits\n======\n\n\
             constraint  tenants\n\
             ----------  -------\n\
             storage       5,000\n\
             memory        2,000\n"
        );
    }

    #[test]
    fn markdown_tables_have_alignment_rows() {
        let md = to_markdown(&sample());
        assert!(md.contains("| constraint | tenants |\n|:---|---:|\n| storage | 5,000 |"));
    }

    #[test]
    fn wrapped_cells_make_taller_rows() {
        let mut t = Table::new(&[("a", Align::Left), ("b", Align::Left)]).wrap(1, 5);
        t.row(vec!["x".into(), "aa bb cc".into()]);
        assert_eq!(
            to_text(&[Block::Table(t)]),
            "a  b\n-  -----\nx  aa bb\n   cc\n"
        );
    }

    #[test]
    fn wrap_breaks_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("", 5), vec![""]);
    }
}
