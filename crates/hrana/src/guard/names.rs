//! Reserved names in statement text that SQLite's authorizer never shows: the new name of
//! `ALTER TABLE t RENAME TO _tenantd_x` (the tenant could then neither drop nor rename the table
//! back, both refused for reserved names) and the parent table of a foreign key,
//! `REFERENCES _tenantd_hooks` (with `foreign_keys` off the tenant could insert rows pinning
//! reserved rows, and tenantd's own deletes of them would fail). A small tokenizer (comments,
//! strings, identifiers quoted as "x", `x` or [x], schema-qualified names) reads the text.

use super::policy::is_reserved;

/// One token of SQL text; only what the rename check needs is kept apart.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare word (keyword or unquoted identifier).
    Word(String),
    /// A quoted identifier or string literal (SQLite accepts a string as a new table name).
    Quoted(String),
    /// `;`, the end of a statement.
    End,
    /// Any other character (operators, punctuation, `.`).
    Other,
}

/// Refuses tenant SQL that renames a table to a reserved name or declares a foreign key to a
/// reserved table: `Err(reason)` names it. Checks every statement of `sql` (a `sequence` may
/// hold several).
pub fn check_reserved_names(sql: &str) -> Result<(), String> {
    let tokens = tokenize(sql);
    for stmt in tokens.split(|t| *t == Token::End) {
        if let Some(name) = table_rename_target(stmt) {
            // `_tenantd` itself: a virtual table's shadow tables (`<name>_data`, …) would be
            // renamed into the reserved prefix.
            if is_reserved(name) || is_reserved(&format!("{name}_")) {
                return Err(format!(
                    "`{name}` is reserved for tenantd: a table cannot be renamed to it (names \
                     starting with `_tenantd_`, and `_tenantd` itself, are tenantd's); pick \
                     another name"
                ));
            }
        }
        if let Some(name) = referenced_tables(stmt).find(|n| is_reserved(n)) {
            return Err(format!(
                "`{name}` is reserved for tenantd: a foreign key cannot reference it"
            ));
        }
    }
    Ok(())
}

/// The parent tables named after `REFERENCES` (foreign keys cannot be schema-qualified).
fn referenced_tables(stmt: &[Token]) -> impl Iterator<Item = &str> {
    stmt.windows(2).filter_map(|w| match &w[1] {
        Token::Word(name) | Token::Quoted(name) if is_word(&w[0], "REFERENCES") => {
            Some(name.as_str())
        }
        _ => None,
    })
}

fn is_word(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(w) if w.eq_ignore_ascii_case(kw))
}

/// The new name of `ALTER TABLE [schema.]name RENAME TO new`, if `stmt` is one.
fn table_rename_target(stmt: &[Token]) -> Option<&str> {
    let start = stmt
        .windows(2)
        .position(|w| is_word(&w[0], "ALTER") && is_word(&w[1], "TABLE"))?;
    let rest = &stmt[start + 2..];
    let rename = rest.iter().position(|t| is_word(t, "RENAME"))?;
    // `RENAME TO new` renames the table; `RENAME [COLUMN] a TO b` a column (not an object).
    match &rest[rename + 1..] {
        [to, Token::Word(name) | Token::Quoted(name), ..] if is_word(to, "TO") => Some(name),
        _ => None,
    }
}

fn tokenize(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            _ if c.is_ascii_whitespace() => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            }
            b'\'' | b'"' | b'`' => {
                let (text, next) = quoted(sql, i, c);
                out.push(Token::Quoted(text));
                i = next;
            }
            b'[' => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b']')
                    .map_or(b.len(), |p| i + p);
                out.push(Token::Quoted(sql[i + 1..end].to_owned()));
                i = (end + 1).min(b.len());
            }
            b';' => {
                out.push(Token::End);
                i += 1;
            }
            _ if is_ident_byte(c) => {
                let end = b[i..]
                    .iter()
                    .position(|&c| !is_ident_byte(c))
                    .map_or(b.len(), |p| i + p);
                out.push(Token::Word(sql[i..end].to_owned()));
                i = end;
            }
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    out
}

/// Identifier characters as SQLite's tokenizer sees them (any non-ASCII byte included).
fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The text of the quoted token opening at `start` (doubled quotes unescaped) and the index
/// after it; an unterminated quote runs to the end (SQLite then refuses the statement anyway).
fn quoted(sql: &str, start: usize, q: u8) -> (String, usize) {
    let b = sql.as_bytes();
    let mut text = Vec::new();
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                text.push(q);
                i += 2;
                continue;
            }
            return (String::from_utf8_lossy(&text).into_owned(), i + 1);
        }
        text.push(b[i]);
        i += 1;
    }
    (String::from_utf8_lossy(&text).into_owned(), b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_reserved_names_in_every_quoting() {
        for sql in [
            "ALTER TABLE t RENAME TO _tenantd_x",
            "alter table t rename to _TENANTD_X",
            "ALTER TABLE main.t RENAME TO \"_tenantd_x\"",
            "ALTER TABLE \"main\".\"t\" RENAME TO `_tenantd_x`",
            "ALTER TABLE [t] RENAME TO [_tenantd_x]",
            "ALTER TABLE t RENAME TO '_tenantd_x'",
            "ALTER/**/TABLE t -- c\n RENAME /* ; */ TO _tenantd_x",
            "SELECT ';'; ALTER TABLE t RENAME TO _tenantd_x;",
            "ALTER TABLE fts RENAME TO _TenantD",
            "CREATE TABLE c(k REFERENCES _tenantd_hooks(source))",
            "CREATE TABLE c(k, FOREIGN KEY (k) REFERENCES \"_TENANTD_hooks\")",
            "ALTER TABLE t ADD COLUMN k REFERENCES [_tenantd_hooks]",
        ] {
            assert!(check_reserved_names(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn leaves_other_statements_alone() {
        for sql in [
            "ALTER TABLE t RENAME TO things",
            "ALTER TABLE t RENAME TO \"_tenant\"",
            "ALTER TABLE t RENAME TO tenantd_x",
            "ALTER TABLE t RENAME COLUMN a TO _tenantd_a",
            "ALTER TABLE t RENAME a TO b",
            "ALTER TABLE t ADD COLUMN _tenantd_c",
            "SELECT 'ALTER TABLE t RENAME TO _tenantd_x'",
            "CREATE TABLE c(k REFERENCES items(id))",
            "SELECT 'REFERENCES _tenantd_hooks'",
            "SELECT 1 -- ALTER TABLE t RENAME TO _tenantd_x",
            "ALTER TABLE t RENAME TO \"a\"\"b\"; SELECT '_tenantd_x'",
            "ALTER TABLE t RENAME TO",
            "",
        ] {
            assert_eq!(check_reserved_names(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn quoted_names_unescape_doubled_quotes() {
        assert_eq!(quoted("'a''b' x", 0, b'\''), ("a'b".to_owned(), 6));
        assert_eq!(quoted("\"open", 0, b'"'), ("open".to_owned(), 5));
    }
}
