//! AIP-160 list filters: a parser for the subset Assurance supports and a compiler to
//! sea-orm conditions through a per-resource field schema.
//!
//! Supported: comparisons `field OP value` with `=`, `!=`, `<`, `<=`, `>`, `>=`;
//! `AND` (also implied by juxtaposition), `OR` (binds tighter than `AND`, per AIP-160),
//! `NOT` or `-`, and parentheses. Values are bare words, numbers or quoted strings.

use sea_orm::Condition;

use crate::error::{ApiError, ApiResult};

const MAX_FILTER_LEN: usize = 4000;
const MAX_DEPTH: usize = 16;
const MAX_COMPARISONS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Compare {
        field: String,
        op: Op,
        value: String,
    },
}

impl Filter {
    /// True when any comparison in the filter is on `field`.
    pub fn mentions(&self, field: &str) -> bool {
        match self {
            Filter::And(parts) | Filter::Or(parts) => parts.iter().any(|p| p.mentions(field)),
            Filter::Not(inner) => inner.mentions(field),
            Filter::Compare { field: f, .. } => f == field,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(Op),
    LParen,
    RParen,
    Minus,
}

fn lex(input: &str) -> Result<Vec<(usize, Tok)>, String> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((pos, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((pos, Tok::RParen));
                i += 1;
            }
            '=' => {
                out.push((pos, Tok::Op(Op::Eq)));
                i += 1;
            }
            '!' | '<' | '>' => {
                let next_eq = chars.get(i + 1).is_some_and(|(_, n)| *n == '=');
                let op = match (c, next_eq) {
                    ('!', true) => Op::Ne,
                    ('<', true) => Op::Le,
                    ('>', true) => Op::Ge,
                    ('<', false) => Op::Lt,
                    ('>', false) => Op::Gt,
                    _ => return Err(format!("unexpected `!` at position {pos}")),
                };
                out.push((pos, Tok::Op(op)));
                i += if next_eq { 2 } else { 1 };
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&(_, ch)) = chars.get(i) else {
                        return Err(format!("unterminated string starting at position {pos}"));
                    };
                    i += 1;
                    match ch {
                        '\\' => {
                            let Some(&(_, esc)) = chars.get(i) else {
                                return Err(format!(
                                    "unterminated string starting at position {pos}"
                                ));
                            };
                            s.push(esc);
                            i += 1;
                        }
                        ch if ch == quote => break,
                        ch => s.push(ch),
                    }
                }
                out.push((pos, Tok::Quoted(s)));
            }
            '-' if out.last().is_none_or(|(_, t)| !matches!(t, Tok::Op(_))) => {
                out.push((pos, Tok::Minus));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() {
                    let ch = chars[i].1;
                    if ch.is_whitespace()
                        || matches!(ch, '(' | ')' | '=' | '!' | '<' | '>' | '"' | '\'')
                    {
                        break;
                    }
                    i += 1;
                }
                let word: String = chars[start..i].iter().map(|(_, ch)| ch).collect();
                out.push((pos, Tok::Word(word)));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    depth: usize,
    comparisons: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.len, |(p, _)| *p)
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == kw)
    }

    fn expression(&mut self) -> Result<Filter, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nests deeper than {MAX_DEPTH} levels"));
        }
        let mut parts = vec![self.factor()?];
        loop {
            match self.peek() {
                None | Some(Tok::RParen) => break,
                _ if self.is_keyword("AND") => {
                    self.at += 1;
                    parts.push(self.factor()?);
                }
                // Juxtaposition is an implicit AND.
                _ => parts.push(self.factor()?),
            }
        }
        self.depth -= 1;
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    fn factor(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.term()?];
        while self.is_keyword("OR") {
            self.at += 1;
            parts.push(self.term()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Or(parts)
        })
    }

    fn term(&mut self) -> Result<Filter, String> {
        if self.is_keyword("NOT") || self.peek() == Some(&Tok::Minus) {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.simple()?)));
        }
        self.simple()
    }

    fn simple(&mut self) -> Result<Filter, String> {
        let pos = self.pos();
        match self.toks.get(self.at).cloned() {
            Some((_, Tok::LParen)) => {
                self.at += 1;
                let inner = self.expression()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(format!("expected `)` at position {}", self.pos()));
                }
                self.at += 1;
                Ok(inner)
            }
            Some((_, Tok::Word(field))) if !matches!(field.as_str(), "AND" | "OR" | "NOT") => {
                self.at += 1;
                let Some(Tok::Op(op)) = self.peek().cloned() else {
                    return Err(format!(
                        "expected a comparison operator after `{field}` at position {}",
                        self.pos()
                    ));
                };
                self.at += 1;
                let value = match self.toks.get(self.at).cloned() {
                    Some((_, Tok::Word(w))) if !matches!(w.as_str(), "AND" | "OR" | "NOT") => w,
                    Some((_, Tok::Quoted(q))) => q,
                    _ => return Err(format!("expected a value at position {}", self.pos())),
                };
                self.at += 1;
                self.comparisons += 1;
                if self.comparisons > MAX_COMPARISONS {
                    return Err(format!("has more than {MAX_COMPARISONS} comparisons"));
                }
                Ok(Filter::Compare { field, op, value })
            }
            None => Err("ends where a comparison was expected".into()),
            Some(_) => Err(format!("expected a field name at position {pos}")),
        }
    }
}

/// Parses an AIP-160 filter; empty means "no filter".
pub fn parse(field: &str, input: &str) -> ApiResult<Option<Filter>> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_FILTER_LEN} characters"),
        ));
    }
    if input.trim().is_empty() {
        return Ok(None);
    }
    let toks = lex(input).map_err(|e| ApiError::invalid(field, e))?;
    let mut p = Parser {
        toks,
        at: 0,
        depth: 0,
        comparisons: 0,
        len: input.len(),
    };
    let filter = p.expression().map_err(|e| ApiError::invalid(field, e))?;
    if p.at != p.toks.len() {
        return Err(ApiError::invalid(
            field,
            format!("unexpected `)` at position {}", p.pos()),
        ));
    }
    Ok(Some(filter))
}

/// `column OP value` as a condition.
pub fn compare<C: sea_orm::ColumnTrait>(column: C, op: Op, value: sea_orm::Value) -> Condition {
    Condition::all().add(match op {
        Op::Eq => column.eq(value),
        Op::Ne => column.ne(value),
        Op::Lt => column.lt(value),
        Op::Le => column.lte(value),
        Op::Gt => column.gt(value),
        Op::Ge => column.gte(value),
    })
}

/// `(first, second) OP (a, b)` in lexicographic order: how a name made of a parent id and an
/// id (`risks/{risk}/actionPlan/items/{item}`) compares, the ids being fixed-width.
pub fn compare_pair<C: sea_orm::ColumnTrait>(
    (first, a): (C, sea_orm::Value),
    (second, b): (C, sea_orm::Value),
    op: Op,
) -> Condition {
    let both_equal = Condition::all()
        .add(first.eq(a.clone()))
        .add(second.eq(b.clone()));
    let strict = match op {
        Op::Eq => return both_equal,
        Op::Ne => return both_equal.not(),
        Op::Lt | Op::Le => Op::Lt,
        Op::Gt | Op::Ge => Op::Gt,
    };
    Condition::any().add(compare(first, strict, a.clone())).add(
        Condition::all()
            .add(first.eq(a))
            .add(compare(second, op, b)),
    )
}

/// Refuses ordering operators on a field that only supports equality.
pub fn equality_only(field: &str, op: Op) -> Result<(), String> {
    match op {
        Op::Eq | Op::Ne => Ok(()),
        _ => Err(format!(
            "`{field}` supports only = and != (got {})",
            op.symbol()
        )),
    }
}

/// Maps one comparison to a condition; a resource's list filter implements it.
pub trait FilterSchema {
    /// Err(description) when the field is unknown, the operator does not apply to it, or
    /// the value does not fit its type.
    fn compare(&self, field: &str, op: Op, value: &str) -> Result<Condition, String>;
}

/// Compiles a parsed filter into a sea-orm condition.
pub fn compile(field: &str, filter: &Filter, schema: &dyn FilterSchema) -> ApiResult<Condition> {
    Ok(match filter {
        Filter::And(parts) => parts.iter().try_fold(Condition::all(), |c, p| {
            compile(field, p, schema).map(|x| c.add(x))
        })?,
        Filter::Or(parts) => parts.iter().try_fold(Condition::any(), |c, p| {
            compile(field, p, schema).map(|x| c.add(x))
        })?,
        Filter::Not(inner) => compile(field, inner, schema)?.not(),
        Filter::Compare {
            field: name,
            op,
            value,
        } => schema
            .compare(name, *op, value)
            .map_err(|e| ApiError::invalid(field, e))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmp(field: &str, op: Op, value: &str) -> Filter {
        Filter::Compare {
            field: field.into(),
            op,
            value: value.into(),
        }
    }

    fn p(s: &str) -> Filter {
        parse("filter", s).expect("parses").expect("non-empty")
    }

    #[test]
    fn comparisons_and_values() {
        assert_eq!(p("status = ASSESSED"), cmp("status", Op::Eq, "ASSESSED"));
        assert_eq!(p("score>=40"), cmp("score", Op::Ge, "40"));
        assert_eq!(
            p(r#"service = "services/exchange-online""#),
            cmp("service", Op::Eq, "services/exchange-online")
        );
        assert_eq!(p("labels.env != 'prod'"), cmp("labels.env", Op::Ne, "prod"));
        assert_eq!(p("x = \"a \\\" b\""), cmp("x", Op::Eq, "a \" b"));
        assert_eq!(p("score > -1"), cmp("score", Op::Gt, "-1"));
    }

    #[test]
    fn or_binds_tighter_than_and() {
        assert_eq!(
            p("a = 1 AND b = 2 OR c = 3"),
            Filter::And(vec![
                cmp("a", Op::Eq, "1"),
                Filter::Or(vec![cmp("b", Op::Eq, "2"), cmp("c", Op::Eq, "3")]),
            ])
        );
        assert_eq!(
            p("a = 1 b = 2"),
            Filter::And(vec![cmp("a", Op::Eq, "1"), cmp("b", Op::Eq, "2")])
        );
    }

    #[test]
    fn not_and_parentheses() {
        assert_eq!(
            p("NOT (a = 1 OR b = 2)"),
            Filter::Not(Box::new(Filter::Or(vec![
                cmp("a", Op::Eq, "1"),
                cmp("b", Op::Eq, "2")
            ])))
        );
        assert_eq!(p("-a = 1"), Filter::Not(Box::new(cmp("a", Op::Eq, "1"))));
    }

    #[test]
    fn errors_are_invalid_argument_with_position() {
        for bad in [
            "status",
            "status =",
            "= x",
            "(a = 1",
            "a = 1)",
            "a = 'x",
            "a ! b",
            "AND a = 1",
            "a = 1 AND",
        ] {
            match parse("filter", bad) {
                Err(ApiError::InvalidArgument(v)) => assert_eq!(v[0].field, "filter", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(parse("filter", &"(".repeat(40)).is_err());
        assert_eq!(parse("filter", "  "), Ok(None));
    }

    #[test]
    fn mentions() {
        assert!(p("a = 1 AND (b = 2 OR NOT status = CLOSED)").mentions("status"));
        assert!(!p("a = 1").mentions("status"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,120}") {
            let _ = parse("filter", &s);
        }

        #[test]
        fn never_panics_on_filter_alphabet(s in "[a-z =!<>()\"'AORNDT-]{0,80}") {
            let _ = parse("filter", &s);
        }
    }
}
