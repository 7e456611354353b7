//! Escaping for the documents the services render (incident reports, ERM report exports).

/// `s` escaped for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Appends `field` to `buf` as one RFC 4180 field: enclosed in double quotes, with its double
/// quotes doubled, when it holds a comma, a double quote, CR or LF.
pub fn push_csv_field(buf: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        buf.push('"');
        buf.push_str(&field.replace('"', "\"\""));
        buf.push('"');
    } else {
        buf.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_syntax_is_escaped() {
        assert_eq!(
            html_escape("<b>\"Tom\" & 'Jerry'</b>"),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut line = String::new();
        for f in ["plain", "a,b", "say \"hi\"", "two\nlines", "cr\r", ""] {
            push_csv_field(&mut line, f);
            line.push('|');
        }
        assert_eq!(
            line,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\"cr\r\"||"
        );
    }
}
