//! Quoting for the few places where a name or value must be spelled inside
//! SQL text (DDL takes no bind parameters). This is libpq's
//! `PQescapeInternal`, as ported by postgres-protocol; never hand-rolled.

/// Quote an identifier: `a"b` becomes `"a""b"`.
pub fn ident(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// Quote a string literal; uses `E'...'` when the text holds a backslash,
/// so it is right whatever `standard_conforming_strings` says.
pub fn literal(value: &str) -> String {
    postgres_protocol::escape::escape_literal(value)
}

/// Quote one value of a libpq `keyword=value` connection string.
///
/// Connection strings have their own rule (libpq's conninfo parser):
/// single-quote the value and backslash-escape `'` and `\`.
pub fn conninfo_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_double_their_quotes() {
        assert_eq!(ident("plain"), "\"plain\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn literals_double_quotes_and_use_e_strings_for_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b"), " E'a\\\\b'");
    }

    #[test]
    fn conninfo_values_escape_quote_and_backslash() {
        assert_eq!(conninfo_value("p'w\\d"), "'p\\'w\\\\d'");
        assert_eq!(conninfo_value(""), "''");
    }
}
